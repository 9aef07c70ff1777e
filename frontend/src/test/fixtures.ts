import type {
  ActivationAnalysis,
  AttachedJacobianLens,
  AttachedSae,
  Attribution,
  AttentionReduce,
  DiffCell,
  EvalReport,
  Evaluation,
  GenerateResponse,
  GenerateStep,
  InferenceResponse,
  LensRow,
  LensVectorResponse,
  LoadModelResponse,
  ModelDescription,
  ModelEntry,
  PackedAttention,
  PatchResponse,
  Receipt,
  SaeEvalReport,
  SaeReadout,
  ServiceStatus,
  ServingStatus,
  TokenizeRequest,
  TokenizeResponse,
  TrackedProb,
} from '../api/types';

export const TOKENS = ['<s>', 'The', ' cat', '\n'];

function preds(seed: number, T: number) {
  return Array.from({ length: T }, (_, i) =>
    Array.from({ length: 5 }, (_, k) => ({ token: k === 0 ? [' the', 'cat', '\t', 'x'][(i + seed) % 4] : `t${k}`, prob: k === 0 ? 0.5 - 0.1 * ((i + seed) % 4) : 0.05, id: k })),
  );
}

export function lensRows(names = ['Embeddings', 'Layer 0', 'Final Output'], T = TOKENS.length): LensRow[] {
  return names.map((layer_name, layer_index) => ({ layer_index, layer_name, predictions: preds(layer_index, T) }));
}

/** attention[layer][head][q][k], causal rows summing to 1 */
export function attention(layers: number, heads: number, T: number): number[][][][] {
  return Array.from({ length: layers }, (_, l) =>
    Array.from({ length: heads }, (_, h) =>
      Array.from({ length: T }, (_, q) => Array.from({ length: T }, (_, k) => (k <= q ? (l + h + 1 + k) / Array.from({ length: q + 1 }, (_, j) => l + h + 1 + j).reduce((a, b) => a + b, 0) : 0))),
    ),
  );
}

/** IEEE-754 half-float bits of `v`, rounded to nearest even (through float32: fine for fixtures). */
export function floatToHalf(v: number): number {
  const u = new Uint32Array(new Float32Array([v]).buffer)[0];
  const sign = (u >>> 16) & 0x8000;
  const exp = (u >>> 23) & 0xff;
  let mant = u & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let half = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const mid = 1 << (shift - 1);
    if (rem > mid || (rem === mid && half & 1)) half++;
    return sign | half;
  }
  let half = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  // A carry out of the mantissa correctly bumps the exponent (up to infinity).
  if (rem > 0x1000 || (rem === 0x1000 && half & 1)) half++;
  return sign | half;
}

/** Base64 of little-endian half floats, as the server packs attention. */
export function halvesToBase64(values: ArrayLike<number>): string {
  let bin = '';
  for (let i = 0; i < values.length; i++) {
    const h = floatToHalf(values[i]);
    bin += String.fromCharCode(h & 0xff, h >> 8);
  }
  return btoa(bin);
}

/** `att` ([layer][head][q][k]) packed like the server's `attention_f16`, optionally head-averaged. */
export function packAttention(att: number[][][][], reduce: AttentionReduce = 'none', layers = att.map((_, l) => l)): PackedAttention {
  const heads = reduce === 'head_mean' ? 1 : att[0].length;
  const T = att[0][0].length;
  const values: number[] = [];
  for (const l of layers) {
    const perHead = att[l];
    const mats = reduce === 'head_mean' ? [perHead[0].map((row, q) => row.map((_, k) => perHead.reduce((a, m) => a + m[q][k], 0) / perHead.length))] : perHead;
    for (const m of mats) for (const row of m) values.push(...row);
  }
  return { layers, heads, tokens: T, reduce, data: halvesToBase64(values) };
}

/** What the app's /inference gets now: head means as half floats, no nested `attention`. */
export function inferenceResponse(text = 'The cat'): InferenceResponse {
  return { text, input_tokens: TOKENS, logit_lens: lensRows(), attention_f16: packAttention(attention(2, 2, TOKENS.length), 'head_mean') };
}

/** What the model writes after TOKENS in the generation fixtures: ids 11 and 12. */
export const WRITTEN = [' sat', ' down'];

/**
 * POST /generate after TOKENS: WRITTEN, the rows and head-mean attention over all six positions;
 * `baseline` as the server sends it with compare and interventions.
 */
