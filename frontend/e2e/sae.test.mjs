// End-to-end tests of sparse autoencoders in the web app, against a real server with the tiny random
// Llama and the SAEs trained for it by SAELens (tests/fixtures/research/sae/llama/: a ReLU SAE on
// layer 1's output, a JumpReLU SAE on layer 0's MLP output, a top-k SAE on the stream entering
// layer 2). A server of their own: attaching SAEs changes what the other files' tests would see.
// Run with `npm run e2e`.
//
// LOGITLENS_E2E_SHOTS=1 also saves pictures of the new views for the docs in e2e/artifacts/
// (sae_grid.png, sae_feature_card.png).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe } from 'node:test';
import { REPO, openApp, pageTest, serverAndBrowser, shot } from './harness.mjs';

const env = { server: null, browser: null };
const RESEARCH = path.join(REPO, 'tests', 'fixtures', 'research');
const SAE_DIR = path.join(RESEARCH, 'sae', 'llama');
const SAES = ['relu_resid_post_1', 'jumprelu_mlp_out_0', 'topk_resid_pre_2'];
// The lens row each one's state sits under (block-output lens): layer 1's output; layer 0's MLP
// output ends in layer 0's output; the stream entering layer 2 is layer 1's output.
const UNDER = ['Layer 1', 'Layer 0', 'Layer 1'];
const CORPUS = path.join(RESEARCH, 'corpus.txt');

async function run(page) {
  const done = page.waitForResponse((r) => r.url().endsWith('/inference'), { timeout: 60_000 });
  await page.locator('button.btn-run').click();
  const res = await done;
  await page.getByTestId('running-indicator').waitFor({ state: 'detached' });
  return res;
}

