// JSON shapes of the logitlens server. Whatever its OpenAPI schema describes is an alias of the
// type generated from it (schema.d.ts, `npm run gen:api`), so a server change shows up as a type
// error in the app rather than as a surprise at run time. The schema is looser than the app in
// places (lens type, attention format and reduce are plain strings; most request fields are
// optional): the app narrows what it sends in `RunRequest` and checks what it reads back.
import type { components } from './schema';

type Schemas = components['schemas'];

// ---------------------------------------------------------------------------------------------
// From the schema.

/** POST /inference body. */
export type InferenceRequest = Schemas['InferenceRequest'];
/** POST /inference answer (the run id comes in a header: see `InferenceResult`). */
export type InferenceResponse = Schemas['InferenceResponse'];
export type InterventionConfig = Schemas['InterventionConfig'];
/** Intervention key (`layer_1_output`, `blocks.0.attn.hook_attn_scores`…) → its operations. */
export type Interventions = NonNullable<InferenceRequest['interventions']>;
export type LensRow = Schemas['LensRow'];
export type Prediction = Schemas['Prediction'];
/** What interventions did to one lens cell, measured on the baseline's top-1 token. */
export type DiffCell = Schemas['DiffCell'];
/** One tracked token in one cell. */
export type TrackedProb = Schemas['TrackedCell'];
/** Residual-stream measurements: [row][position] over lens rows, [layer][position] over layers. */
export type ActivationAnalysis = Schemas['Analysis'];
/** One operation the server applied for an intervention. */
export type Receipt = Schemas['Receipt'];
/** Attention as base64 of little-endian half floats, [layers.length][heads][query][key]. */
export type PackedAttention = Schemas['Packed'];
/** One entry of GET /models. */
export type ModelEntry = Schemas['ModelEntry'];
/** The load in progress, in /model_status and /events. */
export type LoadingInfo = Schemas['LoadingStatus'];
export type SessionEntry = Schemas['SessionEntry'];
export type LoadModelRequest = Schemas['LoadModelRequest'];
export type SaveStateRequest = Schemas['SaveStateRequest'];
/** POST /load_session and /delete_session body. */
export type SessionRequest = Schemas['SessionRequest'];
export type DiffSessionsRequest = Schemas['DiffSessionsRequest'];
export type VisualizationRequest = Schemas['VisualizationRequest'];
export type GridVisualizationRequest = Schemas['GridVisualizationRequest'];

// ---------------------------------------------------------------------------------------------
// Hand-written until the schema describes them: each becomes an alias above once it does.

// not in the schema yet (an enum to come)
export type Backend = 'custom' | 'hooked';

// not in the schema yet (an enum to come; the request's `lens_type` is a plain string)
export type LensType = 'block_output' | 'post_attention' | 'combined';

// not in the schema yet (an enum to come)
/** `json`: the nested `attention` field; `f16`: the packed `attention_f16` field. */
export type AttentionFormat = 'json' | 'f16';

// not in the schema yet (a plain string there)
/** `head_mean` averages the heads of each layer server-side (the head dimension becomes 1). */
export type AttentionReduce = 'none' | 'head_mean';

// not in the schema yet (its items are untyped)
/** A token to track: a token string (exactly one token, " Paris" with its space), or a token id. */
export type TrackToken = string | number;

// not in the schema yet
/** GET /model_status, and each "status" event of GET /events. */
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

// not in the schema yet
/** POST /load_model: the loaded model's status, `status` "loaded" or "already_loaded". */
export type LoadModelResponse = ModelStatus & { status: string };

// not in the schema yet
/** POST /save_state. */
export interface SaveStateResponse {
  status: string;
  session_id: string;
  path: string;
}

// not in the schema yet
/** POST /delete_session. */
export interface DeleteSessionResponse {
  status: string;
}

// not in the schema yet
/** POST /save_visualization and /save_grid_visualization. */
export interface SaveResult {
  status: string;
  filepath: string;
}

// not in the schema yet
/** GET /runs/{run_id}/attention with `format=f16`. */
export type RunAttentionF16 = PackedAttention & { run_id: number };

// not in the schema yet
/** GET /runs/{run_id}/attention with `format=json` (the default): [layer][head][query][key]. */
export type RunAttentionJson = Omit<PackedAttention, 'data'> & { run_id: number; attention: number[][][][] };

// not in the schema yet
/** POST /load_session: the saved session as the original tool wrote it (fields may be missing). */
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

// not in the schema yet
/** One side of POST /diff_sessions. */
export interface SessionDiffSide {
  session_id: string;
  model_name: string;
  lens_type: string;
}

// not in the schema yet
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

// ---------------------------------------------------------------------------------------------
// The client's own types (never in the schema).

/** What the app sends to /inference: the fields it always sets, narrowed to the values it uses. */
export interface RunRequest extends InferenceRequest {
  interventions: Interventions;
  lens_type: LensType;
  apply_chat_template: boolean;
  return_attention: boolean;
  attention_format?: AttentionFormat;
  attention_layers?: number[];
  attention_reduce?: AttentionReduce;
  track_tokens?: TrackToken[];
}

/** /inference's answer with the `x-logitlens-run-id` header, which lets /save_state save that very run. */
export type InferenceResult = InferenceResponse & { run_id?: number };

/** The query of GET /runs/{run_id}/attention; absent options take the server's defaults. */
export interface RunAttentionQuery<F extends AttentionFormat = AttentionFormat> {
  /** Model layer indices; all layers when absent. */
  layers?: number[];
  format?: F;
  reduce?: AttentionReduce;
}
