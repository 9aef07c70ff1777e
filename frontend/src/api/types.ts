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
