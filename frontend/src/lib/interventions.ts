// Building, validating, listing and reading back interventions, as the original UI does (§6.4)
// with the checks it lacked.
import type { InterventionConfig, Interventions } from '../api/types';
import { formatToken } from './tokens';

export type StreamLocation = 'output' | 'attn_output' | 'mlp_output' | 'resid_pre' | 'resid_mid' | 'embeddings';
export type StreamOp = 'zero' | 'scale' | 'add';

export const STREAM_LOCATIONS: { value: StreamLocation; label: string }[] = [
  { value: 'output', label: 'Block output' },
  { value: 'attn_output', label: 'Attention output' },
  { value: 'mlp_output', label: 'MLP output' },
  { value: 'resid_pre', label: 'Residual stream entering the layer' },
  { value: 'resid_mid', label: 'Residual stream after attention' },
  { value: 'embeddings', label: 'Embeddings' },
];

export const STREAM_OPS: { value: StreamOp; label: string }[] = [
  { value: 'zero', label: 'Zero' },
  { value: 'scale', label: 'Scale' },
  { value: 'add', label: 'Add vector' },
];

/** What the forms know about the model and the prompt; unknown values skip their checks. */
export interface InterventionContext {
  numLayers?: number;
  hiddenSize?: number;
  /** Number of tokens of the current input, when known (the text was run as it is now). */
  seqLen?: number;
  /**
   * A generation's new tokens, when the run on screen is one: positions past the input up to
   * these are valid too (they apply once written), negative ones still count from the input's end.
   */
  newTokens?: number;
  /**
   * The layers the attached Jacobian lens covers, for its operations (jlens_steer, jlens_ablate,
   * jlens_swap): null when none is attached, absent when not known.
   */
  jlensLayers?: readonly number[] | null;
  /** The SAEs attached, for their operations (sae_*): their names and hooks; absent when not known. */
  saes?: readonly { name: string; hook: string }[];
}

export type Result<T> = { ok: true; value: T } | { ok: false; error: string };

const ok = <T,>(value: T): Result<T> => ({ ok: true, value });
const fail = <T,>(error: string): Result<T> => ({ ok: false, error });

const INT_RE = /^[+-]?\d+$/;

/** An integer from user text (no decimals, no junk), or null. */
export function parseInteger(text: string): number | null {
  const t = text.trim();
  if (!INT_RE.test(t)) return null;
  const n = Number(t);
  return Number.isSafeInteger(n) ? n : null;
}

/** A number from user text, or null (empty, NaN, Infinity and junk are rejected). */
export function parseNumber(text: string): number | null {
  const t = text.trim();
  if (t === '') return null;
  const n = Number(t);
  return Number.isFinite(n) ? n : null;
}

/**
 * Checks a token position against the input length; negative counts from the end. With a
 * generation's `newTokens`, the positions it will write are valid too.
 */
export function checkTokenIndex(index: number, seqLen: number | undefined, what = 'Token index', newTokens = 0): string | null {
  if (seqLen === undefined || seqLen <= 0) return null;
  const end = seqLen + Math.max(0, newTokens);
  if (index < -seqLen || index >= end) {
    const input = newTokens > 0 ? `a ${seqLen}-token prompt and ${newTokens} new token${newTokens === 1 ? '' : 's'}` : `a ${seqLen}-token input`;
    return `${what} ${index} is out of range for ${input} (valid: ${-seqLen}..${end - 1})`;
  }
  return null;
}

/** A position resolved against the input length (negative counts from the end). */
export function resolveIndex(index: number, seqLen: number): number {
  return index < 0 ? seqLen + index : index;
}

/** The intervention key of a stream intervention. */
export function streamKey(layer: number | 'embeddings', location: StreamLocation, allLayers: boolean): string {
  if (layer === 'embeddings' || location === 'embeddings') return 'embeddings';
  if (allLayers) return `all_layers_${location}`;
  // The residual stream before the layer and after its attention have TransformerLens's names.
  if (location === 'resid_pre' || location === 'resid_mid') return `blocks.${layer}.hook_${location}`;
  return `layer_${layer}_${location}`;
}

