//! The model lifecycle as clients see it: the backend names, the stages of
//! a load, and the bodies of `/model_status`, `/events` and `/load_model`.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use logitlens_engine::load::WeightsInfo;
use logitlens_engine::{BackendKind, LoadEvent, LoadedModel, SourceInfo};

use crate::catalog;

/// A backend as the API names it. `transformerlens` (the original's name)
/// is the hooked backend, and is echoed back as given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    #[default]
    Custom,
    Hooked,
    Transformerlens,
}

impl Backend {
    pub fn kind(self) -> BackendKind {
        match self {
            Backend::Custom => BackendKind::Custom,
            Backend::Hooked | Backend::Transformerlens => BackendKind::Hooked,
        }
    }
}

impl From<BackendKind> for Backend {
    fn from(k: BackendKind) -> Self {
        match k {
            BackendKind::Custom => Backend::Custom,
            BackendKind::Hooked => Backend::Hooked,
        }
    }
}

/// Where a load is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LoadStage {
    Resolving,
    Downloading,
    LoadingTensors,
    Ready,
}

/// The load in progress, as /model_status and /events report it.
#[derive(Debug, Clone, Serialize, PartialEq, ToSchema)]
pub struct LoadingStatus {
    pub model_name: String,
    pub backend: Backend,
    pub stage: LoadStage,
    pub file: Option<String>,
    pub bytes: Option<u64>,
    pub total_bytes: Option<u64>,
    pub tensors_done: Option<usize>,
    pub tensors_total: Option<usize>,
    /// 0..1 when known.
    pub progress: Option<f64>,
}

impl LoadingStatus {
    pub fn new(model_name: &str, backend: Backend) -> Self {
        LoadingStatus {
            model_name: model_name.into(),
            backend,
            stage: LoadStage::Resolving,
            file: None,
            bytes: None,
            total_bytes: None,
            tensors_done: None,
            tensors_total: None,
            progress: None,
        }
    }

    pub fn apply(&mut self, e: &LoadEvent) {
        match e {
            LoadEvent::Resolving => self.stage = LoadStage::Resolving,
            LoadEvent::Downloading {
                file,
                bytes,
                total_bytes,
            } => {
                self.stage = LoadStage::Downloading;
                self.file = Some(file.clone());
                self.bytes = Some(*bytes);
                self.total_bytes = Some(*total_bytes);
                self.progress = (*total_bytes > 0).then(|| *bytes as f64 / *total_bytes as f64);
            }
            LoadEvent::LoadingTensors { done, total } => {
                self.stage = LoadStage::LoadingTensors;
                self.tensors_done = Some(*done);
                self.tensors_total = Some(*total);
                self.progress = (*total > 0).then(|| *done as f64 / *total as f64);
            }
            LoadEvent::Ready => {
                self.stage = LoadStage::Ready;
                self.progress = Some(1.0);
            }
        }
    }
}

/// Where a model's weights came from.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ModelSource {
    /// dir, gguf or hub.
    pub kind: String,
    /// The folder, file, or repo id.
    pub location: String,
    /// The Hub revision asked for, and the snapshot commit it resolved to.
    pub revision: Option<String>,
    pub commit: Option<String>,
    /// How the weights are stored ("F32", "BF16", "Q4_1, F32"...).
    pub stored_dtype: String,
}

impl From<&SourceInfo> for ModelSource {
    fn from(s: &SourceInfo) -> Self {
        ModelSource {
            kind: s.kind.into(),
            location: s.location.clone(),
            revision: s.revision.clone(),
            commit: s.commit.clone(),
            stored_dtype: s.stored_dtype.clone(),
        }
    }
}

/// A loaded model, as /model_status and /load_model describe it.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ModelDescription {
    pub model_name: String,
    /// The original's class names for the custom backend ("LlamaModel",
    /// "Qwen3Model"); "HookedTransformer" for the hooked one.
    pub model_class: String,
    /// llama, qwen3, gpt2, gpt_neox...
    pub family: String,
    /// A one-line description of the resolved configuration.
    pub config: String,
    pub num_layers: usize,
    pub hidden_size: usize,
    pub num_heads: usize,
    pub vocab_size: usize,
    /// The forward pass's precision: f32 or f64.
    pub compute_dtype: String,
    /// How the weights are held (widened or as stored) and their size.
    pub weights: WeightsInfo,
    /// The folder of the tuned lens attached (POST /load_lens), if any.
    pub tuned_lens: Option<String>,
    /// Why the attached lens may be for another model (its recorded
    /// unembed_hash differs from this model's).
    pub tuned_lens_warning: Option<String>,
    /// The Jacobian lens attached (POST /load_lens with a file), if any.
    pub jacobian_lens: Option<AttachedJacobianLens>,
    /// The sparse autoencoders attached (POST /load_sae), in the order
    /// attached.
    #[serde(default)]
    pub saes: Vec<AttachedSae>,
    pub source: ModelSource,
    pub has_chat_template: bool,
    /// The web app turns the chat template on for instruct models.
    pub instruct: bool,
}

/// A Jacobian lens attached to the model in service.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct AttachedJacobianLens {
    /// The file it was read from (empty for one fitted by this server and
    /// not yet saved).
    pub path: String,
    /// Prompts its matrices average over.
    pub n_prompts: u64,
    /// The block outputs it transports ("Layer ℓ" rows).
    pub source_layers: Vec<usize>,
    /// Why it may be for another model (its metadata names another).
    pub warning: Option<String>,
}

