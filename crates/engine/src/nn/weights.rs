//! Where model code gets its weights, and matrices kept as the checkpoint
//! stores them.
//!
//! A checkpoint's tensors come from a [`TensorSource`] (safetensors, GGUF,
//! tensors in memory) through [`Weights`], which names them as candle-nn's
//! `VarBuilder` does (`vb.pp("model").pp(3)`) and decides their form:
//! everything widened to the compute dtype (f32, or f64 for tiny models),
//! or the big matrices kept as stored — bf16/f16 tensors, GGUF's quantized
//! blocks — and widened a slice at a time when they are multiplied, so the
//! activations and the sums stay in f32 and only a slice is ever wide.

use std::borrow::Cow;
use std::sync::Arc;

use candle_core::quantized::{QStorage, QTensor};
use candle_core::{DType, Device, Shape, Tensor};

use crate::error::{EngineError, Result};

/// A tensor as a checkpoint holds it.
pub enum Stored {
    Tensor(Tensor),
    /// GGUF's quantized blocks (or its f32/f16 tensors).
    Blocks(Arc<QTensor>),
}

impl Stored {
    fn dims(&self) -> &[usize] {
        match self {
            Stored::Tensor(t) => t.dims(),
            Stored::Blocks(q) => q.shape().dims(),
        }
    }

    /// Every element in `dtype`.
    pub fn widen(self, dtype: DType) -> Result<Tensor> {
        Ok(match self {
            Stored::Tensor(t) => t.to_dtype(dtype)?,
            Stored::Blocks(q) => q.dequantize(&q.device())?.to_dtype(dtype)?,
        })
    }
}

/// Tensors by their Hugging Face state-dict names. A tensor is handed out
/// once (`take`), so a source can let go of it.
pub trait TensorSource: Send + Sync {
    fn take(&self, name: &str) -> Result<Stored>;
    fn has(&self, name: &str) -> bool;
}

/// The form weights are held in while a model is loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    /// Everything in this float dtype.
    Widened(DType),
    /// Matrices as stored; vectors (norms, biases) and the compute in f32.
    Stored,
}

impl Form {
    /// The dtype activations are computed in.
    pub fn compute_dtype(self) -> DType {
        match self {
            Form::Widened(d) => d,
            Form::Stored => DType::F32,
        }
    }
}

/// A named view into a [`TensorSource`], as candle-nn's `VarBuilder`.
#[derive(Clone)]
pub struct Weights {
    src: Arc<dyn TensorSource>,
    prefix: String,
    form: Form,
    device: Device,
}

impl Weights {
    pub fn new(src: Arc<dyn TensorSource>, form: Form, device: &Device) -> Self {
        Weights {
            src,
            prefix: String::new(),
            form,
            device: device.clone(),
        }
    }

