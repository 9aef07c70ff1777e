// End-to-end tests of the Jacobian lens in the web app, against a real server with the tiny random
// Llama and the J-lens TransformerLens fitted for it (tests/fixtures/research/jlens/llama/jlens.pt,
// which covers the block outputs of layers 0 and 1). A server of their own: attaching a lens
// changes what the other files' tests would see. Run with `npm run e2e`.
//
// LOGITLENS_E2E_SHOTS=1 also saves pictures of the new views for the docs in e2e/artifacts/
// (jlens-grid.png, jlens-intervention.png, jlens-lens-vector.png, jlens-quality.png, jlens-fit.png).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe } from 'node:test';
import { REPO, formatToken, openApp, pageTest, serverAndBrowser, shot } from './harness.mjs';

const env = { server: null, browser: null };
const RESEARCH = path.join(REPO, 'tests', 'fixtures', 'research');
const JLENS = path.join(RESEARCH, 'jlens', 'llama', 'jlens.pt');
const TUNED = path.join(RESEARCH, 'tuned', 'llama');
const CORPUS = path.join(RESEARCH, 'corpus.txt');
const ROWS = ['Embeddings', 'Layer 0', 'Layer 1', 'Final Output'];
const LENS_SELECT = 'Lens (logit, tuned or Jacobian)';

async function run(page) {
  const done = page.waitForResponse((r) => r.url().endsWith('/inference'), { timeout: 60_000 });
  await page.locator('button.btn-run').click();
  const res = await done;
  await page.getByTestId('running-indicator').waitFor({ state: 'detached' });
  return res;
}

/** Attaches the tiny llama's J-lens through the header's lens field, unless it already is. */
async function attachJlens(page) {
  if ((await page.getByTestId('jacobian-lens-attached').count()) > 0) return;
  await page.getByRole('button', { name: /^Attach/ }).click();
  await page.getByLabel('Lens folder or file').fill(JLENS);
  const attached = page.waitForResponse((r) => r.url().endsWith('/load_lens'));
  await page.getByRole('button', { name: 'Load lens' }).click();
  assert.equal((await attached).status(), 200);
  await page.getByTestId('jacobian-lens-attached').waitFor();
}

const rowNames = (page) => page.locator('[data-testid=lens-grid] tbody th.row-name > span:first-child').allTextContents();
const transportedRows = (page) => page.locator('[data-testid=lens-grid] tbody tr[data-transported]').evaluateAll((trs) => trs.map((tr) => tr.dataset.rowName));
const cell = (page, r, c) => page.locator(`[data-testid=lens-grid] [data-cell][data-r="${r}"][data-c="${c}"]`);