export function generateResponse(baseline: GenerateResponse['baseline_generation'] = undefined): GenerateResponse {
  const T = TOKENS.length + WRITTEN.length;
  return {
    text: 'The cat',
    input_tokens: [...TOKENS, ...WRITTEN],
    logit_lens: lensRows(undefined, T),
    attention_f16: packAttention(attention(2, 2, T), 'head_mean'),
    generated_ids: [11, 12],
    generated_text: WRITTEN.join(''),
    prompt_tokens: TOKENS.length,
    stopped_at_eos: false,
    receipts: [],
    ...(baseline === undefined ? {} : { baseline_generation: baseline }),
  };
}

/** The step lines of a generation answer: the prompt's columns at once, then a column per written token; the last pass chooses nothing. */
export function generateSteps(res: GenerateResponse = generateResponse()): GenerateStep[] {
  const P = res.prompt_tokens;
  const ids = res.generated_ids;
  const columns = (from: number, to: number) => res.logit_lens.map((r) => ({ ...r, predictions: r.predictions.slice(from, to) }));
  const chosen = (i: number) => (i < ids.length ? { token_id: ids[i], token: res.input_tokens[P + i] } : { token_id: null, token: null });
  const steps: GenerateStep[] = [{ type: 'step', index: 0, start: 0, tokens: res.input_tokens.slice(0, P), columns: columns(0, P), ...chosen(0) }];
  for (let i = 1; i <= ids.length; i++) {
    steps.push({ type: 'step', index: i, start: P + i - 1, tokens: [res.input_tokens[P + i - 1]], columns: columns(P + i - 1, P + i), ...chosen(i) });
  }
  return steps;
}

/** The tiny llama of the server's tests, as /model_status and /load_model describe it. */
export const TINY_LLAMA: ModelDescription = {
  model_name: '/fixtures/tiny/llama',
  model_class: 'LlamaModel',
  family: 'llama',
  config: 'LlamaConfig(vocab_size=512, hidden_size=8, num_hidden_layers=2, num_attention_heads=2)',
  num_layers: 2,
  hidden_size: 8,
  num_heads: 2,
  vocab_size: 512,
  compute_dtype: 'f32',
  // Widened, as `weights: auto` holds a model this small: a few tens of KiB.
  weights: { form: 'f32', kinds: 'F32', resident_bytes: 46_080 },
  source: { kind: 'dir', location: '/fixtures/tiny/llama', revision: null, commit: null, stored_dtype: 'F32' },
  has_chat_template: true,
  instruct: false,
};

/** GET /model_status with TINY_LLAMA in service. */
export const READY: ServingStatus = { ...TINY_LLAMA, loaded: true, backend: 'custom', status: 'ready', loading: null, last_error: null };

/** GET /model_status with no model in service and none loading. */
export const IDLE: ServiceStatus = { loaded: false, backend: 'custom', status: 'idle', loading: null, last_error: null };

/** POST /load_model: TINY_LLAMA loaded. */
export const LOADED: LoadModelResponse = { ...TINY_LLAMA, status: 'loaded', loaded: true, backend: 'custom' };

/** Parameters from a published size ("135M", "1B"), as the server reads them. */
function paramsOf(size: string | null): number | null {
  const m = size && /^([\d.]+)([MB])$/.exec(size);
  return m ? Math.round(Number(m[1]) * (m[2] === 'B' ? 1e9 : 1e6)) : null;
}

/**
 * A /models entry. Its memory need is what `weights: auto` takes: f32 (4 bytes a parameter) for
 * these small models, which all fit; unknown (null) without a size.
 */
function modelEntry(id: string, name: string, family: string, size: string | null, backends: string[], instruct: boolean, cached = false): ModelEntry {
  const params = paramsOf(size);
  return {
    id,
    name,
    family,
    size,
    params,
    bytes: cached ? 98_362_432 : null,
    memory_bytes: params === null ? null : params * 4,
    fits: params === null ? null : true,
    cached,
    source: cached && !size ? 'hub_cache' : 'curated',
    backends,
    instruct,
  };
}

/** GET /models as the server answers: its default GGUF first, cached extras last. */
export const MODEL_LIST: ModelEntry[] = [
  modelEntry('SmolLM2-135M-Instruct.Q4_1.gguf', 'SmolLM2 135M Instruct (Q4_1 GGUF, default)', 'SmolLM2', '135M', ['custom', 'hooked'], true, true),
  modelEntry('HuggingFaceTB/SmolLM2-135M', 'SmolLM2 135M', 'SmolLM2', '135M', ['custom', 'hooked'], false),
  modelEntry('meta-llama/Llama-3.2-1B', 'Llama 3.2 1B', 'Llama', '1B', ['custom', 'hooked'], false),
  modelEntry('meta-llama/Llama-3.2-1B-Instruct', 'Llama 3.2 1B Instruct', 'Llama', '1B', ['custom', 'hooked'], true),
  modelEntry('Qwen/Qwen3-0.6B', 'Qwen3 0.6B (Instruct)', 'Qwen3', '0.6B', ['custom', 'hooked'], true),
  modelEntry('gpt2', 'GPT-2 (124M)', 'GPT-2', '124M', ['hooked'], false),
  modelEntry('HuggingFaceTB/SmolLM2-360M-Instruct', 'HuggingFaceTB/SmolLM2-360M-Instruct', 'SmolLM2', null, ['custom', 'hooked'], true, true),
];

