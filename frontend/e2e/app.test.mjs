// End-to-end tests of the built app against a real server with the tiny random Llama
// (3 layers, 4 heads, 512 tokens). Run with `npm run e2e`.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe } from 'node:test';
import { REPO, TINY_LLAMA, formatToken, openApp as openAppOf, pageTest, serverAndBrowser } from './harness.mjs';

const env = { server: null, browser: null };

const TEXT = 'The capital of France is';
const COLUMNS = ['<s>', 'T', 'he', '␣c', 'ap', 'it', 'al', '␣of', '␣F', 'ran', 'c', 'e', '␣is'];
const ROWS = ['Embeddings', 'Layer 0', 'Layer 1', 'Final Output'];

// IEEE-754 half float bits → value (independent of src/lib/attention.ts).
function halfToFloat(bits) {
  const sign = bits & 0x8000 ? -1 : 1;
  const exp = (bits >> 10) & 0x1f;
  const frac = bits & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 0x1f) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

function decodeHalves(b64) {
  const buf = Buffer.from(b64, 'base64');
  return Array.from({ length: buf.length / 2 }, (_, i) => halfToFloat(buf.readUInt16LE(2 * i)));
}

function upstreamCase(name) {
  const cases = JSON.parse(fs.readFileSync(path.join(TINY_LLAMA, 'upstream_cases.json'), 'utf8'));
  const c = cases.find((x) => x.request.name === name);
  assert.ok(c, `case ${name} in upstream_cases.json`);
  return c.response;
}

async function openApp(page) {
  await openAppOf(page, env);
}

async function run(page) {
  const done = page.waitForResponse((r) => r.url().endsWith('/inference'), { timeout: 60_000 });
  await page.locator('button.btn-run').click();
  const res = await done;
  await page.getByTestId('running-indicator').waitFor({ state: 'detached' });
  return res;
}

const rowNames = (page) => page.locator('[data-testid=lens-grid] tbody th.row-name > span:first-child').allTextContents();
const colTokens = (page) => page.locator('[data-testid=lens-grid] thead .col-token').allTextContents();
const cell = (page, r, c) => page.locator(`[data-testid=lens-grid] [data-cell][data-r="${r}"][data-c="${c}"]`);

async function addZeroLayer1(page) {
  await page.getByLabel('Stream layer').selectOption('1');
  await page.getByLabel('Stream', { exact: true }).selectOption('output');
  await page.getByLabel('Operation').selectOption('zero');
  await page.getByRole('button', { name: 'Add stream intervention' }).click();
}

async function showAttention(page, view) {
  const box = page.getByLabel('Show attention');
  if (!(await box.isChecked())) await box.check();
  await page.getByLabel('Attention view').selectOption(view);
}

