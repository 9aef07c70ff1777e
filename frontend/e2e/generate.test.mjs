// End-to-end tests of Generate against a real server with the tiny random Llama: the grid grows
// as the model writes, the written positions are marked, the answer is the run on screen (top-1s,
// continuations with and without an intervention, Attribute, Save), and Stop stops it. Run with
// `npm run e2e`.
import assert from 'node:assert/strict';
import { describe } from 'node:test';
import { allow, clickGenerate, holdGenerateStream, streamLines } from './generateGate.mjs';
import { formatToken, openApp as openAppOf, pageTest, serverAndBrowser, startCpuLoad } from './harness.mjs';

const env = { server: null, browser: null };

const PROMPT = 'Once upon a time there was';

const grid = (page) => page.getByTestId('lens-grid');
const heads = (page) => grid(page).locator('thead th.lens-col-head');
const dataColumns = (page) => grid(page).locator('tbody tr:first-child [data-cell]').count();

/** Waits until the grid has `n` columns of cells, and `pending` a head still without them. */
async function waitColumns(page, n, pending) {
  await page.waitForFunction(
    ([cols, withPending]) => {
      const g = document.querySelector('[data-testid=lens-grid]');
      if (!g) return false;
      const cells = g.querySelectorAll('tbody tr:first-child [data-cell]').length;
      const p = g.querySelectorAll('thead th[data-pending]').length;
      return cells === cols && p === (withPending ? 1 : 0);
    },
    [n, pending],
    { timeout: 30_000 },
  );
}

async function openApp(page) {
  await page.addInitScript(holdGenerateStream);
  await openAppOf(page, env);
}

/** What the Generate button asks: Run's request, the count and the stream. */
function runRequest(extra = {}) {
  return {
    text: PROMPT,
    interventions: {},
    lens_type: 'block_output',
    apply_chat_template: false,
    return_attention: true,
    attention_format: 'f16',
    attention_reduce: 'head_mean',
    entropy: true,
    ...extra,
  };
}

/** The whole answer at once, from the API (greedy decoding: the same as the UI's). */
async function generateApi(page, body) {
  const res = await page.request.post(`${env.server.url}generate`, { data: body });
  assert.equal(res.status(), 200, await res.text());
  return res.json();
}

async function promptTokens(page) {
  const res = await page.request.post(`${env.server.url}tokenize`, { data: { text: PROMPT } });
  return (await res.json()).ids.length;
}

