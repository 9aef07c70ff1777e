// JSON shapes of the logitlens server (the original tool's REST API plus /models and /events).

export type Backend = 'custom' | 'hooked';

export type LensType = 'block_output' | 'post_attention' | 'combined';

export interface LoadingInfo {
  model_name: string;
  backend: string;
  stage: 'resolving' | 'downloading' | 'loading_tensors' | 'ready' | string;
  file?: string | null;
  bytes?: number | null;
  total_bytes?: number | null;
  tensors_done?: number | null;
  tensors_total?: number | null;
  progress?: number | null;
}

export interface ModelStatus {
  loaded: boolean;
  backend?: string;
  model_name?: string;
  model_class?: string;
  config?: string;
  num_layers?: number;
  hidden_size?: number;
  num_heads?: number;
  vocab_size?: number;
  instruct?: boolean;
  has_chat_template?: boolean;
  status?: 'idle' | 'loading' | 'ready' | string;
  loading?: LoadingInfo | null;
  last_error?: string | null;
}

export interface ModelEntry {
  id: string;
  name: string;
  family: string;
  size?: string | null;
  bytes?: number | null;
  cached: boolean;
  source: string;
  backends: string[];
  instruct: boolean;
}

export interface InterventionConfig {
  type: 'zero' | 'scale' | 'add' | 'block_attention' | string;
  value?: number | null;
  vector?: number[] | null;
  token_index?: number | null;
  source_tokens?: number[] | null;
  target_tokens?: number[] | null;
  all_layers?: boolean | null;
}

export type Interventions = Record<string, InterventionConfig[]>;

export interface Prediction {
  token: string;
  prob: number;
  id: number;
}

export interface LensRow {
  layer_index: number;
  layer_name: string;
  /** [position][rank], 5 per position */
  predictions: Prediction[][];
}

/** `json`: the nested `attention` field; `f16`: the packed `attention_f16` field. */
export type AttentionFormat = 'json' | 'f16';

/** `head_mean` averages the heads of each layer server-side (the head dimension becomes 1). */
export type AttentionReduce = 'none' | 'head_mean';

export interface InferenceRequest {
  text: string;
  interventions: Interventions;
  lens_type: LensType;
  apply_chat_template: boolean;
  return_attention: boolean;
  /** The attention options below are only accepted with `return_attention: true`. */
  attention_format?: AttentionFormat;
  /** Model layer indices; all layers when absent. */
  attention_layers?: number[];
  attention_reduce?: AttentionReduce;
  /** Also run the text without interventions: adds `baseline_logit_lens` and `diff`. */
  compare?: boolean;
  /** Token strings (exactly one token each: " Paris" with its space) or ids; at most 16. */
  track_tokens?: TrackToken[];
  /** Adds `entropy` (nats) of every cell's full distribution. */
  entropy?: boolean;
  /** Adds `analysis`: norms and cosines of the residual stream. */
  analysis?: boolean;
}

/** A token to track: a token string, or a token id. */
export type TrackToken = string | number;

/** What interventions did to one lens cell, measured on the baseline's top-1 token. */
export interface DiffCell {
  /** the baseline's top-1 token id */
  baseline_id: number;
  /** its probability without the interventions */
  baseline_prob: number;
  /** its probability with them */
  prob: number;
  /** the top-1 token id with the interventions */
  top_id: number;
  /** prob - baseline_prob */
  delta_prob: number;
  /** rank of the baseline's top-1 with the interventions (0 = still top) */
  rank: number;
  /** KL(baseline || intervened), nats */
  kl: number;
}

/** One tracked token in one cell. */
export interface TrackedProb {
  id: number;
  token: string;
  prob: number;
  /** 0 = top */
  rank: number;
}

