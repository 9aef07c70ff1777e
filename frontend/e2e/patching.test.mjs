// End-to-end tests of activation patching and direct logit attribution against a real server
// with the tiny random Llama. Run with `npm run e2e`.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { describe } from 'node:test';
import { openApp as openAppOf, pageTest, serverAndBrowser } from './harness.mjs';

const env = { server: null, browser: null };

const CLEAN = 'The capital of France is';
const CORRUPTED = 'The capital of Spain is';

// The same rule as formatValue in src/lib/chart.ts: 4 significant digits, tiny values in exponent form.
function formatValue(v) {
  if (v === null || v === undefined || !Number.isFinite(v)) return 'n/a';
  if (v !== 0 && Math.abs(v) < 1e-3) return v.toExponential(2);
  return String(Number(v.toPrecision(4)));
}

async function openApp(page) {
  await openAppOf(page, env);
}

async function tokenize(page, text, addSpecial = true) {
  const res = await page.request.post(`${env.server.url}tokenize`, { data: { text, add_special_tokens: addSpecial } });
  assert.equal(res.status(), 200, await res.text());
  return res.json();
}

/** Files a button offers: name and bytes. */
async function save(page, scope, name) {
  const download = page.waitForEvent('download');
  await scope.getByRole('button', { name }).click();
  const file = await download;
  return { name: file.suggestedFilename(), bytes: fs.readFileSync(await file.path()) };
}

const PNG = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

