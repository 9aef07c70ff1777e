//! `tensors.npz` as numpy's `np.savez` writes it: an uncompressed zip of
//! `.npy` files, readable by `numpy.load` without `allow_pickle`. The
//! reader half, for session files from outside, is [`read`].

pub mod read;

use std::io::{Cursor, Write};

use candle_core::{DType, Tensor};
use ndarray::{ArrayD, IxDyn};
use ndarray_npy::WriteNpyExt;
use zip::write::SimpleFileOptions;

use logitlens_engine::RunState;

#[derive(Debug, thiserror::Error)]
pub enum NpzError {
    #[error("tensor: {0}")]
    Candle(#[from] candle_core::Error),
    #[error("npy: {0}")]
    Npy(#[from] ndarray_npy::WriteNpyError),
    #[error("zip: {0}")]
    Zip(#[from] zip::result::ZipError),
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("shape: {0}")]
    Shape(#[from] ndarray::ShapeError),
    #[error("no {0} to save")]
    Empty(&'static str),
}

/// Equal-shaped f32 tensors stacked into one array, with a unit axis after
/// the first when `batch_axis` (the original's batch dimension).
fn stack_f32(
    what: &'static str,
    ts: &[&Tensor],
    batch_axis: bool,
) -> Result<ArrayD<f32>, NpzError> {
    let inner = ts.first().ok_or(NpzError::Empty(what))?.dims().to_vec();
    let mut shape = vec![ts.len()];
    if batch_axis {
        shape.push(1);
    }
    shape.extend(&inner);
    let mut data = Vec::with_capacity(shape.iter().product());
    for t in ts {
        data.extend(t.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?);
    }
    Ok(ArrayD::from_shape_vec(IxDyn(&shape), data)?)
}

/// A 1-D numpy unicode array (`<U{n}`, UCS-4 little endian).
pub fn unicode_npy(items: &[String]) -> Vec<u8> {
    let width = items
        .iter()
        .map(|s| s.chars().count())
        .max()
        .unwrap_or(0)
        .max(1);
    let header = format!(
        "{{'descr': '<U{width}', 'fortran_order': False, 'shape': ({},), }}",
        items.len()
    );
    // Magic (6) + version (2) + header length (2) + header, padded with
    // spaces and a newline to a multiple of 64 bytes.
    let unpadded = 10 + header.len() + 1;
    let pad = (64 - unpadded % 64) % 64;
    let mut out = Vec::new();
    out.extend_from_slice(b"\x93NUMPY\x01\x00");
    out.extend_from_slice(&((header.len() + pad + 1) as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out.extend(std::iter::repeat_n(b' ', pad));
    out.push(b'\n');
    for s in items {
        let mut n = 0;
        for c in s.chars() {
            out.extend_from_slice(&(c as u32).to_le_bytes());
            n += 1;
        }
        out.extend(std::iter::repeat_n(0u8, 4 * (width - n)));
    }
    out
}

fn npy<A: WriteNpyExt>(a: &A) -> Result<Vec<u8>, NpzError> {
    let mut buf = Vec::new();
    a.write_npy(&mut buf)?;
    Ok(buf)
}

/// The arrays of one run, named, ordered and shaped as every saved session
/// has them (numpy code written for older sessions reads these too):
/// hidden_states [S,1,T,D], logits [1,T,V], layer_names [S],
/// post_attention_states [n,1,T,D], and attentions [n,1,H,T,T] when asked.
pub fn run_npz(run: &RunState, with_attention: bool) -> Result<Vec<u8>, NpzError> {
    let states: Vec<&Tensor> = run
        .rows
        .iter()
        .map(|(_, s)| run.capture.state(*s))
        .collect();
    let names: Vec<String> = run.rows.iter().map(|(n, _)| n.clone()).collect();
    let post: Vec<&Tensor> = run.capture.post_attn.iter().collect();
    let mut entries: Vec<(&str, Vec<u8>)> = vec![
        (
            "hidden_states",
            npy(&stack_f32("hidden states", &states, true)?)?,
        ),
        ("logits", npy(&stack_f32("logits", &[&run.logits], false)?)?),
        ("layer_names", unicode_npy(&names)),
        (
            "post_attention_states",
            npy(&stack_f32("post-attention states", &post, true)?)?,
        ),
    ];
    if with_attention {
        let att: Vec<&Tensor> = run.capture.patterns.iter().collect();
        entries.push(("attentions", npy(&stack_f32("attention", &att, true)?)?));
    }
    let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let opts = SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Stored)
        .large_file(true);
    for (name, bytes) in entries {
        zip.start_file(format!("{name}.npy"), opts)?;
        zip.write_all(&bytes)?;
    }
    Ok(zip.finish()?.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unicode_header_is_aligned_and_parsable() {
        let b = unicode_npy(&["Embeddings".into(), "Layer 0".into(), "Final Output".into()]);
        assert_eq!(&b[..6], b"\x93NUMPY");
        let hlen = u16::from_le_bytes([b[8], b[9]]) as usize;
        assert_eq!((10 + hlen) % 64, 0);
        let header = std::str::from_utf8(&b[10..10 + hlen]).unwrap();
        assert!(
            header.contains("'descr': '<U12'") && header.contains("'shape': (3,)"),
            "{header}"
        );
        assert_eq!(b.len(), 10 + hlen + 3 * 12 * 4);
        assert_eq!(&b[10 + hlen..10 + hlen + 4], &('E' as u32).to_le_bytes());
    }
}