/**
 * The vector of an `add`: comma- or space-separated numbers of length `hiddenSize`, or a single
 * number broadcast to `hiddenSize`.
 */
export function parseVector(text: string, hiddenSize?: number): Result<number[]> {
  const body = text.trim().replace(/^\[/, '').replace(/\]$/, '');
  const parts = body.split(/[\s,;]+/).filter((x) => x !== '');
  if (parts.length === 0) return fail('Enter the vector to add: comma-separated numbers, or one number for every dimension');
  const nums: number[] = [];
  for (const p of parts) {
    const n = parseNumber(p);
    if (n === null) return fail(`"${p}" in the vector is not a number`);
    nums.push(n);
  }
  if (nums.length === 1) {
    if (hiddenSize === undefined) return fail('A single number is broadcast to the hidden size, which is not known until a model is loaded');
    return ok(new Array<number>(hiddenSize).fill(nums[0]));
  }
  if (hiddenSize !== undefined && nums.length !== hiddenSize) {
    return fail(`The vector has ${nums.length} numbers; this model's hidden size is ${hiddenSize} (or give one number to broadcast)`);
  }
  return ok(nums);
}

export interface StreamFormValues {
  /** A layer number as text, or "embeddings". */
  layer: string;
  location: StreamLocation;
  op: StreamOp;
  value: string;
  vector: string;
  tokenIndex: string;
  allLayers: boolean;
}

/** Validates the stream form and builds its key and config. */
export function buildStreamIntervention(
  form: StreamFormValues,
  ctx: InterventionContext = {},
): Result<{ key: string; config: InterventionConfig }> {
  const isEmb = form.layer === 'embeddings' || form.location === 'embeddings';
  let layer: number | 'embeddings' = 'embeddings';
  if (!isEmb && !form.allLayers) {
    const l = parseInteger(form.layer);
    if (l === null || l < 0) return fail('Choose a layer');
    if (ctx.numLayers !== undefined && l >= ctx.numLayers) {
      return fail(`Layer ${l} does not exist: this model has ${ctx.numLayers} layers (0..${ctx.numLayers - 1})`);
    }
    layer = l;
  } else if (!isEmb) {
    layer = 0;
  }
  const config: InterventionConfig = { type: form.op };
  if (form.op === 'scale') {
    const v = parseNumber(form.value);
    if (v === null) return fail('Scale needs a numeric factor (e.g. 0.5)');
    config.value = v;
  } else if (form.op === 'add') {
    const vec = parseVector(form.vector, ctx.hiddenSize);
    if (!vec.ok) return fail(vec.error);
    config.vector = vec.value;
  } else if (form.op !== 'zero') {
    return fail(`Unknown operation ${String(form.op)}`);
  }
  if (form.tokenIndex.trim() !== '') {
    const ti = parseInteger(form.tokenIndex);
    if (ti === null) return fail(`Token index "${form.tokenIndex.trim()}" is not an integer (negative counts from the end)`);
    const err = checkTokenIndex(ti, ctx.seqLen, undefined, ctx.newTokens);
    if (err) return fail(err);
    config.token_index = ti;
  }
  config.all_layers = isEmb ? false : form.allLayers;
  return ok({ key: streamKey(layer, form.location, form.allLayers), config });
}

const STREAM_TYPES = new Set(['zero', 'scale', 'add']);

function sameTokenIndex(a: InterventionConfig, b: InterventionConfig): boolean {
  const ai = a.token_index ?? null;
  const bi = b.token_index ?? null;
  return ai === bi;
}

/**
 * Adds a stream intervention with the original's replacement rule: within the same key, an
 * existing stream config at the same token index (or both at all tokens) is replaced.
 */
