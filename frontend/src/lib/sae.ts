// Sparse autoencoders in the app: where each readout's row goes in the grid (after the lens row it
// reads, `row`), what a cell and its tooltip say, the SAE intervention form's checks and the
// operations it builds, the corpus fields (a text or sampled documents) and the quality table's
// numbers.
import type { AttachedSae, InterventionConfig, LensRow, SaePosition, SaeQuality, SaeReadout } from '../api/types';
import { diverging, type RGB } from './colors';
import { countDocuments } from './lensEval';
import { checkTokenIndex, parseInteger, parseNumber, type InterventionContext, type Result } from './interventions';
import { formatBytes } from './models';

/** An activation as the grid shows it: 3 significant digits, integers as they are. */
export function formatAct(a: number): string {
  if (!Number.isFinite(a)) return String(a);
  if (a === 0) return '0';
  const abs = Math.abs(a);
  if (abs >= 1000 || abs < 0.001) return a.toExponential(2);
  return String(Number(a.toPrecision(3)));
}

/** The grid's rows in order: each lens row, then the readouts that sit under it. */
export interface SaePlacement {
  /** Lens row index → the readouts placed right after it, in the answer's order. */
  after: Map<number, SaeReadout[]>;
  /** Readouts whose row is not in the grid (another lens type's row): shown after the last row. */
  unplaced: SaeReadout[];
}

/** Places each readout after the lens row whose `layer_name` is its `row`. */
export function placeSaeRows(rows: readonly LensRow[], readouts: readonly SaeReadout[]): SaePlacement {
  const index = new Map<string, number>();
  rows.forEach((r, i) => {
    if (!index.has(r.layer_name)) index.set(r.layer_name, i);
  });
  const after = new Map<number, SaeReadout[]>();
  const unplaced: SaeReadout[] = [];
  for (const s of readouts) {
    const i = index.get(s.row);
    if (i === undefined) unplaced.push(s);
    else after.set(i, [...(after.get(i) ?? []), s]);
  }
  return { after, unplaced };
}

/** The strongest feature of a position, or null when none is active. */
export function topFeature(p: SaePosition | undefined): { id: number; act: number } | null {
  const f = p?.features[0];
  return f && f.act > 0 ? f : null;
}

/** The largest top-feature activation of a readout (what its cells are shaded against); 0 when none fires. */
export function readoutMax(s: SaeReadout): number {
  let m = 0;
  for (const p of s.positions) {
    const f = topFeature(p);
    if (f && f.act > m) m = f.act;
  }
  return m;
}

/** A cell's shade: its top activation ÷ the row's largest, in 0..1. */
export function saeShade(act: number, max: number): number {
  if (!(max > 0) || !(act > 0)) return 0;
  return Math.min(1, act / max);
}

/** What a cell's tooltip lists: every feature listed (`#id act`), L0 and the reconstruction error. */
export function saeTooltipLines(p: SaePosition): { features: string[]; l0: string; recon: string } {
  return {
    features: p.features.map((f) => `#${f.id} ${formatAct(f.act)}`),
    l0: `L0 ${p.l0}`,
    recon: `reconstruction error ${formatAct(p.recon_error)}`,
  };
}

/** A cell's accessible name: the SAE, position, top feature and L0. */
export function saeCellLabel(s: SaeReadout, pos: number, token: string | undefined): string {
  const p = s.positions[pos];
  const top = topFeature(p);
  const at = `${s.name} at position ${pos}${token !== undefined ? ` (${JSON.stringify(token)})` : ''}`;
  if (!p) return at;
  return `${at}: ${top ? `top feature #${top.id} ${formatAct(top.act)}` : 'no feature active'}, L0 ${p.l0}`;
}

/** An attached SAE in one line: "hook · topk (k 12) · 64→256 · float32 · 128 KiB". */
export function saeSummary(s: AttachedSae): string {
  const arch = s.k != null ? `${s.architecture} (k ${s.k})` : s.architecture;
  return `${s.hook} · ${arch} · ${s.d_in}→${s.d_sae} · ${s.dtype} · ${formatBytes(s.bytes)}`;
}

// ---------------------------------------------------------------------------------------------
// Interventions through an SAE.

export type SaeOp = 'sae_splice' | 'sae_ablate' | 'sae_clamp' | 'sae_steer';

export const SAE_OPS: { value: SaeOp; label: string; help: string }[] = [
  { value: 'sae_splice', label: 'Splice (reconstruction)', help: 'Replaces the activation at the SAE’s hook with its reconstruction: what the SAE misses is dropped.' },
  { value: 'sae_ablate', label: 'Ablate a feature', help: 'Removes the feature: its activation × its decoder row is taken out of the activation.' },
  { value: 'sae_clamp', label: 'Clamp a feature', help: 'Sets the feature’s activation to the value: the difference × its decoder row is added.' },
  { value: 'sae_steer', label: 'Steer along a feature', help: 'Adds the value × the feature’s decoder row to the activation.' },
];

export function isSaeOp(v: unknown): v is SaeOp {
  return SAE_OPS.some((o) => o.value === v);
}

export interface SaeFormValues {
  /** An attached SAE's name. */
  sae: string;
  op: SaeOp;
  feature: string;
  value: string;
  tokenIndex: string;
}

