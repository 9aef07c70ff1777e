//! A gated MLP's `silu(gate) * up` in one pass, number for number what
//! candle's `silu` then `*` compute: `v / (1 + exp(-v))` in f32, then the
//! product, with glibc's `expf` (what `f32::exp` calls here).
//!
//! In a batched patching sweep this was the largest piece of work besides
//! the products (glibc's scalar `expf`, a buffer for the activation and a
//! second pass for the product). On AVX-512 the exponential runs eight at a
//! time as glibc's own algorithm with its own table and constants
//! (`__expf_fma`: the same double-precision fused multiply-adds in the same
//! order), so the bits are libm's: checked against `f32::exp` over every
//! float in `exp_is_libms_on_every_float` (ignored: a minute) and a dense
//! sample in the suite. Other machines, and the lanes glibc treats apart
//! (|x| ≥ 88, infinities, NaN), call `f32::exp` itself.

use candle_core::{DType, Tensor};

use crate::error::Result;

/// Elements per task: a few pages, so two threads share a batch's rows.
const CHUNK: usize = 16 * 1024;

/// `silu(g) * u` of two tensors of one shape; f32, contiguous, on the CPU
/// in one pass, otherwise as candle's two ops.
pub(crate) fn silu_times(g: &Tensor, u: &Tensor) -> Result<Tensor> {
    if g.dtype() != DType::F32
        || u.dtype() != DType::F32
        || g.dims() != u.dims()
        || !g.is_contiguous()
        || !u.is_contiguous()
        || !g.device().is_cpu()
    {
        return Ok((candle_nn::ops::silu(g)? * u)?);
    }
    let out = super::with_f32_slice(g, |gs| {
        super::with_f32_slice(u, |us| silu_times_slices(gs, us))
    })??;
    Ok(Tensor::from_vec(out, g.dims(), g.device())?)
}

/// The product over slices, on candle's thread pool (the one its
/// elementwise ops use).
fn silu_times_slices(gs: &[f32], us: &[f32]) -> Vec<f32> {
    assert_eq!(gs.len(), us.len());
    let len = gs.len();
    let mut y: Vec<f32> = Vec::with_capacity(len);
    let dst = Dst(y.as_mut_ptr());
    let avx512 = has_avx512();
    candle_core::utils::barrier_pool().execute_chunked(len.div_ceil(CHUNK), |units| {
        for unit in units {
            let lo = unit * CHUNK;
            let hi = len.min(lo + CHUNK);
            // SAFETY: `lo..hi` is inside `y`'s capacity and no other unit
            // writes it.
            let out = unsafe { dst.range(lo, hi) };
            silu_times_range(&gs[lo..hi], &us[lo..hi], out, avx512);
        }
    });
    // SAFETY: the units cover `0..len`, every element written.
    unsafe { y.set_len(len) };
    y
}

fn has_avx512() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx512f")
    }
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// candle's silu of one element, times `u`.
#[inline]
fn scalar(v: f32, u: f32) -> f32 {
    v / (1.0 + (-v).exp()) * u
}

fn silu_times_range(g: &[f32], u: &[f32], out: &mut [std::mem::MaybeUninit<f32>], avx512: bool) {
    let mut i = 0;
    #[cfg(target_arch = "x86_64")]
    if avx512 {
        // SAFETY: AVX-512F was detected on this CPU.
        i = unsafe { x86::silu_times8(g, u, out) };
    }
    let _ = avx512;
    for j in i..g.len() {
        out[j].write(scalar(g[j], u[j]));
    }
}

/// The output buffer the tasks write, each its own range.
struct Dst(*mut f32);
// SAFETY: tasks write disjoint ranges (see `silu_times_slices`).
unsafe impl Sync for Dst {}