/**
 * A curated 7B the machine cannot hold now: kept as stored (bf16, 2 bytes a parameter), it still
 * needs more than the memory available.
 */
export const MISTRAL_7B: ModelEntry = {
  ...modelEntry('mistralai/Mistral-7B-v0.3', 'Mistral 7B v0.3', 'Mistral', '7B', ['custom', 'hooked'], false),
  memory_bytes: 14_000_000_000,
  fits: false,
};

/** The 409 of /load_model for MISTRAL_7B: refused before loading, the model in service stays. */
export const TOO_BIG_DETAIL =
  'failed to load mistralai/Mistral-7B-v0.3: this model needs about 13.3 GiB of memory to load (13.0 GiB of weights, kept as stored) but 7.5 GiB is available; free memory, keep the weights as stored (weights: stored), or pick a smaller or more quantized checkpoint';

/** `lensRows()` after an intervention that put " dog" (id 99) on top at row 1, position 1. */
export function intervenedRows(): LensRow[] {
  const rows = lensRows();
  rows[1].predictions[1] = [{ token: ' dog', prob: 0.6, id: 99 }, ...rows[1].predictions[1].slice(0, 4)];
  return rows;
}

/** The diff of `intervenedRows()` against `lensRows()`: row 2 lost half, row 1 position 1 flipped, row 0 position 3 gained. */
export function diffGrid(rows = lensRows()): DiffCell[][] {
  return rows.map((row, r) =>
    row.predictions.map((preds, c) => {
      const base = preds[0];
      const flip = r === 1 && c === 1;
      const delta = r === 2 ? -base.prob / 2 : flip ? -0.1 : r === 0 && c === 3 ? 0.02 : 0;
      return {
        baseline_id: base.id,
        baseline_prob: base.prob,
        prob: base.prob + delta,
        top_id: flip ? 99 : base.id,
        delta_prob: delta,
        rank: r === 2 ? 3 : flip ? 1 : 0,
        kl: Math.abs(delta) * 2,
      };
    }),
  );
}

/** Two tracked tokens, " Paris" (id 7) and id 301 ("x"): Paris's probability grows with row and position. */
export function trackedGrid(rows = lensRows()): TrackedProb[][][] {
  return rows.map((row, r) =>
    row.predictions.map((_, c) => [
      { id: 7, token: ' Paris', prob: Math.min(1, 0.1 * (r + 1) + 0.05 * c), rank: 4 - Math.min(4, r + c) },
      { id: 301, token: 'x', prob: 0.01, rank: 40 },
    ]),
  );
}

export function entropyGrid(rows = lensRows()): number[][] {
  return rows.map((row, r) => row.predictions.map((_, c) => 5 - r - 0.5 * c));
}

export function analysisFixture(rows = 3, layers = 2, T = TOKENS.length): ActivationAnalysis {
  const m = (n: number, f: (i: number, p: number) => number) => Array.from({ length: n }, (_, i) => Array.from({ length: T }, (_, p) => f(i, p)));
  return {
    resid_norm: m(rows, (i, p) => 10 * (i + 1) + p),
    cos_prev: m(rows, (_, p) => 0.5 + 0.1 * p).map((row, i) => (i === 0 ? row.map(() => null) : row)),
    cos_final: m(rows, (i) => (i + 1) / rows),
    attn_out_norm: m(layers, (l, p) => l + p / 10),
    mlp_out_norm: m(layers, (l, p) => 2 * l + p),
  };
}

export const RECEIPTS: Receipt[] = [
  { key: 'layer_1_output', hook: 'blocks.1.hook_resid_post', layer: 1, positions: [0, 1, 2, 3], elements: 32, delta_norm: 12.3456 },
  { key: 'layer_0_attention', hook: 'blocks.0.attn.hook_attn_scores', layer: 0, positions: [3], elements: 0, delta_norm: 0 },
  { key: 'embeddings', hook: 'hook_embed', layer: null, positions: [3], elements: 8, delta_norm: null },
];