export function addStreamIntervention(all: Interventions, key: string, config: InterventionConfig): Interventions {
  const existing = all[key] ?? [];
  const kept = STREAM_TYPES.has(config.type)
    ? existing.filter((c) => !(STREAM_TYPES.has(c.type) && sameTokenIndex(c, config)))
    : existing;
  return { ...all, [key]: [...kept, config] };
}

/** Appends a config to a key (attention blocks: duplicates allowed, no replacement). */
export function appendIntervention(all: Interventions, key: string, config: InterventionConfig): Interventions {
  return { ...all, [key]: [...(all[key] ?? []), config] };
}

/** Removes the config at `index` of `key`; the key goes when its list is empty. */
export function removeIntervention(all: Interventions, key: string, index: number): Interventions {
  const list = all[key];
  if (!list) return all;
  const next = list.filter((_, i) => i !== index);
  const out: Interventions = { ...all };
  if (next.length === 0) delete out[key];
  else out[key] = next;
  return out;
}

/** A comma-separated list of token positions. */
export function parseTokenList(text: string, what: string): Result<number[]> {
  const parts = text.split(',').map((s) => s.trim());
  if (text.trim() === '' || parts.every((p) => p === '')) return fail(`Enter the ${what} (comma-separated positions, e.g. 0 or 1,2)`);
  const out: number[] = [];
  for (const p of parts) {
    if (p === '') continue;
    const n = parseInteger(p);
    if (n === null) return fail(`"${p}" in the ${what} is not an integer position`);
    out.push(n);
  }
  return ok(out);
}

export interface AttentionFormValues {
  layer: string;
  source: string;
  target: string;
  allLayers: boolean;
}

/** Validates the attention-block form and builds its key and config. */
export function buildAttentionIntervention(
  form: AttentionFormValues,
  ctx: InterventionContext = {},
): Result<{ key: string; config: InterventionConfig }> {
  const src = parseTokenList(form.source, 'source tokens');
  if (!src.ok) return fail(src.error);
  const tgt = parseTokenList(form.target, 'target tokens');
  if (!tgt.ok) return fail(tgt.error);
  for (const s of src.value) {
    const e = checkTokenIndex(s, ctx.seqLen, 'Source token', ctx.newTokens);
    if (e) return fail(e);
  }
  for (const t of tgt.value) {
    const e = checkTokenIndex(t, ctx.seqLen, 'Target token', ctx.newTokens);
    if (e) return fail(e);
  }
  // Causality: a query (target) only reads keys (sources) at or before it.
  for (const s of src.value) {
    for (const t of tgt.value) {
      let rs = s;
      let rt = t;
      if (s < 0 || t < 0) {
        if (ctx.seqLen === undefined) {
          if ((s < 0) !== (t < 0)) continue; // cannot compare without the length; the server checks
        } else {
          rs = resolveIndex(s, ctx.seqLen);
          rt = resolveIndex(t, ctx.seqLen);
        }
      }
      if (rs > rt) {
        return fail(
          `Source token ${s} comes after target token ${t}: in causal attention a token only attends to itself and earlier positions (source ≤ target)`,
        );
      }
    }
  }
  let layer = 0;
  if (!form.allLayers) {
    const l = parseInteger(form.layer);
    if (l === null || l < 0) return fail('Choose a layer');
    if (ctx.numLayers !== undefined && l >= ctx.numLayers) {
      return fail(`Layer ${l} does not exist: this model has ${ctx.numLayers} layers (0..${ctx.numLayers - 1})`);
    }
    layer = l;
  }
  const key = form.allLayers
    ? `all_layers_attention_${src.value.join('_')}_to_${tgt.value.join('_')}`
    : `layer_${layer}_attention`;
  const config: InterventionConfig = {
    type: 'block_attention',
    source_tokens: src.value,
    target_tokens: tgt.value,
    all_layers: form.allLayers,
  };
  return ok({ key, config });
}

