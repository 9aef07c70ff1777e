// JSON shapes of the logitlens server. Every request and response body is an alias of the type
// generated from its OpenAPI schema (schema.d.ts, `npm run gen:api`), so a server change shows up
// as a type error in the app rather than as a surprise at run time. The names are the schema's,
// except where the app's read better (noted). Only the last block is the client's own: shapes the
// server never sends or receives as such.
import type { components, operations } from './schema';

type Schemas = components['schemas'];

// ---------------------------------------------------------------------------------------------
// Enums. Local constants (labels, the options of a select) are typed by these, so a value the
// server adds or drops is a type error where the app lists them.

/** `transformerlens` is the original tool's name for `hooked`: the server echoes whichever was sent. */
export type Backend = Schemas['Backend'];
export type LensType = Schemas['LensType'];
/** `json`: the nested `attention` field; `f16`: the packed `attention_f16` field. (Schema: `Format`.) */
export type AttentionFormat = Schemas['Format'];
/** `head_mean` averages the heads of each layer server-side (the head dimension becomes 1). (Schema: `Reduce`.) */
export type AttentionReduce = Schemas['Reduce'];
/** Where a model load is. */
export type LoadStage = Schemas['LoadStage'];
/** Whether a model is in service, loading, or neither. */
export type ServiceState = Schemas['ServiceState'];
/** /load_model: loaded now, or found already in service. */
export type LoadOutcome = Schemas['LoadOutcome'];
/** What a run is doing: waiting for its turn, the forward pass, the lens; an evaluation's documents; a sweep's patched runs; a generation's tokens written. */
export type RunStage = Schemas['RunStage'];
/** Which lens draws the rows: the logit lens, or the tuned or Jacobian lens attached to the model. */
export type Lens = Schemas['Lens'];

// ---------------------------------------------------------------------------------------------
// POST /inference.

/** POST /inference body. */
export type InferenceRequest = Schemas['InferenceRequest'];
/** POST /inference answer (the run id comes in a header: see `InferenceResult`). */
export type InferenceResponse = Schemas['InferenceResponse'];
export type InterventionConfig = Schemas['InterventionConfig'];
/** Intervention key (`layer_1_output`, `blocks.0.attn.hook_attn_scores`…) → its operations. */
export type Interventions = NonNullable<InferenceRequest['interventions']>;
/** A token to track: a token string (exactly one token, " Paris" with its space), or a token id. */
export type TrackToken = Schemas['TrackToken'];
export type LensRow = Schemas['LensRow'];
export type Prediction = Schemas['Prediction'];
/** What interventions did to one lens cell, measured on the baseline's top-1 token. */
export type DiffCell = Schemas['DiffCell'];
/** One tracked token in one cell. (Schema: `TrackedCell`.) */
export type TrackedProb = Schemas['TrackedCell'];
/** Residual-stream measurements: [row][position] over lens rows, [layer][position] over layers. (Schema: `Analysis`.) */
export type ActivationAnalysis = Schemas['Analysis'];
/** One operation the server applied for an intervention. */
export type Receipt = Schemas['Receipt'];
/** Attention as base64 of little-endian half floats, [layers.length][heads][query][key]. (Schema: `Packed`.) */
export type PackedAttention = Schemas['Packed'];
/**
 * A "run" event of GET /events: the progress of the run of the request whose
 * `x-logitlens-request` header was `request`. `done` of `total` layers (forward), lens states
 * (lens), or for `queued` the runs waiting ahead.
 */
export type RunProgress = Schemas['RunProgress'];

// ---------------------------------------------------------------------------------------------
// POST /generate.

/**
 * POST /generate body: /inference's fields (the text is the prompt) and how far to write. Token
 * indices of interventions count over the whole sequence, negative ones back from the prompt's
 * end. (Schema: `GenerateQuery`.)
 */