/// A sparse autoencoder attached to the model in service.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct AttachedSae {
    /// What interventions and `sae` name it by.
    pub name: String,
    /// Where it was read from.
    pub source: String,
    /// The hook it reads.
    pub hook: String,
    /// standard, jumprelu or topk.
    pub architecture: String,
    pub d_in: usize,
    pub d_sae: usize,
    /// A topk SAE's k.
    pub k: Option<usize>,
    /// Its weights' dtype as stored.
    pub dtype: String,
    /// Memory it holds.
    pub bytes: u64,
    pub apply_b_dec_to_input: bool,
    pub normalize_activations: String,
    /// Whether its input is each position's activation minus its mean
    /// (trained on TransformerLens's centred writing weights).
    pub centered: bool,
    /// What was said when it was attached (a scaling factor missing...).
    pub notes: Vec<String>,
}

impl AttachedSae {
    pub fn of(s: &logitlens_engine::sae::Sae) -> Self {
        use logitlens_engine::sae::Architecture;
        AttachedSae {
            name: s.name.clone(),
            source: s.source.clone(),
            hook: s.hook.to_string(),
            architecture: s.settings.architecture.name().into(),
            d_in: s.d_in(),
            d_sae: s.d_sae(),
            k: match s.settings.architecture {
                Architecture::TopK { k, .. } => Some(k),
                _ => None,
            },
            dtype: format!("{:?}", s.dtype()).to_uppercase(),
            bytes: s.bytes(),
            apply_b_dec_to_input: s.settings.apply_b_dec_to_input,
            normalize_activations: s.settings.normalize.name().into(),
            centered: s.settings.center_input,
            notes: s.settings.notes.clone(),
        }
    }
}

impl ModelDescription {
    pub fn of(m: &LoadedModel) -> Self {
        let c = m.info();
        ModelDescription {
            model_name: m.name.clone(),
            model_class: c.model_class,
            family: c.family,
            config: c.config,
            num_layers: c.num_layers,
            hidden_size: c.hidden_size,
            num_heads: c.num_heads,
            vocab_size: c.vocab_size,
            compute_dtype: dtype_name(m),
            weights: m.weights_info(),
            tuned_lens: m.tuned_lens().map(|l| l.dir.display().to_string()),
            tuned_lens_warning: m.tuned_lens().and_then(|l| l.warning.clone()),
            jacobian_lens: m.jacobian_lens().map(|l| AttachedJacobianLens {
                path: l.path.display().to_string(),
                n_prompts: l.n_prompts,
                source_layers: l.source_layers.clone(),
                warning: l.warning.clone(),
            }),
            saes: m.saes().iter().map(|s| AttachedSae::of(s)).collect(),
            source: ModelSource::from(&m.source),
            has_chat_template: m.tokenizer.chat_template.is_some(),
            instruct: catalog::is_instruct(&m.name),
        }
    }
}

/// "f32" or "f64".
pub fn dtype_name(m: &LoadedModel) -> String {
    format!("{:?}", m.model.dtype()).to_lowercase()
}

/// Whether a model is in service, loading, or neither.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ServiceState {
    Idle,
    Loading,
    Ready,
}

/// What every /model_status body says, a model in service or not.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ServiceStatus {
    pub loaded: bool,
    /// The backend of the model in service (or the default when none is).
    pub backend: Backend,
    pub status: ServiceState,
    /// The load in progress.
    pub loading: Option<LoadingStatus>,
    /// Why the last load failed (the previous model stays in service).
    pub last_error: Option<String>,
}

/// A model in service, described, with the service status.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ServingStatus {
    #[serde(flatten)]
    pub model: ModelDescription,
    #[serde(flatten)]
    pub service: ServiceStatus,
}

/// The body of GET /model_status, and of every /events message: the model
/// in service (`loaded: true`) or only the service status.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(untagged)]
pub enum ModelStatus {
    Serving(Box<ServingStatus>),
    Idle(ServiceStatus),
}

/// Whether /load_model loaded the model or found it in service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LoadOutcome {
    Loaded,
    AlreadyLoaded,
}

/// The body of POST /load_model.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct LoadModelResponse {
    pub status: LoadOutcome,
    pub loaded: bool,
    pub backend: Backend,
    #[serde(flatten)]
    pub model: ModelDescription,
}

/// What a run is doing, for progress displays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RunStage {
    /// Waiting for its turn: `done` runs ahead of it... in `total` queued.
    Queued,
    /// The forward pass: `done` of `total` layers.
    Forward,
    /// The lens: `done` of `total` states projected.
    Lens,
    /// A lens evaluation: `done` of `total` documents.
    Documents,
    /// A corpus sampled from the model: `done` of `total` tokens written.
    Sampling,
    /// An activation-patching sweep: `done` of `total` patched runs.
    Patching,
    /// A generation: `done` of at most `total` tokens written.
    Generating,
    /// A lens fit: `done` of `total` pieces of its steps.
    Fitting,
}

/// A `run` message of /events: the progress of the run of a request.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct RunProgress {
    /// The request's `x-logitlens-request` header, when it sent one, so a
    /// page shows only its own run.
    pub request: Option<String>,
    pub stage: RunStage,
    pub done: usize,
    pub total: usize,
}
