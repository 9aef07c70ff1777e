//! What an SAE's `cfg.json` says, as SAELens 6.x reads it: the 6.x layout
//! (the hook in `metadata.hook_name`) and the layout before 6.0 (the hook
//! at the top level as `hook_name` or `hook_point`, `activation_fn_str`,
//! a boolean `normalize_activations`), with the user's overrides on top.

use serde_json::Value;

use crate::error::{EngineError, Result};

/// How features are read from the pre-activations.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Architecture {
    /// `relu(pre)`.
    Standard,
    /// `pre` where `pre > threshold` (strictly) and `pre > 0`, else 0.
    JumpRelu,
    /// The `k` largest pre-activations, relu'd; with `rescale`, ranked and
    /// reported as `pre · ‖W_dec[f]‖`, and divided by it when decoding.
    TopK { k: usize, rescale: bool },
}

impl Architecture {
    /// SAELens's name for it.
    pub fn name(self) -> &'static str {
        match self {
            Architecture::Standard => "standard",
            Architecture::JumpRelu => "jumprelu",
            Architecture::TopK { .. } => "topk",
        }
    }
}

/// What is done to the input before encoding (and undone after decoding).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Normalize {
    None,
    /// `expected_average_only_in` with its factor: `x · s` in, `x̂ / s` out.
    Scale(f32),
    /// `(x − μ) / (σ + 1e-5)` in (σ the unbiased standard deviation over
    /// the row), `x̂ · σ + μ` out.
    LayerNorm,
    /// `x · √d / ‖x‖` in, undone out.
    ConstantNorm,
}

impl Normalize {
    pub fn name(self) -> &'static str {
        match self {
            Normalize::None => "none",
            Normalize::Scale(_) => "expected_average_only_in",
            Normalize::LayerNorm => "layer_norm",
            Normalize::ConstantNorm => "constant_norm_rescale",
        }
    }
}

/// What a user may set over (or instead of) the file's settings.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SaeOptions {
    /// The SAE's name (default: its folder's).
    pub name: Option<String>,
    /// The hook it reads (a Gemma Scope folder does not say).
    pub hook: Option<String>,
    /// Whether it was trained on TransformerLens's centred writing weights.
    pub center_writing_weights: Option<bool>,
    /// `expected_average_only_in`'s factor, when no `activation_scaler.json`
    /// gives it.
    pub norm_scaling_factor: Option<f64>,
}

/// An SAE's settings, resolved from its files and the user's options.
#[derive(Debug, Clone, PartialEq)]
pub struct SaeSettings {
    pub architecture: Architecture,
    pub d_in: usize,
    pub d_sae: usize,
    /// The TransformerLens hook name it reads.
    pub hook: String,
    pub apply_b_dec_to_input: bool,
    pub normalize: Normalize,
    /// Subtract each position's mean over d_model before encoding (and add
    /// it back after decoding): the activation as TransformerLens's centred
    /// writing weights make it, on LayerNorm models.
    pub center_input: bool,
    /// Gemma Scope's embedding SAEs: `W_enc / √d`, `W_dec · √d`, applied in
    /// the products (the weights stay as stored).
    pub enc_scale: f32,
    pub dec_scale: f32,
    /// The model the file says it was trained on, if it says.
    pub model_name: Option<String>,
    /// "saelens" or "gemma_scope".
    pub format: &'static str,
    /// Said when attached: settings that change nothing, or a factor missing.
    pub notes: Vec<String>,
}

fn bad(what: impl Into<String>) -> EngineError {
    EngineError::InvalidRequest(what.into())
}

/// Whether a `sae_lens_version` string is 6.0 or later.
fn is_6x(version: Option<&str>) -> bool {
    version
        .and_then(|v| v.split('.').next())
        .and_then(|major| major.trim().parse::<u32>().ok())
        .is_some_and(|major| major >= 6)
}

fn str_at<'a>(v: &'a Value, keys: &[&str]) -> Option<&'a str> {
    keys.iter().find_map(|k| v.get(*k).and_then(Value::as_str))
}

fn usize_at(cfg: &Value, key: &str) -> Result<usize> {
    cfg.get(key)
        .and_then(Value::as_u64)
        .map(|n| n as usize)
        .filter(|&n| n > 0)
        .ok_or_else(|| {
            bad(format!(
                "cfg.json: {key} is missing or not a positive whole number"
            ))
        })
}

