// Notifications in the portal (SPEC 10, issue 19) in a real browser against
// `bru demo`: K429 asks Kari for consent; Kari finds "Varsler" in the menu,
// sees the waiting request in her inbox in Bru's words (bokmål and
// English), opens it from there, then chooses to be told only of refused
// transfers and of no consent events; the choice is kept and her inbox
// follows it.
//
// axe-core (WCAG 2.1 A and AA) on every page, at 320 px and at 200 % zoom.

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
  // 320 CSS px (WCAG 1.4.10 reflow), then 1280 px at 200 % zoom = 640 CSS px.
  for (const width of [320, 640]) {
    await page.setViewportSize({ width, height: 720 });
    assert.ok(await overflow(page) <= 0, `${name} scrolls sideways at ${width} px`);
    assert.deepEqual(await axe(page), [], `axe violations on ${name} at ${width} px`);
  }
  await page.setViewportSize(size);
}

describe('notifications in the portal', { concurrency: false }, () => {
  let bru;
  let browser;
  let dir;
  let ca;
  let base;
  let consentId;
  const api = (method, p, opts) => call(bru.publicPort, ca, method, p, opts);

  before(async () => {
    dir = tempDir('bru-portal-notify-');
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

  it('K429 asks for Kari\'s consent', async () => {
    const token = await api('POST', '/demo/maskinporten/token', {
      body: { org: K429, scope: 'nav:inntekt.read bru:consent' },
    });
    assert.equal(token.status, 200, token.body);
    const created = await api('POST', '/consent/v1/requests', {
      headers: { authorization: `Bearer ${token.json.access_token}` },
      body: {
        subject: KARI,
        datasets: ['nav/inntekt'],
        purpose: 'omsorgsbolig-soknad',
        valid_to: new Date(Date.now() + 30 * 86400_000).toISOString(),
        message: 'Tekst fra K429 som aldri skal vises i et varsel.',
      },
    });
    assert.equal(created.status, 201, created.body);
    consentId = created.json.id;
  });

  it('Kari finds the waiting request in her inbox', async () => {
    const { page } = browser;
    await page.goto(`${base}/demo/idporten/login`);
    await page.getByLabel('Kari Nordmann').check();
    await page.getByRole('button', { name: 'Logg inn' }).click();
    await page.waitForURL(`${base}/samtykke`);
    await page.getByRole('link', { name: 'Varsler', exact: true }).click();
    await page.waitForURL(`${base}/varsler`);
    assert.equal(await page.textContent('h1'), 'Varsler');
    assert.equal(await page.getAttribute('a[href="/varsler"][aria-current]', 'aria-current'), 'page');
    const main = await page.textContent('main');
    assert.match(main, /ber om samtykke til å hente .*Forespørselen venter på svar fra deg\./s);
    assert.ok(!main.includes('aldri skal vises'), 'what K429 wrote is not in the notification');
    assert.ok(!main.includes(KARI), 'never a person number');
    await checkPage(page, 'n01-varsler');
    await page.goto(`${base}/varsler?lang=en`);
    assert.equal(await page.textContent('h1'), 'Notifications');
    assert.match(await page.textContent('main'), /The request is waiting for your answer\./);
    await checkPage(page, 'n02-notifications-en');
    await page.getByRole('link', { name: 'See the request and answer' }).click();
    await page.waitForURL(`${base}/samtykke/${consentId}`);
  });

  it('she chooses what she is notified about', async () => {
    const { page } = browser;
    await page.goto(`${base}/varsler?lang=nb`);
    await page.getByRole('link', { name: 'Velg hva du vil bli varslet om' }).click();
    await page.waitForURL(`${base}/varsler/innstillinger`);
    assert.equal(await page.textContent('h1'), 'Hva vil du bli varslet om?');
    // The defaults: every transfer, consent events on.
    assert.equal(await page.getByLabel('Varsle meg hver gang').isChecked(), true);
    assert.equal(await page.getByLabel('Varsle meg', { exact: true }).isChecked(), true);
    await checkPage(page, 'n03-innstillinger');
    await page.getByLabel('Bare når Bru sa nei').check();
    await page.getByLabel('Ikke varsle meg').check();
    await page.getByRole('button', { name: 'Lagre' }).click();
    await page.waitForURL(`${base}/varsler/innstillinger?lagret=1`);
    assert.equal((await page.textContent('[role="status"]')).trim(), 'Valgene dine er lagret.');
    assert.equal(await page.getByLabel('Bare når Bru sa nei').isChecked(), true);
    assert.equal(await page.getByLabel('Ikke varsle meg').isChecked(), true);
    await checkPage(page, 'n04-innstillinger-lagret');
    await page.goto(`${base}/varsler/innstillinger?lang=en`);
    assert.equal(await page.textContent('h1'), 'What do you want to be notified about?');
    assert.equal(await page.getByLabel('Only when Bru said no').isChecked(), true);
    await checkPage(page, 'n05-settings-en');
    // The inbox follows the choice: no consent events now.
    await page.goto(`${base}/varsler?lang=nb`);
    assert.match(await page.textContent('main'), /Du har ingen varsler\./);
  });

  it('a form without the session\'s token changes nothing', async () => {
    const { page } = browser;
    const res = await page.request.post(`${base}/varsler/innstillinger`, {
      form: { csrf: 'forged', transfers: 'all', consent_events: 'ja' },
      maxRedirects: 0,
    });
    assert.equal(res.status(), 403);
    await page.goto(`${base}/varsler/innstillinger`);
    assert.equal(await page.getByLabel('Bare når Bru sa nei').isChecked(), true);
  });
});
