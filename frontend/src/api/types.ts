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

export interface InferenceRequest {
  text: string;
  interventions: Interventions;
  lens_type: LensType;
  apply_chat_template: boolean;
  return_attention: boolean;
}

export interface InferenceResponse {
  text: string;
  input_tokens?: string[];
  logit_lens: LensRow[];
  /** [layer][head][query][key] */
  attention?: number[][][][] | null;
  /** From the `x-logitlens-run-id` header: lets /save_state save this very run. */
  run_id?: number;
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