function fmtNum(n: number): string {
  return Number.isInteger(n) ? String(n) : String(Number(n.toPrecision(6)));
}

/** A token an operation of the Jacobian lens names: spaces shown as ␣, ids as #id. */
function conceptLabel(t: unknown): string {
  if (typeof t === 'number') return `#${t}`;
  return typeof t === 'string' ? formatToken(t) : '?';
}

const JLENS_TYPES = new Set(['jlens_steer', 'jlens_ablate', 'jlens_swap']);
const SAE_TYPES = new Set(['sae_splice', 'sae_ablate', 'sae_clamp', 'sae_steer']);

/** Whether an operation works through an attached SAE. */
export function isSaeConfig(c: InterventionConfig): boolean {
  return SAE_TYPES.has(c.type);
}

/** Whether an operation reads its directions from the Jacobian lens. */
export function isJlensConfig(c: InterventionConfig): boolean {
  return JLENS_TYPES.has(c.type);
}

/** One line of the active-interventions list, as the original renders it. */
export function describeIntervention(c: InterventionConfig): string {
  let s = c.type;
  const alpha = c.alpha == null ? '' : `, α ${fmtNum(c.alpha)}`;
  if (c.type === 'jlens_steer') s += `(${conceptLabel(c.token)}${alpha})`;
  if (c.type === 'jlens_ablate') s += `(${(c.tokens ?? []).map(conceptLabel).join(', ')})`;
  if (c.type === 'jlens_swap') s += `(${conceptLabel(c.source)} ⇄ ${conceptLabel(c.target)}${alpha})`;
  if (isSaeConfig(c)) {
    const sae = c.sae ?? '?';
    const feature = c.feature == null ? '' : ` #${c.feature}`;
    const value = c.value == null ? '' : c.type === 'sae_clamp' ? ` = ${fmtNum(c.value)}` : ` × ${fmtNum(c.value)}`;
    s += `(${sae}${c.type === 'sae_splice' ? '' : feature}${c.type === 'sae_clamp' || c.type === 'sae_steer' ? value : ''})`;
  }
  if (c.type === 'scale') s += `(${c.value == null ? '?' : fmtNum(c.value)})`;
  if (c.type === 'add' && Array.isArray(c.vector)) {
    const v = c.vector;
    const uniform = v.length > 0 && v.every((x) => x === v[0]);
    s += uniform ? `(${fmtNum(v[0])} ×${v.length})` : `([${v.slice(0, 3).map(fmtNum).join(', ')}${v.length > 3 ? ', …' : ''}] d=${v.length})`;
  }
  if (c.type === 'block_attention' && c.source_tokens && c.target_tokens) {
    s += ` (${c.source_tokens.join(',')} → ${c.target_tokens.join(',')})`;
  }
  if (c.token_index != null) s += ` @ Token ${c.token_index}`;
  if (c.all_layers) s += isJlensConfig(c) ? ' [EVERY LAYER THE LENS COVERS]' : ' [ALL LAYERS]';
  return s;
}

/** A readable name for a key ("layer_3_mlp_output" → "Layer 3 · MLP output"). */
export function describeKey(key: string): string {
  const loc: Record<string, string> = {
    output: 'block output',
    attn_output: 'attention output',
    mlp_output: 'MLP output',
    resid_pre: 'residual stream entering the layer',
    resid_mid: 'residual stream after attention',
  };
  const hooks: Record<string, string> = { ...loc, resid_post: 'block output', attn_out: 'attention output', mlp_out: 'MLP output' };
  if (key === 'embeddings' || key === 'hook_embed') return 'Embeddings';
  let h = /^blocks\.(\d+)\.hook_(resid_pre|resid_mid|resid_post|attn_out|mlp_out)$/.exec(key);
  if (h) return `Layer ${h[1]} · ${hooks[h[2]]}`;
  h = /^all_layers_(resid_pre|resid_mid)$/.exec(key);
  if (h) return `All layers · ${loc[h[1]]}`;
  let m = /^layer_(\d+)_(output|attn_output|mlp_output)$/.exec(key);
  if (m) return `Layer ${m[1]} · ${loc[m[2]]}`;
  m = /^all_layers_(output|attn_output|mlp_output)$/.exec(key);
  if (m) return `All layers · ${loc[m[1]]}`;
  m = /^layer_(\d+)_attention$/.exec(key);
  if (m) return `Layer ${m[1]} · attention`;
  if (/^all_layers_attention/.test(key)) return 'All layers · attention';
  return key;
}

