//! Attention patterns out of a run, in the original's nested JSON or in a
//! compact form: chosen layers only, optionally averaged over heads, as
//! base64 little-endian float16. At 200 tokens on SmolLM2 the nested JSON of
//! every layer and head is ~96 MB; one layer's heads in f16 is ~1 MB.

use std::io::Write as _;

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

/// A run's attention patterns and what a client asked of them: rendered
/// when the answer is written, a layer at a time, so the nested JSON of a
/// long prompt (gigabytes) or its base64 is never held whole.
#[derive(Debug, Clone)]
pub struct Patterns {
    /// `n` tensors `[H, T, T]`, a layer each.
    pub tensors: Vec<Tensor>,
    pub spec: Spec,
}

impl Patterns {
    /// Each selected layer's f32 numbers, `[H or 1][T][T]` flattened, one
    /// at a time, with its (heads, tokens).
    fn layers(&self) -> impl Iterator<Item = Result<(usize, usize, Vec<f32>)>> + '_ {
        self.spec
            .layer_list(self.tensors.len())
            .into_iter()
            .map(|l| {
                let t = layer(&self.tensors, l, self.spec.reduce)?;
                let (h, q, _) = t.dims3()?;
                Ok((h, q, t.flatten_all()?.to_vec1::<f32>()?))
            })
    }
}

/// The nested `[layer][head][query][key]` numbers (the original's
/// `attention` field): in memory, or rendered from a run's patterns as they
/// are written.
#[derive(Debug, Clone)]
pub enum Nested {
    Numbers(Vec<Vec<Vec<Vec<f32>>>>),
    Patterns(Patterns),
}

impl Nested {
    /// The numbers, rendered if need be.
    pub fn numbers(&self) -> Result<Vec<Vec<Vec<Vec<f32>>>>> {
        match self {
            Nested::Numbers(n) => Ok(n.clone()),
            Nested::Patterns(p) => p
                .layers()
                .map(|layer| {
                    let (h, q, flat) = layer?;
                    Ok((0..h)
                        .map(|hi| {
                            (0..q)
                                .map(|qi| flat[(hi * q + qi) * q..][..q].to_vec())
                                .collect()
                        })
                        .collect())
                })
                .collect(),
        }
    }
}

impl PartialEq for Nested {
    fn eq(&self, other: &Self) -> bool {
        matches!((self.numbers(), other.numbers()), (Ok(a), Ok(b)) if a == b)
    }
}

/// One layer's numbers as nested arrays `[head][query][key]`.
struct LayerView<'a> {
    heads: usize,
    tokens: usize,
    flat: &'a [f32],
}

impl Serialize for LayerView<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let q = self.tokens;
        let mut heads = s.serialize_seq(Some(self.heads))?;
        for hi in 0..self.heads {
            let rows: Vec<&[f32]> = (0..q)
                .map(|qi| &self.flat[(hi * q + qi) * q..][..q])
                .collect();
            heads.serialize_element(&rows)?;
        }
        heads.end()
    }
}

impl Serialize for Nested {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::{Error, SerializeSeq};
        match self {
            Nested::Numbers(n) => n.serialize(s),
            Nested::Patterns(p) => {
                let mut seq = s.serialize_seq(None)?;
                for layer in p.layers() {
                    let (heads, tokens, flat) = layer.map_err(S::Error::custom)?;
                    seq.serialize_element(&LayerView {
                        heads,
                        tokens,
                        flat: &flat,
                    })?;
                }
                seq.end()
            }
        }
    }
}

impl<'de> Deserialize<'de> for Nested {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        Vec::deserialize(d).map(Nested::Numbers)
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
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub data: PackedData,
}

/// [`Packed::data`]: the base64 text, or a run's patterns encoded as the
/// text is written (serde_json writes a `collect_str` value as it comes).
#[derive(Debug, Clone)]
pub enum PackedData {
    Base64(String),
    Patterns(Patterns),
}

impl PackedData {
    /// The base64 text, encoded if need be.
    pub fn text(&self) -> Result<String> {
        match self {
            PackedData::Base64(s) => Ok(s.clone()),
            PackedData::Patterns(p) => {
                let mut out = String::new();
                encode_f16(p, &mut out)?;
                Ok(out)
            }
        }
    }
}

impl PartialEq for PackedData {
    fn eq(&self, other: &Self) -> bool {
        matches!((self.text(), other.text()), (Ok(a), Ok(b)) if a == b)
    }
}

/// Base64 of the selected layers' f16 numbers, written to `out` as they
/// are encoded, a layer at a time.
fn encode_f16(p: &Patterns, out: &mut dyn std::fmt::Write) -> Result<()> {
    let mut enc = base64::write::EncoderWriter::new(
        FmtWriter(out),
        &base64::engine::general_purpose::STANDARD,
    );
    let mut bytes = Vec::new();
    for layer in p.layers() {
        let (_, _, flat) = layer?;
        bytes.clear();
        bytes.extend(
            flat.iter()
                .flat_map(|&x| half::f16::from_f32(x).to_le_bytes()),
        );
        enc.write_all(&bytes)?;
    }
    enc.finish()?;
    Ok(())
}

