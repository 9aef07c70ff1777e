// End-to-end harness: a real `logitlens serve` on a free port with a fresh data dir, the built
// app (frontend/dist), and Debian's Chromium driven by playwright-core.
//
// Environment:
//   LOGITLENS_BIN  the server binary (default: ../target/debug/logitlens relative to frontend/)
//   CHROMIUM       the browser (default: /usr/bin/chromium)
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { chromium } from 'playwright-core';

export const FRONTEND = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const REPO = path.resolve(FRONTEND, '..');
export const BIN = path.resolve(FRONTEND, process.env.LOGITLENS_BIN ?? '../target/debug/logitlens');
export const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
export const DIST = path.join(FRONTEND, 'dist');
export const ARTIFACTS = path.join(FRONTEND, 'e2e', 'artifacts');
export const TINY_LLAMA = path.join(REPO, 'tests', 'fixtures', 'tiny', 'llama');

export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--no-first-run',
  '--disable-sync',
  '--disable-quic',
];

// The same display rule as src/lib/tokens.ts.
export function formatToken(t) {
  if (t == null || t === '') return '∅';
  let out = '';
  for (const ch of t) {
    if (ch === ' ') out += '␣';
    else if (ch === '\n') out += '\\n';
    else if (ch === '\t') out += '\\t';
    else if (ch === '\r') out += '\\r';
    else {
      const c = ch.codePointAt(0);
      out += c < 0x20 || c === 0x7f || (c >= 0x80 && c < 0xa0) ? `\\x${c.toString(16).padStart(2, '0')}` : ch;
    }
  }
  return out;
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Starts the server and waits until /model_status reports the model loaded. */
export async function startServer({ model = TINY_LLAMA, timeoutMs = 120_000 } = {}) {
  if (!fs.existsSync(BIN)) {
    throw new Error(`logitlens binary not found at ${BIN}: build it (cargo build) or set LOGITLENS_BIN`);
  }
  if (!fs.existsSync(path.join(DIST, 'index.html'))) {
    throw new Error(`${DIST}/index.html is missing: run "npm run build" first`);
  }
  const port = await freePort();
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'logitlens-e2e-'));
  // Recent runs are kept within --kept-runs-mib: 1 MiB holds about 6 runs of the tiny model, so a
  // test can push a run out (its per-head attention is then gone) in a few requests.
  const args = ['serve', '--model', model, '--port', String(port), '--data-dir', dataDir, '--frontend-dir', DIST, '--kept-runs-mib', '1'];
  const proc = spawn(BIN, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  proc.stdout.on('data', (d) => (log += d));
  proc.stderr.on('data', (d) => (log += d));
  let exited = null;
  proc.on('exit', (code, signal) => (exited = { code, signal }));
  const url = `http://127.0.0.1:${port}/`;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (exited) throw new Error(`server exited early (${JSON.stringify(exited)}):\n${log}`);
    if (Date.now() > deadline) {
      proc.kill('SIGKILL');
      throw new Error(`server did not report a loaded model within ${timeoutMs} ms:\n${log}`);
    }
    try {
      const res = await fetch(`${url}model_status`);
      if (res.ok) {
        const s = await res.json();
        if (s.loaded) break;
      }
    } catch {
      /* not listening yet */
    }
    await sleep(150);
  }
  return {
    url,
    port,
    dataDir,
    log: () => log,
    async stop() {
      if (!exited) {
        proc.kill('SIGTERM');
        for (let i = 0; i < 50 && !exited; i++) await sleep(100);
        if (!exited) proc.kill('SIGKILL');
      }
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/**
 * Keeps every core busy (a thread spinning on each) until `stop`: the machine as loaded as CI's
 * 2 cores are while the server, the browser and the test share them.
 */
export function startCpuLoad(threads = os.availableParallelism()) {
  const workers = Array.from({ length: threads }, () => new Worker('for (;;) {}', { eval: true }));
  return {
    async stop() {
      await Promise.all(workers.map((w) => w.terminate()));
    },
  };
}

/**
 * Inside a describe: a server with the tiny llama and a browser for its tests, in `env.server` and
 * `env.browser`, started before them and stopped after.
 */
export function serverAndBrowser(env) {
  before(async () => {
    env.server = await startServer();
    env.browser = await launchBrowser();
  });
  after(async () => {
    await env.browser?.close();
    await env.server?.stop();
  });
}

/** Opens the app of `env.server` and waits until it says the model is ready. */
export async function openApp(page, env) {
  await page.goto(env.server.url);
  await page.getByTestId('model-status').filter({ hasText: 'Ready' }).waitFor({ timeout: 30_000 });
}

/** With LOGITLENS_E2E_SHOTS set, saves a picture of `locator` (or the page) for the docs as
 * e2e/artifacts/<name>.png. */
export async function shot(page, name, locator) {
  if (!process.env.LOGITLENS_E2E_SHOTS) return;
  // Toasts float over the page: not in the picture.
  const dismiss = page.locator('.toasts').getByRole('button', { name: 'Dismiss' });
  while ((await dismiss.count()) > 0) await dismiss.first().click();
  await page.mouse.move(0, 0);
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  const file = path.join(ARTIFACTS, `${name}.png`);
  await (locator ?? page).screenshot({ path: file, animations: 'disabled' });
  console.error(`# picture for the docs: ${file}`);
}

export async function launchBrowser() {
  if (!fs.existsSync(CHROMIUM)) {
    throw new Error(`Chromium not found at ${CHROMIUM}: apt-get install -y chromium, or set CHROMIUM`);
  }
  return chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
}

function slug(name) {
  return name.replace(/[^a-z0-9]+/gi, '-').replace(/^-|-$/g, '').toLowerCase().slice(0, 80);
}

/**
 * A node:test test that gets a fresh page of `env.browser`. On failure it saves a full-page
 * screenshot to e2e/artifacts/<test>.png and prints its path. Uncaught page errors fail the test.
 */
export function pageTest(name, env, fn, { timeout = 120_000 } = {}) {
  test(name, { timeout }, async (t) => {
    const context = await env.browser.newContext({ viewport: { width: 1400, height: 950 } });
    const page = await context.newPage();
    const pageErrors = [];
    page.on('pageerror', (e) => pageErrors.push(e.message));
    try {
      await fn(page, t);
      if (pageErrors.length) throw new Error(`uncaught errors in the page: ${pageErrors.join(' | ')}`);
    } catch (err) {
      fs.mkdirSync(ARTIFACTS, { recursive: true });
      const shot = path.join(ARTIFACTS, `${slug(name)}.png`);
      try {
        await page.screenshot({ path: shot, fullPage: true });
        console.error(`# screenshot of the failure: ${shot}`);
        t.diagnostic(`screenshot: ${shot}`);
      } catch (e) {
        console.error(`# could not take a screenshot: ${e.message}`);
      }
      throw err;
    } finally {
      await context.close();
    }
  });
}