/** The SAEs the form checks against: the attached ones (empty: none). */
export interface SaeContext extends InterventionContext {
  attached: readonly Pick<AttachedSae, 'name' | 'hook' | 'd_sae'>[];
}

/** Why no SAE operation can be added (none attached), or null. */
export function saeUnavailable(attached: readonly unknown[]): string | null {
  return attached.length === 0 ? 'Attach an SAE (SAEs in the header) to splice it in, or to ablate, clamp or steer its features.' : null;
}

/**
 * Checks the form and builds its key and operation: the key is the SAE's hook, the operation names
 * the SAE, its feature (in 0..d_sae−1), its value (clamp: the activation to set; steer: the
 * coefficient) and the token index.
 */
export function buildSaeIntervention(form: SaeFormValues, ctx: SaeContext): Result<{ key: string; config: InterventionConfig }> {
  const unavailable = saeUnavailable(ctx.attached);
  if (unavailable) return { ok: false, error: unavailable };
  const sae = ctx.attached.find((s) => s.name === form.sae);
  if (!sae) return { ok: false, error: form.sae ? `No SAE named “${form.sae}” is attached (attached: ${ctx.attached.map((s) => s.name).join(', ')})` : 'Choose an SAE' };
  const config: InterventionConfig = { type: form.op, sae: sae.name };
  if (form.op !== 'sae_splice') {
    const f = parseInteger(form.feature);
    if (f === null) return { ok: false, error: form.feature.trim() === '' ? 'Type the feature: its index in the SAE' : `Feature “${form.feature.trim()}” is not a whole number` };
    if (f < 0 || f >= sae.d_sae) return { ok: false, error: `Feature ${f} does not exist: ${sae.name} has ${sae.d_sae} features (0..${sae.d_sae - 1})` };
    config.feature = f;
  }
  if (form.op === 'sae_clamp' || form.op === 'sae_steer') {
    const v = parseNumber(form.value);
    if (v === null) return { ok: false, error: form.op === 'sae_clamp' ? 'Clamp needs the activation to set (a number, e.g. 5)' : 'Steer needs a coefficient (a number, e.g. 4; negative steers away)' };
    if (form.op === 'sae_steer' && v === 0) return { ok: false, error: 'A coefficient of 0 changes nothing: give one such as 4 (negative steers away)' };
    config.value = v;
  }
  if (form.tokenIndex.trim() !== '') {
    const ti = parseInteger(form.tokenIndex);
    if (ti === null) return { ok: false, error: `Token index "${form.tokenIndex.trim()}" is not an integer (negative counts from the end)` };
    const err = checkTokenIndex(ti, ctx.seqLen, undefined, ctx.newTokens);
    if (err) return { ok: false, error: err };
    config.token_index = ti;
  }
  return { ok: true, value: { key: sae.hook, config } };
}

// ---------------------------------------------------------------------------------------------
// Corpora (a feature's scan, an evaluation): a text, or documents the model samples.

export type CorpusChoice = { kind: 'text'; text: string } | { kind: 'sample'; count: string };

/** The corpus fields of a request, or why they cannot be sent. */
export function corpusFields(c: CorpusChoice): Result<{ corpus: string } | { sample: number }> {
  if (c.kind === 'text') {
    if (countDocuments(c.text) === 0) return { ok: false, error: 'Choose a .txt file first: one document per line' };
    return { ok: true, value: { corpus: c.text } };
  }
  const n = parseInteger(c.count);
  if (n === null || n < 1) return { ok: false, error: 'The number of documents to sample must be a whole number of at least 1' };
  return { ok: true, value: { sample: n } };
}

/** A share as a percentage with sensible digits (0.0123 → "1.23%"). */
export function formatShare(x: number): string {
  const p = x * 100;
  if (p === 0) return '0%';
  return `${p >= 10 ? p.toFixed(1) : p >= 0.1 ? p.toFixed(2) : p.toPrecision(2)}%`;
}

/** One line of the SAE quality table, in words and numbers. */
export interface SaeQualityCells {
  name: string;
  hook: string;
  deltaCe: string;
  lossRecovered: string;
  kl: string;
  ev: string;
  mse: string;
  l0: string;
  dead: string;
}

const fix = (n: number, d = 4) => (Number.isFinite(n) ? n.toFixed(d) : String(n));

export function saeQualityCells(q: SaeQuality): SaeQualityCells {
  return {
    name: q.name,
    hook: q.hook,
    deltaCe: `${q.delta_ce >= 0 ? '+' : ''}${fix(q.delta_ce)}`,
    lossRecovered: q.ce_loss_score == null ? '—' : formatShare(q.ce_loss_score),
    kl: fix(q.kl),
    ev: fix(q.explained_variance, 3),
    mse: formatAct(q.mse),
    l0: q.mean_l0.toFixed(1),
    dead: `${q.dead_features} / ${q.d_sae}`,
  };
}

/** A cell's colour: the slate of an empty cell at 0, warmer and lighter toward the row's largest activation. */
export function saeCellColor(act: number, max: number): RGB {
  return diverging(saeShade(act, max));
}