/** Residual-stream measurements: [row][position] over lens rows, [layer][position] over layers. */
export interface ActivationAnalysis {
  resid_norm: number[][];
  /** null in row 0: it has no previous row */
  cos_prev: (number | null)[][];
  cos_final: number[][];
  attn_out_norm: number[][];
  mlp_out_norm: number[][];
}

/** One operation the server applied for an intervention. */
export interface Receipt {
  /** the request's intervention key, e.g. "layer_1_output" */
  key: string;
  /** where it applied, e.g. "blocks.1.hook_resid_post" */
  hook: string;
  /** null for the embeddings */
  layer: number | null;
  positions: number[];
  /** elements changed (attention blocking: score entries set to -inf) */
  elements: number;
  /** L2 norm of the change (blocking: of the layer's attention pattern) */
  delta_norm: number | null;
}

/** The shape of an attention payload; `heads` is 1 when `reduce` is `head_mean`. */
export interface AttentionShape {
  /** model layer index of each packed layer, in order */
  layers: number[];
  heads: number;
  tokens: number;
  reduce: AttentionReduce;
}

/**
 * Attention as base64 (standard alphabet, padded) of little-endian IEEE-754 half floats,
 * row-major [layers.length][heads][tokens (query)][tokens (key)].
 */
export interface PackedAttention extends AttentionShape {
  data: string;
}

export interface InferenceResponse {
  text: string;
  input_tokens?: string[];
  logit_lens: LensRow[];
  /** [layer][head][query][key] (`attention_format: "json"`) */
  attention?: number[][][][] | null;
  /** Present instead of `attention` with `attention_format: "f16"`. */
  attention_f16?: PackedAttention | null;
  /** From the `x-logitlens-run-id` header: lets /save_state save this very run. */
  run_id?: number;
  /** With `compare`: the same text without interventions. */
  baseline_logit_lens?: LensRow[] | null;
  /** With `compare`: [row][position]. */
  diff?: DiffCell[][] | null;
  /** With `track_tokens`: [row][position][k], k the index in `track_tokens`. */
  tracked?: TrackedProb[][][] | null;
  /** With `entropy`: [row][position], nats. */
  entropy?: number[][] | null;
  /** With `analysis`. */
  analysis?: ActivationAnalysis | null;
  /** One per applied operation (empty without interventions); absent from older servers. */
  receipts?: Receipt[] | null;
}

/** GET /runs/{run_id}/attention with `format=f16`. */
export interface RunAttentionF16 extends PackedAttention {
  run_id: number;
}

/** GET /runs/{run_id}/attention with `format=json` (the default). */
export interface RunAttentionJson extends AttentionShape {
  run_id: number;
  /** [layer][head][query][key] */
  attention: number[][][][];
}

export interface RunAttentionQuery<F extends AttentionFormat = AttentionFormat> {
  /** Model layer indices; all layers when absent. */
  layers?: number[];
  format?: F;
  reduce?: AttentionReduce;
}

export interface SessionEntry {
  id: string;
  name: string;
  timestamp: string;
}

export interface SessionConfig {
  text?: string;
  interventions?: Record<string, InterventionConfig[] | InterventionConfig>;
  lens_type?: string;
  model_name?: string;
  backend?: string;
  apply_chat_template?: boolean;
  results?: { text?: string; logit_lens?: LensRow[] } | null;
  input_tokens?: string[];
  input_ids?: number[];
  return_attention?: boolean;
  [extra: string]: unknown;
}

export interface SaveResult {
  status: string;
  filepath: string;
}

/** One side of POST /diff_sessions. */
export interface SessionDiffSide {
  session_id: string;
  model_name: string;
  lens_type: string;
}

/** POST /diff_sessions: `a` is the baseline. */
export interface SessionDiffResponse {
  a: SessionDiffSide;
  b: SessionDiffSide;
  input_tokens: string[];
  layer_names: string[];
  a_logit_lens: LensRow[];
  b_logit_lens: LensRow[];
  /** [row][position] */
  diff: DiffCell[][];
}