    pub fn form(&self) -> Form {
        self.form
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The same source under `prefix.s`.
    pub fn pp(&self, s: impl ToString) -> Self {
        let s = s.to_string();
        Weights {
            prefix: if self.prefix.is_empty() {
                s
            } else {
                format!("{}.{s}", self.prefix)
            },
            ..self.clone()
        }
    }

    fn path(&self, name: &str) -> String {
        if self.prefix.is_empty() {
            name.to_owned()
        } else {
            format!("{}.{name}", self.prefix)
        }
    }

    pub fn contains(&self, name: &str) -> bool {
        self.src.has(&self.path(name))
    }

    fn take(&self, shape: impl Into<Shape>, name: &str) -> Result<Stored> {
        let path = self.path(name);
        let t = self.src.take(&path)?;
        let want: Shape = shape.into();
        if t.dims() != want.dims() {
            return Err(EngineError::Model(format!(
                "shape mismatch for {path}: the checkpoint has {:?}, the model expects {:?}",
                t.dims(),
                want.dims()
            )));
        }
        Ok(t)
    }

    /// A tensor in the compute dtype (norm weights, biases, positions).
    pub fn get(&self, shape: impl Into<Shape>, name: &str) -> Result<Tensor> {
        self.take(shape, name)?
            .widen(self.form.compute_dtype())?
            .to_device(&self.device)
            .map_err(Into::into)
    }

    /// An `[rows, cols]` matrix in this source's form.
    pub fn matrix(&self, (rows, cols): (usize, usize), name: &str) -> Result<Matrix> {
        self.take((rows, cols), name)?.into_matrix(self.form)
    }

    /// An `[rows, cols]` matrix stored transposed (`[cols, rows]`, GPT-2's
    /// `Conv1D`), brought to `[rows, cols]`.
    pub fn matrix_transposed(&self, (rows, cols): (usize, usize), name: &str) -> Result<Matrix> {
        match self.take((cols, rows), name)? {
            Stored::Tensor(t) => Stored::Tensor(t.t()?.contiguous()?).into_matrix(self.form),
            Stored::Blocks(_) => Err(EngineError::Unsupported(format!(
                "{}: a transposed matrix in quantized blocks cannot be read",
                self.path(name)
            ))),
        }
    }
}

impl Stored {
    fn into_matrix(self, form: Form) -> Result<Matrix> {
        Ok(match (form, self) {
            (Form::Widened(d), s) => Matrix::Dense(s.widen(d)?),
            (Form::Stored, Stored::Tensor(t)) => match t.dtype() {
                DType::BF16 | DType::F16 | DType::F32 => Matrix::Dense(t),
                _ => Matrix::Dense(t.to_dtype(DType::F32)?),
            },
            (Form::Stored, Stored::Blocks(q)) => match q.dtype() {
                // GGUF's plain float tensors are as good as dense ones.
                candle_core::quantized::GgmlDType::F32 => Matrix::Dense(q.dequantize(&q.device())?),
                candle_core::quantized::GgmlDType::F16 => {
                    Matrix::Dense(q.dequantize_f16(&q.device())?)
                }
                _ => Matrix::Blocks(q),
            },
        })
    }
}

/// How many bytes of f32 one slice of a stored matrix is widened into. Big
/// enough that the product runs at gemm speed, small enough that a few of
/// them (one per thread) stay in the caches' neighbourhood.
const SLICE_BYTES: usize = 16 << 20;

/// An `[rows, cols]` matrix (`[out, in]` for a projection, `[vocab, d]`
/// for an embedding) in the form it is held.
#[derive(Clone)]
pub enum Matrix {
    /// A candle tensor: the compute dtype, or bf16/f16 as stored.
    Dense(Tensor),
    /// GGUF's quantized blocks, a row at a time.
    Blocks(Arc<QTensor>),
}

impl Matrix {
    pub fn dims(&self) -> (usize, usize) {
        let d = match self {
            Matrix::Dense(t) => t.dims(),
            Matrix::Blocks(q) => q.shape().dims(),
        };
        (d[0], d[1])
    }

    /// Bytes it takes in memory.
    pub fn bytes(&self) -> usize {
        match self {
            Matrix::Dense(t) => t.elem_count() * t.dtype().size_in_bytes(),
            Matrix::Blocks(q) => q.storage_size_in_bytes(),
        }
    }

    /// How it is held: "F32", "BF16", "Q4K"...
    pub fn kind(&self) -> String {
        match self {
            Matrix::Dense(t) => format!("{:?}", t.dtype()).to_uppercase(),
            Matrix::Blocks(q) => format!("{:?}", q.dtype()),
        }
    }

    /// True when products need no widening for activations in `dtype`.
    pub fn is_dense_in(&self, dtype: DType) -> bool {
        matches!(self, Matrix::Dense(t) if t.dtype() == dtype)
    }

    /// The tensor itself when it is dense.
    pub fn dense(&self) -> Option<&Tensor> {
        match self {
            Matrix::Dense(t) => Some(t),
            Matrix::Blocks(_) => None,
        }
    }

    /// Rows `[start, start + n)` in `dtype`.
    pub fn rows(&self, start: usize, n: usize, dtype: DType) -> Result<Tensor> {
        Ok(match self {
            Matrix::Dense(t) => t.narrow(0, start, n)?.to_dtype(dtype)?,
            Matrix::Blocks(q) => {
                let (rows, cols) = self.dims();
                let data = q.data()?;
                let row_bytes = data.len() / rows;
                let bytes = &data[start * row_bytes..(start + n) * row_bytes];
                let dev = q.device();
                let part = QTensor::new(
                    QStorage::from_data(Cow::Borrowed(bytes), &dev, q.dtype())?,
                    (n, cols),
                )?;
                part.dequantize(&dev)?.to_dtype(dtype)?
            }
        })
    }

    /// Embedding lookup: the rows `ids`, in `dtype`.
    pub fn embedding(&self, ids: &Tensor, dtype: DType) -> Result<Tensor> {
        Ok(match self {
            Matrix::Dense(t) => t.embedding(ids)?.to_dtype(dtype)?,
            Matrix::Blocks(q) => q.embedding(ids)?.to_dtype(dtype)?,
        })
    }

