// "Representer noen andre" (SPEC 9.3, issue 18) in a real browser against
// `bru demo`: Kari acts for her daughter Emma (12; the demo registry says
// Kari has parental responsibility), approves K429's request for Emma's
// income, sees on every page whom she acts for (bokmål and English), goes
// back to herself; a forged choice acts for no one; Emma then sees that a
// parent approved for her; Ola, her other parent, sees it and withdraws it.
// Acting for someone, every button and confirmation names them, and the
// banner is on the error pages too.
//
// axe-core (WCAG 2.1 A and AA) on every page, at 320 px and at 200 % zoom.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';

import {
  K429, KARI, axe, call, launchBrowser, overflow, screenshot, startBru, tempDir,
} from './lib.mjs';

const EMMA = '07831453839';
const PER = '15895013789';

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

describe('acting for someone else in the portal', { concurrency: false }, () => {
  let bru;
  let browser;
  let dir;
  let ca;
  let base;
  let consentId;
  const api = (method, p, opts) => call(bru.publicPort, ca, method, p, opts);

  before(async () => {
    dir = tempDir('bru-portal-represent-');
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

  it('K429 asks for Emma\'s consent', async () => {
    const token = await api('POST', '/demo/maskinporten/token', {
      body: { org: K429, scope: 'nav:inntekt.read bru:consent' },
    });
    assert.equal(token.status, 200, token.body);
    const created = await api('POST', '/consent/v1/requests', {
      headers: { authorization: `Bearer ${token.json.access_token}` },
      body: {
        subject: EMMA,
        datasets: ['nav/inntekt'],
        purpose: 'omsorgsbolig-soknad',
        valid_to: new Date(Date.now() + 30 * 86400_000).toISOString(),
      },
    });
    assert.equal(created.status, 201, created.body);
    consentId = created.json.id;
  });

  it('Kari logs in and chooses to act for Emma', async () => {
    const { page } = browser;
    await page.goto(`${base}/demo/idporten/login`);
    await page.getByLabel('Kari Nordmann').check();
    await page.getByRole('button', { name: 'Logg inn' }).click();
    await page.waitForURL(`${base}/samtykke`);
    assert.equal(await page.locator('.acting').count(), 0, 'no banner while Kari acts for herself');
    await page.getByRole('link', { name: 'Representer noen andre' }).click();
    await page.waitForURL(`${base}/representer`);
    assert.equal(await page.textContent('h1'), 'Representer noen andre');
    await checkPage(page, 'r01-representer');
    await page.getByRole('button', { name: 'Emma Nordmann (som forelder)' }).click();
    await page.waitForURL(`${base}/samtykke`);
    const cookies = await browser.context.cookies(base);
    const chosen = cookies.find((c) => c.name === '__Host-bru-for');
    assert.ok(chosen, 'the choice is kept');
    assert.ok(!chosen.value.includes(EMMA), 'never a person number');
    assert.equal(chosen.httpOnly, true);
  });

  it('every page says whom she acts for', async () => {
    const { page } = browser;
    for (const [p, name] of [['/samtykke', 'r02-samtykker-for-emma'], ['/innsyn', 'r03-innsyn-for-emma'], [`/samtykke/${consentId}`, 'r04-foresporsel-for-emma']]) {
      await page.goto(`${base}${p}`);
      assert.equal(
        (await page.textContent('.acting')).trim(),
        'Du handler nå på vegne av Emma Nordmann (som forelder). Bytt person',
        p,
      );
      await checkPage(page, name);
    }
    // The answer's buttons say for whom, in both languages.
    await page.goto(`${base}/samtykke/${consentId}`);
    for (const name of ['Ja, jeg samtykker på vegne av Emma Nordmann', 'Nei, jeg samtykker ikke på vegne av Emma Nordmann']) {
      assert.equal(await page.getByRole('button', { name, exact: true }).count(), 1, name);
    }
    assert.equal(await page.getByRole('button', { name: 'Ja, jeg samtykker', exact: true }).count(), 0);
    assert.match(await page.textContent('.answer h2'), /Ditt svar på vegne av Emma Nordmann/);
    await page.goto(`${base}/samtykke/${consentId}?lang=en`);
    for (const name of ['Yes, I consent on behalf of Emma Nordmann', 'No, I do not consent on behalf of Emma Nordmann']) {
      assert.equal(await page.getByRole('button', { name, exact: true }).count(), 1, name);
    }
    await checkPage(page, 'r04b-request-for-emma-en');
    // A consent that is not there: the error page still says whom she acts for.
    for (const [lang, banner, name] of [
      ['nb', 'Du handler nå på vegne av Emma Nordmann (som forelder). Bytt person', 'r04c-ikke-funnet-for-emma'],
      ['en', 'You are now acting for Emma Nordmann (as a parent). Change person', 'r04d-not-found-for-emma-en'],
    ]) {
      const missing = await page.goto(`${base}/samtykke/00000000-0000-4000-8000-000000000000?lang=${lang}`);
      assert.equal(missing.status(), 404);
      assert.equal((await page.textContent('.acting')).trim(), banner, `404 in ${lang}`);
      await checkPage(page, name);
    }
    await page.goto(`${base}/samtykke?lang=en`);
    assert.equal(
      (await page.textContent('.acting')).trim(),
      'You are now acting for Emma Nordmann (as a parent). Change person',
    );
    await checkPage(page, 'r05-consents-for-emma-en');
    await page.goto(`${base}/representer?lang=en`);
    assert.equal(await page.textContent('h1'), 'Act for someone else');
    await checkPage(page, 'r06-represent-en');
    await page.goto(`${base}/samtykke?lang=nb`);
  });

  it('she approves Emma\'s request; the history says a parent did', async () => {
    const { page } = browser;
    await page.goto(`${base}/samtykke/${consentId}`);
    await page.getByRole('button', { name: 'Ja, jeg samtykker på vegne av Emma Nordmann', exact: true }).click();
    await page.waitForURL(`${base}/samtykke/${consentId}?utfort=accept`);
    assert.equal((await page.textContent('.notice')).trim(), 'Takk. Du har gitt samtykke på vegne av Emma Nordmann.');
    assert.match(await page.textContent('ol.history'), /Du sa ja \(gjort av en forelder på dine vegne\)/);
    assert.equal(await page.getByRole('button', { name: 'Trekk tilbake samtykket på vegne av Emma Nordmann', exact: true }).count(), 1);
    await checkPage(page, 'r07-godkjent-for-emma');
    await page.goto(`${base}/samtykke/${consentId}?utfort=accept&lang=en`);
    assert.equal((await page.textContent('.notice')).trim(), 'Thank you. You have given consent on behalf of Emma Nordmann.');
    assert.equal(await page.getByRole('button', { name: 'Withdraw the consent on behalf of Emma Nordmann', exact: true }).count(), 1);
    await checkPage(page, 'r07b-granted-for-emma-en');
    await page.goto(`${base}/samtykke?lang=nb`);
    // Kari's own consents hold nothing of Emma's.
    await page.goto(`${base}/representer`);
    await page.getByRole('button', { name: 'Meg selv' }).click();
    await page.waitForURL(`${base}/samtykke`);
    assert.equal(await page.locator('.acting').count(), 0);
    assert.equal(await page.locator(`a[href="/samtykke/${consentId}"]`).count(), 0);
  });

  it('a forged choice acts for no one', async () => {
    const { page, context } = browser;
    await context.addCookies([{
      name: '__Host-bru-for', value: 'p-AAAAAAAAAAAAAAAAAAAAAA', url: base, secure: true, httpOnly: true, sameSite: 'Lax',
    }]);
    await page.goto(`${base}/samtykke`);
    await page.waitForURL(`${base}/representer`);
    assert.equal(await page.locator('.acting').count(), 0);
    const cookies = await context.cookies(base);
    assert.ok(!cookies.some((c) => c.name === '__Host-bru-for' && c.value), 'the forged choice is cleared');
  });

  it('Emma sees that a parent approved for her', async () => {
    const { page } = browser;
    await page.goto(`${base}/samtykke`);
    await page.getByRole('button', { name: 'Logg ut' }).click();
    await page.goto(`${base}/demo/idporten/login`);
    await page.getByLabel('Emma Nordmann').check();
    await page.getByRole('button', { name: 'Logg inn' }).click();
    await page.waitForURL(`${base}/samtykke`);
    await page.goto(`${base}/samtykke/${consentId}?lang=en`);
    assert.match(await page.textContent('ol.history'), /You said yes \(done by a parent on your behalf\)/);
    await checkPage(page, 'r08-emma-sees-parent');
    // Emma (12) has no one to represent.
    await page.goto(`${base}/representer?lang=nb`);
    assert.match(await page.textContent('main'), /Vi fant ingen du kan representere/);
    assert.equal(KARI.length, 11);
  });

  it('Ola, her other parent, sees it and withdraws it for her', async () => {
    const { page } = browser;
    await page.goto(`${base}/samtykke`);
    await page.getByRole('button', { name: 'Logg ut' }).click();
    await page.goto(`${base}/demo/idporten/login`);
    await page.getByLabel('Ola Nordmann').check();
    await page.getByRole('button', { name: 'Logg inn' }).click();
    await page.waitForURL(`${base}/samtykke`);
    await page.getByRole('link', { name: 'Representer noen andre' }).click();
    await page.getByRole('button', { name: 'Emma Nordmann (som forelder)' }).click();
    await page.waitForURL(`${base}/samtykke`);
    assert.equal(await page.locator(`a[href="/samtykke/${consentId}"]`).count(), 1, 'Ola sees the consent Kari gave');
    await page.goto(`${base}/samtykke/${consentId}`);
    await page.getByRole('button', { name: 'Trekk tilbake samtykket på vegne av Emma Nordmann', exact: true }).click();
    await page.waitForURL(`${base}/samtykke/${consentId}?utfort=revoke`);
    assert.equal(
      (await page.textContent('.notice')).trim(),
      'Du har trukket tilbake samtykket på vegne av Emma Nordmann. Ingen kan bruke det lenger.',
    );
    assert.match(await page.textContent('ol.history'), /\(gjort av en forelder på dine vegne\)[\s\S]*\(gjort av en forelder på dine vegne\)/);
    await checkPage(page, 'r08b-trukket-for-emma');
  });

  it('Aisha logs in with a fullmakt for Per and approves as his guardian', async () => {
    const { page } = browser;
    const token = await api('POST', '/demo/maskinporten/token', {
      body: { org: K429, scope: 'nav:inntekt.read bru:consent' },
    });
    const created = await api('POST', '/consent/v1/requests', {
      headers: { authorization: `Bearer ${token.json.access_token}` },
      body: {
        subject: PER,
        datasets: ['nav/inntekt', 'helsenorge/hjemmetjeneste'],
        purpose: 'omsorgsbolig-soknad',
        valid_to: new Date(Date.now() + 30 * 86400_000).toISOString(),
      },
    });
    assert.equal(created.status, 201, created.body);
    const pers = created.json.id;
    await page.goto(`${base}/samtykke`);
    await page.getByRole('button', { name: 'Logg ut' }).click();
    await page.goto(`${base}/demo/idporten/login`);
    await page.getByLabel('Aisha Berg, på vegne av Per Hansen').check();
    await checkPage(page, 'r09-demo-innlogging-fullmakt');
    await page.getByRole('button', { name: 'Logg inn' }).click();
    await page.waitForURL(`${base}/samtykke`);
    await page.getByRole('link', { name: 'Representer noen andre' }).click();
    await page.getByRole('button', { name: 'PER HANSEN (som verge)' }).click();
    await page.waitForURL(`${base}/samtykke`);
    assert.match(await page.textContent('.acting'), /PER HANSEN \(som verge\)/);
    await page.goto(`${base}/samtykke/${pers}`);
    await page.getByRole('button', { name: 'Ja, jeg samtykker på vegne av PER HANSEN', exact: true }).click();
    await page.waitForURL(`${base}/samtykke/${pers}?utfort=accept`);
    assert.match(await page.textContent('ol.history'), /Du sa ja \(gjort av vergen din på dine vegne\)/);
    await checkPage(page, 'r10-godkjent-for-per');
  });
});