describe('logitlens web app (tiny llama)', () => {
  serverAndBrowser(env);

  pageTest('loads the page with the model ready', env, async (page) => {
    await openApp(page);
    assert.equal(await page.title(), 'logitlens');
    assert.match(await page.locator('h1').textContent(), /LogitLens/);
    assert.equal(await page.locator('#input-text').inputValue(), TEXT);
    await page.getByTestId('empty-results').waitFor();
    // Layer options follow the loaded model: 3 layers + Embeddings.
    const opts = await page.getByLabel('Stream layer').locator('option').allTextContents();
    assert.deepEqual(opts, ['Layer 0', 'Layer 1', 'Layer 2', 'Embeddings']);
    // The model select is the server's /models list: what the custom backend runs, by family, in
    // the server's order (its default GGUF first), after the loaded folder, which it does not list.
    const models = await (await page.request.get(`${env.server.url}models`)).json();
    assert.equal(models[0].id, 'SmolLM2-135M-Instruct.Q4_1.gguf');
    const expected = [];
    for (const m of models.filter((e) => e.backends.includes('custom'))) {
      const group = expected.find(([family]) => family === m.family);
      if (group) group[1].push(m.id);
      else expected.push([m.family, [m.id]]);
    }
    const select = page.getByLabel('Model', { exact: true });
    await select.locator(`optgroup[label="${expected[0][0]}"]`).waitFor({ state: 'attached' });
    const groups = await select.locator('optgroup').evaluateAll((gs) => gs.map((g) => [g.label, [...g.querySelectorAll('option')].map((o) => o.value)]));
    assert.deepEqual(groups, [['Currently selected', [TINY_LLAMA]], ...expected, ['More', ['__browse_models__']]]);
    assert.equal(await select.inputValue(), TINY_LLAMA);
  });

  pageTest('runs the lens: rows, token columns, the known top-1 token and its top 5', env, async (page) => {
    await openApp(page);
    await run(page);
    assert.deepEqual(await rowNames(page), ROWS);
    assert.deepEqual(await colTokens(page), COLUMNS);
    const baseline = upstreamCase('baseline');
    const top = baseline.logit_lens[3].predictions[12][0];
    assert.equal(await cell(page, 3, 12).locator('.cell-token').textContent(), formatToken(top.token));
    assert.equal(await cell(page, 3, 12).locator('.cell-prob').textContent(), top.prob.toFixed(2));
    // Hover shows the top 5 with percentages.
    await cell(page, 3, 12).hover();
    const tip = page.getByTestId('lens-tooltip');
    await tip.waitFor();
    assert.match(await tip.locator('.tooltip-head').textContent(), /Final Output · Pos 12/);
    const items = await tip.locator('li').allTextContents();
    assert.equal(items.length, 5);
    assert.ok(items[0].includes(`${(top.prob * 100).toFixed(1)}%`), items[0]);
    // Keyboard: focus a cell, arrow keys move the tooltip.
    await page.mouse.move(0, 0);
    await cell(page, 0, 0).focus();
    await page.keyboard.press('ArrowRight');
    await page.keyboard.press('ArrowDown');
    assert.match(await page.getByTestId('lens-tooltip').locator('.tooltip-head').textContent(), /Layer 0 · Pos 1/);
    // Cells are shaded by probability.
    const bg0 = await cell(page, 0, 0).evaluate((e) => getComputedStyle(e).backgroundColor);
    assert.match(bg0, /^rgb/);
  });

  pageTest('Ctrl+Enter in the text box runs', env, async (page) => {
    await openApp(page);
    await page.locator('#input-text').fill('Hello world');
    const done = page.waitForResponse((r) => r.url().endsWith('/inference'));
    await page.locator('#input-text').press('Control+Enter');
    await done;
    await page.locator('[data-testid=lens-grid]').waitFor();
    assert.deepEqual((await colTokens(page))[0], '<s>');
  });

  pageTest('a run shows its own progress and can be stopped; the page stays usable', env, async (page) => {
    await openApp(page);
    await run(page);
    const before = await colTokens(page);
    // The tiny model runs in milliseconds: hold its answer in the browser until the test has seen the
    // run's progress. The server computes the run (sending its "run" events on /events) meanwhile.
    let release;
    const held = new Promise((r) => (release = r));
    const ids = [];
    await page.route('**/inference', async (route) => {
      ids.push(route.request().headers()['x-logitlens-request']);
      const response = await route.fetch();
      await held;
      await route.fulfill({ response }).catch(() => {});
    });
    // A text no earlier run had, so the server computes every layer and lens state afresh (it
    // takes over the layers of a kept run of the same text).
    await page.locator('#input-text').fill('Stop this run, please');
    await page.locator('button.btn-run').click();
    const stop = page.getByRole('button', { name: 'Stop' });
    await stop.waitFor();
    assert.match(ids[0], /^[0-9a-f]{32}$/);
    // This run's events arrive: the forward pass over the 3 layers, then the lens over the 4 rows
    // of the grid (its last event).
    const bar = page.getByRole('progressbar', { name: 'Run progress' });
    await page.waitForFunction(
      () => /^Lens \d+ of 4$/.test(document.querySelector('[role=progressbar][aria-label="Run progress"]')?.getAttribute('aria-valuetext') ?? ''),
      null,
      { timeout: 30_000 },
    );
    assert.equal(await bar.getAttribute('aria-valuemax'), String(ROWS.length));
    assert.match(await page.getByTestId('run-progress-text').textContent(), /^Lens \d+ of 4$/);
    // Stop: the results on screen stay, said as stopped, not as an error.
    await stop.click();
    await page.getByTestId('running-indicator').waitFor({ state: 'detached' });
    assert.equal(await page.getByTestId('run-stopped').textContent(), 'Run stopped. The results below are from the run before.');
    assert.deepEqual(await colTokens(page), before);
    assert.equal(await page.getByTestId('toast-error').count(), 0);
    assert.equal(await stop.count(), 0);
    release();
    await page.unrouteAll({ behavior: 'ignoreErrors' });
    // The next run goes through, with an id of its own.
    const res = await run(page);
    const id = res.request().headers()['x-logitlens-request'];
    assert.match(id, /^[0-9a-f]{32}$/);
    assert.notEqual(id, ids[0]);
    assert.equal(await page.getByTestId('run-stopped').count(), 0);
    const after = await colTokens(page);
    assert.equal(after[0], '<s>');
    assert.notDeepEqual(after, before);
    assert.equal(await page.getByTestId('toast-error').count(), 0);
  });

  pageTest('a busy server and a refused request are said in words', env, async (page) => {
    await openApp(page);
    // At most one run computes and a few wait; beyond that the server answers 503 + Retry-After.
    // The tiny model is too fast to fill the queue, so the answer is made in the browser.
    const detail = 'the server is busy: 4 runs are waiting for their turn; try again in 20 s';
    await page.route('**/inference', (route) =>
      route.fulfill({ status: 503, headers: { 'retry-after': '20' }, contentType: 'application/json', body: JSON.stringify({ detail }) }),
    );
    await page.locator('button.btn-run').click();
    const toast = page.getByTestId('toast-error').filter({ hasText: 'The server is busy' });
    await toast.waitFor();
    assert.match(await toast.textContent(), /try again in 20 s\. Run again after .+\./);
    assert.match(await page.getByTestId('retry-countdown').textContent(), /^The server is busy: try again in (20|19|18) s\.$/);
    assert.equal(await page.locator('button.btn-run').isEnabled(), true);
    await page.unrouteAll({ behavior: 'ignoreErrors' });
    await toast.getByRole('button', { name: 'Dismiss' }).click();
    // A text over the token limit: the server's own words, as they are.
    await page.locator('#input-text').fill('a '.repeat(5000));
    const refused = page.waitForResponse((r) => r.url().endsWith('/inference'));
    await page.locator('button.btn-run').click();
    const res = await refused;
    assert.equal(res.status(), 400);
    const said = (await res.json()).detail;
    assert.match(said, /limit/);
    const t2 = page.getByTestId('toast-error').filter({ hasText: 'Inference failed' });
    await t2.waitFor();
    assert.ok((await t2.textContent()).includes(said), await t2.textContent());
  });

  pageTest('a stream intervention (zero layer 1 block output) flattens the Layer 1 row', env, async (page) => {
    await openApp(page);
    await run(page);
    const before = await page.locator('[data-testid=lens-grid] tr[data-row-name="Layer 1"] .cell-prob').allTextContents();
    assert.ok(before.some((p) => p !== '0.00'), `baseline Layer 1 has non-zero probabilities: ${before}`);
    await page.getByLabel('Stream layer').selectOption('1');
    await page.getByLabel('Stream', { exact: true }).selectOption('output');
    await page.getByLabel('Operation').selectOption('zero');
    await page.getByRole('button', { name: 'Add stream intervention' }).click();
    const list = page.getByTestId('intervention-list');
    assert.match(await list.textContent(), /layer_1_output/);
    assert.match(await list.textContent(), /zero/);
    const res = await run(page);
    assert.deepEqual(JSON.parse(res.request().postData()).interventions, { layer_1_output: [{ type: 'zero', all_layers: false }] });
    const probs = await page.locator('[data-testid=lens-grid] tr[data-row-name="Layer 1"] .cell-prob').allTextContents();
    assert.equal(probs.length, 13);
    assert.ok(probs.every((p) => p === '0.00'), `Layer 1 after zeroing: ${probs}`);
    const raw = await page.locator('[data-testid=lens-grid] tr[data-row-name="Layer 1"] [data-cell]').evaluateAll((els) => els.map((e) => Number(e.dataset.prob)));
    for (const p of raw) assert.ok(Math.abs(p - 1 / 512) < 1e-3, `uniform ≈ 1/512, got ${p}`);
    // Rows before the intervention are unchanged.
    assert.deepEqual(await rowNames(page), ROWS);
    // Removing it restores the list to empty.
    await page.getByRole('button', { name: /Remove zero from layer_1_output/ }).click();
    await page.getByText('None: the model runs unchanged').waitFor();
  });

  pageTest('blocking attention 0 → 3 at layer 0 zeroes that heatmap entry and marks it', env, async (page) => {
    await openApp(page);
    await run(page);
    await showAttention(page, 'specific');
    const entry = () => page.getByTestId('heatmap-main').locator('[data-q="3"][data-k="0"]');
    const baseValue = Number(await entry().getAttribute('data-value'));
    assert.ok(baseValue > 0.001, `baseline attention query 3 → key 0 is ${baseValue}`);
    assert.equal(await entry().textContent(), baseValue.toFixed(2));

    await page.getByLabel('Attention layer', { exact: true }).selectOption('0');
    await page.getByLabel('Source tokens').fill('0');
    await page.getByLabel('Target tokens').fill('3');
    await page.getByRole('button', { name: 'Block attention flow' }).click();
    assert.match(await page.getByTestId('intervention-list').textContent(), /block_attention \(0 → 3\)/);
    await run(page);

    await showAttention(page, 'specific');
    for (const view of ['specific', 'layer_mean']) {
      await page.getByLabel('Attention view').selectOption(view);
      assert.equal(await page.getByTestId('layer-value').textContent(), '0');
      assert.equal(await entry().textContent(), '0.00');
      assert.equal(Number(await entry().getAttribute('data-value')), 0);
      assert.match(await entry().getAttribute('class'), /hm-blocked/);
      assert.match(await entry().getAttribute('title'), /^Query 3 '␣c' → Key 0 '<s>': 0\.0000 \(blocked\)$/);
    }
    // Layer 1 is not blocked.
    await page.getByLabel('Attention layer slider').fill('1');
    assert.equal(await page.getByTestId('layer-value').textContent(), '1');
    assert.doesNotMatch((await entry().getAttribute('class')) ?? '', /hm-blocked/);
    assert.ok(Number(await entry().getAttribute('data-value')) > 0);
    // Client-side validation: source after target.
    await page.getByLabel('Source tokens').fill('5');
    await page.getByLabel('Target tokens').fill('2');
    await page.getByRole('button', { name: 'Block attention flow' }).click();
    assert.match(await page.getByTestId('attention-error').textContent(), /source ≤ target/);
  });

  pageTest('attention views: all average, head grid and layer grid', env, async (page) => {
    await openApp(page);
    await run(page);
    await showAttention(page, 'all_average');
    await page.getByTestId('heatmap-main').waitFor();
    assert.match(await page.getByTestId('heatmap-main').getAttribute('data-title'), /Average/);
    await page.getByLabel('Attention view').selectOption('specific_grid');
    // The heads of a layer are fetched from the server when first shown.
    await page.getByTestId('heatmap-panel-3').waitFor();
    assert.equal(await page.locator('[data-testid^=heatmap-panel-]').count(), 4);
    await page.getByLabel('Attention view').selectOption('layer_mean_grid');
    assert.equal(await page.locator('[data-testid^=heatmap-panel-]').count(), 3);
  });

  pageTest('attention arrives as f16 head means; head views fetch their layer from the kept run', env, async (page) => {
    await openApp(page);
    const res = await run(page);
    const req = JSON.parse(res.request().postData());
    assert.equal(req.return_attention, true);
    assert.equal(req.attention_format, 'f16');
    assert.equal(req.attention_reduce, 'head_mean');
    assert.equal('attention_layers' in req, false, 'all layers');
    const body = await res.json();
    assert.equal('attention' in body, false, 'no nested attention in an f16 response');
    const packed = body.attention_f16;
    const T = COLUMNS.length;
    assert.deepEqual({ ...packed, data: undefined }, { layers: [0, 1, 2], heads: 1, tokens: T, reduce: 'head_mean', data: undefined });
    // 2 bytes a value, base64: 4 characters for 3 bytes.
    assert.equal(packed.data.length, Math.ceil((3 * T * T * 2) / 3) * 4);
    const means = decodeHalves(packed.data);
    assert.equal(means.length, 3 * T * T);
    // Causal softmax rows: each sums to 1 (within half-float rounding), future keys are 0.
    for (let l = 0; l < 3; l++) {
      for (let q = 0; q < T; q++) {
        const row = means.slice((l * T + q) * T, (l * T + q + 1) * T);
        assert.ok(Math.abs(row.reduce((a, b) => a + b, 0) - 1) < 1e-2, `layer ${l} row ${q} sums to 1`);
        assert.ok(row.slice(q + 1).every((v) => v === 0), `layer ${l} row ${q} is causal`);
      }
    }
    const runId = res.headers()['x-logitlens-run-id'];
    assert.match(runId ?? '', /^\d+$/);

    const headRequests = [];
    page.on('request', (r) => {
      if (new URL(r.url()).pathname.startsWith('/runs/')) headRequests.push(r.url());
    });
    await showAttention(page, 'layer_mean');
    const entry = (q, k) => page.getByTestId('heatmap-main').locator(`[data-q="${q}"][data-k="${k}"]`);
    // The layer-mean view shows the decoded head means as they are.
    assert.equal(Number(await entry(5, 2).getAttribute('data-value')), means[5 * T + 2]);
    assert.deepEqual(headRequests, [], 'mean views need no request');

    const fetched = page.waitForResponse((r) => new URL(r.url()).pathname === `/runs/${runId}/attention`);
    await page.getByLabel('Attention view').selectOption('specific');
    const headsRes = await fetched;
    assert.equal(headsRes.request().method(), 'GET');
    assert.equal(headsRes.status(), 200);
    const url = new URL(headsRes.url());
    assert.equal(url.searchParams.get('layers'), '0');
    assert.equal(url.searchParams.get('format'), 'f16');
    const heads = await headsRes.json();
    assert.deepEqual({ ...heads, data: undefined }, { run_id: Number(runId), layers: [0], heads: 4, tokens: T, reduce: 'none', data: undefined });
    const perHead = decodeHalves(heads.data);
    assert.equal(perHead.length, 4 * T * T);
    await page.getByTestId('heatmap-main').filter({ has: page.locator('[data-q="5"]') }).waitFor();
    assert.equal(await page.getByTestId('heatmap-main').getAttribute('data-title'), 'Layer 0, head 0');
    assert.equal(await page.getByLabel('Attention head slider').getAttribute('max'), '3');
    await page.getByLabel('Attention head slider').fill('2');
    assert.equal(Number(await entry(5, 2).getAttribute('data-value')), perHead[(2 * T + 5) * T + 2]);
    // The head means of /inference are the means of these heads.
    const mean = [0, 1, 2, 3].reduce((a, h) => a + perHead[(h * T + 5) * T + 2], 0) / 4;
    assert.ok(Math.abs(mean - means[5 * T + 2]) < 2e-3, `mean of heads ${mean} vs head mean ${means[5 * T + 2]}`);

    // The grid of the same layer is served from the page's cache.
    await page.getByLabel('Attention view').selectOption('specific_grid');
    await page.getByTestId('heatmap-panel-3').waitFor();
    assert.equal(await page.locator('[data-testid^=heatmap-panel-]').count(), 4);
    assert.equal(headRequests.length, 1, headRequests.join(' '));

    // Once newer runs have pushed this one out of the kept runs' memory (the harness's server keeps
    // 1 MiB of them: about 6 runs of this model), its other layers are gone: the page says so.
    for (let i = 0; i < 16; i++) {
      const r = await page.request.post(`${env.server.url}inference`, {
        data: { text: `${TEXT} ${i}`, interventions: {}, lens_type: 'block_output', apply_chat_template: false, return_attention: true, attention_format: 'f16', attention_reduce: 'head_mean' },
      });
      assert.equal(r.status(), 200);
    }
    const gone = page.waitForResponse((r) => new URL(r.url()).pathname === `/runs/${runId}/attention`);
    await page.getByLabel('Attention layer slider').fill('1');
    assert.equal((await gone).status(), 404);
    const err = page.getByTestId('heads-error');
    await err.waitFor();
    assert.match(await err.textContent(), /This run's per-head attention is no longer kept on the server; run again to see heads/);
    // Run again fetches a new run whose heads are there.
    const rerun = page.waitForResponse((r) => r.url().endsWith('/inference'));
    await err.getByRole('button', { name: 'Run again' }).click();
    const newId = (await rerun).headers()['x-logitlens-run-id'];
    assert.notEqual(newId, runId);
    await page.getByTestId('heatmap-panel-3').waitFor();
    assert.equal(await page.getByTestId('layer-value').textContent(), '1');
    assert.ok(headRequests.some((u) => new URL(u).pathname === `/runs/${newId}/attention`), headRequests.join(' '));
  });

  pageTest('the server refuses bad attention options in words', env, async (page) => {
    await openApp(page);
    const base = { text: TEXT, interventions: {}, lens_type: 'block_output', apply_chat_template: false };
    const post = (data) => page.request.post(`${env.server.url}inference`, { data });
    const bad = [
      { ...base, return_attention: true, attention_format: 'f16', attention_layers: [3] },
      { ...base, return_attention: false, attention_format: 'f16' },
      { ...base, return_attention: true, attention_format: 'png' },
      { ...base, return_attention: true, attention_reduce: 'max' },
    ];
    for (const data of bad) {
      const r = await post(data);
      assert.equal(r.status(), 400, JSON.stringify(data));
      const detail = (await r.json()).detail;
      assert.equal(typeof detail, 'string', JSON.stringify(data));
      assert.ok(detail.length > 0);
    }
    // A subset of layers, per head, and the same run's attention fetched again in JSON.
    const ok = await post({ ...base, return_attention: true, attention_format: 'f16', attention_layers: [2, 0] });
    assert.equal(ok.status(), 200);
    const packed = (await ok.json()).attention_f16;
    assert.deepEqual(packed.layers, [2, 0]);
    assert.equal(packed.heads, 4);
    assert.equal(packed.reduce, 'none');
    const id = ok.headers()['x-logitlens-run-id'];
    const again = await page.request.get(`${env.server.url}runs/${id}/attention?layers=2`);
    assert.equal(again.status(), 200);
    const json = await again.json();
    assert.equal(json.run_id, Number(id));
    assert.deepEqual(json.layers, [2]);
    assert.equal(json.attention.length, 1);
    assert.equal(json.attention[0].length, 4);
    const halves = decodeHalves(packed.data).slice(0, 4 * 13 * 13);
    assert.ok(Math.abs(json.attention[0][1][5][2] - halves[(1 * 13 + 5) * 13 + 2]) < 1e-3, 'the json and f16 forms agree');
    const means = await page.request.get(`${env.server.url}runs/${id}/attention?layers=0,2&format=f16&reduce=head_mean`);
    assert.equal(means.status(), 200);
    assert.deepEqual({ ...(await means.json()), data: undefined }, { run_id: Number(id), layers: [0, 2], heads: 1, tokens: 13, reduce: 'head_mean', data: undefined });
    for (const q of ['layers=3', 'format=png', 'reduce=max']) {
      const r = await page.request.get(`${env.server.url}runs/${id}/attention?${q}`);
      assert.equal(r.status(), 400, q);
    }
    const unknown = await page.request.get(`${env.server.url}runs/987654/attention`);
    assert.equal(unknown.status(), 404);
    assert.equal(typeof (await unknown.json()).detail, 'string');
  });

  pageTest('sessions: save, list, reload and delete', env, async (page) => {
    await openApp(page);
    await page.getByLabel('Stream layer').selectOption('2');
    await page.getByLabel('Operation').selectOption('scale');
    await page.getByLabel('Scale factor').fill('0.5');
    await page.getByLabel('Token index').fill('-1');
    await page.getByRole('button', { name: 'Add stream intervention' }).click();
    await page.getByLabel('Lens type').selectOption('post_attention');
    await run(page);
    const savedRows = await rowNames(page);
    assert.equal(savedRows.length, 5);

    await page.getByRole('button', { name: 'Save', exact: true }).click();
    const dlg = page.getByTestId('save-dialog');
    await dlg.getByLabel('Name (optional)').fill('e2e session');
    await dlg.getByRole('button', { name: 'Save', exact: true }).click();
    await page.getByTestId('toast-success').filter({ hasText: 'e2e_session' }).waitFor();
    await dlg.waitFor({ state: 'detached' });

    // Change everything, then reload the session.
    await page.locator('#input-text').fill('Something else entirely');
    await page.getByRole('button', { name: 'Clear all' }).click();
    await page.getByLabel('Lens type').selectOption('block_output');

    await page.getByRole('button', { name: 'Load', exact: true }).click();
    const sessions = page.getByTestId('sessions-dialog');
    const item = sessions.locator('li[data-session-id$="_e2e_session"]');
    await item.waitFor();
    assert.match(await item.locator('.session-name').textContent(), /e2e_session/);
    assert.match(await item.locator('.session-time').textContent(), /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}/);
    const rerun = page.waitForResponse((r) => r.url().endsWith('/inference'));
    await item.getByRole('button', { name: /^Load session/ }).click();
    const res = await rerun;
    const body = JSON.parse(res.request().postData());
    assert.equal(body.text, TEXT);
    assert.equal(body.lens_type, 'post_attention');
    assert.deepEqual(body.interventions, { layer_2_output: [{ type: 'scale', value: 0.5, token_index: -1, all_layers: false }] });
    await page.getByTestId('running-indicator').waitFor({ state: 'detached' });
    assert.equal(await page.locator('#input-text').inputValue(), TEXT);
    assert.equal(await page.getByLabel('Lens type').inputValue(), 'post_attention');
    assert.match(await page.getByTestId('intervention-list').textContent(), /scale\(0\.5\) @ Token -1/);
    assert.deepEqual(await rowNames(page), savedRows);
    assert.match(await page.getByTestId('run-meta').textContent(), /session “e2e_session”/);

    // Visualization only: shows the saved grid without a new inference.
    await page.getByRole('button', { name: 'Load', exact: true }).click();
    await sessions.getByLabel(/Load visualization only/).check();
    let inferred = false;
    const onReq = (r) => {
      if (r.url().endsWith('/inference')) inferred = true;
    };
    page.on('request', onReq);
    await sessions.locator('li[data-session-id$="_e2e_session"]').getByRole('button', { name: /^Load session/ }).click();
    await page.getByTestId('run-meta').filter({ hasText: 'saved results' }).waitFor();
    assert.deepEqual(await rowNames(page), savedRows);
    await page.waitForTimeout(300);
    page.off('request', onReq);
    assert.equal(inferred, false, 'visualization-only load must not run inference');

    // Delete with confirmation.
    await page.getByRole('button', { name: 'Load', exact: true }).click();
    await sessions.getByLabel(/Load visualization only/).uncheck();
    const it2 = sessions.locator('li[data-session-id$="_e2e_session"]');
    const id = await it2.getAttribute('data-session-id');
    await it2.getByRole('button', { name: /^Delete session/ }).click();
    await it2.getByRole('group', { name: 'Confirm delete' }).getByRole('button', { name: 'Delete', exact: true }).click();
    await it2.waitFor({ state: 'detached' });
    await sessions.getByText('No saved sessions yet').waitFor();
    assert.equal(fs.existsSync(path.join(env.server.dataDir, 'saved_states', id)), false);
  });

  pageTest('saves heatmaps as PNG files in the data dir', env, async (page) => {
    await openApp(page);
    await run(page);
    await showAttention(page, 'layer_mean');
    await page.getByTestId('heatmap-main').getByRole('button', { name: /^Save .* as PNG$/ }).click();
    await page.getByTestId('toast-success').filter({ hasText: 'attention_visualizations/' }).waitFor();
    const single = (await page.getByTestId('saved-path').locator('code').textContent()).trim();
    assert.match(single, /^attention_visualizations\/\d{8}_\d{6}.*_L0_Mean\.png$/);
    const file = path.join(env.server.dataDir, single);
    assert.ok(fs.existsSync(file), `${file} exists`);
    assert.deepEqual([...fs.readFileSync(file).subarray(0, 4)], [0x89, 0x50, 0x4e, 0x47]);

    await page.getByLabel('Attention view').selectOption('specific_grid');
    await page.getByRole('button', { name: 'Save all heads' }).click();
    await page.getByTestId('saved-path').filter({ hasText: 'AllHeads' }).waitFor();
    const grid = (await page.getByTestId('saved-path').locator('code').textContent()).trim();
    assert.ok(fs.existsSync(path.join(env.server.dataDir, grid)), `${grid} exists`);
    const files = fs.readdirSync(path.join(env.server.dataDir, 'attention_visualizations'));
    assert.equal(files.length, 2);
  });

  pageTest('compare with baseline: the diff view shows what zeroing layer 1 took and where the top-1 flipped', env, async (page) => {
    await openApp(page);
    await addZeroLayer1(page);
    await page.getByLabel(/Compare with baseline/).check();
    const res = await run(page);
    const sent = JSON.parse(res.request().postData());
    assert.equal(sent.compare, true);
    assert.equal(sent.entropy, true);
    assert.equal(res.status(), 200);
    const body = await res.json();
    assert.equal(body.baseline_logit_lens.length, ROWS.length);
    assert.equal(body.diff.length, ROWS.length);
    assert.equal(body.diff[3].length, COLUMNS.length);
    // The baseline is the run without interventions.
    const upstream = upstreamCase('baseline');
    assert.equal(body.baseline_logit_lens[3].predictions[12][0].id, upstream.logit_lens[3].predictions[12][0].id);
    const d312 = body.diff[3][12];
    assert.equal(d312.baseline_id, upstream.logit_lens[3].predictions[12][0].id);
    assert.ok(Math.abs(d312.baseline_prob - upstream.logit_lens[3].predictions[12][0].prob) < 1e-4);
    assert.ok(Math.abs(d312.delta_prob - (d312.prob - d312.baseline_prob)) < 1e-6);

    // The receipt of the one operation, beside the interventions.
    assert.equal(body.receipts.length, 1);
    assert.deepEqual([body.receipts[0].key, body.receipts[0].hook, body.receipts[0].layer], ['layer_1_output', 'blocks.1.hook_resid_post', 1]);
    const receipt = page.getByTestId('receipt');
    assert.equal(await receipt.count(), 1);
    assert.match(await receipt.textContent(), /layer_1_output→blocks\.1\.hook_resid_post/);
    assert.match(await receipt.textContent(), /positions0–12/);

    await page.getByLabel('Diff vs baseline').check();
    assert.equal(await page.locator('[data-testid=lens-grid] table').getAttribute('data-view'), 'diff');
    await page.getByTestId('diff-legend').waitFor();
    const rgb = async (loc) => (await loc.evaluate((e) => getComputedStyle(e).backgroundColor)).match(/\d+/g).slice(0, 3).map(Number);
    // Rows before the intervention did not change: neutral.
    const neutral = await rgb(cell(page, 0, 0));
    assert.ok(Math.abs(Number(await cell(page, 0, 0).getAttribute('data-value'))) < 1e-4);
    // The zeroed row and the final output lost probability everywhere: blue.
    for (const r of [2, 3]) {
      for (let c = 0; c < COLUMNS.length; c++) {
        const el = cell(page, r, c);
        const delta = Number(await el.getAttribute('data-value'));
        assert.ok(delta < 0, `row ${r} position ${c}: Δ ${delta}`);
        assert.ok(Math.abs(delta - body.diff[r][c].delta_prob) < 1e-6);
        const [R, G, B] = await rgb(el);
        assert.ok(B - R > 40, `row ${r} position ${c}: rgb(${R}, ${G}, ${B}) is not a loss colour`);
        assert.notDeepEqual([R, G, B], neutral);
      }
    }
    // Flipped top-1s are outlined, as many as the server reports.
    const flips = page.locator('[data-testid=lens-grid] [data-flip]');
    const expected = body.diff.flat().filter((d) => d.top_id !== d.baseline_id).length;
    assert.ok(expected >= 1, 'zeroing layer 1 flips some top-1');
    assert.equal(await flips.count(), expected);
    assert.equal(await flips.first().evaluate((e) => getComputedStyle(e).outlineStyle), 'solid');
    // The popup names the baseline top-1 with its probability before and after, the new top-1, rank and KL.
    await cell(page, 3, 12).hover();
    const details = page.getByTestId('diff-details');
    await details.waitFor();
    const text = await details.textContent();
    const baseTok = formatToken(body.baseline_logit_lens[3].predictions[12][0].token);
    const nowTok = formatToken(body.logit_lens[3].predictions[12][0].token);
    assert.ok(text.includes(`Baseline top-1${baseTok} ${d312.baseline_prob.toFixed(2)} → ${d312.prob.toFixed(2)}`), text);
    assert.ok(text.includes(`Now top-1${nowTok}`), text);
    assert.ok(text.includes(`KL(baseline ‖ now)${d312.kl.toFixed(4)} nats`), text);
    assert.ok(text.includes(d312.rank === 0 ? '#1 (still top)' : `#${d312.rank + 1}`), text);
    // Keyboard focus shows it too.
    await page.mouse.move(0, 0);
    await cell(page, 2, 0).focus();
    assert.match(await page.getByTestId('diff-details').textContent(), /Baseline top-1/);
    // The normal view is still there.
    await page.getByLabel('Normal', { exact: true }).check();
    assert.equal(await cell(page, 3, 12).locator('.cell-token').textContent(), nowTok);
    assert.equal(await page.locator('[data-testid=lens-grid] [data-flip]').count(), 0);
  });

  pageTest('tracks a token: the grid colours by its probability and shows its rank', env, async (page) => {
    await openApp(page);
    // A token that is top-1 somewhere in the baseline grid.
    const upstream = upstreamCase('baseline');
    let at = null;
    upstream.logit_lens.forEach((row, r) =>
      row.predictions.forEach((p, c) => {
        if (!at && p[0].token === ' the') at = { r, c, id: p[0].id, prob: p[0].prob };
      }),
    );
    assert.ok(at, '" the" is a top-1 of the baseline');
    const track = page.getByLabel('Track tokens');

    // Text that is not one token: the server says how it tokenizes, and the page shows it.
    await track.fill('France is');
    await track.press('Enter');
    const refused = page.waitForResponse((r) => r.url().endsWith('/inference'));
    await page.locator('button.btn-run').click();
    const bad = await refused;
    assert.equal(bad.status(), 400);
    const detail = (await bad.json()).detail;
    assert.equal(typeof detail, 'string');
    assert.ok(detail.length > 0);
    const toast = page.getByTestId('toast-error').filter({ hasText: 'Inference failed' });
    await toast.waitFor();
    assert.ok((await toast.textContent()).includes(detail), await toast.textContent());
    await page.getByRole('button', { name: 'Stop tracking France␣is' }).click();

    // " the" with its leading space, shown as ␣the.
    await track.fill(' the');
    assert.equal(await page.getByTestId('track-preview').textContent(), 'Enter adds: ␣the');
    await track.press('Enter');
    assert.equal(await page.locator('.track-chip').first().evaluate((e) => e.firstChild.textContent), '␣the');
    const res = await run(page);
    assert.deepEqual(JSON.parse(res.request().postData()).track_tokens, [' the']);
    assert.equal(res.status(), 200);
    const body = await res.json();
    const t = body.tracked[at.r][at.c][0];
    assert.deepEqual([t.id, t.token, t.rank], [at.id, ' the', 0]);
    assert.ok(Math.abs(t.prob - at.prob) < 1e-4, `tracked ${t.prob} vs top-1 ${at.prob}`);

    const lum = async (loc) => {
      const [R, G, B] = (await loc.evaluate((e) => getComputedStyle(e).backgroundColor)).match(/\d+/g).map(Number);
      return 0.2126 * R + 0.7152 * G + 0.0722 * B;
    };
    // The cell where " the" is least likely, and its colour before the switch.
    let low = { r: 0, c: 0, prob: Infinity };
    body.tracked.forEach((row, r) =>
      row.forEach((k, c) => {
        if (k[0].prob < low.prob) low = { r, c, prob: k[0].prob };
      }),
    );
    assert.ok(low.prob < t.prob - 0.01);
    const lowTop1 = await cell(page, low.r, low.c).evaluate((e) => e.style.background);

    await page.getByLabel('Grid colour mode').selectOption({ label: 'Tracked: ␣the' });
    const c = cell(page, at.r, at.c);
    assert.equal(await c.locator('.cell-token').textContent(), t.prob.toFixed(2));
    assert.equal(await c.locator('.cell-prob').textContent(), '#1');
    const lc = cell(page, low.r, low.c);
    const lowT = body.tracked[low.r][low.c][0];
    assert.equal(await lc.locator('.cell-token').textContent(), lowT.prob.toFixed(2));
    assert.equal(await lc.locator('.cell-prob').textContent(), `#${lowT.rank + 1}`);
    // The colour follows the tracked probability: lighter where " the" is likelier.
    assert.ok((await lum(c)) > (await lum(lc)), 'the likelier cell is lighter');
    assert.notEqual(await lc.evaluate((e) => e.style.background), lowTop1);
    // The popup lists it with probability and rank.
    await c.hover();
    const tip = page.getByTestId('lens-tooltip');
    await tip.waitFor();
    assert.match(await tip.textContent(), /Tracked tokens␣the\d+\.\d%rank #1/);

    // Entropy: always requested.
    assert.equal(body.entropy.length, ROWS.length);
    const h = body.entropy[at.r][at.c];
    assert.ok(h > 0 && h <= Math.log(512) + 1e-3, `entropy ${h}`);
    await page.getByLabel('Grid colour mode').selectOption('entropy');
    assert.equal(await c.locator('.cell-prob').textContent(), `H ${h.toFixed(2)}`);
  });

  pageTest('activation analysis: heatmaps with values and one CSV download', env, async (page) => {
    await openApp(page);
    await page.getByLabel(/Activation analysis/).check();
    const res = await run(page);
    assert.equal(JSON.parse(res.request().postData()).analysis, true);
    const a = (await res.json()).analysis;
    assert.equal(a.resid_norm.length, ROWS.length);
    assert.equal(a.cos_prev[0][0], null);
    assert.equal(a.attn_out_norm.length, 3);
    assert.equal(a.mlp_out_norm[2].length, COLUMNS.length);
    const panel = page.getByTestId('analysis-panel');
    for (const key of ['resid_norm', 'cos_prev', 'cos_final', 'attn_out_norm', 'mlp_out_norm']) await panel.getByTestId(`analysis-${key}`).waitFor();
    const v = panel.getByTestId('analysis-resid_norm').locator('[data-r="2"][data-c="5"]');
    assert.equal(Number(await v.getAttribute('data-value')), a.resid_norm[2][5]);
    await v.hover();
    assert.match(await page.getByTestId('analysis-tooltip').textContent(), /^Residual norm: Layer 1 · pos 5 it: /);
    const download = page.waitForEvent('download');
    await panel.getByRole('button', { name: 'Export CSV' }).click();
    const file = await download;
    assert.match(file.suggestedFilename(), /^activation_analysis_llama_\d{8}_\d{6}\.csv$/);
    const csv = fs.readFileSync(await file.path(), 'utf8').split('\n');
    assert.equal(csv[0], 'metric,row_or_layer,name,position,token,value');
    assert.equal(csv.length - 2, (3 * ROWS.length + 2 * 3) * COLUMNS.length);
    assert.ok(csv.includes(`resid_norm,2,Layer 1,5,it,${a.resid_norm[2][5]}`));
    assert.ok(csv.includes('cos_prev,0,Embeddings,0,<s>,'));
  });

  pageTest('compares two saved sessions, and says why two others do not compare', env, async (page) => {
    await openApp(page);
    const saveAs = async (name) => {
      await page.getByRole('button', { name: 'Save', exact: true }).click();
      const dlg = page.getByTestId('save-dialog');
      await dlg.getByLabel('Name (optional)').fill(name);
      await dlg.getByRole('button', { name: 'Save', exact: true }).click();
      await dlg.waitFor({ state: 'detached' });
    };
    await run(page);
    await saveAs('e2e diff a');
    await addZeroLayer1(page);
    await run(page);
    await saveAs('e2e diff b');
    await page.locator('#input-text').fill('Hello world');
    await run(page);
    await saveAs('e2e diff c');
    const list = await (await page.request.get(`${env.server.url}sessions`)).json();
    const entry = (suffix) => list.find((s) => s.id.endsWith(suffix));
    const [ea, eb, ec] = ['_e2e_diff_a', '_e2e_diff_b', '_e2e_diff_c'].map(entry);
    const [a, b, c] = [ea.id, eb.id, ec.id];

    const compare = async (x, y) => {
      await page.getByRole('button', { name: 'Load', exact: true }).click();
      const dlg = page.getByTestId('sessions-dialog');
      await dlg.getByLabel('Session A (baseline)', { exact: true }).selectOption(x);
      await dlg.getByLabel('Session B', { exact: true }).selectOption(y);
      const done = page.waitForResponse((r) => r.url().endsWith('/diff_sessions'));
      await dlg.getByRole('button', { name: 'Compare', exact: true }).click();
      const res = await done;
      assert.deepEqual(JSON.parse(res.request().postData()), { a: x, b: y });
      return res;
    };

    const ok = await compare(a, b);
    assert.equal(ok.status(), 200);
    const body = await ok.json();
    assert.equal(body.a.session_id, a);
    assert.equal(body.b.session_id, b);
    assert.deepEqual(body.layer_names, ROWS);
    assert.deepEqual(body.input_tokens.map(formatToken), COLUMNS);
    const card = page.getByTestId('session-diff');
    await card.waitFor();
    const caption = await card.getByTestId('session-diff-caption').textContent();
    assert.ok(caption.includes(`A (baseline): “${ea.name}” · llama · Block Output`), caption);
    assert.ok(caption.includes(`B: “${eb.name}” · llama`), caption);
    const grid = card.getByTestId('session-diff-grid');
    assert.equal(await card.locator('table').getAttribute('data-view'), 'diff');
    for (let col = 0; col < COLUMNS.length; col++) {
      assert.ok(Number(await grid.locator(`[data-cell][data-r="3"][data-c="${col}"]`).getAttribute('data-value')) < 0);
    }
    const flips = body.diff.flat().filter((d) => d.top_id !== d.baseline_id).length;
    assert.ok(flips >= 1);
    assert.equal(await grid.locator('[data-flip]').count(), flips);

    const bad = await compare(a, c);
    assert.equal(bad.status(), 400);
    const detail = (await bad.json()).detail;
    assert.equal(typeof detail, 'string');
    const err = page.getByTestId('compare-error');
    await err.waitFor();
    assert.equal(await err.textContent(), `Could not compare “${ea.name}” with “${ec.name}”: ${detail}`);
    const missing = await page.request.post(`${env.server.url}diff_sessions`, { data: { a, b: 'no_such_session' } });
    assert.equal(missing.status(), 404);
    for (const s of [a, b, c]) assert.equal((await page.request.post(`${env.server.url}delete_session`, { data: { session_id: s } })).status(), 200);
  });

  pageTest('server errors are shown in words', env, async (page) => {
    await openApp(page);
    // Token 40 of a 13-token prompt: the form cannot know the length before a run; the server says why.
    await page.getByLabel('Stream layer').selectOption('0');
    await page.getByLabel('Token index').fill('40');
    await page.getByRole('button', { name: 'Add stream intervention' }).click();
    await page.locator('button.btn-run').click();
    const toast = page.getByTestId('toast-error').filter({ hasText: 'Inference failed' });
    await toast.waitFor();
    assert.match(await toast.textContent(), /out of range/);
    // The custom backend cannot run GPT-2: the server's reason is shown in words.
    const gpt2 = path.join(REPO, 'tests', 'fixtures', 'tiny', 'gpt2');
    await page.getByRole('button', { name: 'Browse…' }).click();
    await page.getByTestId('model-browser').locator('#custom-model').fill(gpt2);
    await page.getByTestId('model-browser').getByRole('button', { name: 'Load', exact: true }).click();
    const t2 = page.getByTestId('toast-error').filter({ hasText: 'supports' });
    await t2.waitFor();
    assert.match(await t2.textContent(), /gpt2/);
  });

  pageTest('the hooked backend runs the model and other families', env, async (page) => {
    await openApp(page);
    // Switching backend reloads the same model under the TransformerLens-style backend.
    const switched = page.waitForResponse((r) => r.url().endsWith('/load_model'));
    await page.getByLabel('Backend').selectOption('hooked');
    assert.equal((await switched).status(), 200);
    await page.getByTestId('model-status').filter({ hasText: 'Ready' }).waitFor();
    await run(page);
    assert.deepEqual(await rowNames(page), ['Embeddings', 'Layer 0', 'Layer 1', 'Final Output']);
    const top = upstreamCase('baseline').logit_lens[3].predictions[12][0];
    assert.equal(await cell(page, 3, 12).locator('.cell-token').textContent(), formatToken(top.token));
    // GPT-2 (learned positions, LayerNorm) loads under it.
    const gpt2 = path.join(REPO, 'tests', 'fixtures', 'tiny', 'gpt2');
    await page.getByRole('button', { name: 'Browse…' }).click();
    await page.getByTestId('model-browser').locator('#custom-model').fill(gpt2);
    const load = page.waitForResponse((r) => r.url().endsWith('/load_model'));
    await page.getByTestId('model-browser').getByRole('button', { name: 'Load', exact: true }).click();
    assert.equal((await load).status(), 200);
    await page.getByTestId('model-status').filter({ hasText: 'Ready' }).waitFor();
    await run(page);
    assert.equal((await rowNames(page)).length, 4);
  });

  pageTest('loads another model from the browser by path and follows it', env, async (page) => {
    await openApp(page);
    await page.getByRole('button', { name: 'Browse…' }).click();
    const browser = page.getByTestId('model-browser');
    await browser.getByLabel('Search models').fill('135m');
    assert.ok((await browser.locator('.browser-item').count()) >= 1);
    const qwen = path.join(REPO, 'tests', 'fixtures', 'tiny', 'qwen3');
    await browser.locator('#custom-model').fill(qwen);
    const load = page.waitForResponse((r) => r.url().endsWith('/load_model'));
    await browser.getByRole('button', { name: 'Load', exact: true }).click();
    const res = await load;
    assert.equal(res.status(), 200);
    await page.getByTestId('model-status').filter({ hasText: 'Ready' }).waitFor();
    await page.waitForFunction((q) => document.querySelector('select[aria-label="Model"]').value === q, qwen);
    await run(page);
    assert.deepEqual(await rowNames(page), ROWS);
    assert.match(await page.getByTestId('run-meta').textContent(), /qwen3/);
  });
});

// A server of its own: attaching a lens and evaluating change what the tests above would see.
describe('tuned lens and lens quality (tiny llama)', () => {
  const own = { server: null, browser: null };
  const RESEARCH = path.join(REPO, 'tests', 'fixtures', 'research');
  const LENS = path.join(RESEARCH, 'tuned', 'llama');
  const CORPUS = path.join(RESEARCH, 'corpus.txt');
  serverAndBrowser(own);

  const metricValues = (page, metric, lens) =>
    page.getByTestId(`eval-chart-${metric}`).locator(`[data-lens="${lens}"] [data-point]`).evaluateAll((els) => els.map((e) => Number(e.dataset.value)));

  pageTest('a fresh server’s empty states are answers, not failures: no request fails as the views open', own, async (page) => {
    const failed = [];
    page.on('requestfailed', (r) => failed.push(`${r.method()} ${r.url()}: ${r.failure()?.errorText}`));
    page.on('response', (r) => {
      if (r.status() >= 400) failed.push(`${r.request().method()} ${r.url()}: ${r.status()}`);
    });
    page.on('console', (m) => {
      if (m.type() === 'error') failed.push(`console: ${m.text()}`);
    });
    await page.goto(own.server.url);
    await page.getByTestId('model-status').filter({ hasText: 'Ready' }).waitFor({ timeout: 30_000 });
    // Lens quality: nothing evaluated yet with this model (GET /eval_lens answers null).
    const asked = page.waitForResponse((r) => r.url().endsWith('/eval_lens') && r.request().method() === 'GET');
    await page.getByLabel('Show lens quality').check();
    const last = await asked;
    assert.equal(last.status(), 200);
    assert.equal(await last.text(), 'null');
    await page.getByTestId('eval-note').filter({ hasText: 'No lens evaluation has been made with llama yet' }).waitFor();
    // Patching counts the tokens of its default texts; no session saved yet.
    await page.getByLabel('Show activation patching').check();
    await page.getByTestId('patch-clean-count').filter({ hasText: /^\d+ tokens$/ }).waitFor();
    await page.getByRole('button', { name: 'Load', exact: true }).click();
    await page.getByTestId('sessions-dialog').getByText('No saved sessions yet.').waitFor();
    assert.deepEqual(failed, []);
  });

  pageTest('attaches a tuned lens, draws the grid with it, and evaluates both lenses over a corpus', own, async (page) => {
    await page.goto(own.server.url);
    await page.getByTestId('model-status').filter({ hasText: 'Ready' }).waitFor({ timeout: 30_000 });
    assert.equal(await page.getByLabel('Lens (logit, tuned or Jacobian)').count(), 0);

    // A lens of another width is refused, in the server's words.
    await page.getByRole('button', { name: 'Attach…' }).click();
    await page.getByLabel('Lens folder or file').fill(path.join(REPO, 'tests', 'fixtures', 'research', 'tuned_mismatch', 'd_model_32'));
    await page.getByRole('button', { name: 'Load lens' }).click();
    assert.match(await page.getByTestId('lens-file-error').textContent(), /d_model is 32 but the model's is 64/);
    assert.equal(await page.getByLabel('Lens (logit, tuned or Jacobian)').count(), 0);
    // The tiny llama's own lens.
    await page.getByLabel('Lens folder or file').fill(LENS);
    const attached = page.waitForResponse((r) => r.url().endsWith('/load_lens'));
    await page.getByRole('button', { name: 'Load lens' }).click();
    assert.equal((await attached).status(), 200);
    await page.getByTestId('tuned-lens-attached').filter({ hasText: 'llama' }).waitFor();

    // The grid drawn by it, and said so.
    await page.getByLabel('Lens (logit, tuned or Jacobian)').selectOption('tuned');
    const res = await run(page);
    assert.equal(res.status(), 200);
    assert.equal(JSON.parse(res.request().postData()).lens, 'tuned');
    assert.deepEqual(await rowNames(page), ROWS);
    assert.equal(await page.getByTestId('grid-lens').textContent(), 'Drawn by the tuned lens (llama)');

    // Lens quality: nothing evaluated yet with this model.
    await page.getByLabel('Show lens quality').check();
    await page.getByTestId('eval-note').filter({ hasText: 'No lens evaluation has been made with llama yet' }).waitFor();
    await page.getByLabel('Corpus file').setInputFiles(CORPUS);
    await page.getByTestId('eval-documents').filter({ hasText: '40 documents · from corpus.txt' }).waitFor();
    await page.getByLabel('Max tokens per document').fill('32');
    // The tiny model evaluates 40 documents in a moment: hold the answer in the browser until the
    // page has shown the evaluation's progress, which the server sends on /events meanwhile.
    let release;
    const held = new Promise((r) => (release = r));
    await page.route('**/eval_lens', async (route) => {
      if (route.request().method() !== 'POST') return route.fallback();
      const response = await route.fetch();
      await held;
      await route.fulfill({ response }).catch(() => {});
    });
    const done = page.waitForResponse((r) => r.url().endsWith('/eval_lens') && r.request().method() === 'POST', { timeout: 60_000 });
    await page.getByRole('button', { name: 'Run evaluation' }).click();
    await page.waitForFunction(
      () => /^\d+ of 40 documents$/.test(document.querySelector('[role=progressbar][aria-label="Evaluation progress"]')?.getAttribute('aria-valuetext') ?? ''),
      null,
      { timeout: 60_000 },
    );
    assert.equal(await page.getByRole('progressbar', { name: 'Evaluation progress' }).getAttribute('aria-valuemax'), '40');
    assert.match(await page.getByRole('button', { name: 'Stop' }).textContent(), /Stop/);
    release();
    const answer = await done;
    await page.unrouteAll({ behavior: 'ignoreErrors' });
    assert.match(answer.request().headers()['x-logitlens-request'], /^[0-9a-f]{32}$/);
    assert.deepEqual(JSON.parse(answer.request().postData()), { corpus: fs.readFileSync(CORPUS, 'utf8'), max_tokens: 32 });
    const report = await answer.json();
    assert.deepEqual(report.layers, ROWS);
    assert.equal(report.documents, 40);
    assert.equal(report.tuned_lens, LENS);
    assert.ok(report.tuned, 'the tuned lens is measured too');

    // Four charts, a line per lens, a point per row with the report's values.
    await page.getByTestId('eval-figure').waitFor();
    for (const metric of ['kl', 'ce', 'entropy', 'top1_agree']) {
      assert.deepEqual(await metricValues(page, metric, 'logit'), report.logit[metric]);
      assert.deepEqual(await metricValues(page, metric, 'tuned'), report.tuned[metric]);
    }
    assert.equal(await page.getByTestId('eval-legend').textContent(), 'logit lenstuned lens (llama)');
    assert.match(await page.getByTestId('eval-meta').textContent(), /40 documents.*first 32 tokens of each.*evaluated now/);
    // Values on hover.
    const kl = page.getByTestId('eval-chart-kl');
    const box = await kl.locator('rect[fill="transparent"]').boundingBox();
    await page.mouse.move(box.x + 2, box.y + box.height / 2);
    assert.match(await page.getByTestId('eval-tooltip').textContent(), new RegExp(`^KL to the output · Embeddingslogit lens: ${report.logit.kl[0].toPrecision(4).replace('.', '\\.')}`));

    // Exports: the numbers as CSV, the chart as SVG and PNG.
    const save = async (name) => {
      const download = page.waitForEvent('download');
      await page.getByRole('button', { name }).click();
      const file = await download;
      return { name: file.suggestedFilename(), bytes: fs.readFileSync(await file.path()) };
    };
    const csv = await save('Export CSV');
    assert.match(csv.name, /^lens_quality_llama_llama_\d{8}_\d{6}\.csv$/);
    const lines = csv.bytes.toString('utf8').split('\n');
    assert.equal(lines[0], 'lens,row,name,kl,ce,entropy,top1_agree');
    assert.equal(lines.length, 1 + 2 * ROWS.length + 1);
    assert.ok(lines.includes(`tuned,2,Layer 1,${report.tuned.kl[2]},${report.tuned.ce[2]},${report.tuned.entropy[2]},${report.tuned.top1_agree[2]}`));
    const svg = await save('Export SVG');
    assert.match(svg.name, /\.svg$/);
    assert.match(svg.bytes.toString('utf8'), /^<\?xml[^>]*>\n<svg [^>]*xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
    // A file an XML parser reads, with the four charts in it.
    const parsed = await page.evaluate((text) => {
      const doc = new DOMParser().parseFromString(text, 'image/svg+xml');
      return { error: doc.querySelector('parsererror')?.textContent ?? null, charts: doc.querySelectorAll('[data-testid^="eval-chart-"]').length };
    }, svg.bytes.toString('utf8'));
    assert.deepEqual(parsed, { error: null, charts: 4 });
    const png = await save('Export PNG');
    assert.match(png.name, /\.png$/);
    assert.deepEqual([...png.bytes.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

    // A new page finds it as the server's last evaluation for this model.
    await page.reload();
    await page.getByTestId('model-status').filter({ hasText: 'Ready' }).waitFor();
    await page.getByLabel('Show lens quality').check();
    await page.getByTestId('eval-meta').filter({ hasText: 'the server’s last evaluation' }).waitFor();
    assert.deepEqual(await metricValues(page, 'kl', 'tuned'), report.tuned.kl);
    assert.equal(await page.getByTestId('tuned-lens-attached').textContent(), 'llama');
  });
});
