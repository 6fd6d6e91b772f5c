// A real OpenID provider for the portal's login test: the npm package
// oidc-provider on loopback, with one client registered for Bru (PKCE
// required, client_secret_basic), ID-porten's acr values, and accounts whose
// claims carry `pid`. The login page is a minimal form of our own (no
// password: this stands in for BankID); consent is granted without asking,
// as ID-porten does for a public-sector client. RP-initiated logout
// (OpenID Connect RP-Initiated Logout 1.0) is on, with Bru's front page
// registered as where a logout returns to.
//
// Run on its own: node oidc-provider.mjs PORT REDIRECT_URI SECRET

import crypto from 'node:crypto';
import http from 'node:http';
import Provider from 'oidc-provider';

/** The persons the provider knows: login name → claims. */
export const ACCOUNTS = {
  kari: { pid: '12884513829', acr: 'idporten-loa-substantial' },
  ola: { pid: '03839113713', acr: 'idporten-loa-high' },
  // Logs in at a level too low for Bru: the portal must refuse it.
  lav: { pid: '24916214088', acr: 'idporten-loa-low' },
};

export const CLIENT_ID = 'bru-portal';

/**
 * Starts the provider on 127.0.0.1:port and resolves when it listens.
 * `log` collects what the test asserts about afterwards: every authorization
 * request's parameters and every token request's grant.
 */
export async function startProvider({
  port = 0, redirectUri, secret, postLogoutRedirectUri,
}) {
  const log = { authorizations: [], tokens: [], endSessions: [], logouts: [] };
  const server = http.createServer();
  await new Promise((resolve) => server.listen(port, '127.0.0.1', resolve));
  const issuer = `http://127.0.0.1:${server.address().port}`;

  // The provider's own signing key, new for every run.
  const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const signingKey = { ...privateKey.export({ format: 'jwk' }), kid: 'test-idporten', use: 'sig', alg: 'RS256' };
  const provider = new Provider(issuer, {
    jwks: { keys: [signingKey] },
    ttl: {
      Interaction: 600, Session: 3600, Grant: 3600, AccessToken: 600, IdToken: 600, AuthorizationCode: 60,
    },
    clients: [{
      client_id: CLIENT_ID,
      client_secret: secret,
      redirect_uris: [redirectUri],
      post_logout_redirect_uris: postLogoutRedirectUri ? [postLogoutRedirectUri] : [],
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
      id_token_signed_response_alg: 'RS256',
    }],
    pkce: { required: () => true },
    acrValues: ['idporten-loa-low', 'idporten-loa-substantial', 'idporten-loa-high'],
    claims: { openid: ['sub'], profile: ['pid'] },
    // Scope claims go into the id_token itself, as ID-porten puts pid there.
    conformIdTokenClaims: false,
    features: { devInteractions: { enabled: false }, rpInitiatedLogout: { enabled: true } },
    cookies: { keys: ['bru-portal-test-cookie-key-0123456789'] },
    interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
    async findAccount(ctx, id) {
      const account = ACCOUNTS[id];
      if (!account) return undefined;
      return {
        accountId: id,
        async claims() {
          return { sub: id, pid: account.pid };
        },
      };
    },
    // Consent without a prompt: Bru is a first-party client here.
    async loadExistingGrant(ctx) {
      const grantId = ctx.oidc.result?.consent?.grantId
        || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
      if (grantId) return ctx.oidc.provider.Grant.find(grantId);
      const grant = new ctx.oidc.provider.Grant({
        clientId: ctx.oidc.client.clientId,
        accountId: ctx.oidc.session.accountId,
      });
      grant.addOIDCScope('openid profile');
      grant.addOIDCClaims(['pid']);
      await grant.save();
      return grant;
    },
  });
  // http on loopback is fine for a test; oidc-provider only warns.
  provider.proxy = false;
  provider.on('server_error', (ctx, err) => console.error('oidc-provider:', err));
  // What the token endpoint saw: which client, and whether it sent a PKCE
  // verifier (oidc-provider checks it against the challenge, and refuses
  // the grant when it does not match).
  provider.on('grant.success', (ctx) => {
    log.tokens.push({
      ok: true,
      client_id: ctx.oidc.client?.clientId,
      code_verifier: Boolean(ctx.oidc.params?.code_verifier),
    });
  });
  // A logout the provider carried out: its session is over.
  provider.on('end_session.success', (ctx) => {
    log.logouts.push({ client_id: ctx.oidc.client?.clientId });
  });
  provider.on('grant.error', (ctx, err) => {
    log.tokens.push({ ok: false, error: err.error ?? String(err) });
  });

  const callback = provider.callback();
  server.on('request', async (req, res) => {
    try {
      const url = new URL(req.url, issuer);
      if (url.pathname === '/auth') {
        log.authorizations.push(Object.fromEntries(url.searchParams));
      }
      if (url.pathname === '/session/end' && req.method === 'GET') {
        log.endSessions.push(Object.fromEntries(url.searchParams));
      }
      const login = url.pathname.match(/^\/interaction\/([\w-]+)(\/login)?$/);
      if (login && req.method === 'GET' && !login[2]) {
        const details = await provider.interactionDetails(req, res);
        res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
        res.end(`<!DOCTYPE html><html lang="en"><head><title>Test ID-porten</title></head><body>
<main><h1>Test ID-porten</h1>
<form method="post" action="/interaction/${details.uid}/login">
<label for="login">Login name</label>
<input id="login" name="login" autocomplete="off">
<button type="submit">Log in</button>
</form></main></body></html>`);
        return;
      }
      if (login && req.method === 'POST' && login[2]) {
        const body = new URLSearchParams(await readBody(req));
        const name = body.get('login') ?? '';
        const account = ACCOUNTS[name];
        if (!account) {
          await provider.interactionFinished(req, res, {
            error: 'access_denied', error_description: 'unknown login',
          });
          return;
        }
        await provider.interactionFinished(req, res, {
          login: { accountId: name, acr: account.acr, amr: ['pwd'] },
        }, { mergeWithLastSubmission: false });
        return;
      }
      return callback(req, res);
    } catch (err) {
      console.error('test provider:', err);
      if (!res.headersSent) res.writeHead(500);
      res.end();
    }
  });

  return {
    issuer,
    log,
    close: () => new Promise((resolve) => server.close(resolve)),
  };
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const [port, redirectUri, secret] = process.argv.slice(2);
  const p = await startProvider({ port: Number(port), redirectUri, secret });
  console.log(`issuer=${p.issuer}`);
}