export type GenerateRequest = Schemas['GenerateQuery'];
/** POST /generate answer: the /inference body over prompt and written tokens, and what was written. */
export type GenerateResponse = Schemas['GenerateResponse'];
/** What a generation wrote: ids, text, the prompt's token count, whether it stopped at eos, the baseline's own. */
export type Written = Schemas['Written'];
/** With `compare` and interventions: what the model writes without them, and where the two part. (Schema: `BaselineAnswer`.) */
export type BaselineGeneration = Schemas['BaselineAnswer'];
/** One line of a streamed /generate: a pass (`step`), the whole answer (`done`), or a failure (`error`). */
export type GenerateEvent = Schemas['GenerateEvent'];
/** A pass: the token it chose (null on the last), and the lens rows over the positions it ran from `start`. */
export type GenerateStep = Extract<GenerateEvent, { type: 'step' }>;

// ---------------------------------------------------------------------------------------------
// POST /tokenize, POST /patch, and /inference's direct logit attribution.

/** POST /tokenize body: `add_special_tokens` (default true) adds the BOS; false reads a bare token string. */
export type TokenizeRequest = Schemas['TokenizeRequest'];
/** POST /tokenize answer: the ids and each token decoded on its own. */
export type TokenizeResponse = Schemas['TokenizeResponse'];
/**
 * Where a sweep patches. The schema's `hook` is any string (the server also reads
 * `blocks.{l}.hook_resid_pre`, and answers with the short name); these are the app's choices.
 */
export type PatchHook = 'resid_pre' | 'resid_mid' | 'attn_out' | 'mlp_out' | 'resid_post';
/** What a sweep measures on the last position's logits; tokens are an id or a string of exactly one token. (Schema: `MetricQuery`.) */
export type PatchMetric = Schemas['MetricQuery'];
/** The metric as the server resolved it: ids, and their tokens decoded. (Schema: `MetricAnswer`.) */
export type ResolvedPatchMetric = Schemas['MetricAnswer'];
/** POST /patch body; `positions` "all" or a list, negative from the end. (Schema: `PatchQuery`.) */
export type PatchRequest = Schemas['PatchQuery'];
/**
 * POST /patch answer. `values[l][j]`: the metric of the corrupted run with the hook's activation at
 * layer l, position `positions[j]`, taken from the clean run; `normalized` is (values − corrupted) /
 * (clean − corrupted), null when clean = corrupted.
 */
export type PatchResponse = Schemas['PatchResponse'];
/** /inference's `attribution`: the logit of `token` at `position` (default -1, negative from the end). (Schema: `AttributionQuery`.) */
export type AttributionRequest = Schemas['AttributionQuery'];
/**
 * Direct logit attribution: embed + Σ attn + Σ mlp + rest = logit; Σ_h heads[l][h] is attn[l]
 * without the attention output bias. (Schema: `AttributionAnswer`.)
 */
export type Attribution = Schemas['AttributionAnswer'];

// ---------------------------------------------------------------------------------------------
// GET /runs/{run_id}/attention.

/** The answer: the nested form (`attention`, format=json) or the packed one (`data`, format=f16). */
export type RunAttention = Schemas['RunAttention'];
/** The query parameters as the schema states them (`layers` comma-separated). */
export type RunAttentionParams = NonNullable<operations['run_attention']['parameters']['query']>;

// ---------------------------------------------------------------------------------------------
// The model: GET /models, /model_status, /events, POST /load_model.

/** One entry of GET /models. */
export type ModelEntry = Schemas['ModelEntry'];
/** A loaded model: its name, family, sizes, chat template, where its weights came from. */
export type ModelDescription = Schemas['ModelDescription'];
export type ModelSource = Schemas['ModelSource'];
/** How a loaded model holds its weights: `form` "f32"/"f64" (widened) or "stored", `kinds`, `resident_bytes`. */
export type WeightsInfo = Schemas['WeightsInfo'];
/** /load_model's `weights`: `auto` widens to f32 when that takes under 40% of the memory available, else keeps them stored. */
export type WeightsMode = Schemas['WeightsMode'];
/** The load in progress, in /model_status and /events. */
export type LoadingStatus = Schemas['LoadingStatus'];
/** What every status says, a model in service or not: loaded, backend, state, load, last error. */
export type ServiceStatus = Schemas['ServiceStatus'];
/** A status with a model in service: its description and the service status, flat. */
export type ServingStatus = Schemas['ServingStatus'];
/**
 * GET /model_status, and each "status" event of GET /events. Narrow it with `servingModel`
 * (lib/status.ts) to read the model's description.
 */