describe('patching and attribution (tiny llama)', () => {
  serverAndBrowser(env);

  pageTest('runs a patching sweep: its progress, a cell per layer and position, the server’s values on hover, the exports', env, async (page) => {
    await openApp(page);
    const card = page.getByTestId('patching');
    await page.getByLabel('Show activation patching').check();
    const clean = await tokenize(page, CLEAN);
    const corrupted = await tokenize(page, CORRUPTED);
    await card.getByLabel('Clean text', { exact: true }).fill(CLEAN);
    await card.getByLabel('Corrupted text', { exact: true }).fill(CORRUPTED);
    await card.getByTestId('patch-clean-count').filter({ hasText: `${clean.ids.length} tokens` }).waitFor();
    await card.getByTestId('patch-corrupted-count').filter({ hasText: `${corrupted.ids.length} tokens` }).waitFor();
    assert.equal(clean.ids.length, corrupted.ids.length, `${clean.tokens} vs ${corrupted.tokens}`);
    assert.equal(await card.getByTestId('patch-mismatch').count(), 0);

    // Texts of other lengths are said plainly, before any sweep.
    const longer = await tokenize(page, `${CORRUPTED} not`);
    await card.getByLabel('Corrupted text', { exact: true }).fill(`${CORRUPTED} not`);
    await card
      .getByTestId('patch-mismatch')
      .filter({ hasText: `The clean text is ${clean.ids.length} tokens and the corrupted text ${longer.ids.length}` })
      .waitFor();
    await card.getByLabel('Corrupted text', { exact: true }).fill(CORRUPTED);
    await card.getByTestId('patch-mismatch').waitFor({ state: 'detached' });

    // The metric: two strings the tokenizer reads as one token each (words of the prompt).
    const [correct, wrong] = [' is', ' of'];
    for (const t of [correct, wrong]) assert.equal((await tokenize(page, t, false)).ids.length, 1, `${JSON.stringify(t)} is one token`);
    // A string of several tokens is refused with its pieces.
    const pieces = await tokenize(page, ' capital', false);
    assert.ok(pieces.ids.length > 1);
    await card.getByLabel('Correct token').fill(' capital');
    await card.getByTestId('patch-correct-error').filter({ hasText: `is ${pieces.ids.length} tokens` }).waitFor();
    await card.getByLabel('Correct token').fill(correct);
    await card.getByLabel('Wrong token').fill(wrong);
    await card.getByTestId('patch-correct-id').waitFor();
    await card.getByTestId('patch-wrong-id').waitFor();

    // The tiny model sweeps in a moment: hold the answer in the browser until the page has shown
    // the sweep's progress, which the server sends on /events meanwhile.
    let release;
    const held = new Promise((r) => (release = r));
    await page.route('**/patch', async (route) => {
      const response = await route.fetch();
      await held;
      await route.fulfill({ response }).catch(() => {});
    });
    const done = page.waitForResponse((r) => r.url().endsWith('/patch'), { timeout: 60_000 });
    await card.getByRole('button', { name: 'Run patching' }).click();
    await page.waitForFunction(
      () => /^Patched run \d+ of \d+$/.test(document.querySelector('[role=progressbar][aria-label="Patching progress"]')?.getAttribute('aria-valuetext') ?? ''),
      null,
      { timeout: 60_000 },
    );
    release();
    const answer = await done;
    await page.unrouteAll({ behavior: 'ignoreErrors' });
    assert.equal(answer.status(), 200);
    assert.match(answer.request().headers()['x-logitlens-request'], /^[0-9a-f]{32}$/);
    assert.deepEqual(JSON.parse(answer.request().postData()), {
      clean_text: CLEAN,
      corrupted_text: CORRUPTED,
      hook: 'resid_pre',
      metric: { type: 'logit_diff', correct, wrong },
      positions: 'all',
      apply_chat_template: false,
    });
    const res = await answer.json();
    assert.equal(res.positions.length, clean.ids.length);
    assert.equal(res.values.length, res.layers);

    // A cell per layer and position, each with the server's normalized value.
    const heatmap = card.getByTestId('patch-heatmap');
    await heatmap.waitFor();
    const cells = heatmap.locator('rect[data-cell]');
    assert.equal(await cells.count(), res.layers * res.positions.length);
    const shown = await cells.evaluateAll((els) => els.map((e) => e.getAttribute('data-value')));
    assert.deepEqual(
      shown,
      res.normalized.flat().map((v) => (v === null ? '' : String(v))),
    );
    assert.equal(await card.getByTestId('patch-values').textContent(), `clean ${formatValue(res.clean)} · corrupted ${formatValue(res.corrupted)}`);

    // Hover: the cell's values as the server sent them.
    const [l, j] = [res.layers - 1, res.positions.length - 1];
    await heatmap.locator(`rect[data-r="${l}"][data-c="${j}"]`).hover();
    const tip = page.getByTestId('patch-tooltip');
    await tip.waitFor();
    assert.match(await tip.textContent(), new RegExp(`^Layer ${l} · position ${res.positions[j]}`));
    assert.equal(await tip.getByTestId('patch-tooltip-value').textContent(), formatValue(res.values[l][j]));
    assert.equal(await tip.getByTestId('patch-tooltip-normalized').textContent(), res.normalized[l][j] === null ? 'n/a (clean = corrupted)' : formatValue(res.normalized[l][j]));

    // Raw values on the toggle.
    await card.getByLabel('Raw').check();
    assert.deepEqual(await cells.evaluateAll((els) => els.map((e) => Number(e.getAttribute('data-value')))), res.values.flat());

    const csv = await save(page, card, 'Export CSV');
    assert.match(csv.name, /^patching_llama_resid_pre_\d{8}_\d{6}\.csv$/);
    const lines = csv.bytes.toString('utf8').split('\n');
    assert.equal(lines[0], 'layer,position,token_clean,token_corrupted,value,normalized');
    assert.equal(lines.length, 1 + res.layers * res.positions.length + 1);
    const png = await save(page, card, 'Export PNG');
    assert.match(png.name, /^patching_llama_resid_pre_\d{8}_\d{6}\.png$/);
    assert.deepEqual([...png.bytes.subarray(0, 8)], PNG);
  });

  pageTest('the server refuses a sweep in words', env, async (page) => {
    await openApp(page);
    const post = (data) => page.request.post(`${env.server.url}patch`, { data });
    const base = { clean_text: CLEAN, corrupted_text: CORRUPTED, hook: 'resid_pre', metric: { type: 'logit_diff', correct: ' is', wrong: ' of' } };
    for (const data of [
      { ...base, corrupted_text: `${CORRUPTED} not` },
      { ...base, metric: { type: 'prob', token: ' capital' } },
      { ...base, hook: 'nowhere' },
    ]) {
      const r = await post(data);
      assert.equal(r.status(), 400, JSON.stringify(data));
      const detail = (await r.json()).detail;
      assert.equal(typeof detail, 'string');
      assert.ok(detail.length > 0);
    }
  });

  pageTest('attributes a cell’s token: the logit shown is the server’s, its parts add up', env, async (page) => {
    await openApp(page);
    const ran = page.waitForResponse((r) => r.url().endsWith('/inference'), { timeout: 60_000 });
    await page.locator('button.btn-run').click();
    const run = await ran;
    await page.getByTestId('running-indicator').waitFor({ state: 'detached' });
    const T = (await run.json()).input_tokens.length;
    const cell = page.locator(`[data-testid=lens-grid] [data-cell][data-r="3"][data-c="${T - 1}"]`);
    await cell.click();
    const menu = page.getByTestId('cell-menu');
    const item = menu.getByRole('menuitem');
    assert.match(await item.textContent(), /^Attribute /);
    const attributed = page.waitForResponse((r) => r.url().endsWith('/inference') && 'attribution' in JSON.parse(r.request().postData()), { timeout: 60_000 });
    await item.click();
    const res = await attributed;
    assert.equal(res.status(), 200);
    const sent = JSON.parse(res.request().postData());
    const { attribution: asked, ...rest } = sent;
    assert.deepEqual(rest, JSON.parse(run.request().postData()));
    assert.equal(asked.position, T - 1);
    const a = (await res.json()).attribution;
    assert.equal(a.token_id, asked.token);
    assert.equal(a.position, T - 1);

    const panel = page.getByTestId('attribution');
    const logit = panel.getByTestId('attribution-logit');
    await logit.waitFor();
    assert.equal(Number(await logit.getAttribute('data-value')), a.logit);
    assert.equal(await logit.textContent(), formatValue(a.logit));
    const total = a.embed + a.attn.reduce((x, y) => x + y, 0) + a.mlp.reduce((x, y) => x + y, 0) + a.rest;
    assert.ok(Math.abs(total - a.logit) < 1e-3 * Math.max(1, Math.abs(a.logit)), `${total} vs ${a.logit}`);
    assert.equal(await panel.getByTestId('attribution-sum').textContent(), `embed + Σattn + Σmlp + rest = ${total.toFixed(4)} vs logit ${a.logit.toFixed(4)} ✓`);
    assert.equal(await panel.locator('[data-bar="attn"]').count(), a.attn.length);
    assert.equal(await panel.getByTestId('attribution-heads').locator('rect[data-cell]').count(), a.heads.length * a.heads[0].length);
    await panel.locator('[data-layer="1"]').hover();
    assert.match(await page.getByTestId('attribution-tooltip').textContent(), new RegExp(`^Layer 1attention: .*MLP: ${formatValue(a.mlp[1]).replace(/[.+-]/g, '\\$&')}$`));

    const csv = await save(page, panel, 'Export CSV');
    assert.match(csv.name, /^attribution_llama_pos\d+_\d{8}_\d{6}\.csv$/);
    assert.ok(csv.bytes.toString('utf8').includes(`logit,,,${a.logit}\n`));
    const png = await save(page, panel, 'Export PNG');
    assert.deepEqual([...png.bytes.subarray(0, 8)], PNG);
  });
});
