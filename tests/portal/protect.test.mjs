// The citizen's protections in a real browser against `bru demo` (SPEC 10,
// issue 19): Kari pauses and resumes a consent (each after a confirmation
// page), blocks an organisation and lifts the block, reads her access log by
// month with filters, reads a transfer's proof in plain words, and downloads
// everything about her.
//
// axe-core (WCAG 2.1 A and AA) on every page, at 320 px and at 200 % zoom
// (1280 px at 200 % = 640 CSS px), in bokmål and English.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';

import {
  K429, KARI, axe, call, launchBrowser, overflow, screenshot, startBru, tempDir,
} from './lib.mjs';

async function checkPage(page, name) {
  const violations = await axe(page);
  assert.deepEqual(violations, [], `axe violations on ${name}`);
  assert.equal(await page.locator('h1').count(), 1, `${name} has one h1`);
  await screenshot(page, name);
  const size = page.viewportSize();
  for (const width of [320, 640]) {
    await page.setViewportSize({ width, height: 720 });
    assert.ok(await overflow(page) <= 0, `${name} scrolls sideways at ${width} px`);
    assert.deepEqual(await axe(page), [], `axe violations on ${name} at ${width} px`);
  }
  await page.setViewportSize({ width: 320, height: 720 });
  await screenshot(page, `${name}-320px`);
  await page.setViewportSize(size);
}