/// The settings a SAELens `cfg.json` gives, with `opts` over them and
/// `scaler` (an `activation_scaler.json`'s factor) for
/// `expected_average_only_in`.
pub fn saelens_settings(
    cfg: &Value,
    opts: &SaeOptions,
    scaler: Option<f64>,
) -> Result<SaeSettings> {
    let meta = cfg.get("metadata").cloned().unwrap_or(Value::Null);
    let version = str_at(&meta, &["sae_lens_version"]).or(str_at(cfg, &["sae_lens_version"]));
    let modern = is_6x(version);
    let architecture = architecture(cfg, modern)?;
    let hook = opts
        .hook
        .clone()
        .or_else(|| str_at(&meta, &["hook_name"]).map(str::to_string))
        .or_else(|| str_at(cfg, &["hook_name", "hook_point"]).map(str::to_string))
        .ok_or_else(|| {
            bad("cfg.json names no hook (metadata.hook_name, hook_name or hook_point); give one with hook=")
        })?;
    if hook.contains("hook_z")
        || cfg.get("reshape_activations").and_then(Value::as_str) == Some("hook_z")
    {
        return Err(bad(format!(
            "SAE at {hook}: attention-head (hook_z) SAEs are not supported; they read the heads' \
             mixed values, which this engine does not expose as a hook"
        )));
    }
    let head = meta
        .get("hook_head_index")
        .or_else(|| cfg.get("hook_head_index"))
        .or_else(|| cfg.get("hook_point_head_index"));
    if head.is_some_and(|h| !h.is_null()) {
        return Err(bad(
            "SAEs of one attention head (hook_head_index) are not supported",
        ));
    }
    let mut notes = Vec::new();
    let normalize = normalize(cfg, opts.norm_scaling_factor.or(scaler), &mut notes)?;
    let kwargs = meta
        .get("model_from_pretrained_kwargs")
        .or_else(|| cfg.get("model_from_pretrained_kwargs"));
    let center = kwargs
        .and_then(|k| k.get("center_writing_weights"))
        .and_then(Value::as_bool)
        .unwrap_or(false);
    Ok(SaeSettings {
        architecture,
        d_in: usize_at(cfg, "d_in")?,
        d_sae: usize_at(cfg, "d_sae")?,
        hook,
        apply_b_dec_to_input: cfg
            .get("apply_b_dec_to_input")
            .and_then(Value::as_bool)
            .unwrap_or(true),
        normalize,
        center_input: opts.center_writing_weights.unwrap_or(center),
        enc_scale: 1.0,
        dec_scale: 1.0,
        model_name: str_at(&meta, &["model_name"])
            .or(str_at(cfg, &["model_name"]))
            .map(str::to_string),
        format: "saelens",
        notes,
    })
}

/// The architecture: 6.x's `architecture`, or before 6.0 the activation
/// function (`activation_fn`/`activation_fn_str`, `topk` with its `k` in
/// `activation_fn_kwargs`).
fn architecture(cfg: &Value, modern: bool) -> Result<Architecture> {
    let rescale = cfg
        .get("rescale_acts_by_decoder_norm")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let topk = |k: Option<u64>| -> Result<Architecture> {
        let k = k
            .filter(|&k| k > 0)
            .ok_or_else(|| bad("cfg.json: a topk SAE needs k, a positive whole number"))?;
        Ok(Architecture::TopK {
            k: k as usize,
            rescale,
        })
    };
    let activation = str_at(cfg, &["activation_fn", "activation_fn_str"]);
    let name = match str_at(cfg, &["architecture"]) {
        Some(a) => a,
        None if !modern && activation == Some("topk") => "topk",
        None => "standard",
    };
    match name {
        "standard" => Ok(Architecture::Standard),
        "jumprelu" => Ok(Architecture::JumpRelu),
        "topk" => topk(cfg.get("k").and_then(Value::as_u64).or_else(|| {
            cfg.get("activation_fn_kwargs")
                .and_then(|k| k.get("k"))
                .and_then(Value::as_u64)
        })),
        other => Err(bad(format!(
            "SAE architecture {other:?} is not supported; supported: standard, jumprelu, topk"
        ))),
    }
}