impl Dst {
    /// # Safety
    /// `lo..hi` is inside the buffer and no other task touches it.
    #[allow(clippy::mut_from_ref)]
    unsafe fn range(&self, lo: usize, hi: usize) -> &mut [std::mem::MaybeUninit<f32>] {
        std::slice::from_raw_parts_mut(self.0.add(lo).cast(), hi - lo)
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;
    use std::mem::MaybeUninit;

    /// glibc's `__exp2f_data`: 2^(i/32) with `i << 47` taken off each
    /// entry's bits (it is added back from the rounded exponent).
    const TAB: [u64; 32] = [
        0x3ff0000000000000,
        0x3fefd9b0d3158574,
        0x3fefb5586cf9890f,
        0x3fef9301d0125b51,
        0x3fef72b83c7d517b,
        0x3fef54873168b9aa,
        0x3fef387a6e756238,
        0x3fef1e9df51fdee1,
        0x3fef06fe0a31b715,
        0x3feef1a7373aa9cb,
        0x3feedea64c123422,
        0x3feece086061892d,
        0x3feebfdad5362a27,
        0x3feeb42b569d4f82,
        0x3feeab07dd485429,
        0x3feea47eb03a5585,
        0x3feea09e667f3bcd,
        0x3fee9f75e8ec5f74,
        0x3feea11473eb0187,
        0x3feea589994cce13,
        0x3feeace5422aa0db,
        0x3feeb737b0cdc5e5,
        0x3feec49182a3f090,
        0x3feed503b23e255d,
        0x3feee89f995ad3ad,
        0x3feeff76f2fb5e47,
        0x3fef199bdd85529c,
        0x3fef3720dcef9069,
        0x3fef5818dcfba487,
        0x3fef7c97337b9b5f,
        0x3fefa4afa2a490da,
        0x3fefd0765b6e4540,
    ];
    /// 32 / ln 2, and the polynomial's coefficients, scaled as glibc's.
    const INV_LN2_N: f64 = f64::from_bits(0x40471547652b82fe);
    const C0: f64 = f64::from_bits(0x3ebc6af84b912394);
    const C1: f64 = f64::from_bits(0x3f2ebfce50fac4f3);
    const C2: f64 = f64::from_bits(0x3f962e42ff0c52d6);
    /// 1.5 · 2^52: adding it rounds to an integer, ties to even.
    const SHIFT: f64 = f64::from_bits(0x4338000000000000);
    /// The top 12 bits (less the sign) from which glibc takes its
    /// special path: |x| ≥ 88, infinities and NaN.
    const SPECIAL_TOP: i32 = 0x42a;

    /// `expf` of 8 floats as glibc's `__expf_fma` computes it, for lanes
    /// off its special path; and whether some lane is on it.
    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn exp8(x: __m256) -> (__m256, bool) {
        let top = _mm256_and_si256(
            _mm256_srli_epi32::<20>(_mm256_castps_si256(x)),
            _mm256_set1_epi32(0x7ff),
        );
        let special =
            _mm256_movemask_epi8(_mm256_cmpgt_epi32(top, _mm256_set1_epi32(SPECIAL_TOP))) != 0;
        let xd = _mm512_cvtps_pd(x);
        let inv = _mm512_set1_pd(INV_LN2_N);
        let shift = _mm512_set1_pd(SHIFT);
        let kds = _mm512_fmadd_pd(inv, xd, shift);
        let ki = _mm512_castpd_si512(kds);
        let kd = _mm512_sub_pd(kds, shift);
        let r = _mm512_fmsub_pd(inv, xd, kd);
        let idx = _mm512_and_si512(ki, _mm512_set1_epi64(31));
        let t = _mm512_i64gather_epi64::<8>(idx, TAB.as_ptr().cast());
        let s = _mm512_castsi512_pd(_mm512_add_epi64(t, _mm512_slli_epi64::<47>(ki)));
        let z = _mm512_fmadd_pd(r, _mm512_set1_pd(C0), _mm512_set1_pd(C1));
        let r2 = _mm512_mul_pd(r, r);
        let y = _mm512_fmadd_pd(r, _mm512_set1_pd(C2), _mm512_set1_pd(1.0));
        let y = _mm512_fmadd_pd(z, r2, y);
        let y = _mm512_mul_pd(y, s);
        (_mm512_cvtpd_ps(y), special)
    }

    /// `silu(g) * u` over whole groups of 8 (a group with a lane on glibc's
    /// special path goes to `f32::exp`); returns how many were written.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn silu_times8(g: &[f32], u: &[f32], out: &mut [MaybeUninit<f32>]) -> usize {
        let n = g.len() / 8 * 8;
        let one = _mm256_set1_ps(1.0);
        let mut i = 0;
        while i < n {
            let v = _mm256_loadu_ps(g.as_ptr().add(i));
            let neg = _mm256_xor_ps(v, _mm256_set1_ps(-0.0));
            let (e, special) = exp8(neg);
            if special {
                for j in i..i + 8 {
                    out[j].write(super::scalar(g[j], u[j]));
                }
            } else {
                let y = _mm256_mul_ps(
                    _mm256_div_ps(v, _mm256_add_ps(one, e)),
                    _mm256_loadu_ps(u.as_ptr().add(i)),
                );
                _mm256_storeu_ps(out.as_mut_ptr().add(i).cast(), y);
            }
            i += 8;
        }
        n
    }

