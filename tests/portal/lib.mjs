// Helpers for the portal's browser tests: the real `bru` binary as a child
// process, an HTTPS client that trusts the demo CA, headless Chromium
// (Debian's, driven by playwright-core) and axe-core.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const require = createRequire(import.meta.url);
const here = path.dirname(fileURLToPath(import.meta.url));
export const ROOT = path.resolve(here, '..', '..');
export const SCREENSHOTS = path.join(ROOT, 'target', 'portal-screenshots');
const AXE_SOURCE = fs.readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');

export const KARI = '12884513829';
export const K429 = '921429002';
export const NAV = '983440002';

export function bruBin() {
  const bin = process.env.BRU_BIN ?? path.join(ROOT, 'target', 'debug', 'bru');
  if (!fs.existsSync(bin)) {
    throw new Error(`the bru binary is missing at ${bin}: cargo build -p gateway, or set BRU_BIN`);
  }
  return bin;
}

export function tempDir(prefix) {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

/** A loopback port that was free a moment ago (for configs that must name one). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/**
 * Starts `bru ARGS` and waits for its `listening public=… ops=…` line.
 * Resolves to { publicPort, opsPort, stop(), logs() }.
 */
export function startBru(args, { cwd } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(bruBin(), args, {
      cwd,
      env: { ...process.env, RUST_LOG: process.env.RUST_LOG ?? 'info' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`bru did not start within 120 s\n${stderr}`));
    }, 120_000);
    child.stderr.on('data', (d) => { stderr += d; });
    child.stdout.on('data', (d) => {
      stdout += d;
      const m = stdout.match(/listening public=[^\s]*:(\d+) ops=[^\s]*:(\d+)/);
      if (m && timer) {
        clearTimeout(timer);
        resolve({
          publicPort: Number(m[1]),
          opsPort: Number(m[2]),
          logs: () => stderr,
          stop: () => new Promise((done) => {
            if (child.exitCode !== null) return done();
            child.once('exit', () => done());
            child.kill('SIGTERM');
          }),
        });
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`bru exited with ${code} before listening\n${stderr}`));
    });
  });
}

/**
 * An HTTPS request to Bru at https://localhost:port, trusting `ca` only.
 * Resolves to { status, headers, body, json }.
 */
export function call(port, ca, method, urlPath, { headers = {}, body } = {}) {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined
      : Buffer.from(typeof body === 'string' ? body : JSON.stringify(body));
    const req = https.request({
      host: '127.0.0.1',
      servername: 'localhost',
      port,
      method,
      path: urlPath,
      ca,
      headers: {
        host: `localhost:${port}`,
        ...(data ? { 'content-type': 'application/json', 'content-length': data.length } : {}),
        ...headers,
      },
    }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json;
        try { json = JSON.parse(text); } catch { json = undefined; }
        resolve({ status: res.statusCode, headers: res.headers, body: text, json });
      });
    });
    req.on('error', reject);
    req.setTimeout(60_000, () => req.destroy(new Error(`${method} ${urlPath} timed out`)));
    if (data) req.write(data);
    req.end();
  });
}

/** The flags the brief asks for: without the background-networking ones
 * Chromium tries to reach Google's services on a closed network. */
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/**
 * Debian's Chromium with a new, empty profile. Every request URL the
 * browser makes is kept (to check that no person number is in one), and
 * every console message about the Content-Security-Policy.
 */
export async function launchBrowser({ viewport = { width: 1024, height: 800 }, locale = 'nb-NO' } = {}) {
  const profile = tempDir('bru-chromium-');
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    headless: true,
    args: CHROMIUM_ARGS,
    ignoreHTTPSErrors: true,
    viewport,
    locale,
    timeout: 120_000,
  });
  const urls = [];
  const cspViolations = [];
  context.on('request', (r) => urls.push(r.url()));
  context.on('page', (p) => watchConsole(p, cspViolations));
  for (const p of context.pages()) watchConsole(p, cspViolations);
  const page = context.pages()[0] ?? await context.newPage();
  page.setDefaultTimeout(60_000);
  return {
    context,
    page,
    urls,
    cspViolations,
    close: async () => {
      await context.close();
      fs.rmSync(profile, { recursive: true, force: true });
    },
  };
}

function watchConsole(page, sink) {
  page.on('console', (msg) => {
    if (/Content Security Policy|Refused to/i.test(msg.text())) sink.push(`${page.url()}: ${msg.text()}`);
  });
}

/** Runs axe-core (WCAG 2.0/2.1 A and AA, and best practices) on the page. */
export async function axe(page) {
  // Evaluated through the DevTools protocol, so the page's CSP (no script
  // at all) does not block it; the page itself stays script-free.
  await page.evaluate(AXE_SOURCE);
  const result = await page.evaluate(() => window.axe.run(document, {
    runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice'] },
    resultTypes: ['violations'],
  }));
  return result.violations.map((v) => ({
    id: v.id,
    impact: v.impact,
    help: v.help,
    nodes: v.nodes.map((n) => n.target.join(' ')).slice(0, 5),
  }));
}

/** A full-page PNG under target/portal-screenshots/. */
export async function screenshot(page, name) {
  fs.mkdirSync(SCREENSHOTS, { recursive: true });
  const file = path.join(SCREENSHOTS, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}

/** How far the page is wider than the viewport (0: no horizontal scrolling). */
export function overflow(page) {
  return page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
}