/** Session configs may hold a single object instead of a list (legacy), or junk. */
export function normalizeInterventions(raw: unknown): Interventions {
  const out: Interventions = {};
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) return out;
  for (const [key, val] of Object.entries(raw as Record<string, unknown>)) {
    const list = Array.isArray(val) ? val : [val];
    const configs: InterventionConfig[] = [];
    for (const item of list) {
      if (!item || typeof item !== 'object') continue;
      const c = item as Record<string, unknown>;
      if (typeof c.type !== 'string') continue;
      const cfg: InterventionConfig = { type: c.type };
      if (typeof c.value === 'number') cfg.value = c.value;
      if (Array.isArray(c.vector)) cfg.vector = c.vector.filter((x): x is number => typeof x === 'number');
      if (typeof c.token_index === 'number') cfg.token_index = c.token_index;
      if (Array.isArray(c.source_tokens)) cfg.source_tokens = c.source_tokens.filter((x): x is number => typeof x === 'number');
      if (Array.isArray(c.target_tokens)) cfg.target_tokens = c.target_tokens.filter((x): x is number => typeof x === 'number');
      if (typeof c.all_layers === 'boolean') cfg.all_layers = c.all_layers;
      // The Jacobian lens's operations: their tokens (a string or an id) and strength.
      const concept = (v: unknown) => typeof v === 'string' || typeof v === 'number';
      if (concept(c.token)) cfg.token = c.token as string | number;
      if (Array.isArray(c.tokens)) cfg.tokens = c.tokens.filter((x): x is string | number => concept(x));
      if (concept(c.source)) cfg.source = c.source as string | number;
      if (concept(c.target)) cfg.target = c.target as string | number;
      if (typeof c.alpha === 'number') cfg.alpha = c.alpha;
      // An SAE's operations: which SAE (by name) and which of its features.
      if (typeof c.sae === 'string') cfg.sae = c.sae;
      if (typeof c.feature === 'number' && Number.isInteger(c.feature)) cfg.feature = c.feature;
      // A zero/block saved with the original's meaningless value 0 stays without it.
      if (cfg.type !== 'scale' && cfg.value === 0) delete cfg.value;
      configs.push(cfg);
    }
    if (configs.length > 0) out[key] = configs;
  }
  return out;
}

/** The layer a key names, or null for embeddings and all-layer keys. */
export function keyLayer(key: string): number | null {
  const m = /^layer_(\d+)_/.exec(key) ?? /^blocks\.(\d+)\./.exec(key);
  return m ? Number(m[1]) : null;
}