/// `normalize_activations`: a name, or before 6.0 a boolean (true meant
/// expected_average_only_in).
fn normalize(cfg: &Value, factor: Option<f64>, notes: &mut Vec<String>) -> Result<Normalize> {
    let name = match cfg.get("normalize_activations") {
        None | Some(Value::Null) | Some(Value::Bool(false)) => "none",
        Some(Value::Bool(true)) => "expected_average_only_in",
        Some(Value::String(s)) => s.as_str(),
        Some(other) => {
            return Err(bad(format!(
                "cfg.json: normalize_activations {other} is not understood"
            )))
        }
    };
    Ok(match name {
        "none" => Normalize::None,
        "layer_norm" => Normalize::LayerNorm,
        "constant_norm_rescale" => Normalize::ConstantNorm,
        "expected_average_only_in" => match factor {
            Some(s) if s.is_finite() && s > 0.0 => Normalize::Scale(s as f32),
            Some(s) => {
                return Err(bad(format!(
                    "norm_scaling_factor {s} must be a positive number"
                )))
            }
            None => {
                // SAELens itself applies nothing when it loads such a
                // folder: the factor is folded into the weights when a
                // training run ends, so a folder still saying this was
                // saved before that.
                notes.push(
                    "normalize_activations is expected_average_only_in but no factor is given \
                     (activation_scaler.json or norm_scaling_factor=): the input is used unscaled, \
                     as SAELens does"
                        .into(),
                );
                Normalize::None
            }
        },
        other => {
            return Err(bad(format!(
                "normalize_activations {other:?} is not supported; supported: none, \
                 expected_average_only_in, layer_norm, constant_norm_rescale"
            )))
        }
    })
}

/// Gemma Scope's settings: JumpReLU, b_dec not applied to the input, no
/// normalisation; the hook from the user, else from the release's layout
/// (`gemma-scope-…-res/layer_20/…` reads `blocks.20.hook_resid_post`,
/// `-mlp` `hook_mlp_out`, an `embedding` folder `hook_embed`, with its
/// weights scaled by √d as Gemma's embedding is).
pub fn gemma_scope_settings(
    path: &std::path::Path,
    d_in: usize,
    d_sae: usize,
    opts: &SaeOptions,
) -> Result<SaeSettings> {
    let layout = gemma_scope_hook(path);
    let hook = opts
        .hook
        .clone()
        .or_else(|| layout.clone())
        .ok_or_else(|| {
            bad(format!(
                "{}: a params.npz SAE (Gemma Scope) does not name its hook, and its path does not \
             follow the release's layout (…-res/layer_N/…); give one with hook=, e.g. \
             hook=blocks.20.hook_resid_post",
                path.display()
            ))
        })?;
    if hook.contains("hook_z") {
        return Err(bad(format!(
            "{}: this SAE reads {hook}, the attention heads' mixed values (Gemma Scope's -att \
             releases); attention-head (hook_z) SAEs are not supported, as this engine does not \
             expose that as a hook",
            path.display()
        )));
    }
    let embedding = hook == "hook_embed";
    let root = (d_in as f32).sqrt();
    Ok(SaeSettings {
        architecture: Architecture::JumpRelu,
        d_in,
        d_sae,
        hook,
        apply_b_dec_to_input: false,
        normalize: Normalize::None,
        center_input: opts.center_writing_weights.unwrap_or(false),
        enc_scale: if embedding { 1.0 / root } else { 1.0 },
        dec_scale: if embedding { root } else { 1.0 },
        model_name: None,
        format: "gemma_scope",
        notes: Vec::new(),
    })
}

/// The hook a Gemma Scope path's components imply.
fn gemma_scope_hook(path: &std::path::Path) -> Option<String> {
    let parts: Vec<String> = path
        .components()
        .map(|c| c.as_os_str().to_string_lossy().to_lowercase())
        .collect();
    let release = parts.iter().find(|p| p.contains("gemma-scope"))?;
    if parts.iter().any(|p| p == "embedding") {
        return Some("hook_embed".into());
    }
    let layer: usize = parts
        .iter()
        .find_map(|p| p.strip_prefix("layer_").and_then(|n| n.parse().ok()))?;
    let suffix = if release.contains("-res") {
        "hook_resid_post"
    } else if release.contains("-mlp") {
        "hook_mlp_out"
    } else if release.contains("-att") {
        "attn.hook_z"
    } else {
        return None;
    };
    Some(format!("blocks.{layer}.{suffix}"))
}