    /// `x · selfᵀ` for `x` of shape `[.., cols]` in f32 or f64. A matrix in
    /// another form is widened to `x`'s dtype a slice of rows at a time, the
    /// slices in parallel; each product is an ordinary gemm, so the sums run
    /// in `x`'s dtype over exactly the values stored.
    pub fn matmul_t(&self, x: &Tensor) -> Result<Tensor> {
        let dtype = x.dtype();
        if let Matrix::Dense(w) = self {
            if w.dtype() == dtype {
                return Ok(if x.rank() == 2 {
                    x.matmul(&w.t()?)?
                } else {
                    x.broadcast_matmul(&w.t()?)?
                });
            }
        }
        use rayon::prelude::*;
        let (rows, cols) = self.dims();
        let mut out_dims = x.dims().to_vec();
        let k = out_dims.pop().unwrap_or(0);
        if k != cols {
            return Err(EngineError::Model(format!(
                "a [{rows}, {cols}] matrix cannot multiply inputs of width {k}"
            )));
        }
        out_dims.push(rows);
        let x2 = x.reshape(((x.elem_count() / k.max(1)), k))?.contiguous()?;
        let step = (SLICE_BYTES / (cols.max(1) * dtype.size_in_bytes())).clamp(1, rows.max(1));
        // Each slice's product goes straight to its columns of the output,
        // so only a slice and its product per thread exist beside it.
        let out = Tensor::zeros((x2.dim(0)?, rows), dtype, x.device())?;
        let starts: Vec<usize> = (0..rows).step_by(step).collect();
        starts.into_par_iter().try_for_each(|r| -> Result<()> {
            let w = self.rows(r, step.min(rows - r), dtype)?;
            out.slice_set(&x2.matmul(&w.t()?)?, 1, r)?;
            Ok(())
        })?;
        Ok(out.reshape(out_dims)?)
    }

    /// `g · self` for `g` of shape `[.., rows]` in f32 or f64: the input
    /// gradient of [`matmul_t`](Self::matmul_t) from its output's. A matrix
    /// in another form is widened a slice of rows at a time as there, each
    /// slice's product (`g`'s columns of those rows times the slice) summed
    /// into the result: a few slices in parallel, so at most one slice and
    /// one partial product per thread exist beside it.
    pub fn left_matmul(&self, g: &Tensor) -> Result<Tensor> {
        let dtype = g.dtype();
        if let Matrix::Dense(w) = self {
            if w.dtype() == dtype {
                return Ok(if g.rank() == 2 {
                    g.matmul(w)?
                } else {
                    g.broadcast_matmul(w)?
                });
            }
        }
        use rayon::prelude::*;
        let (rows, cols) = self.dims();
        let mut out_dims = g.dims().to_vec();
        let k = out_dims.pop().unwrap_or(0);
        if k != rows {
            return Err(EngineError::Model(format!(
                "a [{rows}, {cols}] matrix cannot take gradients of width {k}"
            )));
        }
        out_dims.push(cols);
        let g2 = g.reshape((g.elem_count() / k.max(1), k))?;
        let step = (SLICE_BYTES / (cols.max(1) * dtype.size_in_bytes())).clamp(1, rows.max(1));
        let starts: Vec<usize> = (0..rows).step_by(step).collect();
        let mut acc: Option<Tensor> = None;
        for group in starts.chunks(rayon::current_num_threads().max(1)) {
            let parts = group
                .par_iter()
                .map(|&r| -> Result<Tensor> {
                    let n = step.min(rows - r);
                    let w = self.rows(r, n, dtype)?;
                    Ok(g2.narrow(1, r, n)?.contiguous()?.matmul(&w)?)
                })
                .collect::<Result<Vec<_>>>()?;
            for p in parts {
                acc = Some(match acc {
                    Some(a) => (a + p)?,
                    None => p,
                });
            }
        }
        let out = match acc {
            Some(a) => a,
            None => Tensor::zeros((g2.dim(0)?, cols), dtype, g.device())?,
        };
        Ok(out.reshape(out_dims)?)
    }

    /// Rows `[start, start + n)` as a matrix of the same form (a fused
    /// projection split in parts).
    pub fn narrow_rows(&self, start: usize, n: usize) -> Result<Matrix> {
        match self {
            Matrix::Dense(t) => Ok(Matrix::Dense(t.narrow(0, start, n)?.contiguous()?)),
            Matrix::Blocks(_) => self.select_rows(&(start..start + n).collect::<Vec<_>>()),
        }
    }