    /// `expf` of 8 floats through [`exp8`], `None` for a group glibc treats
    /// apart (tests).
    #[cfg(test)]
    pub(super) fn exp8_checked(x: [f32; 8]) -> Option<[f32; 8]> {
        // SAFETY: the caller checked AVX-512F (tests skip without it).
        unsafe {
            let (y, special) = exp8(_mm256_loadu_ps(x.as_ptr()));
            let mut out = [0f32; 8];
            _mm256_storeu_ps(out.as_mut_ptr(), y);
            (!special).then_some(out)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Checks `exp8` against `f32::exp` on the floats `start, start + step,
    /// ...` (as bit patterns); returns how many were compared.
    #[cfg(target_arch = "x86_64")]
    fn compare_exp(step: u64) -> u64 {
        let mut compared = 0;
        let mut bits: u64 = 0;
        while bits < 1 << 32 {
            let mut x = [0f32; 8];
            for (k, v) in x.iter_mut().enumerate() {
                *v = f32::from_bits(((bits + k as u64 * step) & 0xffff_ffff) as u32);
            }
            if let Some(y) = x86::exp8_checked(x) {
                for k in 0..8 {
                    let want = x[k].exp();
                    assert_eq!(
                        y[k].to_bits(),
                        want.to_bits(),
                        "exp({:e}) ({:#x}): {:e} against libm's {:e}",
                        x[k],
                        x[k].to_bits(),
                        y[k],
                        want
                    );
                }
                compared += 8;
            }
            bits += 8 * step;
        }
        compared
    }

    #[test]
    #[cfg(target_arch = "x86_64")]
    fn exp_is_libms_on_a_dense_sample_of_floats() {
        if !has_avx512() {
            return;
        }
        // Every 61st float: 70 million, about 45% of them off the special
        // path (the rest are |x| ≥ 88, infinities and NaN).
        assert!(compare_exp(61) > 20_000_000);
    }

    #[test]
    #[ignore = "every float: about a minute"]
    #[cfg(target_arch = "x86_64")]
    fn exp_is_libms_on_every_float() {
        if !has_avx512() {
            return;
        }
        assert!(compare_exp(1) > 1_000_000_000);
    }

    #[test]
    fn one_pass_is_candles_silu_then_product_bit_for_bit() {
        // Values across the range the MLP sees and past glibc's special
        // path (|v| ≥ 88), odd lengths for the scalar tail, and enough for
        // several tasks.
        let n = 3 * CHUNK + 13;
        let g: Vec<f32> = (0..n)
            .map(|i| {
                let t = i as f32 / n as f32;
                match i % 7 {
                    0 => 200.0 * (t - 0.5),
                    1 => f32::from_bits(0x8000_0000 | (i as u32).wrapping_mul(2_654_435_761) >> 9),
                    _ => 24.0 * (t - 0.5) + (i % 13) as f32 * 1e-3,
                }
            })
            .collect();
        let u: Vec<f32> = (0..n)
            .map(|i| ((i * 37 % 101) as f32 - 50.0) / 7.0)
            .collect();
        let dev = candle_core::Device::Cpu;
        let gt = Tensor::from_vec(g, n, &dev).unwrap();
        let ut = Tensor::from_vec(u, n, &dev).unwrap();
        let want: Vec<f32> = (candle_nn::ops::silu(&gt).unwrap() * &ut)
            .unwrap()
            .to_vec1()
            .unwrap();
        let got: Vec<f32> = silu_times(&gt, &ut).unwrap().to_vec1().unwrap();
        for (i, (a, b)) in got.iter().zip(&want).enumerate() {
            assert!(
                a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan()),
                "element {i}: {a:e} against candle's {b:e}"
            );
        }
    }
}