/// Hub repos whose SAEs were trained on TransformerLens's centred writing
/// weights without their `cfg.json` saying so (SAELens sets it for them
/// from its release table).
pub const CENTERED_REPOS: [&str; 3] = [
    "jbloom/GPT2-Small-SAEs-Reformatted",
    "jbloom/GPT2-Small-Feature-Splitting-Experiment-Layer-8",
    "tommmcgrath/gpt2-small-mlp-out-saes",
];

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_6x_config_reads_its_hook_from_metadata() {
        let cfg = json!({"d_in": 64, "d_sae": 256, "architecture": "topk", "k": 12,
            "rescale_acts_by_decoder_norm": true, "apply_b_dec_to_input": true,
            "normalize_activations": "none",
            "metadata": {"sae_lens_version": "6.54.12", "hook_name": "blocks.2.hook_resid_pre"}});
        let s = saelens_settings(&cfg, &SaeOptions::default(), None).unwrap();
        assert_eq!(
            s.architecture,
            Architecture::TopK {
                k: 12,
                rescale: true
            }
        );
        assert_eq!(s.hook, "blocks.2.hook_resid_pre");
        assert_eq!((s.d_in, s.d_sae, s.apply_b_dec_to_input), (64, 256, true));
    }

    #[test]
    fn a_config_from_before_6_0_is_read_as_saelens_reads_it() {
        let cfg = json!({"d_in": 8, "d_sae": 16, "hook_point": "blocks.0.hook_resid_pre",
            "activation_fn_str": "topk", "activation_fn_kwargs": {"k": 5},
            "normalize_activations": true,
            "model_from_pretrained_kwargs": {"center_writing_weights": true}});
        let s = saelens_settings(&cfg, &SaeOptions::default(), Some(2.0)).unwrap();
        assert_eq!(
            s.architecture,
            Architecture::TopK {
                k: 5,
                rescale: false
            }
        );
        assert_eq!(s.hook, "blocks.0.hook_resid_pre");
        assert!(s.apply_b_dec_to_input && s.center_input);
        assert_eq!(s.normalize, Normalize::Scale(2.0));
        // Without the factor: the input unscaled, and said.
        let s = saelens_settings(&cfg, &SaeOptions::default(), None).unwrap();
        assert_eq!((s.normalize, s.notes.len()), (Normalize::None, 1));
    }

    #[test]
    fn what_cannot_be_read_is_refused_by_name() {
        let base = json!({"d_in": 8, "d_sae": 16, "metadata": {"sae_lens_version": "6.1.0", "hook_name": "blocks.0.hook_resid_pre"}});
        let with = |k: &str, v: Value| {
            let mut c = base.clone();
            c[k] = v;
            saelens_settings(&c, &SaeOptions::default(), None)
                .unwrap_err()
                .to_string()
        };
        assert!(with("architecture", json!("gated")).contains("\"gated\""));
        assert!(with("normalize_activations", json!("covariance_whitening"))
            .contains("covariance_whitening"));
        assert!(with("reshape_activations", json!("hook_z")).contains("hook_z"));
        assert!(with("d_sae", json!(0)).contains("d_sae"));
        let mut no_hook = base.clone();
        no_hook["metadata"] = json!({"sae_lens_version": "6.1.0"});
        let e = saelens_settings(&no_hook, &SaeOptions::default(), None).unwrap_err();
        assert!(e.to_string().contains("hook="));
    }

    #[test]
    fn gemma_scope_paths_name_their_hook() {
        let p = |s: &str| gemma_scope_hook(std::path::Path::new(s));
        let res = "hub/models--google--gemma-scope-2b-pt-res/snapshots/abc/layer_20/width_16k/average_l0_71";
        assert_eq!(p(res).as_deref(), Some("blocks.20.hook_resid_post"));
        assert_eq!(
            p("models--google--gemma-scope-2b-pt-mlp/snapshots/c/layer_3/width_16k/x").as_deref(),
            Some("blocks.3.hook_mlp_out")
        );
        assert_eq!(
            p("models--google--gemma-scope-2b-pt-res/snapshots/c/embedding/width_4k/x").as_deref(),
            Some("hook_embed")
        );
        assert_eq!(p("/data/my_sae"), None);
        let att =
            std::path::Path::new("models--google--gemma-scope-2b-pt-att/snapshots/c/layer_3/w");
        let e = gemma_scope_settings(att, 2048, 16384, &SaeOptions::default())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("blocks.3.attn.hook_z") && e.contains("not supported"),
            "{e}"
        );
    }
}