/// A text sink as an `io::Write` of the ASCII base64 writes.
struct FmtWriter<'a>(&'a mut dyn std::fmt::Write);

impl std::io::Write for FmtWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = std::str::from_utf8(buf).map_err(std::io::Error::other)?;
        self.0
            .write_str(text)
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::BrokenPipe))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Writes [`encode_f16`]'s text through a formatter. serde_json's
/// `collect_str` expects a formatting error only when its writer failed, so
/// an error of the encoding itself is kept here and the text cut short.
struct Encoded<'a>(&'a Patterns, std::cell::RefCell<Option<EngineError>>);

/// A formatter that remembers whether writing to it failed.
struct Tracked<'a, 'f> {
    f: &'a mut std::fmt::Formatter<'f>,
    failed: bool,
}

impl std::fmt::Write for Tracked<'_, '_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let r = self.f.write_str(s);
        self.failed |= r.is_err();
        r
    }
}

impl std::fmt::Display for Encoded<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut out = Tracked { f, failed: false };
        match encode_f16(self.0, &mut out) {
            Ok(()) => Ok(()),
            Err(_) if out.failed => Err(std::fmt::Error),
            Err(e) => {
                *self.1.borrow_mut() = Some(e);
                Ok(())
            }
        }
    }
}

impl Serialize for PackedData {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        match self {
            PackedData::Base64(text) => s.serialize_str(text),
            PackedData::Patterns(p) => {
                use serde::ser::Error;
                let encoded = Encoded(p, Default::default());
                let written = s.collect_str(&encoded)?;
                match encoded.1.take() {
                    Some(cause) => Err(S::Error::custom(cause)),
                    None => Ok(written),
                }
            }
        }
    }
}

impl<'de> Deserialize<'de> for PackedData {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        String::deserialize(d).map(PackedData::Base64)
    }
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

/// The attention of a run in the form a client asked for.
#[derive(Debug, Clone, PartialEq)]
pub enum Attention {
    /// `[layer][head][query][key]` (the original's `attention` field).
    Nested(Nested),
    /// The compact form (`attention_f16`).
    Packed(Packed),
}

impl Attention {
    /// The attention `spec` asks of a run's `patterns`, rendered only as it
    /// is written.
    pub fn of(patterns: &[Tensor], spec: &Spec) -> Result<Self> {
        let p = Patterns {
            tensors: patterns.to_vec(),
            spec: spec.clone(),
        };
        Ok(match spec.format {
            Format::Json => Attention::Nested(Nested::Patterns(p)),
            Format::F16 => {
                let first = patterns.first().ok_or_else(|| {
                    EngineError::InvalidRequest("this run kept no attention patterns".into())
                })?;
                let (h, tokens, _) = first.dims3()?;
                Attention::Packed(Packed {
                    layers: spec.layer_list(patterns.len()),
                    heads: match spec.reduce {
                        Reduce::None => h,
                        Reduce::HeadMean => 1,
                    },
                    tokens,
                    reduce: spec.reduce,
                    data: PackedData::Patterns(p),
                })
            }
        })
    }

    /// The nested numbers, when that is the form asked for.
    pub fn as_nested(&self) -> Option<Vec<Vec<Vec<Vec<f32>>>>> {
        match self {
            Attention::Nested(n) => n.numbers().ok(),
            Attention::Packed(_) => None,
        }
    }
}

/// The attention `spec` asks for, out of a run's patterns, in memory.
pub fn render(patterns: &[Tensor], spec: &Spec) -> Result<Attention> {
    Ok(match Attention::of(patterns, spec)? {
        Attention::Nested(n) => Attention::Nested(Nested::Numbers(n.numbers()?)),
        Attention::Packed(p) => Attention::Packed(Packed {
            data: PackedData::Base64(p.data.text()?),
            ..p
        }),
    })
}

/// Nested `[layer][head][query][key]` numbers, in memory.
pub fn to_json(patterns: &[Tensor], spec: &Spec) -> Result<Vec<Vec<Vec<Vec<f32>>>>> {
    Nested::Patterns(Patterns {
        tensors: patterns.to_vec(),
        spec: spec.clone(),
    })
    .numbers()
}

/// Decode [`Packed::data`] back to f32 (for tests and Rust clients).
pub fn unpack(p: &Packed) -> Result<Vec<f32>> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(p.data.text()?)
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
        let Attention::Packed(p) = render(&ps, &spec).unwrap() else {
            panic!("f16 asked")
        };
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