describe('pause, blocks, the access log by month, proofs and the export', { concurrency: false }, () => {
  let bru;
  let browser;
  let dir;
  let ca;
  let base;
  let consentId;
  let k429Token;
  const api = (method, p, opts) => call(bru.publicPort, ca, method, p, opts);
  const fetchIncome = (consent) => api('GET', '/data/nav/inntekt', {
    headers: {
      authorization: `Bearer ${k429Token}`,
      'bru-purpose': 'omsorgsbolig-soknad',
      ...(consent ? { 'bru-consent': consent } : {}),
      'nav-personident': KARI,
    },
  });

  before(async () => {
    dir = tempDir('bru-portal-protect-');
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

  it('K429 asks for consent, Kari grants it, K429 fetches once and is refused once', async () => {
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
        valid_to: new Date(Date.now() + 30 * 86400_000).toISOString(),
      },
    });
    assert.equal(created.status, 201, created.body);
    consentId = created.json.id;
    const { page } = browser;
    await page.goto(`${base}/demo/idporten/login`);
    await page.getByLabel('Kari Nordmann').check();
    await page.getByRole('button', { name: 'Logg inn' }).click();
    await page.waitForURL(`${base}/samtykke`);
    await page.goto(`${base}/samtykke/${consentId}`);
    await page.getByRole('button', { name: 'Ja, jeg samtykker' }).click();
    await page.waitForURL(`${base}/samtykke/${consentId}?utfort=accept`);
    assert.equal((await fetchIncome(consentId)).status, 200);
    assert.equal((await fetchIncome(null)).status, 403);
  });

  it('pauses the consent after confirming, and a call is refused', async () => {
    const { page } = browser;
    await page.goto(`${base}/samtykke/${consentId}`);
    await page.getByRole('link', { name: 'Sett samtykket på pause' }).click();
    await page.waitForURL(`${base}/samtykke/${consentId}/pause`);
    assert.equal(await page.textContent('h1'), 'Sette samtykket på pause?');
    await checkPage(page, 'p01-pause-bekreft');
    // "No" changes nothing.
    await page.getByRole('link', { name: 'Nei, gå tilbake' }).click();
    await page.waitForURL(`${base}/samtykke/${consentId}`);
    assert.match(await page.textContent('.badge'), /Aktivt/);
    await page.goto(`${base}/samtykke/${consentId}/pause?lang=en`);
    assert.equal(await page.textContent('h1'), 'Pause the consent?');
    await checkPage(page, 'p02-pause-confirm-en');
    await page.goto(`${base}/samtykke/${consentId}/pause?lang=nb`);
    await page.getByRole('button', { name: 'Ja, sett på pause' }).click();
    await page.waitForURL(`${base}/samtykke/${consentId}?utfort=pause`);
    assert.match(await page.textContent('.notice'), /Samtykket er satt på pause/);
    assert.match(await page.textContent('.badge'), /Satt på pause/);
    await checkPage(page, 'p03-pauset');
    const refused = await fetchIncome(consentId);
    assert.equal(refused.status, 403);
    assert.equal(refused.json.code, 'consent_paused');
  });

  it('resumes it after confirming, and a call goes through again', async () => {
    const { page } = browser;
    await page.getByRole('link', { name: 'Ta samtykket i bruk igjen' }).click();
    await page.waitForURL(`${base}/samtykke/${consentId}/gjenoppta`);
    await checkPage(page, 'p04-gjenoppta-bekreft');
    await page.getByRole('button', { name: 'Ja, ta i bruk igjen' }).click();
    await page.waitForURL(`${base}/samtykke/${consentId}?utfort=resume`);
    assert.match(await page.textContent('.badge'), /Aktivt/);
    assert.match(await page.textContent('ol.history'), /Du satte samtykket på pause/);
    assert.equal((await fetchIncome(consentId)).status, 200);
  });

  it('blocks an organisation, sees the call refused, and lifts the block', async () => {
    const { page } = browser;
    await page.goto(`${base}/sperringer?lang=nb`);
    assert.equal(await page.textContent('h1'), 'Sperringer');
    assert.match(await page.textContent('main'), /Du har ingen sperringer/);
    await checkPage(page, 'p05-sperringer-tom');
    await page.getByLabel('Virksomhet').selectOption({ value: `org:${K429}` });
    await page.getByRole('button', { name: 'Sperr virksomheten' }).click();
    await page.waitForURL(`${base}/sperringer?utfort=lagt-til`);
    assert.match(await page.textContent('.notice'), /Sperringen gjelder fra nå av/);
    assert.equal(await page.locator('li.card').count(), 1);
    await checkPage(page, 'p06-sperret');
    const blocked = await fetchIncome(consentId);
    assert.equal(blocked.status, 403);
    assert.equal(blocked.json.code, 'blocked_by_subject');
    // The API sees the same block.
    await page.goto(`${base}/sperringer?lang=en`);
    assert.equal(await page.textContent('h1'), 'Blocks');
    await checkPage(page, 'p07-blocks-en');
    await page.getByRole('button', { name: 'Remove the block' }).click();
    await page.waitForURL(`${base}/sperringer?utfort=fjernet`);
    assert.match(await page.textContent('.notice'), /The block is removed/);
    assert.equal(await page.locator('li.card').count(), 0);
    assert.equal((await fetchIncome(consentId)).status, 200);
    await page.goto(`${base}/sperringer?lang=nb`);
  });

  it('reads the access log by month, filtered', async () => {
    const { page } = browser;
    await page.goto(`${base}/innsyn?lang=nb`);
    const months = await page.locator('section.month h2').allTextContents();
    assert.ok(months.length >= 1, 'a month heading');
    assert.match(months[0], /^[A-ZÆØÅ][a-zæøå]+ \d{4}$/);
    await checkPage(page, 'p08-innsyn-maaned');
    const all = await page.locator('li.card').count();
    await page.getByLabel('Resultat').selectOption('avvist');
    await page.getByRole('button', { name: 'Vis' }).click();
    await page.waitForURL(/utfall=avvist/);
    const refused = await page.locator('li.card').count();
    assert.ok(refused >= 1 && refused < all, `${refused} refused of ${all}`);
    for (const badge of await page.locator('li.card .badge').allTextContents()) {
      assert.equal(badge, 'Avvist');
    }
    await checkPage(page, 'p09-innsyn-avvist');
    await page.getByLabel('Resultat').selectOption('tillatt');
    await page.getByLabel('Virksomhet').selectOption(K429);
    await page.getByRole('button', { name: 'Vis' }).click();
    await page.waitForURL(/utfall=tillatt/);
    for (const badge of await page.locator('li.card .badge').allTextContents()) {
      assert.equal(badge, 'Tillatt');
    }
    await page.goto(`${base}/innsyn?lang=en&utfall=avvist`);
    assert.equal(await page.textContent('h1'), 'Who has fetched my data');
    await checkPage(page, 'p10-access-log-refused-en');
    await page.goto(`${base}/innsyn?lang=nb`);
  });

  it('reads a transfer\'s proof in plain words, with the raw proof to download', async () => {
    const { page } = browser;
    await page.goto(`${base}/innsyn?lang=nb`);
    await page.locator('p.proof a').first().click();
    await page.waitForURL(/\/innsyn\/\d+\/bevis$/);
    const text = await page.textContent('main');
    if (/ikke har signert et sjekkpunkt/.test(text)) {
      await new Promise((r) => setTimeout(r, 1500));
      await page.reload();
    }
    assert.match(await page.textContent('ul.proven'), /oppføring nummer \d+ i Bru sin logg/);
    assert.match(await page.textContent('ul.proven'), /er signert av Bru/);
    const raw = await page.getByRole('link', { name: 'Last ned beviset (JSON)' }).getAttribute('href');
    assert.match(raw, /^\/citizen\/v1\/transfers\/\d+\/proof$/);
    await checkPage(page, 'p11-bevis');
    await page.goto(`${page.url()}?lang=en`);
    assert.match(await page.textContent('ul.proven'), /This event is entry number \d+ of Bru's log/);
    await checkPage(page, 'p12-proof-en');
    await page.goto(`${base}/innsyn?lang=nb`);
  });

  it('downloads everything about her', async () => {
    const { page, context } = browser;
    await page.goto(`${base}/innsyn?lang=nb`);
    const link = page.getByRole('link', { name: 'Last ned alt om meg (JSON)' });
    assert.equal(await link.getAttribute('href'), '/citizen/v1/export');
    // The browser's own session fetches it, as a click would.
    const reply = await context.request.get(`${base}/citizen/v1/export`);
    assert.equal(reply.status(), 200);
    assert.match(reply.headers()['content-disposition'], /^attachment; filename="bru-everything-about-me-/);
    const doc = await reply.json();
    assert.equal(doc.format, 'bru-export/1');
    assert.ok(doc.consents.some((c) => c.id === consentId));
    assert.ok(doc.transfers.length >= 4, `${doc.transfers.length} transfers`);
    assert.ok(!JSON.stringify(doc).includes(KARI), 'no person number in the export');
    await page.goto(`${base}/innsyn?lang=en`);
    assert.ok(await page.getByRole('link', { name: 'Download everything about me (JSON)' }).count() === 1);
  });
});