/** An SAELens folder whose SAE reads 32 dimensions (the tiny llama has 64): all zeros. */
function narrowSae() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'logitlens-e2e-narrow-'));
  const dIn = 32;
  const dSae = 16;
  const shapes = { W_dec: [dSae, dIn], W_enc: [dIn, dSae], b_dec: [dIn], b_enc: [dSae] };
  const header = {};
  let offset = 0;
  for (const [name, shape] of Object.entries(shapes)) {
    const bytes = shape.reduce((a, b) => a * b, 1) * 4;
    header[name] = { dtype: 'F32', shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let json = JSON.stringify(header);
  while (json.length % 8) json += ' ';
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  fs.writeFileSync(path.join(dir, 'sae_weights.safetensors'), Buffer.concat([len, Buffer.from(json), Buffer.alloc(offset)]));
  const cfg = { d_in: dIn, d_sae: dSae, dtype: 'float32', device: 'cpu', apply_b_dec_to_input: true, normalize_activations: 'none', architecture: 'standard', metadata: { hook_name: 'blocks.1.hook_resid_post' } };
  fs.writeFileSync(path.join(dir, 'cfg.json'), JSON.stringify(cfg));
  return dir;
}

/** Attaches the three SAEs through the header's field, one at a time, unless they already are. */
async function attachSaes(page) {
  for (const name of SAES) {
    if ((await page.locator(`[data-testid=sae-list] li[data-sae="${name}"]`).count()) > 0) continue;
    await page.getByRole('button', { name: /^Add (another )?SAE…$/ }).click();
    await page.getByLabel('SAE folder').fill(path.join(SAE_DIR, name));
    const attached = page.waitForResponse((r) => r.url().endsWith('/load_sae'));
    await page.getByRole('button', { name: 'Load SAE' }).click();
    assert.equal((await attached).status(), 200);
    await page.locator(`[data-testid=sae-list] li[data-sae="${name}"]`).waitFor();
  }
}

const saeCell = (page, name, c) => page.locator(`[data-testid=lens-grid] [data-sae-cell][data-sae="${name}"][data-c="${c}"]`);

/** The lens row each SAE row of the grid comes after. */
const saeRowsUnder = (page) =>
  page.locator('[data-testid=lens-grid] tbody tr.sae-row').evaluateAll((trs) =>
    trs.map((tr) => {
      let p = tr.previousElementSibling;
      while (p && p.classList.contains('sae-row')) p = p.previousElementSibling;
      return [tr.dataset.sae, p?.dataset.rowName ?? null];
    }),
  );

describe('sparse autoencoders (tiny llama)', () => {
  serverAndBrowser(env);

  pageTest('attaches SAEs through the field (a mismatched one refused in words), draws their rows with tooltips, and an ablation from a cell changes the output', env, async (page) => {
    await openApp(page, env);
    // None attached: the form says how to get one.
    assert.match(await page.getByTestId('sae-form-unavailable').textContent(), /^Attach an SAE/);

    // An SAE of another width is refused in the server's words, both widths named.
    await page.getByRole('button', { name: 'Add SAE…' }).click();
    await page.getByLabel('SAE folder').fill(narrowSae());
    await page.getByRole('button', { name: 'Load SAE' }).click();
    const refusal = await page.getByTestId('sae-error').textContent();
    assert.ok(refusal.includes('32') && refusal.includes('64'), refusal);
    await page.getByRole('button', { name: 'Cancel' }).click();

    await attachSaes(page);
    const status = await (await page.request.get(`${env.server.url}model_status`)).json();
    assert.deepEqual(
      status.saes.map((s) => [s.name, s.hook, s.d_in, s.d_sae]),
      [
        ['relu_resid_post_1', 'blocks.1.hook_resid_post', 64, 256],
        ['jumprelu_mlp_out_0', 'blocks.0.hook_mlp_out', 64, 256],
        ['topk_resid_pre_2', 'blocks.2.hook_resid_pre', 64, 256],
      ],
    );
    assert.match(await page.locator('[data-testid=sae-list] li[data-sae="topk_resid_pre_2"]').textContent(), /blocks\.2\.hook_resid_pre · topk \(k 12\) · 64→256 · F32 · \d+ kB/);

    // The run asks for their features; a row each, under the lens row it reads.
    const res = await run(page);
    const sent = JSON.parse(res.request().postData());
    assert.equal(sent.sae, true);
    assert.equal(sent.sae_top_k, 8);
    const body = await res.json();
    assert.deepEqual(
      body.sae.map((s) => [s.name, s.row]),
      SAES.map((n, i) => [n, UNDER[i]]),
    );
    // In the grid's order: layer 0's SAE first, then layer 1's two in the answer's order.
    assert.deepEqual(await saeRowsUnder(page), [
      ['jumprelu_mlp_out_0', 'Layer 0'],
      ['relu_resid_post_1', 'Layer 1'],
      ['topk_resid_pre_2', 'Layer 1'],
    ]);
    await shot(page, 'sae_grid', page.locator('section.results'));
    // Each cell is its position's top feature and act; the tooltip lists all of them, L0 and the error.
    const T = body.input_tokens.length;
    const relu = body.sae[0];
    const last = relu.positions[T - 1];
    assert.ok(last.features.length > 0, 'the ReLU SAE fires at the last position');
    assert.equal(await saeCell(page, 'relu_resid_post_1', T - 1).locator('.cell-token').textContent(), `#${last.features[0].id}`);
    await saeCell(page, 'relu_resid_post_1', T - 1).hover();
    const tip = page.getByTestId('sae-tooltip');
    await tip.waitFor();
    const listed = await tip.getByTestId('sae-tooltip-features').locator('li').allTextContents();
    assert.deepEqual(
      listed.map((l) => l.split(' ')[0]),
      last.features.map((f) => `#${f.id}`),
    );
    assert.match(await tip.getByTestId('sae-tooltip-stats').textContent(), new RegExp(`^L0 ${last.l0} · reconstruction error `));

    // "Use #F" from the cell fills the form; added and run with a baseline, it changes the output.
    const feature = last.features[0].id;
    await saeCell(page, 'relu_resid_post_1', T - 1).click();
    await page.getByTestId('sae-cell-menu').getByRole('menuitem', { name: `Use #${feature} in the SAE intervention form` }).click();
    assert.equal(await page.getByLabel('SAE', { exact: true }).inputValue(), 'relu_resid_post_1');
    assert.equal(await page.getByLabel('SAE operation').inputValue(), 'sae_ablate');
    assert.equal(await page.getByLabel('SAE feature', { exact: true }).inputValue(), String(feature));
    await page.getByRole('button', { name: 'Add SAE intervention' }).click();
    assert.match(await page.getByTestId('intervention-list').textContent(), new RegExp(`sae_ablate\\(relu_resid_post_1 #${feature}\\)`));
    await page.getByLabel('Compare with baseline').check();
    const ablated = await run(page);
    assert.deepEqual(JSON.parse(ablated.request().postData()).interventions, {
      'blocks.1.hook_resid_post': [{ type: 'sae_ablate', sae: 'relu_resid_post_1', feature }],
    });
    const after = await ablated.json();
    const finalKl = after.diff[after.diff.length - 1].map((d) => d.kl);
    assert.ok(Math.max(...finalKl) > 1e-6, `the output moved: ${finalKl}`);
    // Its receipt, as every operation's.
    await page.getByTestId('receipt').first().waitFor();
    assert.match(await page.getByTestId('receipt').first().textContent(), /blocks\.1\.hook_resid_post/);
    // It took the feature out wherever it fired: the stream changed.
    const receipt = after.receipts.find((r) => r.key === 'blocks.1.hook_resid_post');
    assert.ok(receipt && receipt.hook === 'blocks.1.hook_resid_post' && receipt.delta_norm > 0, JSON.stringify(after.receipts));
  });

  pageTest('a feature’s card: its tokens, its activation over the run, and a corpus scan', env, async (page) => {
    await openApp(page, env);
    await attachSaes(page);
    const res = await run(page);
    const body = await res.json();
    const T = body.input_tokens.length;
    const feature = body.sae[0].positions[T - 1].features[0].id;
    await saeCell(page, 'relu_resid_post_1', T - 1).click();
    const asked = page.waitForResponse((r) => r.url().endsWith('/sae_features'));
    await page.getByTestId('sae-cell-menu').getByRole('menuitem', { name: 'Feature card' }).click();
    const features = await asked;
    const q = JSON.parse(features.request().postData());
    assert.deepEqual(q, { sae: 'relu_resid_post_1', features: [feature], k: 10, run_id: Number(res.headers()['x-logitlens-run-id']) });
    const answer = await features.json();
    const card = page.getByTestId('sae-feature-card');
    await card.getByTestId('sae-sparkline').waitFor();
    assert.equal(await card.getByTestId('sae-top-tokens').locator('tr').count(), 10);
    assert.equal(await card.getByTestId('sae-bottom-tokens').locator('tr').count(), 10);
    const bars = await card.locator('[data-testid=sae-sparkline] [data-bar]').evaluateAll((gs) => gs.map((g) => Number(g.dataset.value)));
    assert.equal(bars.length, T);
    assert.deepEqual(bars, answer.activations[0]);
    // The activation at the cell's position is the grid's.
    assert.ok(Math.abs(bars[T - 1] - body.sae[0].positions[T - 1].features[0].act) < 1e-4);

    // Where it fires in the corpus file.
    await card.getByLabel('Feature corpus file').setInputFiles(CORPUS);
    await card.getByTestId('feature-corpus-documents').filter({ hasText: '40 documents · from corpus.txt' }).waitFor();
    const scanned = page.waitForResponse((r) => r.url().endsWith('/sae_feature_corpus'), { timeout: 60_000 });
    await card.getByRole('button', { name: 'Scan the corpus' }).click();
    const scan = await scanned;
    assert.equal(scan.status(), 200);
    const report = await scan.json();
    assert.equal(report.documents, 40);
    await card.getByTestId('sae-corpus-summary').waitFor();
    assert.match(await card.getByTestId('sae-corpus-summary').textContent(), new RegExp(`^Fires at ${report.fires} of ${report.tokens} positions`));
    const contexts = card.getByTestId('sae-contexts').locator('li');
    assert.equal(await contexts.count(), report.contexts.length);
    assert.equal(await contexts.first().locator('[data-fire]').count(), 1);
    await shot(page, 'sae_feature_card', card);
  });

  pageTest('SAE quality: an evaluation run to its end, and Stop of one far longer than the test', env, async (page) => {
    await openApp(page, env);
    await attachSaes(page);
    await page.getByLabel('Show SAE quality').check();
    const card = page.getByTestId('sae-quality');
    await card.getByTestId('sae-eval-note').waitFor();
    await card.getByLabel('SAE corpus file').setInputFiles(CORPUS);
    await card.getByLabel('SAE evaluation max tokens').fill('32');
    const done = page.waitForResponse((r) => r.url().endsWith('/eval_sae') && r.request().method() === 'POST', { timeout: 120_000 });
    await card.getByRole('button', { name: 'Evaluate the SAEs' }).click();
    const res = await done;
    assert.equal(res.status(), 200);
    const report = await res.json();
    assert.equal(report.documents, 40);
    await card.getByTestId('sae-quality-table').waitFor();
    const rows = await card.locator('[data-testid=sae-quality-table] tbody tr').evaluateAll((trs) => trs.map((tr) => tr.dataset.sae));
    assert.deepEqual(rows, SAES);
    assert.equal(await card.locator('[data-sae="relu_resid_post_1"] td').last().textContent(), `${report.saes[0].dead_features} / 256`);

    // 4000 documents of about 250 tokens, each run clean, then spliced and zeroed per SAE (200
    // documents of half that length take 15 s on a loaded 2-core machine): many minutes, so Stop
    // lands midway whatever the machine's pace.
    const lines = fs.readFileSync(CORPUS, 'utf8').split('\n').filter((l) => l.trim());
    const long = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'logitlens-e2e-')), 'long.txt');
    const doc = (i) => [0, 7, 13, 29].map((k) => lines[(i * (k + 1) + k) % lines.length]).join(' ');
    fs.writeFileSync(long, Array.from({ length: 4000 }, (_, i) => doc(i)).join('\n'));
    await card.getByLabel('SAE corpus file').setInputFiles(long);
    await card.getByLabel('SAE evaluation max tokens').fill('256');
    const posted = page.waitForRequest((r) => r.url().endsWith('/eval_sae') && r.method() === 'POST');
    await card.getByRole('button', { name: 'Evaluate the SAEs' }).click();
    assert.match((await posted).headers()['x-logitlens-request'], /^[0-9a-f]{32}$/);
    const docs = () => Number(/^(\d+) of 4000 documents$/.exec(document.querySelector('[data-testid=sae-eval-progress-text]')?.textContent ?? '')?.[1] ?? 0);
    await page.waitForFunction(`(${docs})() >= 2`, null, { timeout: 60_000 });
    await card.getByRole('button', { name: 'Stop' }).click();
    await card.getByTestId('sae-eval-stopped').waitFor();
    // What was on screen stays; the server kept the finished one, not the stopped one.
    assert.equal(await card.locator('[data-testid=sae-quality-table] tbody tr').count(), 3);
    const kept = await (await page.request.get(`${env.server.url}eval_sae`)).json();
    assert.equal(kept.documents, 40);
    // The server is free again: a run is answered.
    assert.equal((await run(page)).status(), 200);

    // A big sampled corpus (512 documents of 128 tokens, the most a server samples for one
    // request, then each evaluated as above): stopped while the model writes it.
    await card.getByLabel('SAE corpus: sample documents').check();
    await card.getByLabel('SAE corpus: documents to sample').fill('512');
    await card.getByLabel('SAE evaluation max tokens').fill('128');
    const sampled = page.waitForRequest((r) => r.url().endsWith('/eval_sae') && r.method() === 'POST');
    await card.getByRole('button', { name: 'Evaluate the SAEs' }).click();
    assert.deepEqual(JSON.parse((await sampled).postData()), { sample: 512, max_tokens: 128 });
    const written = () => Number(/^Sampling the corpus: (\d+) of \d+ tokens$/.exec(document.querySelector('[data-testid=sae-eval-progress-text]')?.textContent ?? '')?.[1] ?? 0);
    await page.waitForFunction(`(${written})() >= 128`, null, { timeout: 60_000 });
    await card.getByRole('button', { name: 'Stop' }).click();
    await card.getByTestId('sae-eval-stopped').waitFor();
    assert.equal((await (await page.request.get(`${env.server.url}eval_sae`)).json()).documents, 40);
    assert.equal((await run(page)).status(), 200);
  });
});