    /// The rows `idx`, in that order, in the same form: row `i` of the
    /// result is row `idx[i]` of this one. Quantized rows move as whole blocks.
    pub fn select_rows(&self, idx: &[usize]) -> Result<Matrix> {
        let (rows, cols) = self.dims();
        Ok(match self {
            Matrix::Dense(t) => {
                let ids = Tensor::from_iter(idx.iter().map(|&p| p as u32), t.device())?;
                Matrix::Dense(t.contiguous()?.index_select(&ids, 0)?)
            }
            Matrix::Blocks(q) => {
                let data = q.data()?;
                let row_bytes = data.len() / rows.max(1);
                let mut out = Vec::with_capacity(idx.len() * row_bytes);
                for &p in idx {
                    out.extend_from_slice(&data[p * row_bytes..(p + 1) * row_bytes]);
                }
                let dev = q.device();
                Matrix::Blocks(Arc::new(QTensor::new(
                    QStorage::from_data(Cow::Owned(out), &dev, q.dtype())?,
                    (idx.len(), cols),
                )?))
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::quantized::GgmlDType;

    fn noise(rows: usize, cols: usize) -> Tensor {
        let v: Vec<f32> = (0..rows * cols)
            .map(|i| ((i * 2654435761usize % 1000) as f32 / 500.0) - 1.0)
            .collect();
        Tensor::from_vec(v, (rows, cols), &Device::Cpu).unwrap()
    }

    fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
        (a - b)
            .unwrap()
            .abs()
            .unwrap()
            .flatten_all()
            .unwrap()
            .max(0)
            .unwrap()
            .to_scalar()
            .unwrap()
    }

    #[test]
    fn stored_products_equal_the_widened_ones() {
        // Enough rows for several slices.
        let (rows, cols) = (3000, 1536);
        let x = noise(7, cols);
        for dtype in [DType::BF16, DType::F16] {
            let w = noise(rows, cols).to_dtype(dtype).unwrap();
            let wide = w.to_dtype(DType::F32).unwrap();
            let want = x.matmul(&wide.t().unwrap()).unwrap();
            let got = Matrix::Dense(w).matmul_t(&x).unwrap();
            assert!(max_diff(&want, &got) < 1e-4, "{dtype:?}");
        }
        let q = QTensor::quantize(&noise(rows, cols), GgmlDType::Q8_0).unwrap();
        let wide = q.dequantize(&Device::Cpu).unwrap();
        let want = x.matmul(&wide.t().unwrap()).unwrap();
        let got = Matrix::Blocks(Arc::new(q)).matmul_t(&x).unwrap();
        assert!(max_diff(&want, &got) < 1e-4);
    }

    #[test]
    fn stored_left_products_equal_the_widened_ones() {
        let (rows, cols) = (3000, 1536);
        let g = noise(7, rows);
        for dtype in [DType::BF16, DType::F16] {
            let w = noise(rows, cols).to_dtype(dtype).unwrap();
            let want = g.matmul(&w.to_dtype(DType::F32).unwrap()).unwrap();
            let got = Matrix::Dense(w).left_matmul(&g).unwrap();
            assert!(max_diff(&want, &got) < 1e-3, "{dtype:?}");
        }
        let q = QTensor::quantize(&noise(rows, cols), GgmlDType::Q8_0).unwrap();
        let want = g.matmul(&q.dequantize(&Device::Cpu).unwrap()).unwrap();
        let got = Matrix::Blocks(Arc::new(q)).left_matmul(&g).unwrap();
        assert!(max_diff(&want, &got) < 1e-3);
    }

    #[test]
    fn quantized_rows_move_whole() {
        let w = noise(64, 256);
        let q = QTensor::quantize(&w, GgmlDType::Q4K).unwrap();
        let wide = q.dequantize(&Device::Cpu).unwrap();
        let perm: Vec<usize> = (0..64).rev().collect();
        let m = Matrix::Blocks(Arc::new(q)).select_rows(&perm).unwrap();
        let idx = Tensor::from_iter(perm.iter().map(|&p| p as u32), &Device::Cpu).unwrap();
        let want = wide.index_select(&idx, 0).unwrap();
        assert_eq!(max_diff(&m.rows(0, 64, DType::F32).unwrap(), &want), 0.0);
        let part = m.narrow_rows(10, 5).unwrap();
        assert_eq!(
            max_diff(
                &part.rows(0, 5, DType::F32).unwrap(),
                &want.narrow(0, 10, 5).unwrap()
            ),
            0.0
        );
    }
}