describe('the Jacobian lens (tiny llama)', () => {
  serverAndBrowser(env);

  pageTest('attaches a J-lens file, draws the grid with it (transported rows marked), and a steer toward a token changes the output', env, async (page) => {
    await openApp(page, env);
    // No lens attached: no lens select, and the J-lens form says how to get one.
    assert.equal(await page.getByLabel(LENS_SELECT).count(), 0);
    assert.match(await page.getByTestId('jlens-form-unavailable').textContent(), /^Attach a Jacobian lens/);

    // A file that is no lens is refused in the server's words, under the field.
    await page.getByRole('button', { name: 'Attach…' }).click();
    await page.getByLabel('Lens folder or file').fill(path.join(RESEARCH, 'corpus.txt'));
    await page.getByRole('button', { name: 'Load lens' }).click();
    assert.ok((await page.getByTestId('lens-file-error').textContent()).length > 10);
    await page.getByRole('button', { name: 'Cancel' }).click();
    await attachJlens(page);
    assert.equal(await page.getByTestId('jacobian-lens-attached').textContent(), 'jlens.pt · 12 prompts · layers 0–1');
    assert.equal(await page.getByTestId('jacobian-lens-attached').getAttribute('title'), JLENS);

    // The grid drawn by it: the rows it transports marked, the lens named.
    await page.getByLabel(LENS_SELECT).selectOption('jacobian');
    const res = await run(page);
    assert.equal(JSON.parse(res.request().postData()).lens, 'jacobian');
    const body = await res.json();
    assert.deepEqual(body.transported_rows, ['Layer 0', 'Layer 1']);
    assert.deepEqual(await rowNames(page), ROWS);
    assert.deepEqual(await transportedRows(page), ['Layer 0', 'Layer 1']);
    assert.equal(await page.getByTestId('grid-lens').textContent(), 'Drawn by the Jacobian lens (jlens.pt)');
    assert.match(await page.getByTestId('transported-legend').textContent(), /transported by its matrices: Layer 0, Layer 1/);
    // The transported cells are the server's J-lens readout.
    const top = body.logit_lens[1].predictions[12][0];
    assert.equal(await cell(page, 1, 12).locator('.cell-token').textContent(), formatToken(top.token));
    await shot(page, 'jlens-grid', page.locator('section.results'));

    // Another lens type: the select says why only the logit lens draws it.
    await page.getByLabel('Lens type').selectOption('combined');
    assert.equal(await page.getByLabel(LENS_SELECT).isDisabled(), true);
    assert.match(await page.getByTestId('lens-hint').textContent(), /read block outputs/);
    await page.getByLabel('Lens type').selectOption('block_output');

    // Steer layer 1's output toward " is": the token checked as one token, then the output changes.
    const baselineTop = body.logit_lens[3].predictions[12][0];
    assert.notEqual(baselineTop.token, ' is');
    await page.getByLabel('Jacobian lens layer').selectOption('1');
    await page.getByLabel('Steer toward').fill(' Paris');
    assert.match(await page.getByTestId('jlens-token-error').textContent(), /^“␣Paris” is \d tokens \(.+\): a lens vector is a single token’s\.$/);
    await page.getByLabel('Steer toward').fill(' is');
    await page.getByTestId('jlens-token-id').filter({ hasText: 'token id 464' }).waitFor();
    await page.getByLabel('Alpha').fill('4');
    await page.getByRole('button', { name: 'Add Jacobian lens intervention' }).click();
    assert.match(await page.getByTestId('intervention-list').textContent(), /jlens_steer\(␣is, α 4\)/);
    await page.getByLabel('Compare with baseline').check();
    const steered = await run(page);
    assert.deepEqual(JSON.parse(steered.request().postData()).interventions, { layer_1_output: [{ type: 'jlens_steer', token: ' is', alpha: 4, all_layers: false }] });
    const after = await steered.json();
    assert.equal(after.logit_lens[3].predictions[12][0].token, ' is');
    // Still the Jacobian lens's grid, with the baseline's diff beside it.
    assert.deepEqual(after.transported_rows, ['Layer 0', 'Layer 1']);
    assert.ok(after.diff, 'compare answers the diff');
    await page.getByRole('radio', { name: 'Diff vs baseline' }).waitFor();
    assert.deepEqual(await transportedRows(page), ['Layer 0', 'Layer 1']);
    assert.equal(await cell(page, 3, 12).locator('.cell-token').textContent(), '␣is');
    // Its receipt, as every operation's.
    const receipt = page.getByTestId('receipt').first();
    assert.match(await receipt.textContent(), /layer_1_output.*blocks\.1\.hook_resid_post/);
    await shot(page, 'jlens-intervention', page.locator('section.controls'));
  });

  pageTest('what a token’s lens vector says, from a lens cell and typed', env, async (page) => {
    await openApp(page, env);
    await attachJlens(page);
    await run(page);
    // The output's top token at the last position, from its cell's menu.
    const top = (await cell(page, 3, 12).locator('.cell-token').textContent()) ?? '';
    await cell(page, 3, 12).click();
    const asked = page.waitForResponse((r) => r.url().endsWith('/lens_vector'));
    await page.getByTestId('cell-menu').getByRole('menuitem', { name: /^Lens vector of/ }).click();
    const res = await asked;
    assert.equal(res.status(), 200);
    const answer = await res.json();
    assert.equal(formatToken(answer.token), top);
    const table = page.getByTestId('lens-vector-table');
    await table.waitFor();
    assert.deepEqual(await table.locator('tbody th').allTextContents(), ['Layer 0', 'Layer 1']);
    const firsts = await table.locator('tbody tr').evaluateAll((trs) => trs.map((tr) => tr.querySelector('.lv-cell .lv-token').textContent));
    assert.deepEqual(firsts, answer.layers.map((l) => formatToken(l.top[0].token)));
    assert.equal(await table.locator('tbody tr').first().locator('.lv-cell').count(), 10);

    // Typed: " is", 5 per layer; its direction reads back as itself first at both layers.
    await page.getByLabel('Token', { exact: true }).fill(' is');
    await page.getByTestId('lens-vector-token-id').filter({ hasText: 'token id 464' }).waitFor();
    await page.getByLabel('Tokens per layer').fill('5');
    const typed = page.waitForResponse((r) => r.url().endsWith('/lens_vector'));
    await page.getByRole('button', { name: 'Show its lens vectors' }).click();
    assert.deepEqual(JSON.parse((await typed).request().postData()), { token: ' is', k: 5 });
    await page.getByTestId('lens-vector-meta').filter({ hasText: 'id 464' }).waitFor();
    assert.deepEqual(await page.getByTestId('lens-vector-rank').allTextContents(), ['#1', '#1']);
    assert.equal(await table.locator('tbody tr').first().locator('.lv-cell').count(), 5);
    await shot(page, 'jlens-lens-vector', page.getByTestId('jacobian-lens').locator('fieldset.lens-vector'));
  });

  pageTest('Lens quality: the Jacobian lens’s line beside the logit and tuned lenses’', env, async (page) => {
    await openApp(page, env);
    await attachJlens(page);
    // The tuned lens too, through the same field: three lines.
    await page.getByRole('button', { name: /^Attach/ }).click();
    await page.getByLabel('Lens folder or file').fill(TUNED);
    await page.getByRole('button', { name: 'Load lens' }).click();
    await page.getByTestId('tuned-lens-attached').filter({ hasText: 'llama' }).waitFor();
    assert.equal(await page.getByTestId('jacobian-lens-attached').textContent(), 'jlens.pt · 12 prompts · layers 0–1');
    await page.getByLabel('Show lens quality').check();
    await page.getByLabel('Corpus file').setInputFiles(CORPUS);
    await page.getByLabel('Max tokens per document').fill('32');
    const done = page.waitForResponse((r) => r.url().endsWith('/eval_lens') && r.request().method() === 'POST', { timeout: 60_000 });
    await page.getByRole('button', { name: 'Run evaluation' }).click();
    const report = await (await done).json();
    assert.equal(report.jacobian_lens, JLENS);
    assert.equal(report.tuned_lens, TUNED);
    assert.ok(report.jacobian && report.tuned, 'both learned lenses are measured');
    await page.getByTestId('eval-figure').waitFor();
    const values = (metric, lens) =>
      page.getByTestId(`eval-chart-${metric}`).locator(`[data-lens="${lens}"] [data-point]`).evaluateAll((els) => els.map((e) => Number(e.dataset.value)));
    for (const metric of ['kl', 'top1_agree']) {
      assert.deepEqual(await values(metric, 'logit'), report.logit[metric]);
      assert.deepEqual(await values(metric, 'tuned'), report.tuned[metric]);
      assert.deepEqual(await values(metric, 'jacobian'), report.jacobian[metric]);
    }
    assert.equal(await page.getByTestId('eval-legend').textContent(), 'logit lenstuned lens (llama)Jacobian lens (jlens.pt)');
    assert.equal(await page.getByTestId('eval-lenses').textContent(), 'logit lens, tuned lens (llama) and Jacobian lens (jlens.pt)');
    // The CSV has the Jacobian lens's lines.
    const download = page.waitForEvent('download');
    await page.getByRole('button', { name: 'Export CSV' }).click();
    const csv = fs.readFileSync(await (await download).path(), 'utf8').split('\n');
    assert.ok(csv.includes(`jacobian,2,Layer 1,${report.jacobian.kl[2]},${report.jacobian.ce[2]},${report.jacobian.entropy[2]},${report.jacobian.top1_agree[2]}`));
    await shot(page, 'jlens-quality', page.getByTestId('eval-figure'));
  });

  pageTest('fits a Jacobian lens from the page: its progress, Stop, Resume of the kept checkpoint, and a fit run to its end attached', env, async (page) => {
    await openApp(page, env);
    await page.getByLabel('Show the Jacobian lens').check();
    // A fit far longer than this test: 4000 prompts at one dimension per backward pass (65 passes
    // a prompt on this model) take many minutes, so each Stop lands midway whatever the machine's pace.
    const lines = fs.readFileSync(CORPUS, 'utf8').split('\n').filter((l) => l.trim());
    const long = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'logitlens-e2e-')), 'long.txt');
    const longText = Array.from({ length: 4000 }, (_, i) => lines[i % lines.length]).join('\n');
    fs.writeFileSync(long, longText);
    await page.getByLabel('Fit corpus file').setInputFiles(long);
    await page.getByTestId('fit-documents').filter({ hasText: '4000 documents · from long.txt' }).waitFor();
    await page.getByLabel('Max prompts').fill('4000');
    await page.getByLabel('Max sequence length').fill('64');
    await page.getByLabel('Skip first positions').fill('4');
    await page.getByLabel('Dim batch').fill('1');
    const posted = page.waitForRequest((r) => r.url().endsWith('/fit_jlens') && r.method() === 'POST');
    await page.getByRole('button', { name: 'Fit a Jacobian lens' }).click();
    const first = await posted;
    assert.deepEqual(JSON.parse(first.postData()), { corpus: longText, max_prompts: 4000, max_seq_len: 64, skip_first: 4, dim_batch: 1, resume: false });
    assert.match(first.headers()['x-logitlens-request'], /^[0-9a-f]{32}$/);
    // Its progress, from the server's events: which prompt, and the passes.
    const prompt = () => Number(/^Fitting prompt (\d+) of 4000 \(pass \d+ of 260000\)$/.exec(document.querySelector('[data-testid=fit-progress-text]')?.textContent ?? '')?.[1] ?? 0);
    await page.waitForFunction(`(${prompt})() >= 2`, null, { timeout: 60_000 });
    assert.equal(await page.getByRole('progressbar', { name: 'Fit progress' }).getAttribute('aria-valuemax'), '260000');
    await shot(page, 'jlens-fit', page.getByTestId('jacobian-lens').locator('fieldset.jlens-fit'));

    // Stop: the server keeps what it fitted, which the page offers to resume.
    await page.getByRole('button', { name: 'Stop' }).click();
    await page.getByTestId('fit-stopped').waitFor();
    const resume = page.getByRole('button', { name: /^Resume \(\d+ of 4000 prompts done\)$/ });
    await resume.waitFor({ timeout: 15_000 });
    const kept = await (await page.request.get(`${env.server.url}fit_jlens`)).json();
    assert.ok(kept && kept.n_done >= 1 && kept.n_done < 4000, JSON.stringify(kept));
    // The page asked for it as the stop was answered; a prompt finishing meanwhile is kept too.
    const shown = /^Kept on the server: (\d+) of 4000 prompts done · text of 4000 documents/.exec(await page.getByTestId('fit-checkpoint').textContent());
    assert.ok(shown && Number(shown[1]) >= 1 && Number(shown[1]) <= kept.n_done, shown?.[0]);

    // Resume continues it: the request says so, and its progress starts past what was kept.
    const resumed = page.waitForRequest((r) => r.url().endsWith('/fit_jlens') && r.method() === 'POST');
    await resume.click();
    assert.equal(JSON.parse((await resumed).postData()).resume, true);
    await page.waitForFunction(`(${prompt})() > ${kept.n_done + 1}`, null, { timeout: 60_000 });
    await page.getByRole('button', { name: 'Stop' }).click();
    await page.getByTestId('fit-stopped').waitFor();
    const again = await (await page.request.get(`${env.server.url}fit_jlens`)).json();
    assert.ok(again.n_done > kept.n_done && again.n_done < 4000, JSON.stringify(again));

    // A fit run to its end (12 prompts of the short corpus) is saved and attached, and the server keeps nothing.
    await page.getByLabel('Fit corpus file').setInputFiles(CORPUS);
    await page.getByTestId('fit-documents').filter({ hasText: '40 documents · from corpus.txt' }).waitFor();
    await page.getByLabel('Max prompts').fill('12');
    const done = page.waitForResponse((r) => r.url().endsWith('/fit_jlens') && r.request().method() === 'POST', { timeout: 120_000 });
    await page.getByRole('button', { name: 'Fit a Jacobian lens' }).click();
    const res = await done;
    assert.equal(res.status(), 200);
    assert.equal(JSON.parse(res.request().postData()).resume, false);
    const answer = await res.json();
    assert.equal(answer.n_prompts + answer.skipped, 12);
    assert.deepEqual(answer.jacobian_lens.source_layers, [0, 1]);
    const result = page.getByTestId('fit-result');
    await result.waitFor();
    assert.match(await result.textContent(), new RegExp(`^Fitted on ${answer.n_prompts} prompts`));
    assert.ok((await result.textContent()).includes(answer.saved));
    // Attached: the header and the card name its file; no checkpoint is left.
    const name = path.basename(answer.saved);
    await page.getByTestId('jacobian-lens-attached').filter({ hasText: name }).waitFor();
    assert.match(await page.getByTestId('jlens-attached').textContent(), new RegExp(name.replace(/\./g, '\\.')));
    assert.equal(await page.getByRole('button', { name: /^Resume/ }).count(), 0);
    assert.equal(await (await page.request.get(`${env.server.url}fit_jlens`)).text(), 'null');
  });
});
