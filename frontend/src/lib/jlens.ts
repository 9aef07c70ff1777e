// The interventions read from a Jacobian lens, on block outputs at the layers it covers: steer
// toward a token (add α × the stream's median norm along its unit lens vector), ablate tokens
// (project the span of their lens vectors out), swap two tokens (exchange their coordinates). The
// form's values checked and built into the key and operation /inference and /generate take.
import type { ConceptToken, InterventionConfig } from '../api/types';
import { checkTokenIndex, parseInteger, parseNumber, type InterventionContext, type Result } from './interventions';
import { layersText } from './lenses';

export type JlensOp = 'jlens_steer' | 'jlens_ablate' | 'jlens_swap';

export const JLENS_OPS: { value: JlensOp; label: string; help: string }[] = [
  {
    value: 'jlens_steer',
    label: 'Steer toward a token',
    help: 'Adds α × the median norm of the stream along the token’s lens vector: the state moves the way that raises the token at the output.',
  },
  {
    value: 'jlens_ablate',
    label: 'Ablate tokens',
    help: 'Projects the span of the tokens’ lens vectors out of the stream: what the layer says about them is removed.',
  },
  {
    value: 'jlens_swap',
    label: 'Swap two tokens',
    help: 'Exchanges the stream’s coordinates along the source’s and the target’s lens vectors: α 1 swaps them, 2 is the paper’s double strength.',
  },
];

export function isJlensOp(v: unknown): v is JlensOp {
  return JLENS_OPS.some((o) => o.value === v);
}

/** The server's limit on the tokens of one ablation. */
export const MAX_ABLATED = 256;

/** The default strength of a steer and a swap (the paper's). */
export const DEFAULT_ALPHA = '2';

/** α as typed: a finite number other than 0 (which would change nothing). */
export function parseAlpha(text: string): Result<number> {
  const a = parseNumber(text);
  if (a === null) return { ok: false, error: 'α must be a number (e.g. 2; negative steers away from the token)' };
  if (a === 0) return { ok: false, error: 'α 0 changes nothing: give a strength such as 2 (negative steers away)' };
  return { ok: true, value: a };
}

export interface JlensFormValues {
  op: JlensOp;
  /** A layer the lens covers, as text. */
  layer: string;
  /** Every layer the lens covers. */
  allLayers: boolean;
  tokenIndex: string;
  alpha: string;
  /** The steered token (checked to be one token), or null while its field says why not. */
  token: ConceptToken | null;
  /** The ablated tokens, or null while their field says why not. */
  tokens: ConceptToken[] | null;
  source: ConceptToken | null;
  target: ConceptToken | null;
}

/** What the J-lens form checks against: the model and input as other interventions, and the layers the lens covers (null: none attached). */
export interface JlensContext extends InterventionContext {
  covered: readonly number[] | null;
}

/** Why a J-lens operation cannot be added: no lens attached (else null). */
export function jlensUnavailable(covered: readonly number[] | null): string | null {
  if (covered === null) return 'Attach a Jacobian lens (Lenses in the header) or fit one in the Jacobian lens view to steer, ablate or swap along its lens vectors.';
  if (covered.length === 0) return 'The Jacobian lens attached covers no layer: nothing to steer, ablate or swap.';
  return null;
}

/**
 * Checks the form and builds its key and operation: `layer_{l}_output` at a layer the lens covers,
 * or `all_layers_output` with `all_layers` (every layer it covers); the tokens as the fields read
 * them (a string that is exactly one token, or an id); α where it applies; the token index.
 */
export function buildJlensIntervention(form: JlensFormValues, ctx: JlensContext): Result<{ key: string; config: InterventionConfig }> {
  const unavailable = jlensUnavailable(ctx.covered);
  if (unavailable) return { ok: false, error: unavailable };
  const covered = ctx.covered ?? [];
  let key = 'all_layers_output';
  if (!form.allLayers) {
    const l = parseInteger(form.layer);
    if (l === null || l < 0) return { ok: false, error: 'Choose a layer the Jacobian lens covers' };
    if (!covered.includes(l)) return { ok: false, error: `The Jacobian lens has no matrix for layer ${l}: it covers ${layersText(covered)}` };
    key = `layer_${l}_output`;
  }
  const config: InterventionConfig = { type: form.op };
  if (form.op === 'jlens_steer') {
    if (form.token === null) return { ok: false, error: 'Type the token to steer toward: a token string (␣Paris is " Paris") or a token id' };
    config.token = form.token;
  } else if (form.op === 'jlens_ablate') {
    if (form.tokens === null || form.tokens.length === 0) return { ok: false, error: 'Type the tokens to ablate: comma-separated token strings or ids' };
    if (form.tokens.length > MAX_ABLATED) return { ok: false, error: `At most ${MAX_ABLATED} tokens can be ablated at once (this is ${form.tokens.length})` };
    config.tokens = form.tokens;
  } else {
    if (form.source === null || form.target === null) return { ok: false, error: 'Type the two tokens to swap: a token string or a token id each' };
    if (form.source === form.target) return { ok: false, error: 'The source and the target are the same token: a swap of a coordinate with itself changes nothing' };
    config.source = form.source;
    config.target = form.target;
  }
  if (form.op !== 'jlens_ablate') {
    const a = parseAlpha(form.alpha);
    if (!a.ok) return a;
    config.alpha = a.value;
  }
  if (form.tokenIndex.trim() !== '') {
    const ti = parseInteger(form.tokenIndex);
    if (ti === null) return { ok: false, error: `Token index "${form.tokenIndex.trim()}" is not an integer (negative counts from the end)` };
    const err = checkTokenIndex(ti, ctx.seqLen, undefined, ctx.newTokens);
    if (err) return { ok: false, error: err };
    config.token_index = ti;
  }
  config.all_layers = form.allLayers;
  return { ok: true, value: { key, config } };
}
