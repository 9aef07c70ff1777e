//! Attention patterns out of a run, in the original's nested JSON or in a
//! compact form: chosen layers only, optionally averaged over heads, as
//! base64 little-endian float16. At 200 tokens on SmolLM2 the nested JSON of
//! every layer and head is ~96 MB; one layer's heads in f16 is ~1 MB.

use std::io::Write;

use base64::Engine as _;
use candle_core::{DType, Tensor};
use serde::{Deserialize, Serialize};

use crate::error::{EngineError, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// `attention`: `[layer][head][query][key]` numbers (the original's).
    #[default]
    Json,
    /// `attention_f16`: a [`Packed`] object.
    F16,
}

impl Format {
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "json" => Ok(Format::Json),
            "f16" => Ok(Format::F16),
            other => Err(EngineError::InvalidRequest(format!(
                "unknown attention_format {other:?} (known: json, f16)"
            ))),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Reduce {
    #[default]
    None,
    /// The mean over the heads of each layer (the head axis becomes 1).
    HeadMean,
}

impl Reduce {
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "none" => Ok(Reduce::None),
            "head_mean" => Ok(Reduce::HeadMean),
            other => Err(EngineError::InvalidRequest(format!(
                "unknown attention_reduce {other:?} (known: none, head_mean)"
            ))),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Reduce::None => "none",
            Reduce::HeadMean => "head_mean",
        }
    }
}

/// Which attention a client wants back, validated against the model.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Spec {
    pub format: Format,
    /// Layers in the order first asked, each once; `None` = all.
    pub layers: Option<Vec<usize>>,
    pub reduce: Reduce,
}

impl Spec {
    /// From the request's optional fields; errors name what to fix.
    pub fn new(
        format: Option<Format>,
        layers: Option<&[i64]>,
        reduce: Option<Reduce>,
        n_layers: usize,
    ) -> Result<Self> {
        let (format, reduce) = (format.unwrap_or_default(), reduce.unwrap_or_default());
        let layers = match layers {
            None => None,
            Some([]) => {
                return Err(EngineError::InvalidRequest(
                    "attention_layers is empty: leave it out for every layer, or list the layers wanted".into(),
                ))
            }
            Some(ls) => {
                let mut seen = vec![false; n_layers];
                let mut out = Vec::with_capacity(ls.len().min(n_layers));
                for &l in ls {
                    let l = usize::try_from(l).ok().filter(|&l| l < n_layers).ok_or_else(|| {
                        EngineError::InvalidRequest(format!(
                            "attention_layers: layer {l} does not exist; this model has layers 0..{}",
                            n_layers.saturating_sub(1)
                        ))
                    })?;
                    // A layer named twice is sent once: repeats would only
                    // multiply the response.
                    if !std::mem::replace(&mut seen[l], true) {
                        out.push(l);
                    }
                }
                Some(out)
            }
        };
        Ok(Spec {
            format,
            layers,
            reduce,
        })
    }

    /// True when the request asked for anything beyond the original's form.
    pub fn is_default(&self) -> bool {
        *self == Spec::default()
    }

    /// The layers asked for, in order (every layer when none were named).
    pub fn layer_list(&self, n_layers: usize) -> Vec<usize> {
        self.layers
            .clone()
            .unwrap_or_else(|| (0..n_layers).collect())
    }
}

/// The compact form: `data` is base64 (standard, padded) of little-endian
/// IEEE float16 laid out `[layers.len()][heads][tokens][tokens]`, query-major.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Packed {
    pub layers: Vec<usize>,
    /// 1 when averaged over heads.
    pub heads: usize,
    pub tokens: usize,
    pub reduce: Reduce,
    pub data: String,
}

/// One selected layer as f32 `[H or 1, T, T]`.
fn layer(patterns: &[Tensor], l: usize, reduce: Reduce) -> Result<Tensor> {
    let p = patterns.get(l).ok_or_else(|| {
        EngineError::InvalidRequest(format!(
            "layer {l} does not exist; this run has {} layers",
            patterns.len()
        ))
    })?;
    let p = p.to_dtype(DType::F32)?;
    Ok(match reduce {
        Reduce::None => p,
        Reduce::HeadMean => p.mean_keepdim(0)?,
    })
}