export type ModelStatus = Schemas['ModelStatus'];
export type LoadModelRequest = Schemas['LoadModelRequest'];
/**
 * POST /load_lens body: a lens on the server's machine, a tuned-lens folder or a Jacobian-lens file
 * (the server tells them apart; the answer is a ModelDescription).
 */
export type LoadLensRequest = Schemas['LoadLensRequest'];
/** The Jacobian lens attached to the model in service: its file, prompts, the layers it transports, a warning. */
export type AttachedJacobianLens = Schemas['AttachedJacobianLens'];
/** POST /load_model: the model in service, `status` "loaded" or "already_loaded". */
export type LoadModelResponse = Schemas['LoadModelResponse'];

// ---------------------------------------------------------------------------------------------
// The Jacobian lens: POST /lens_vector.

/** A token named by an intervention of the Jacobian lens: a string that is exactly one token, or an id. */
export type ConceptToken = Schemas['ConceptToken'];
/** POST /lens_vector body: the token, and how many tokens to list per layer (k). (Schema: `LensVectorQuery`.) */
export type LensVectorRequest = Schemas['LensVectorQuery'];
/** POST /lens_vector answer: the token, and at each layer the lens covers what its lens vector says. */
export type LensVectorResponse = Schemas['LensVectorResponse'];
/** One layer's lens vector: its norm and the top tokens of the model's head on it. */
export type LensVectorLayer = Schemas['LensVectorLayer'];

// ---------------------------------------------------------------------------------------------
// Fitting a Jacobian lens: POST /fit_jlens and GET /fit_jlens.

/** POST /fit_jlens body: a corpus (one document per line) or `sample` documents the model writes
 * (from `seed`), at most `max_prompts` of them, each cut to `max_seq_len` tokens, its first
 * `skip_first` positions left out, `dim_batch` dimensions per backward pass; `resume` continues the
 * checkpoint a stopped fit left. */
export type FitJlensRequest = Schemas['FitJlensQuery'];
/** POST /fit_jlens answer: the prompts fitted and skipped, the time, the file it was saved to, and the lens now attached. */
export type FitJlensResponse = Schemas['FitJlensResponse'];
/** GET /fit_jlens: the checkpoint a stopped fit left (prompts done of all, where it goes on, its settings), or null. */
export type FitJlensCheckpoint = Schemas['FitCheckpoint'];

// ---------------------------------------------------------------------------------------------
// Lens quality: POST /eval_lens and GET /eval_lens.

export type EvalLensRequest = Schemas['EvalLensRequest'];
/** What `logitlens eval-lens --json` prints: per row, each lens's measures. */
export type Evaluation = Schemas['Evaluation'];
/** One lens's measures, a value per row: kl, ce, entropy (nats), top1_agree (a fraction). */
export type LensMetrics = Schemas['LensMetrics'];
/** /eval_lens's answer: an Evaluation with the model, tuned lens, documents and max_tokens it was made with. */
export type EvalReport = Schemas['EvalReport'];

// ---------------------------------------------------------------------------------------------
// Sparse autoencoders: POST /load_sae, /unload_sae, /sae_features, /sae_feature_corpus, /eval_sae.