describe('generate (tiny llama)', () => {
  serverAndBrowser(env);

  pageTest('Generate: the grid grows a column per step, the written columns are marked, the top-1s are the server’s', env, async (page) => {
    await openApp(page);
    const N = 6;
    const P = await promptTokens(page);
    const expected = await generateApi(page, { ...runRequest(), max_new_tokens: N });
    assert.equal(expected.prompt_tokens, P);
    const n = expected.generated_ids.length;
    assert.ok(n > 0);

    await page.locator('#input-text').fill(PROMPT);
    await page.getByLabel('New tokens').fill(String(N));
    const req = await clickGenerate(page);
    assert.deepEqual(JSON.parse(req.postData()), { ...runRequest(), max_new_tokens: N, stream: true });
    assert.match(req.headers()['x-logitlens-request'], /^[0-9a-f]{32}$/);
    await page.getByRole('button', { name: 'Stop' }).waitFor();
    await page.getByRole('button', { name: /Generating/ }).waitFor();

    // Pass 0: the prompt's columns at once, the token it chose heading the next column.
    await allow(page, 1);
    await waitColumns(page, P, true);
    assert.equal(await heads(page).count(), P + 1);
    const pendingHead = grid(page).locator('thead th[data-pending]');
    assert.equal(await pendingHead.locator('.col-token').textContent(), formatToken(expected.input_tokens[P]));
    assert.equal(await pendingHead.getAttribute('data-written'), '1');
    assert.equal(await grid(page).locator('thead th[data-written]').count(), 1);
    assert.match(await page.getByTestId('generation-live').textContent(), new RegExp(`^${PROMPT}`));
    // The bar counts tokens written, from the lines read or the server's events (which may be ahead).
    const bar = page.getByRole('progressbar', { name: 'Run progress' });
    assert.match(await bar.getAttribute('aria-valuetext'), new RegExp(`^(Writing token \\d+ of ${N}|Wrote ${N} tokens: finishing…)$`));
    assert.equal(await bar.getAttribute('aria-valuemax'), String(N));

    // Each later pass brings the chosen token's column; the last chooses nothing.
    const counts = [await dataColumns(page)];
    for (let i = 1; i <= n; i++) {
      await allow(page, 1);
      await waitColumns(page, P + i, i < n);
      counts.push(await dataColumns(page));
      assert.equal(await grid(page).locator('thead th[data-written]').count(), i + (i < n ? 1 : 0));
    }
    assert.deepEqual(counts, Array.from({ length: n + 1 }, (_, i) => P + i));

    // The done line: the answer becomes the run on screen.
    await allow(page, 1);
    await page.getByTestId('running-indicator').waitFor({ state: 'detached' });
    const lines = await streamLines(page);
    assert.deepEqual(
      lines.map((l) => l.type),
      [...Array(n + 1).fill('step'), 'done'],
    );
    const done = lines.at(-1);
    assert.equal(typeof done.run_id, 'number');
    assert.deepEqual(done.response.generated_ids, expected.generated_ids);
    assert.equal(await dataColumns(page), P + n);
    assert.equal(await heads(page).count(), P + n);
    assert.equal(await grid(page).locator('thead th[data-pending]').count(), 0);
    const written = await heads(page).evaluateAll((hs) => hs.map((h) => h.dataset.written ?? ''));
    assert.deepEqual(written, Array.from({ length: P + n }, (_, i) => (i >= P ? '1' : '')));
    assert.match(await heads(page).nth(P).getAttribute('class'), /is-boundary/);
    assert.match(await page.getByTestId('written-legend').textContent(), new RegExp(`written by the model \\(from position ${P}\\)`));
    assert.deepEqual(
      await grid(page).locator('thead .col-token').allTextContents(),
      expected.input_tokens.map(formatToken),
    );
    // Every cell's top-1 is the server's.
    const shown = await grid(page)
      .locator('tbody tr')
      .evaluateAll((rows) => rows.map((r) => [...r.querySelectorAll('[data-cell] .cell-token')].map((c) => c.textContent)));
    assert.deepEqual(
      shown,
      done.response.logit_lens.map((row) => row.predictions.map((p) => formatToken(p[0].token))),
    );
    assert.deepEqual(
      shown,
      expected.logit_lens.map((row) => row.predictions.map((p) => formatToken(p[0].token))),
    );
    // The text: the prompt, then what was written.
    assert.equal(await page.getByTestId('generated-text').textContent(), PROMPT + expected.generated_text);
    assert.equal(await page.getByTestId('generated-continuation').textContent(), expected.generated_text);
    assert.match(await page.getByTestId('run-meta').textContent(), new RegExp(`${P + n} tokens${n} written`));
    assert.equal(await page.getByRole('button', { name: 'Generate' }).isEnabled(), true);

    // Save stores this very run.
    const saved = page.waitForRequest((r) => r.url().endsWith('/save_state'));
    await page.getByRole('button', { name: 'Save', exact: true }).click();
    const dlg = page.getByTestId('save-dialog');
    await dlg.getByLabel('Name (optional)').fill('e2e generation');
    await dlg.getByRole('button', { name: 'Save', exact: true }).click();
    assert.deepEqual(JSON.parse((await saved).postData()), { name: 'e2e generation', run_id: done.run_id });
    await page.getByTestId('toast-success').filter({ hasText: 'e2e_generation' }).waitFor();
  });

  pageTest('with an intervention and compare: both continuations, token under token, where they part marked; Attribute on a written cell', env, async (page) => {
    await openApp(page);
    const N = 8;
    const P = await promptTokens(page);
    // Zero layer 1's block output at the second written position: the first two tokens are the
    // baseline's, what follows is not.
    const at = P + 1;
    const interventions = { layer_1_output: [{ type: 'zero', token_index: at, all_layers: false }] };
    const expected = await generateApi(page, { ...runRequest({ interventions, compare: true }), max_new_tokens: N });
    const b = expected.baseline_generation;
    assert.ok(b && b.first_difference !== null && b.first_difference > 0, JSON.stringify(b));
    const fd = b.first_difference;

    await page.locator('#input-text').fill(PROMPT);
    await page.getByLabel('Stream layer').selectOption('1');
    await page.getByLabel('Stream', { exact: true }).selectOption('output');
    await page.getByLabel('Operation').selectOption('zero');
    await page.getByLabel('Token index').fill(String(at));
    await page.getByRole('button', { name: 'Add stream intervention' }).click();
    await page.getByLabel(/Compare with baseline/).check();
    await page.getByLabel('New tokens').fill(String(N));
    const asked = await clickGenerate(page);
    assert.deepEqual(JSON.parse(asked.postData()), { ...runRequest({ interventions, compare: true }), max_new_tokens: N, stream: true });
    await allow(page, 1000);
    await page.getByTestId('running-indicator').waitFor({ state: 'detached' });

    const box = page.getByTestId('continuations');
    assert.equal(await box.getAttribute('data-first-difference'), String(fd));
    assert.equal(
      await page.getByTestId('divergence-note').textContent(),
      `The intervention changed what the model writes from token ${fd + 1} on (position ${P + fd}).`,
    );
    const row = (id) => page.getByTestId(id).locator('td');
    const mine = await row('continuation-intervened').allTextContents();
    const theirs = await row('continuation-baseline').allTextContents();
    const cols = Math.max(expected.generated_ids.length, b.generated_ids.length);
    assert.equal(mine.length, cols);
    assert.deepEqual(mine.slice(0, expected.generated_ids.length), expected.input_tokens.slice(P).map(formatToken));
    // Before the parting point the baseline wrote the same tokens.
    assert.deepEqual(theirs.slice(0, fd), mine.slice(0, fd));
    assert.notEqual(theirs[fd], mine[fd]);
    const diverged = await row('continuation-baseline').evaluateAll((tds) => tds.map((td) => td.dataset.diverged ?? ''));
    assert.deepEqual(diverged, Array.from({ length: cols }, (_, i) => (i >= fd ? '1' : '')));
    assert.match(await box.locator('thead th').nth(fd + 1).getAttribute('class'), /is-parting/);
    assert.equal(await page.getByTestId('baseline-text').textContent(), `Without the interventions: ${b.generated_text}`);
    // The grid compares too: a diff view, over prompt and written tokens.
    await page.getByRole('radiogroup', { name: 'Grid view' }).waitFor();
    assert.equal(await dataColumns(page), P + expected.generated_ids.length);
    // The receipt: applied at that one position.
    assert.match(await page.getByTestId('intervention-list').textContent(), /layer_1_output/);

    // Attribute a written column's top-1: asked of /generate, which writes the same tokens again.
    const T = P + expected.generated_ids.length;
    const last = expected.logit_lens.length - 1;
    await grid(page).locator(`[data-cell][data-r="${last}"][data-c="${T - 1}"]`).click();
    const attributed = page.waitForResponse((r) => r.url().endsWith('/generate') && 'attribution' in JSON.parse(r.request().postData()), { timeout: 60_000 });
    await page.getByTestId('cell-menu').getByRole('menuitem').click();
    const res = await attributed;
    assert.equal(res.status(), 200);
    const sent = JSON.parse(res.request().postData());
    assert.deepEqual(sent, {
      ...runRequest({ interventions, compare: true }),
      max_new_tokens: N,
      stream: false,
      attribution: { token: expected.logit_lens[last].predictions[T - 1][0].id, position: T - 1 },
    });
    const a = (await res.json()).attribution;
    const logit = page.getByTestId('attribution').getByTestId('attribution-logit');
    await logit.waitFor();
    assert.equal(Number(await logit.getAttribute('data-value')), a.logit);
  });

  pageTest('Stop during a generation stops it: the run before stays, said as stopped; the next one goes through', env, async (page) => {
    await openApp(page);
    await page.locator('#input-text').fill(PROMPT);
    await page.getByLabel('New tokens').fill('64');
    await clickGenerate(page);
    await allow(page, 2);
    await waitColumns(page, (await promptTokens(page)) + 1, true);
    await page.getByRole('button', { name: 'Stop' }).click();
    await page.getByTestId('running-indicator').waitFor({ state: 'detached' });
    assert.equal(await page.getByTestId('run-stopped').textContent(), 'Generation stopped.');
    // Stop aborted the request (which is what stops the server).
    assert.equal(await page.evaluate(() => window.__gen.aborted), true);
    // No run before it: the page is back to empty, without an error.
    assert.equal(await grid(page).count(), 0);
    await page.getByTestId('empty-results').waitFor();
    assert.equal(await page.getByTestId('toast-error').count(), 0);
    assert.equal(await page.getByRole('button', { name: 'Stop' }).count(), 0);

    // The page and the server are still usable: a short generation goes through.
    await page.getByLabel('New tokens').fill('2');
    await clickGenerate(page);
    await allow(page, 1000);
    await page.getByTestId('running-indicator').waitFor({ state: 'detached' });
    await page.getByTestId('generated-text').waitFor();
    assert.equal(await page.getByTestId('run-stopped').count(), 0);
  });

  pageTest('an allowance given before the streamed answer arrives is that stream’s: the generation goes through', env, async (page) => {
    await openApp(page);
    // The answer held back until the lines are allowed, as a busy server sends it late.
    let release;
    const released = new Promise((r) => (release = r));
    await page.route(/\/generate$/, async (route) => {
      await released;
      await route.continue();
    });
    await page.locator('#input-text').fill(PROMPT);
    await page.getByLabel('New tokens').fill('2');
    await clickGenerate(page);
    await allow(page, 1000);
    release();
    await page.getByTestId('generated-text').waitFor();
    await page.getByTestId('running-indicator').waitFor({ state: 'detached' });
    const types = (await streamLines(page)).map((l) => l.type);
    assert.equal(types.at(-1), 'done');
    assert.ok(types.length > 1 && types.slice(0, -1).every((x) => x === 'step'), types.join(' '));
  });

  pageTest('Generate, Stop, Generate: 20 times in a row with every core busy, each stopped one said, each next one through', env, async (page, t) => {
    await openApp(page);
    const P = await promptTokens(page);
    await page.locator('#input-text').fill(PROMPT);
    const load = startCpuLoad();
    const t0 = Date.now();
    try {
      for (let i = 0; i < 20; i++) {
        await page.getByLabel('New tokens').fill('64');
        await clickGenerate(page);
        await allow(page, 1);
        await waitColumns(page, P, true);
        await page.getByRole('button', { name: 'Stop' }).click();
        await page.getByTestId('run-stopped').filter({ hasText: 'Generation stopped.' }).waitFor();
        assert.equal(await page.evaluate(() => window.__gen.aborted), true);
        assert.equal(await page.getByTestId('running-indicator').count(), 0);

        await page.getByLabel('New tokens').fill('2');
        await clickGenerate(page);
        await allow(page, 1000);
        await page.getByTestId('running-indicator').waitFor({ state: 'detached' });
        await page.getByTestId('generated-text').waitFor();
        assert.equal(await page.getByTestId('run-stopped').count(), 0, `round ${i}`);
        assert.equal(await page.getByTestId('toast-error').count(), 0, `round ${i}`);
        assert.equal((await streamLines(page)).at(-1).type, 'done', `round ${i}`);
      }
    } finally {
      await load.stop();
    }
    t.diagnostic(`20 rounds under load in ${Date.now() - t0} ms`);
  });

  pageTest('a refused generation is said in words', env, async (page) => {
    await openApp(page);
    // An intervention past what will be written: the server's 400, as it says it.
    await page.getByLabel('Token index').fill('400');
    await page.getByRole('button', { name: 'Add stream intervention' }).click();
    await page.getByLabel('New tokens').fill('2');
    const refused = page.waitForResponse((r) => r.url().endsWith('/generate'));
    await page.getByRole('button', { name: 'Generate' }).click();
    const res = await refused;
    assert.equal(res.status(), 400);
    const detail = (await res.json()).detail;
    assert.match(detail, /out of range/);
    const toast = page.getByTestId('toast-error').filter({ hasText: 'Generation failed' });
    await toast.waitFor();
    assert.ok((await toast.textContent()).includes(detail), await toast.textContent());
    // The field is checked before anything is sent.
    await page.getByLabel('New tokens').fill('257');
    assert.equal(await page.getByTestId('max-new-tokens-error').textContent(), 'New tokens: 257 is not a whole number from 1 to 256');
    assert.equal(await page.getByRole('button', { name: 'Generate' }).isEnabled(), false);
  });
});