/** `logitlens eval-lens --json` of the tiny llama with its tuned lens over the research corpus (max 32 tokens). */
export const EVALUATION: Evaluation = {
  layers: ['Embeddings', 'Layer 0', 'Layer 1', 'Final Output'],
  tokens: 1280,
  logit: {
    kl: [1.3741695648768284, 0.649009399839702, 0.2907895129416145, 0.0],
    ce: [7.05549462888112, 6.971399430591947, 7.005777165560283, 6.9921168718177755],
    entropy: [5.523645314640676, 5.517306214818968, 5.517693344460048, 5.510375392391771],
    top1_agree: [0.00625, 0.0796875, 0.253125, 1.0],
  },
  tuned: {
    kl: [1.3895315224403588, 0.7092026366210676, 0.3693602702461821, 0.0],
    ce: [7.0673021573254395, 6.992062448244831, 6.964891293090939, 6.9921168718177755],
    entropy: [5.516992177546502, 5.517666815131216, 5.532422015488899, 5.510375392391771],
    top1_agree: [0.003125, 0.05703125, 0.18125, 1.0],
  },
};

/** The tuned lens of the tiny llama, as /model_status names it once attached. */
export const TUNED_LENS_DIR = '/fixtures/research/tuned/llama';

/** The Jacobian lens of the tiny llama, as /model_status describes it once attached (it covers the first two block outputs). */
export const JLENS_FILE = '/fixtures/research/jlens/llama/jlens.pt';
export const JACOBIAN: AttachedJacobianLens = { path: JLENS_FILE, n_prompts: 12, source_layers: [0, 1], warning: null };

/** POST /lens_vector for " is" (k = 3) with JACOBIAN attached. */
export const LENS_VECTOR: LensVectorResponse = {
  token_id: 464,
  token: ' is',
  layers: [
    { layer: 0, layer_name: 'Layer 0', norm: 1.7035237550735474, top: [{ token: ' is', prob: 0.2785658742468702, id: 464 }, { token: '\u0005', prob: 0.0694528060436576, id: 197 }, { token: '\t', prob: 0.015812722269364546, id: 201 }] },
    { layer: 1, layer_name: 'Layer 1', norm: 1.180363655090332, top: [{ token: ' is', prob: 0.7717058574008501, id: 464 }, { token: '\u0005', prob: 0.011573528674397348, id: 197 }, { token: 'cking', prob: 0.00672997809917023, id: 472 }] },
  ],
};

/** POST/GET /eval_lens: EVALUATION, made by the server with TINY_LLAMA and its tuned lens. */
export const EVAL_REPORT: EvalReport = { ...EVALUATION, model_name: '/fixtures/tiny/llama', tuned_lens: TUNED_LENS_DIR, documents: 40, max_tokens: 32 };

/** EVAL_REPORT with the Jacobian lens attached too: its line beside the logit and tuned lenses' (the embeddings and the output are the logit lens's). */
export const EVAL_REPORT_JACOBIAN: EvalReport = {
  ...EVAL_REPORT,
  jacobian_lens: JLENS_FILE,
  jacobian: {
    kl: [1.3741695648768284, 0.4127, 0.1208, 0.0],
    ce: [7.05549462888112, 6.9512, 6.9803, 6.9921168718177755],
    entropy: [5.523645314640676, 5.4981, 5.5077, 5.510375392391771],
    top1_agree: [0.00625, 0.2109375, 0.5203125, 1.0],
  },
};

/**
 * POST /patch with TINY_LLAMA: " cat" → " dog" at position 2, the logit difference of " sat" over
 * " ran" (clean 2, corrupted -1); patching position 2 restores it at layer 0, half of it at layer 1.
 */
export const PATCH_RESPONSE: PatchResponse = {
  tokens_clean: ['<s>', 'The', ' cat', ' is'],
  tokens_corrupted: ['<s>', 'The', ' dog', ' is'],
  layers: 2,
  hook: 'resid_pre',
  positions: [0, 1, 2, 3],
  metric: { type: 'logit_diff', correct: 11, wrong: 12, correct_text: ' sat', wrong_text: ' ran' },
  clean: 2,
  corrupted: -1,
  values: [
    [-1, -1, 2, -1],
    [-1, -1, 0.5, 0.2],
  ],
  normalized: [
    [0, 0, 1, 0],
    [0, 0, 0.5, 0.4],
  ],
  seconds: 0.25,
};

/** /inference's `attribution` of " the" (id 7) at position 3 with TINY_LLAMA: the parts add up to 2.75. */
export const ATTRIBUTION: Attribution = {
  token_id: 7,
  token: ' the',
  position: 3,
  logit: 2.75,
  embed: 0.5,
  attn: [1, -0.25],
  mlp: [0.75, 0.5],
  heads: [
    [0.625, 0.375],
    [-0.5, 0.25],
  ],
  rest: 0.25,
  rest_parts: { final_norm_bias: 0.25 },
};

