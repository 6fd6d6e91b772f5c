// The citizen portal in a real browser (headless Chromium), against the real
// `bru` binary:
//
// 1. `bru demo`: Kari logs in with the demo ID-porten's person picker, finds
//    K429's request, approves it, K429 fetches her income, she reads the
//    access log, withdraws the consent, and K429's next call is refused.
// 2. `bru serve` with [portal] pointing at oidc-provider (a real OpenID
//    provider): the authorization code flow with PKCE through the browser.
//
// axe-core checks every page (WCAG 2.1 A and AA); every page is also
// checked at 320 px and at 200 % zoom, and screenshots go to
// target/portal-screenshots/.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';

import {
  K429, KARI, NAV, axe, call, freePort, launchBrowser, overflow, screenshot, startBru, tempDir,
} from './lib.mjs';
import { CLIENT_ID, startProvider } from './oidc-provider.mjs';

const axeLog = [];

/** Checks the page with axe, at 320 px and at 200 % zoom, and screenshots it. */
async function checkPage(page, name) {
  const violations = await axe(page);
  axeLog.push({ page: name, url: page.url(), violations: violations.length });
  assert.deepEqual(violations, [], `axe violations on ${name}`);
  assert.equal(await page.getAttribute('html', 'lang') !== null, true, 'html has a lang');
  const h1 = await page.locator('h1').count();
  assert.equal(h1, 1, `${name} has one h1`);
  await screenshot(page, name);
  const size = page.viewportSize();
  // 320 CSS px wide (WCAG 1.4.10 reflow), then 1280 px at 200 % zoom = 640 CSS px.
  for (const width of [320, 640]) {
    await page.setViewportSize({ width, height: 720 });
    assert.ok(await overflow(page) <= 0, `${name} scrolls sideways at ${width} px`);
  }
  await page.setViewportSize({ width: 320, height: 720 });
  await screenshot(page, `${name}-320px`);
  await page.setViewportSize(size);
}