/** A warning for an intervention that cannot apply to the loaded model, or null. */
export function interventionWarning(key: string, c: InterventionConfig, ctx: InterventionContext): string | null {
  const l = keyLayer(key);
  if (l !== null && ctx.numLayers !== undefined && l >= ctx.numLayers) {
    return `layer ${l} does not exist in this model (${ctx.numLayers} layers)`;
  }
  if (isJlensConfig(c) && ctx.jlensLayers !== undefined) {
    if (ctx.jlensLayers === null) return 'it reads its directions from a Jacobian lens, and none is attached';
    if (l !== null && !ctx.jlensLayers.includes(l)) return `the Jacobian lens attached has no matrix for layer ${l} (it covers ${ctx.jlensLayers.length ? ctx.jlensLayers.join(', ') : 'none'})`;
  }
  if (isSaeConfig(c) && ctx.saes !== undefined) {
    const sae = ctx.saes.find((s) => s.name === c.sae);
    if (!sae) return `no SAE named “${c.sae ?? '?'}” is attached${ctx.saes.length ? ` (attached: ${ctx.saes.map((s) => s.name).join(', ')})` : ''}`;
    if (sae.hook !== key) return `${sae.name} reads ${sae.hook}, not ${key}`;
  }
  if (c.token_index != null) {
    const e = checkTokenIndex(c.token_index, ctx.seqLen, undefined, ctx.newTokens);
    if (e) return e.replace(/^Token index/, 'token index');
  }
  for (const t of [...(c.source_tokens ?? []), ...(c.target_tokens ?? [])]) {
    const e = checkTokenIndex(t, ctx.seqLen, 'token', ctx.newTokens);
    if (e) return e;
  }
  if (c.type === 'add' && ctx.hiddenSize !== undefined && Array.isArray(c.vector) && c.vector.length !== ctx.hiddenSize) {
    return `vector length ${c.vector.length} ≠ hidden size ${ctx.hiddenSize}`;
  }
  return null;
}

/** The attention layers a blocking key reaches, given the model's layer count. */
function blockLayers(key: string, c: InterventionConfig, numLayers: number): number[] {
  const all = Array.from({ length: numLayers }, (_, i) => i);
  if (/^all_layers_attention/.test(key)) return all;
  const m = /^layer_(\d+)_attention$/.exec(key) ?? /^blocks\.(\d+)\.attn\.hook_attn_scores$/.exec(key);
  if (!m) return [];
  if (c.all_layers) return all;
  const l = Number(m[1]);
  return l < numLayers ? [l] : [];
}

/**
 * Which (query, key) entries of each layer are blocked by the attention interventions:
 * `masks[layer]` has 1 at `query * seqLen + key`, or is null when nothing is blocked there.
 * Negative indices count back from `end`: the sequence's end, or a generation's prompt's end.
 */
export function blockedMasks(all: Interventions, numLayers: number, seqLen: number, end: number = seqLen): (Uint8Array | null)[] {
  const masks: (Uint8Array | null)[] = new Array(numLayers).fill(null);
  for (const [key, list] of Object.entries(all)) {
    for (const c of list) {
      if (c.type !== 'block_attention' || !c.source_tokens || !c.target_tokens) continue;
      const layers = blockLayers(key, c, numLayers);
      for (const l of layers) {
        let mask = masks[l];
        for (const t of c.target_tokens) {
          const q = resolveIndex(t, end);
          if (q < 0 || q >= seqLen) continue;
          for (const s of c.source_tokens) {
            const k = resolveIndex(s, end);
            if (k < 0 || k >= seqLen) continue;
            if (!mask) mask = masks[l] = new Uint8Array(seqLen * seqLen);
            mask[q * seqLen + k] = 1;
          }
        }
      }
    }
  }
  return masks;
}

/**
 * For each entry, at how many of `layers` it is blocked (null when none is blocked anywhere).
 * Counts saturate at 255.
 */
export function unionMasks(masks: (Uint8Array | null)[], layers: number[]): Uint8Array | null {
  let out: Uint8Array | null = null;
  for (const l of layers) {
    const m = masks[l];
    if (!m) continue;
    if (!out) out = new Uint8Array(m.length);
    for (let i = 0; i < m.length; i++) if (m[i] && out[i] < 255) out[i] += 1;
  }
  return out;
}

/** Number of configs over all keys. */
export function countInterventions(all: Interventions): number {
  return Object.values(all).reduce((n, l) => n + l.length, 0);
}