/** Rows named like the tiny llama's over `n` positions; top-1 ids `base + position`. */
export function streamRows(n: number, base = 100): LensRow[] {
  return ['Embeddings', 'Layer 0', 'Final Output'].map((layer_name, layer_index) => ({
    layer_index,
    layer_name,
    predictions: Array.from({ length: n }, (_, p) => [{ token: `t${base + p}`, prob: 0.5, id: base + p }]),
  }));
}

export function streamStep(index: number, start: number, tokens: string[], chosen: [number, string] | null): GenerateStep {
  return { type: 'step', index, start, tokens, columns: streamRows(tokens.length, 100 + start), token_id: chosen?.[0] ?? null, token: chosen?.[1] ?? null };
}

export const STREAM_PROMPT = ['<s>', 'Once', ' upon'];

/** Pass 0 over the prompt choosing " a", pass 1 choosing " time", the last pass (nothing chosen). */
export const STREAM_STEPS: GenerateStep[] = [streamStep(0, 0, STREAM_PROMPT, [7, ' a']), streamStep(1, 3, [' a'], [8, ' time']), streamStep(2, 4, [' time'], null)];

/**
 * A toy tokenizer: a word with its leading space is a token, and a word of over 7 letters is two
 * (its first 4 characters, then the rest); a BOS first unless `add_special_tokens` is false.
 */
export function toyTokenize({ text, add_special_tokens = true }: TokenizeRequest): TokenizeResponse {
  const tokens: string[] = add_special_tokens ? ['<s>'] : [];
  for (const w of text.match(/ ?[^ ]+/g) ?? []) {
    if (w.trim().length > 7) tokens.push(w.slice(0, 4), w.slice(4));
    else tokens.push(w);
  }
  return { ids: tokens.map((t) => 100 + Array.from(t).reduce((a, ch) => a + ch.charCodeAt(0), 0)), tokens };
}

/** Two SAEs attached to TINY_LLAMA: a ReLU one on layer 0's output and a top-k one entering layer 1. */
export const SAES: AttachedSae[] = [
  {
    name: 'relu_resid_post_0',
    source: '/fixtures/research/sae/llama/relu_resid_post_0',
    hook: 'blocks.0.hook_resid_post',
    architecture: 'standard',
    d_in: 8,
    d_sae: 32,
    k: null,
    dtype: 'float32',
    bytes: 2_304,
    apply_b_dec_to_input: true,
    normalize_activations: 'none',
    centered: false,
    notes: [],
  },
  {
    name: 'topk_resid_pre_1',
    source: '/fixtures/research/sae/llama/topk_resid_pre_1',
    hook: 'blocks.1.hook_resid_pre',
    architecture: 'topk',
    d_in: 8,
    d_sae: 32,
    k: 4,
    dtype: 'float32',
    bytes: 2_304,
    apply_b_dec_to_input: true,
    normalize_activations: 'none',
    centered: false,
    notes: [],
  },
];

/** A readout over TOKENS: at position i, features #(i+1) with act i and #9 with act 0.5 (none at 0). */
export function saeReadout(name: string, row: string, hook = 'blocks.0.hook_resid_post', T = TOKENS.length): SaeReadout {
  return {
    name,
    hook,
    architecture: 'standard',
    d_sae: 32,
    row,
    positions: Array.from({ length: T }, (_, i) => ({
      features: i === 0 ? [] : [
        { id: i + 1, act: i },
        { id: 9, act: 0.5 },
      ],
      l0: i === 0 ? 0 : 2,
      recon_error: 0.25 * i,
    })),
  };
}

export const SAE_EVAL: SaeEvalReport = {
  model_name: '/fixtures/tiny/llama',
  documents: 4,
  tokens: 120,
  sample_seed: 0,
  max_tokens: 32,
  exclude_special: true,
  saes: [
    {
      name: 'relu_resid_post_0',
      hook: 'blocks.0.hook_resid_post',
      architecture: 'standard',
      d_sae: 32,
      ce_clean: 5.5,
      ce_spliced: 5.75,
      delta_ce: 0.25,
      ce_zero_ablated: 6.5,
      ce_loss_score: 0.75,
      kl: 0.125,
      kl_zero_ablated: 1.5,
      explained_variance: 0.875,
      mse: 0.0625,
      mean_l0: 12.5,
      dead_features: 3,
      alive_features: 29,
    },
  ],
};