describe('the portal in the demo', { concurrency: false }, () => {
  let bru;
  let browser;
  let dir;
  let ca;
  let base;
  let consentId;
  let k429Token;
  const until = new Date(Date.now() + 30 * 86400_000);
  until.setUTCHours(12, 0, 0, 0);

  const api = (method, p, opts) => call(bru.publicPort, ca, method, p, opts);
  const fetchIncome = () => api('GET', '/data/nav/inntekt', {
    headers: {
      authorization: `Bearer ${k429Token}`,
      'bru-purpose': 'omsorgsbolig-soknad',
      'bru-consent': consentId,
      'nav-personident': KARI,
    },
  });

  before(async () => {
    dir = tempDir('bru-portal-demo-');
    bru = await startBru(['demo', '--dir', dir, '--listen', '127.0.0.1:0', '--ops-listen', '127.0.0.1:0']);
    ca = fs.readFileSync(path.join(dir, 'ca.pem'));
    base = `https://localhost:${bru.publicPort}`;
    browser = await launchBrowser();
  });

  after(async () => {
    await browser?.close();
    await bru?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('K429 asks Kari for consent through the requester API', async () => {
    const token = await api('POST', '/demo/maskinporten/token', {
      body: { org: K429, scope: 'nav:inntekt.read bru:consent' },
    });
    assert.equal(token.status, 200, token.body);
    k429Token = token.json.access_token;
    const created = await api('POST', '/consent/v1/requests', {
      headers: { authorization: `Bearer ${k429Token}` },
      body: {
        subject: KARI,
        datasets: ['nav/inntekt'],
        purpose: 'omsorgsbolig-soknad',
        valid_to: until.toISOString(),
        max_uses: 10,
        message: 'Hei Kari! Vi trenger dette for å fylle ut søknaden din om omsorgsbolig.',
      },
    });
    assert.equal(created.status, 201, created.body);
    consentId = created.json.id;
    assert.equal(created.json.citizen_url, `${base}/samtykke/${consentId}`);
  });

  it('the front page explains Bru and offers the login', async () => {
    const { page } = browser;
    const response = await page.goto(`${base}/`);
    const h = response.headers();
    for (const directive of ["default-src 'self'", "frame-ancestors 'none'", "form-action 'self'", "base-uri 'none'"]) {
      assert.ok(h['content-security-policy'].includes(directive), h['content-security-policy']);
    }
    assert.equal(h['x-content-type-options'], 'nosniff');
    assert.equal(h['referrer-policy'], 'no-referrer');
    assert.equal(h['cache-control'], 'no-store');
    assert.equal(await page.getAttribute('html', 'lang'), 'nb');
    assert.equal(await page.textContent('h1'), 'Samtykke og innsyn');
    await checkPage(page, '01-forside');
  });

  it('the skip link is the first stop for the keyboard, and focus is visible', async () => {
    const { page } = browser;
    await page.goto(`${base}/`);
    await page.keyboard.press('Tab');
    const focused = await page.evaluate(() => {
      const el = document.activeElement;
      const r = el.getBoundingClientRect();
      const s = getComputedStyle(el);
      return { text: el.textContent, top: r.top, outline: s.outlineStyle, width: s.outlineWidth };
    });
    assert.equal(focused.text, 'Hopp til hovedinnholdet');
    assert.ok(focused.top >= 0, 'the skip link comes into view when focused');
    assert.equal(focused.outline, 'solid');
    assert.equal(focused.width, '3px');
    await screenshot(page, '01b-hopp-til-innhold');
  });

  it('Kari logs in with the demo ID-porten', async () => {
    const { page } = browser;
    await page.goto(`${base}/`);
    await page.getByRole('link', { name: 'Logg inn med ID-porten' }).click();
    await page.waitForURL(/\/demo\/idporten\/login/);
    assert.equal(await page.textContent('h1'), 'Logg inn (demo av ID-porten)');
    await checkPage(page, '02-demo-innlogging');
    await page.getByLabel('Kari Nordmann').check();
    await page.getByRole('button', { name: 'Logg inn' }).click();
    await page.waitForURL(`${base}/samtykke`);
    const cookies = await browser.context.cookies(base);
    const session = cookies.find((c) => c.name === '__Host-bru-session');
    assert.ok(session, 'a session cookie');
    assert.equal(session.httpOnly, true);
    assert.equal(session.secure, true);
    assert.equal(session.sameSite, 'Lax');
    assert.ok(!session.value.includes(KARI));
  });

  it('she finds K429\'s pending request', async () => {
    const { page } = browser;
    assert.equal(await page.textContent('h1'), 'Mine samtykker');
    const pending = page.locator('section[aria-labelledby="pending-h"]');
    assert.match(await pending.textContent(), /K429 kommune: Søknad om omsorgsbolig/);
    assert.match(await pending.textContent(), /Venter på svaret ditt/);
    await checkPage(page, '03-samtykker-venter');
    await pending.getByRole('link', { name: /K429 kommune/ }).click();
    await page.waitForURL(`${base}/samtykke/${consentId}`);
    const date = new Intl.DateTimeFormat('nb-NO', {
      timeZone: 'Europe/Oslo', day: 'numeric', month: 'long', year: 'numeric',
    }).format(until);
    const lead = await page.textContent('p.lead');
    assert.equal(
      lead,
      `K429 kommune ber om lov til å hente inntekt fra NAV (demo) til søknad om omsorgsbolig. Samtykket gjelder til ${date}.`,
    );
    const details = await page.textContent('dl.details');
    assert.match(details, /K429 kommune \(org\.nr\. 921 429 002\)/);
    assert.match(details, /Inntekt fra NAV \(demo\) \(org\.nr\. 983 440 002\)/);
    assert.match(details, /høyst 10 ganger/);
    assert.match(details, /Hei Kari!/);
    await checkPage(page, '04-foresporsel');
  });

  it('she approves it with one button and sees it active', async () => {
    const { page } = browser;
    await page.getByRole('button', { name: 'Ja, jeg samtykker' }).click();
    await page.waitForURL(`${base}/samtykke/${consentId}?utfort=accept`);
    assert.match(await page.textContent('[role=status]'), /Du har gitt samtykke/);
    assert.equal(await page.textContent('.status .badge'), 'Aktivt');
    await checkPage(page, '05-samtykke-gitt');
    await page.getByRole('link', { name: 'Mine samtykker' }).click();
    const active = page.locator('section[aria-labelledby="active-h"]');
    assert.match(await active.textContent(), /K429 kommune: Søknad om omsorgsbolig/);
    await checkPage(page, '06-samtykker-aktive');
    const status = await api('GET', `/consent/v1/requests/${consentId}`, {
      headers: { authorization: `Bearer ${k429Token}` },
    });
    assert.equal(status.json.status, 'granted');
  });

  it('K429 fetches her income under the consent; NAV reads a case under statute', async () => {
    const income = await fetchIncome();
    assert.equal(income.status, 200, income.body);
    const nav = await api('POST', '/demo/maskinporten/token', {
      body: { org: NAV, scope: 'k429:sosialtjeneste.read' },
    });
    const statutory = await api('GET', '/data/k429/sosialtjeneste', {
      headers: {
        authorization: `Bearer ${nav.json.access_token}`,
        'bru-purpose': 'sosialhjelp-saksbehandling',
        'nav-personident': KARI,
      },
    });
    assert.equal(statutory.status, 200, statutory.body);
  });

  it('she sees every transfer in the access log, with a link to its proof', async () => {
    const { page } = browser;
    await page.getByRole('link', { name: 'Hvem har hentet opplysninger om meg' }).click();
    await page.waitForURL(`${base}/innsyn`);
    const items = page.locator('ol.transfers > li');
    assert.equal(await items.count(), 2);
    // Newest first: NAV's statutory read, then K429's read under consent.
    const [first, second] = [await items.nth(0).textContent(), await items.nth(1).textContent()];
    assert.match(first, /NAV \(demo\) \(org\.nr\. 983 440 002\)/);
    assert.match(first, /Lov: /);
    assert.match(second, /K429 kommune \(org\.nr\. 921 429 002\)/);
    assert.match(second, /Inntekt fra NAV \(demo\)/);
    assert.match(second, /Søknad om omsorgsbolig/);
    assert.match(second, /Ditt samtykke/);
    assert.match(second, /Tillatt/);
    assert.match(await page.textContent('p.count'), /^Viser 1–2 av 2$/);
    await checkPage(page, '07-innsyn');
    // The proof link opens a readable page, not JSON.
    const proofPage = await items.nth(1).getByRole('link', { name: /Bevis/ }).getAttribute('href');
    assert.match(proofPage, /^\/innsyn\/\d+\/bevis$/);
    // The record is under a signed checkpoint within a second.
    for (let i = 0; i < 20; i++) {
      await page.goto(`${base}${proofPage}`);
      if (await page.locator('a[download]').count() > 0) break;
      await new Promise((r) => setTimeout(r, 250));
    }
    assert.equal(await page.textContent('h1'), 'Bevis for at hendelsen er loggført');
    const index = proofPage.split('/')[2];
    assert.match(await page.textContent('main'), new RegExp(`Hendelsen er nummer ${index} i loggen`));
    assert.match(await page.textContent('main'), /Bru har kontrollert beviset mot sjekkpunktet: det stemmer\./);
    assert.match(await page.textContent('main'), /RFC 9162/);
    assert.match(await page.textContent('main'), /C2SP/);
    await checkPage(page, '07b-bevis');
    // The raw proof is a download of the JSON endpoint, which works with
    // the portal session alone (no token in the browser).
    const download = page.getByRole('link', { name: 'Last ned beviset (JSON)' });
    assert.equal(await download.getAttribute('download'), `bru-bevis-${index}.json`);
    const proof = await download.getAttribute('href');
    assert.equal(proof, `/citizen/v1/transfers/${index}/proof`);
    const script = await page.locator('pre.code code').first().textContent();
    const answer = await page.request.get(`${base}${proof}`);
    assert.equal(answer.status(), 200, await answer.text());
    const body = await answer.json();
    assert.ok(Array.isArray(body.hashes), 'an inclusion proof');
    assert.equal(body.record.dataset, 'nav/inntekt');
    assert.match(body.checkpoint, /\n\n\u2014 /, 'a signed checkpoint note');
    // The program the page gives checks the downloaded proof, without Bru.
    fs.writeFileSync(path.join(dir, 'kontroller.py'), script);
    fs.writeFileSync(path.join(dir, `bru-bevis-${index}.json`), JSON.stringify(body));
    const run = (file) => execFileSync('python3', [path.join(dir, 'kontroller.py'), path.join(dir, file)]).toString();
    assert.equal(run(`bru-bevis-${index}.json`), 'OK\n');
    const tampered = { ...body, record: { ...body.record, purpose: 'noe annet' } };
    fs.writeFileSync(path.join(dir, 'tampered.json'), JSON.stringify(tampered));
    assert.equal(run('tampered.json'), 'FAIL\n');
  });

  it('she withdraws the consent with one button, and K429\'s next call is refused', async () => {
    const { page } = browser;
    await page.goto(`${base}/samtykke/${consentId}`);
    await page.getByRole('button', { name: 'Trekk tilbake samtykket' }).click();
    await page.waitForURL(`${base}/samtykke/${consentId}?utfort=revoke`);
    assert.match(await page.textContent('[role=status]'), /Samtykket er trukket tilbake/);
    assert.equal(await page.textContent('.status .badge'), 'Trukket tilbake');
    assert.match(await page.textContent('ol.history'), /Du trakk tilbake samtykket/);
    await checkPage(page, '08-trukket-tilbake');
    const refused = await fetchIncome();
    assert.equal(refused.status, 403);
    assert.equal(refused.json.code, 'consent_revoked');
    await page.goto(`${base}/innsyn`);
    const newest = await page.locator('ol.transfers > li').first().textContent();
    assert.match(newest, /Avvist/);
    assert.match(newest, /Avvist Samtykket var trukket tilbake\./);
    await checkPage(page, '09-innsyn-avvist');
    await page.goto(`${base}/samtykke`);
    assert.match(await page.locator('section[aria-labelledby="past-h"]').textContent(), /Trukket tilbake/);
  });

  it('the pages are in English through the language switch and Accept-Language', async () => {
    const { page } = browser;
    await page.goto(`${base}/samtykke`);
    await page.getByRole('link', { name: 'English' }).click();
    await page.waitForURL(`${base}/samtykke?lang=en`);
    assert.equal(await page.getAttribute('html', 'lang'), 'en');
    assert.equal(await page.textContent('h1'), 'My consents');
    await page.goto(`${base}/samtykke/${consentId}`);
    assert.equal(await page.getAttribute('html', 'lang'), 'en', 'the choice is kept in a cookie');
    assert.match(await page.textContent('p.lead'), /^K429 kommune asked for permission to fetch income from NAV \(demo\)/);
    await checkPage(page, '10-consent-en');
    await page.getByRole('link', { name: 'Norsk (bokmål)' }).click();
    assert.equal(await page.getAttribute('html', 'lang'), 'nb');

    const english = await launchBrowser({ locale: 'en-GB' });
    try {
      await english.page.goto(`${base}/`);
      assert.equal(await english.page.getAttribute('html', 'lang'), 'en');
      assert.equal(await english.page.textContent('h1'), 'Consent and access log');
    } finally {
      await english.close();
    }
  });

  it('a form without the session\'s CSRF token changes nothing', async () => {
    const { page, context } = browser;
    // A cross-site page posting to Bru with the citizen's cookies: no token.
    const forged = await context.request.post(`${base}/samtykke/${consentId}`, {
      form: { action: 'accept' },
      maxRedirects: 0,
    });
    assert.equal(forged.status(), 403);
    const wrong = await context.request.post(`${base}/samtykke/${consentId}`, {
      form: { action: 'accept', csrf: 'not-the-token' },
      maxRedirects: 0,
    });
    assert.equal(wrong.status(), 403);
    await page.goto(`${base}/samtykke/${consentId}`);
    assert.equal(await page.textContent('.status .badge'), 'Trukket tilbake');
  });

  it('a purpose a caller made up shows as unknown, never in its words', async () => {
    const { page } = browser;
    const snoop = await api('POST', '/demo/maskinporten/token', {
      body: { org: '971000007', scope: 'nav:inntekt.read' },
    });
    const callerText = 'Ring-815-00000-for-aa-stoppe-innkreving';
    const refused = await api('GET', '/data/nav/inntekt', {
      headers: {
        authorization: `Bearer ${snoop.json.access_token}`,
        'bru-purpose': callerText,
        'nav-personident': KARI,
      },
    });
    assert.equal(refused.status, 403, refused.body);
    await page.goto(`${base}/innsyn`);
    const newest = await page.locator('ol.transfers > li').first().textContent();
    assert.match(newest, /ukjent formål \(oppgitt av virksomheten\)/);
    assert.match(newest, /Virksomheten har ikke lov til å hente disse opplysningene\./);
    assert.ok(!(await page.content()).includes(callerText), 'the caller\'s text is not shown');
    assert.ok(!(await page.content()).includes('Ring-815'));
    await checkPage(page, '09b-innsyn-ukjent-formal');
  });

  it('the access log is paged, newest first, with a count', async () => {
    const { page } = browser;
    const nav = await api('POST', '/demo/maskinporten/token', {
      body: { org: NAV, scope: 'k429:sosialtjeneste.read' },
    });
    for (let i = 0; i < 22; i++) {
      const r = await api('GET', '/data/k429/sosialtjeneste', {
        headers: {
          authorization: `Bearer ${nav.json.access_token}`,
          'bru-purpose': 'sosialhjelp-saksbehandling',
          'nav-personident': KARI,
        },
      });
      assert.equal(r.status, 200, r.body);
    }
    // 2 + 2 earlier + 22 now.
    await page.goto(`${base}/innsyn`);
    assert.equal(await page.textContent('p.count'), 'Viser 1–20 av 26');
    assert.equal(await page.locator('ol.transfers > li').count(), 20);
    const pages = page.getByRole('navigation', { name: 'Sider' });
    assert.equal(await pages.locator('[aria-current=page]').textContent(), 'Side 1');
    await checkPage(page, '09c-innsyn-side-1');
    await pages.getByRole('link', { name: 'Eldre' }).click();
    await page.waitForURL(`${base}/innsyn?side=2`);
    assert.equal(await page.textContent('p.count'), 'Viser 21–26 av 26');
    assert.equal(await page.locator('ol.transfers > li').count(), 6);
    // The oldest last: K429's first read under consent.
    assert.match(await page.locator('ol.transfers > li').last().textContent(), /Ditt samtykke/);
    await checkPage(page, '09d-innsyn-side-2');
  });

  it('she logs out, the pages ask for a login again, and the old cookie is dead', async () => {
    const { page, context } = browser;
    await page.goto(`${base}/samtykke`);
    const stolen = (await context.cookies(base)).find((c) => c.name === '__Host-bru-session');
    assert.ok(stolen, 'a session cookie before the logout');
    await page.getByRole('button', { name: 'Logg ut' }).click();
    await page.waitForURL(`${base}/?utlogget=1`);
    assert.match(await page.textContent('[role=status]'), /Du er logget ut/);
    await checkPage(page, '11-logget-ut');
    await page.goto(`${base}/innsyn`);
    assert.match(page.url(), /\/demo\/idporten\/login\?neste=\/innsyn$/);
    // A copy of the cookie taken before the logout, replayed: refused.
    await context.addCookies([stolen]);
    const replay = await context.request.get(`${base}/innsyn`, { maxRedirects: 0 });
    assert.equal(replay.status(), 303);
    assert.match(replay.headers().location, /^\/logg-inn\?neste=\/innsyn$/);
    const proof = await context.request.get(`${base}/citizen/v1/transfers/0/proof`, { maxRedirects: 0 });
    assert.equal(proof.status(), 401);
    await context.clearCookies();
  });

  it('no URL the browser used carries a person number, and no page broke the CSP', async () => {
    assert.ok(browser.urls.length > 20, 'the browser made the requests above');
    const leaking = browser.urls.filter((u) => u.includes(KARI));
    assert.deepEqual(leaking, []);
    assert.deepEqual(browser.cspViolations, []);
  });
});

describe('the portal logs in with a real OpenID provider (oidc-provider)', { concurrency: false }, () => {
  let provider;
  let bru;
  let browser;
  let dir;
  let base;

  before(async () => {
    // A demo run makes the keys, the TLS certificate and the policy; `bru
    // serve` then runs on them with its own config (no demo issuers).
    dir = tempDir('bru-portal-oidc-');
    const demoDir = path.join(dir, 'demo');
    const demo = await startBru(['demo', '--dir', demoDir, '--listen', '127.0.0.1:0', '--ops-listen', '127.0.0.1:0']);
    await demo.stop();

    const port = await freePort();
    base = `https://localhost:${port}`;
    const secret = 'oidc-test-client-secret-0123456789';
    provider = await startProvider({
      redirectUri: `${base}/innlogging/callback`, secret, postLogoutRedirectUri: `${base}/?utlogget=1`,
    });
    fs.writeFileSync(path.join(dir, 'client-secret'), `${secret}\n`, { mode: 0o600 });
    fs.copyFileSync(path.join(demoDir, 'keys', 'portal-session.key'), path.join(dir, 'session.key'));
    const d = (f) => JSON.stringify(path.join(demoDir, f));
    fs.writeFileSync(path.join(dir, 'bru.toml'), `
policy = ${d('policy.toml')}
public_url = "${base}"
allow_synthetic_ids = true

[server]
listen = "127.0.0.1:${port}"
ops_listen = "127.0.0.1:0"
tls_cert = ${d('tls/cert.pem')}
tls_key = ${d('tls/key.pem')}

[store]
url = "sqlite://bru.db"

[keys]
pseudonym_key_file = ${d('keys/pseudonym.key')}
assertion_key_file = ${d('keys/assertion.pem')}
checkpoint_key_file = ${d('keys/checkpoint.pem')}

# bru serve needs a machine issuer; nothing in this test calls /data/.
[[issuer]]
name = "test-maskinporten"
kind = "maskinporten"
issuer = "https://maskinporten.test.example/"
jwks_url = "${provider.issuer}/jwks"

[upstream.nav]
url = "http://127.0.0.1:9"
[upstream.helsenorge]
url = "http://127.0.0.1:9"
[upstream.k429]
url = "http://127.0.0.1:9"

[portal]
issuer = "${provider.issuer}"
client_id = "${CLIENT_ID}"
client_secret_file = "client-secret"
session_key_file = "session.key"
idle_timeout_s = 600
absolute_timeout_s = 3600
`);
    bru = await startBru(['serve', '--config', path.join(dir, 'bru.toml')], { cwd: dir });
    browser = await launchBrowser();
  });

  after(async () => {
    await browser?.close();
    await bru?.stop();
    await provider?.close();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('bru serve does not offer the demo login', async () => {
    const r = await browser.context.request.get(`${base}/demo/idporten/login`, { maxRedirects: 0 });
    assert.equal(r.status(), 404);
  });

  it('Kari logs in: authorization code, PKCE (S256), state and nonce, id_token checked', async () => {
    const { page } = browser;
    await page.goto(`${base}/`);
    await page.getByRole('link', { name: 'Logg inn med ID-porten' }).click();
    await page.waitForURL(/\/interaction\//);
    await screenshot(page, '20-oidc-provider-innlogging');
    await page.getByLabel('Login name').fill('kari');
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.waitForURL(`${base}/samtykke`);
    assert.equal(await page.textContent('h1'), 'Mine samtykker');
    await checkPage(page, '21-oidc-innlogget');

    const [authz] = provider.log.authorizations;
    assert.equal(authz.response_type, 'code');
    assert.equal(authz.client_id, CLIENT_ID);
    assert.equal(authz.code_challenge_method, 'S256');
    assert.match(authz.code_challenge, /^[A-Za-z0-9_-]{43}$/);
    assert.match(authz.state, /^[A-Za-z0-9_-]{43}$/);
    assert.match(authz.nonce, /^[A-Za-z0-9_-]{43}$/);
    assert.equal(authz.acr_values, 'idporten-loa-substantial');
    assert.equal(authz.redirect_uri, `${base}/innlogging/callback`);
    assert.deepEqual(provider.log.tokens, [{ ok: true, client_id: CLIENT_ID, code_verifier: true }]);
    const session = (await browser.context.cookies(base)).find((c) => c.name === '__Host-bru-session');
    assert.ok(session?.httpOnly && session.secure && session.sameSite === 'Lax');
    assert.deepEqual(browser.urls.filter((u) => u.includes(KARI)), []);
  });

  it('logout ends the session at Bru and at the provider (RP-initiated logout)', async () => {
    const { page, context } = browser;
    await page.goto(`${base}/samtykke`);
    const stolen = (await context.cookies(base)).find((c) => c.name === '__Host-bru-session');
    await page.getByRole('button', { name: 'Logg ut' }).click();
    // Bru sends the browser on to the provider's end_session_endpoint.
    await page.waitForURL(/\/session\/end/);
    await screenshot(page, '23-oidc-provider-utlogging');
    const [end] = provider.log.endSessions;
    assert.equal(end.client_id, CLIENT_ID);
    assert.equal(end.post_logout_redirect_uri, `${base}/?utlogget=1`);
    assert.match(end.id_token_hint, /^[\w-]+\.[\w-]+\.[\w-]+$/);
    await page.getByRole('button', { name: /Yes, sign me out/ }).click();
    await page.waitForURL(`${base}/?utlogget=1`);
    assert.match(await page.textContent('[role=status]'), /Du er logget ut/);
    assert.deepEqual(provider.log.logouts, [{ client_id: CLIENT_ID }]);
    await checkPage(page, '24-oidc-logget-ut');
    // The cookie from before the logout is dead.
    await context.addCookies([stolen]);
    const replay = await context.request.get(`${base}/samtykke`, { maxRedirects: 0 });
    assert.equal(replay.status(), 303);
    assert.match(replay.headers().location, /^\/logg-inn/);
    // And the provider asks for a login again (its session is over too).
    await page.goto(`${base}/logg-inn`);
    await page.waitForURL(/\/interaction\//);
    assert.equal(await page.textContent('h1'), 'Test ID-porten');
  });

  it('a login below idporten-loa-substantial is refused', async () => {
    const other = await launchBrowser();
    try {
      const { page } = other;
      await page.goto(`${base}/logg-inn`);
      await page.waitForURL(/\/interaction\//);
      await page.getByLabel('Login name').fill('lav');
      await page.getByRole('button', { name: 'Log in' }).click();
      await page.waitForURL(/\/innlogging\/callback/);
      assert.equal(await page.textContent('h1'), 'Innloggingen mislyktes');
      await checkPage(page, '22-oidc-for-lavt-niva');
      const cookies = await other.context.cookies(base);
      assert.equal(cookies.find((c) => c.name === '__Host-bru-session'), undefined);
      await page.goto(`${base}/samtykke`);
      assert.ok(!page.url().startsWith(`${base}/samtykke`), 'still not logged in');
    } finally {
      await other.close();
    }
  });

  it('a callback that this browser did not start is refused', async () => {
    const r = await browser.context.request.get(`${base}/innlogging/callback?code=x&state=y`, { maxRedirects: 0 });
    assert.equal(r.status(), 403);
    assert.match(await r.text(), /Innloggingen mislyktes/);
  });
});

after(() => {
  const total = axeLog.reduce((n, e) => n + e.violations, 0);
  console.log(`axe-core: ${axeLog.length} page checks, ${total} violations`);
  for (const e of axeLog) console.log(`  ${e.violations} ${e.page} ${e.url}`);
});