/// Each selected layer's f32 numbers, `[H or 1][T][T]` flattened, one at a
/// time: no more than one layer is ever held as numbers.
fn for_each_layer(
    patterns: &[Tensor],
    spec: &Spec,
    mut f: impl FnMut(usize, (usize, usize), &[f32]) -> Result<()>,
) -> Result<()> {
    for (i, &l) in spec.layer_list(patterns.len()).iter().enumerate() {
        let t = layer(patterns, l, spec.reduce)?;
        let (h, q, _) = t.dims3()?;
        f(i, (h, q), &t.flatten_all()?.to_vec1::<f32>()?)?;
    }
    Ok(())
}

fn io(e: serde_json::Error) -> EngineError {
    EngineError::Io(e.into())
}

/// Write the nested `[layer][head][query][key]` JSON array to `w`, a layer
/// at a time (every layer and head of a long prompt is gigabytes of text).
pub fn write_nested(patterns: &[Tensor], spec: &Spec, w: &mut dyn Write) -> Result<()> {
    w.write_all(b"[")?;
    for_each_layer(patterns, spec, |i, (h, q), flat| {
        let k = q;
        w.write_all(if i == 0 { b"[" } else { b",[" })?;
        for hi in 0..h {
            w.write_all(if hi == 0 { b"[" } else { b",[" })?;
            for qi in 0..q {
                if qi > 0 {
                    w.write_all(b",")?;
                }
                let off = (hi * q + qi) * k;
                serde_json::to_writer(&mut *w, &flat[off..off + k]).map_err(io)?;
            }
            w.write_all(b"]")?;
        }
        w.write_all(b"]")?;
        Ok(())
    })?;
    w.write_all(b"]")?;
    Ok(())
}

/// Write the compact form (a [`Packed`] object) to `w`, its base64 encoded
/// as the layers come.
pub fn write_packed(patterns: &[Tensor], spec: &Spec, w: &mut dyn Write) -> Result<()> {
    let first = patterns
        .first()
        .ok_or_else(|| EngineError::InvalidRequest("this run kept no attention patterns".into()))?;
    let (h, tokens, _) = first.dims3()?;
    let heads = match spec.reduce {
        Reduce::None => h,
        Reduce::HeadMean => 1,
    };
    w.write_all(b"{\"layers\":")?;
    serde_json::to_writer(&mut *w, &spec.layer_list(patterns.len())).map_err(io)?;
    write!(w, ",\"heads\":{heads},\"tokens\":{tokens},\"reduce\":")?;
    serde_json::to_writer(&mut *w, &spec.reduce).map_err(io)?;
    w.write_all(b",\"data\":\"")?;
    let mut enc =
        base64::write::EncoderWriter::new(&mut *w, &base64::engine::general_purpose::STANDARD);
    let mut bytes = Vec::new();
    for_each_layer(patterns, spec, |_, _, flat| {
        bytes.clear();
        bytes.extend(
            flat.iter()
                .flat_map(|&x| half::f16::from_f32(x).to_le_bytes()),
        );
        enc.write_all(&bytes)?;
        Ok(())
    })?;
    enc.finish()?;
    drop(enc);
    w.write_all(b"\"}")?;
    Ok(())
}

/// Write the attention `spec` asks for: the nested array or the compact object.
pub fn write(patterns: &[Tensor], spec: &Spec, w: &mut dyn Write) -> Result<()> {
    match spec.format {
        Format::Json => write_nested(patterns, spec, w),
        Format::F16 => write_packed(patterns, spec, w),
    }
}

/// Nested `[layer][head][query][key]` numbers, in memory.
pub fn to_json(patterns: &[Tensor], spec: &Spec) -> Result<Vec<Vec<Vec<Vec<f32>>>>> {
    let mut out = Vec::new();
    for_each_layer(patterns, spec, |_, (h, q), flat| {
        out.push(
            (0..h)
                .map(|hi| {
                    (0..q)
                        .map(|qi| flat[(hi * q + qi) * q..][..q].to_vec())
                        .collect()
                })
                .collect(),
        );
        Ok(())
    })?;
    Ok(out)
}

