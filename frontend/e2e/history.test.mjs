// End-to-end tests of the prompt history and its Compare overlay, against a real server with the
// tiny random Llama. Every wait is for a condition (a response, an element, an attribute), never
// for time. Run with `npm run e2e`.
//
// LOGITLENS_E2E_SHOTS=1 also saves a picture of the overlay for the docs, from SmolLM2 (the server's
// default GGUF, when it is in ~/.cache/logitlens/models), as e2e/artifacts/compare_overlay.png.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe } from 'node:test';
import { formatToken, launchBrowser, openApp, pageTest, serverAndBrowser, shot, startServer } from './harness.mjs';

const env = { server: null, browser: null };

/** Runs the text in the box, and waits until the answer is on screen; the answer's body. */
async function run(page) {
  const done = page.waitForResponse((r) => r.url().endsWith('/inference'), { timeout: 60_000 });
  await page.locator('button.btn-run').click();
  const res = await done;
  assert.equal(res.status(), 200, await res.text());
  await page.getByTestId('running-indicator').waitFor({ state: 'detached' });
  return res.json();
}

async function runText(page, text) {
  await page.locator('#input-text').fill(text);
  return run(page);
}

// The app's Δ: a real minus, two decimals (three below 0.01), 0.00 below 0.0005.
function formatDelta(d) {
  const a = Math.abs(d);
  if (a < 0.0005) return '0.00';
  return `${d < 0 ? '−' : '+'}${a >= 0.01 ? a.toFixed(2) : a.toFixed(3)}`;
}

const colTokens = (page) => page.locator('[data-testid=lens-grid] thead .col-token').allTextContents();
const cmpCell = (card, r, c) => card.locator(`[data-cmp-cell][data-r="${r}"][data-c="${c}"]`);