/** An SAE attached to the model in service (its `saes` in /model_status): name, hook, architecture, sizes, dtype, bytes. */
export type AttachedSae = Schemas['AttachedSae'];
/** POST /load_sae body: the SAEs to attach, all or none. (Schema: `LoadSaeQuery`.) */
export type LoadSaeRequest = Schemas['LoadSaeQuery'];
/** One SAE to attach: its folder on the server's machine, and an optional name and hook. */
export type SaeSource = Schemas['SaeSource'];
/** POST /unload_sae body. (Schema: `UnloadSaeQuery`.) */
export type UnloadSaeRequest = Schemas['UnloadSaeQuery'];
/** What one SAE reads over a run's positions, and the lens row it sits under (`row`). */
export type SaeReadout = Schemas['SaeReadout'];
/** One position of a readout: its strongest features, L0 and reconstruction error. */
export type SaePosition = Schemas['SaePosition'];
/** One feature at one position: its id and activation. */
export type SaeFeature = Schemas['SaeFeature'];
/** POST /sae_features body: the SAE, the features, k tokens each end, and a kept run's id for activations. (Schema: `SaeFeaturesQuery`.) */
export type SaeFeaturesRequest = Schemas['SaeFeaturesQuery'];
/** POST /sae_features answer: each feature's top and bottom tokens, and with a run id its activations. */
export type SaeFeaturesResponse = Schemas['SaeFeaturesResponse'];
/** One feature's decoder norm and the tokens its decoder row promotes most and least. (Schema: `FeatureTokens`.) */
export type SaeFeatureTokens = Schemas['FeatureTokens'];
/** POST /sae_feature_corpus body: a corpus or `sample` documents, and how many contexts. (Schema: `SaeCorpusQuery`.) */
export type SaeCorpusRequest = Schemas['SaeCorpusQuery'];
/** POST /sae_feature_corpus answer: how often the feature fires, its max activation, its strongest contexts. (Schema: `SaeCorpusReport`.) */
export type SaeCorpusReport = Schemas['SaeCorpusReport'];
/** One context a feature fires in: the tokens around it and which one it fires on. (Schema: `FeatureContext`.) */
export type SaeContext = Schemas['FeatureContext'];
/** POST /eval_sae body. (Schema: `EvalSaeQuery`.) */
export type EvalSaeRequest = Schemas['EvalSaeQuery'];
/** POST /eval_sae answer, and GET /eval_sae's last one. */
export type SaeEvalReport = Schemas['SaeEvalReport'];
/** One SAE's measures over the corpus: ΔCE, loss recovered, KL, explained variance, MSE, L0, dead features. */
export type SaeQuality = Schemas['SaeQuality'];

// ---------------------------------------------------------------------------------------------
// Sessions and PNG exports.

export type SessionEntry = Schemas['SessionEntry'];
export type SaveStateRequest = Schemas['SaveStateRequest'];
export type SaveStateResponse = Schemas['SaveStateResponse'];
/** POST /load_session and /delete_session body. */
export type SessionRequest = Schemas['SessionRequest'];
export type DeleteSessionResponse = Schemas['DeleteSessionResponse'];
export type DiffSessionsRequest = Schemas['DiffSessionsRequest'];
/** POST /diff_sessions: `a` is the baseline; `diff` is [row][position]. (Schema: `DiffSessionsResponse`.) */
export type SessionDiffResponse = Schemas['DiffSessionsResponse'];
/** One side of POST /diff_sessions: a session may not record its model or lens type. (Schema: `DiffSide`.) */
export type SessionDiffSide = Schemas['DiffSide'];
export type VisualizationRequest = Schemas['VisualizationRequest'];
export type GridVisualizationRequest = Schemas['GridVisualizationRequest'];
/** POST /save_visualization and /save_grid_visualization. */
export type SavedFile = Schemas['SavedFile'];

/**
 * POST /load_session: a saved session's config.json, as the server reads it (any version of its
 * layout: the original tool's sessions and older logitlens ones lack the newer fields). The
 * interventions are as the file holds them (the original's older frontend saved one operation per
 * key): see `normalizeInterventions`.
 */
export type SessionConfig = Schemas['SessionConfig'];

// ---------------------------------------------------------------------------------------------
// The client's own types: never a body as such (the app's narrowing of a request, a header
// merged into a response, a query before it is written out).

/** What the app sends to /inference: the fields it always sets. */
export interface RunRequest extends InferenceRequest {
  interventions: Interventions;
  lens_type: LensType;
  apply_chat_template: boolean;
  return_attention: boolean;
}

/** /inference's answer with the `x-logitlens-run-id` header, which lets /save_state save that very run. */
export type InferenceResult = InferenceResponse & { run_id?: number };

/** /generate's answer with its run id (the header, or the `done` line of a stream), for /save_state and /runs/{id}/attention. */
export type GenerateResult = GenerateResponse & { run_id?: number };

/** The query of GET /runs/{run_id}/attention before it is written out; absent options take the server's defaults. */
export interface RunAttentionQuery extends Omit<RunAttentionParams, 'layers'> {
  /** Model layer indices (sent comma-separated); all layers when absent. */
  layers?: number[];
}