/// The compact form of the selected layers, in memory.
pub fn to_packed(patterns: &[Tensor], spec: &Spec) -> Result<Packed> {
    let mut text = Vec::new();
    write_packed(patterns, spec, &mut text)?;
    serde_json::from_slice(&text).map_err(io)
}

/// The attention of a run in the form a client asked for, in memory.
#[derive(Debug, Clone, PartialEq)]
pub enum Attention {
    /// `[layer][head][query][key]` (the original's `attention` field).
    Nested(Vec<Vec<Vec<Vec<f32>>>>),
    /// The compact form (`attention_f16`).
    Packed(Packed),
}

impl Attention {
    /// The nested numbers, when that is the form asked for.
    pub fn as_nested(&self) -> Option<&Vec<Vec<Vec<Vec<f32>>>>> {
        match self {
            Attention::Nested(n) => Some(n),
            Attention::Packed(_) => None,
        }
    }
}

/// The attention `spec` asks for, out of a run's patterns, in memory.
pub fn render(patterns: &[Tensor], spec: &Spec) -> Result<Attention> {
    Ok(match spec.format {
        Format::F16 => Attention::Packed(to_packed(patterns, spec)?),
        Format::Json => Attention::Nested(to_json(patterns, spec)?),
    })
}

/// Decode [`Packed::data`] back to f32 (for tests and Rust clients).
pub fn unpack(p: &Packed) -> Result<Vec<f32>> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(&p.data)
        .map_err(|e| EngineError::InvalidRequest(format!("attention data is not base64: {e}")))?;
    Ok(bytes
        .chunks_exact(2)
        .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    fn patterns() -> Vec<Tensor> {
        (0..3)
            .map(|l| {
                let v: Vec<f32> = (0..2 * 4 * 4)
                    .map(|i| (i + 100 * l) as f32 / 1000.0)
                    .collect();
                Tensor::from_vec(v, (2, 4, 4), &Device::Cpu).unwrap()
            })
            .collect()
    }

    #[test]
    fn packed_round_trips_within_f16_precision() {
        let ps = patterns();
        let spec = Spec::new(Some(Format::F16), Some(&[2, 0]), None, 3).unwrap();
        let p = to_packed(&ps, &spec).unwrap();
        assert_eq!((p.layers.clone(), p.heads, p.tokens), (vec![2, 0], 2, 4));
        let got = unpack(&p).unwrap();
        let want: Vec<f32> = [2usize, 0]
            .iter()
            .flat_map(|&l| ps[l].flatten_all().unwrap().to_vec1::<f32>().unwrap())
            .collect();
        assert_eq!(got.len(), want.len());
        for (a, b) in got.iter().zip(&want) {
            assert!((a - b).abs() <= b.abs() * 1e-3 + 1e-7, "{a} vs {b}");
        }
    }

    #[test]
    fn head_mean_averages_heads() {
        let ps = patterns();
        let spec = Spec::new(None, Some(&[1]), Some(Reduce::HeadMean), 3).unwrap();
        let j = to_json(&ps, &spec).unwrap();
        assert_eq!((j.len(), j[0].len(), j[0][0].len()), (1, 1, 4));
        let h0 = ps[1].get(0).unwrap().to_vec2::<f32>().unwrap();
        let h1 = ps[1].get(1).unwrap().to_vec2::<f32>().unwrap();
        assert!((j[0][0][2][3] - (h0[2][3] + h1[2][3]) / 2.0).abs() < 1e-7);
    }

    #[test]
    fn bad_specs_say_what_to_fix() {
        let e = |r: Result<Spec>| r.unwrap_err().to_string();
        assert!(Format::parse("f8")
            .unwrap_err()
            .to_string()
            .contains("json, f16"));
        assert!(Reduce::parse("max")
            .unwrap_err()
            .to_string()
            .contains("head_mean"));
        assert!(e(Spec::new(None, Some(&[3]), None, 3)).contains("layers 0..2"));
        assert!(e(Spec::new(None, Some(&[-1]), None, 3)).contains("layer -1"));
        assert!(e(Spec::new(None, Some(&[]), None, 3)).contains("empty"));
        assert!(Spec::new(None, None, None, 3).unwrap().is_default());
    }
}