describe('prompt history and compare (tiny llama)', () => {
  serverAndBrowser(env);

  pageTest('two prompts: the history lists both, shows the first again without a request, and overlays the two', env, async (page, t) => {
    await openApp(page, env);
    const A = await runText(page, 'The capital of France is');
    const B = await runText(page, 'The capital of Germany is');
    t.diagnostic(`A has ${A.input_tokens.length} tokens, B ${B.input_tokens.length}`);
    const history = page.getByTestId('run-history');
    // The second run's entry, not the first's, which was there before it.
    await history.locator('tbody tr[data-history-id="2"]').waitFor();
    assert.deepEqual(await history.locator('tbody tr').evaluateAll((trs) => trs.map((tr) => tr.dataset.historyId)), ['2', '1']);
    assert.equal(await history.getByTestId('history-count').textContent(), '2 of at most 20 runs');
    assert.match(await history.locator('tr[data-history-id="1"] .history-facts').textContent(), new RegExp(`${A.input_tokens.length} tokens · 0 interventions`));
    await history.locator('tr[data-history-id="2"][aria-current="true"]').waitFor();

    // Shown again from the history: the first run's grid, and no request for it.
    const requests = [];
    page.on('request', (r) => {
      if (r.url().endsWith('/inference')) requests.push(r.url());
    });
    await history.getByRole('button', { name: 'Show run #1 again: The capital of France is' }).click();
    await history.locator('tr[data-history-id="1"][aria-current="true"]').waitFor();
    assert.deepEqual(await colTokens(page), A.input_tokens.map(formatToken));
    assert.equal(await page.locator('#input-text').inputValue(), 'The capital of Germany is', 'the controls are left as they are');
    assert.deepEqual(requests, []);
    assert.equal(await history.locator('tbody tr').count(), 2, 'shown again, not added again');

    // A and B by default: the run before the newest and the newest. Compare from the keyboard.
    assert.equal(await history.getByRole('radio', { name: 'Run #1 as A' }).isChecked(), true);
    assert.equal(await history.getByRole('radio', { name: 'Run #2 as B' }).isChecked(), true);
    await history.getByRole('button', { name: 'Compare A and B' }).focus();
    await page.keyboard.press('Enter');
    const card = page.getByTestId('run-compare');
    await card.waitFor();
    assert.match(await card.getByTestId('compare-side-a').textContent(), /run #1 “The capital of France is”/);
    assert.match(await card.getByTestId('compare-side-b').textContent(), /run #2 “The capital of Germany is”/);

    // Every cell both runs have: A's top-1, B's top-1 and B − A, from the two answers.
    const R = A.logit_lens.length;
    const T = Math.min(A.input_tokens.length, B.input_tokens.length);
    assert.equal(B.logit_lens.length, R);
    let flips = 0;
    for (let r = 0; r < R; r++) {
      for (let c = 0; c < T; c++) {
        const a = A.logit_lens[r].predictions[c][0];
        const b = B.logit_lens[r].predictions[c][0];
        const cell = cmpCell(card, r, c);
        assert.deepEqual(await cell.locator('.cmp-tok').allTextContents(), [`A${formatToken(a.token)}`, `B${formatToken(b.token)}`], `cell ${r},${c}`);
        assert.equal(await cell.locator('.cell-prob').textContent(), `Δ ${formatDelta(b.prob - a.prob)}`);
        const flip = a.id !== b.id;
        if (flip) flips++;
        assert.equal((await cell.getAttribute('class')).includes('is-flip'), flip);
      }
    }
    const compared = R * T;
    assert.match(await card.getByTestId('compare-summary').textContent(), new RegExp(`^${compared} cells in both runs: the same top-1 in ${compared - flips} `));

    // What does not line up is said: the prompts' tokens differ, and their counts if they do.
    const notes = await card.getByTestId('compare-notes').textContent();
    assert.match(notes, /The inputs differ/);
    if (A.input_tokens.length !== B.input_tokens.length) {
      assert.match(notes, new RegExp(`A has ${A.input_tokens.length} positions, B ${B.input_tokens.length}`));
      const extra = Math.max(A.input_tokens.length, B.input_tokens.length) - 1;
      assert.match(await cmpCell(card, 0, extra).getAttribute('data-kind'), /^[ab]-only$/);
    }
    const legend = card.getByTestId('compare-legend');
    assert.match(await legend.textContent(), /Δ top-1 probability: B − A/);
    assert.match(await legend.textContent(), /blue = A’s higher, red = B’s higher/);

    // The keyboard moves between cells, and the details follow.
    await cmpCell(card, 0, 0).focus();
    await page.keyboard.press('ArrowDown');
    await page.keyboard.press('ArrowRight');
    const head = `${A.logit_lens[1].layer_name} · Pos 1`;
    await card.getByTestId('compare-details').locator('.tooltip-head', { hasText: head }).waitFor();
    assert.equal(await card.getByTestId('compare-details').locator('.tooltip-head').textContent(), head);
    assert.equal(await card.getByTestId('compare-details-b').locator('li').count(), B.logit_lens[1].predictions[1].length);

    await card.getByRole('button', { name: 'Close the run comparison' }).click();
    await card.waitFor({ state: 'detached' });
    await history.getByRole('button', { name: 'Clear history' }).click();
    await history.waitFor({ state: 'detached' });
  });
});

const SMOL = path.join(os.homedir(), '.cache', 'logitlens', 'models', 'SmolLM2-135M-Instruct.Q4_1.gguf');
const pictureSkip = !process.env.LOGITLENS_E2E_SHOTS ? 'pictures only with LOGITLENS_E2E_SHOTS' : !fs.existsSync(SMOL) ? `${SMOL} is not cached` : false;

describe('the compare overlay for the docs (SmolLM2)', { skip: pictureSkip }, () => {
  const smol = { server: null, browser: null };
  before(async () => {
    smol.server = await startServer({ model: SMOL });
    smol.browser = await launchBrowser();
  });
  after(async () => {
    await smol.browser?.close();
    await smol.server?.stop();
  });

  pageTest('France against Germany', smol, async (page) => {
    await page.setViewportSize({ width: 1400, height: 1400 });
    await openApp(page, smol);
    // The prompts' own tokens, not the instruct template's around them: every column fits.
    const chat = page.getByLabel('Use chat template');
    if (await chat.isChecked()) await chat.uncheck();
    await runText(page, 'The capital of France is');
    await runText(page, 'The capital of Germany is');
    await page.getByRole('button', { name: 'Compare A and B' }).click();
    const card = page.getByTestId('run-compare');
    await card.waitFor();
    // The last position's details (the answers) under the grid.
    const last = card.locator('tbody tr').last().locator('[data-cmp-cell]').last();
    await last.focus();
    await shot(page, 'compare_overlay', card);
  });
});
