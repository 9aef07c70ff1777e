//! Top 5 of a softmax over the whole vocabulary, without sorting it.
//!
//! This runs once per lens cell (rows x positions, up to ~10^4 cells of
//! ~5·10^4 logits), so it is written to vectorise: a blocked max pass that
//! only looks inside a block when its maximum could enter the top 5, and one
//! exponential pass with a polynomial `exp` whose sum is accumulated in f64
//! lanes. On x86-64 both are compiled again for AVX-512 and for AVX2 (with
//! FMA) and picked at run time.

pub const TOP_K: usize = 5;

/// Top 5 (id, prob) of one lens cell, most probable first.
pub type Top = [(u32, f32); TOP_K];

/// Logits per block of the top-5 scan.
const SELECT_BLOCK: usize = 128;

/// Calls `$generic::<FMA, ACC>($args)` compiled for the best vector unit
/// this CPU has (AVX-512, AVX2+FMA, or portable code).
macro_rules! dispatch {
    ($generic:ident, $ret:ty, ($($arg:ident: $ty:ty),*)) => {{
        // An expression (no `return`): callers use the value.
        (|| -> $ret {
            #[cfg(target_arch = "x86_64")]
            {
                // The polynomial is a chain of dependent multiply-adds, so many
                // independent lanes (ACC) hide its latency: 8 vectors of each width.
                #[target_feature(enable = "avx512f,fma")]
                unsafe fn avx512($($arg: $ty),*) -> $ret {
                    $generic::<true, 128>($($arg),*)
                }
                #[target_feature(enable = "avx2,fma")]
                unsafe fn avx2($($arg: $ty),*) -> $ret {
                    $generic::<true, 64>($($arg),*)
                }
                use std::arch::is_x86_feature_detected as has;
                if has!("avx512f") && has!("fma") {
                    // SAFETY: the CPU has the features the function is compiled for.
                    return unsafe { avx512($($arg),*) };
                }
                if has!("avx2") && has!("fma") {
                    // SAFETY: as above.
                    return unsafe { avx2($($arg),*) };
                }
            }
            $generic::<false, 32>($($arg),*)
        })()
    }};
}

/// One lens cell's distribution, summarised: its top 5 and the softmax
/// normaliser `sum(exp(l - max))` (f64: an f32 running sum over ~50k terms
/// drifts by 1e-4), from which any token's probability follows.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cell {
    pub top: Top,
    pub max: f32,
    pub sum: f64,
}

impl Cell {
    /// `log(sum(exp(l)))`.
    pub fn log_normaliser(&self) -> f64 {
        f64::from(self.max) + self.sum.ln()
    }

    /// Probability of the token whose logit is `l`.
    pub fn prob_of(&self, l: f32) -> f64 {
        f64::from(l - self.max).exp() / self.sum
    }
}

/// Top 5 of `softmax(logits)`: (id, prob), most probable first; ties go to
/// the lower id.
pub fn top_k_softmax(logits: &[f32]) -> Top {
    cell(logits).top
}

/// [`Cell`] of one distribution's logits.
pub fn cell(logits: &[f32]) -> Cell {
    dispatch!(cell_generic, Cell, (logits: &[f32]))
}

#[inline(always)]
fn cell_generic<const FMA: bool, const ACC: usize>(logits: &[f32]) -> Cell {
    let best = select_top(logits);
    let max = best[0].1;
    if max == f32::INFINITY || max.is_nan() || logits.is_empty() {
        return cell_exact(logits);
    }
    let sum = sum_exp_shifted::<FMA, ACC>(logits, max);
    Cell {
        top: best.map(|(id, l)| (id, ((l - max).exp() as f64 / sum) as f32)),
        max,
        sum,
    }
}

#[cfg(test)]
fn top_k_softmax_generic<const FMA: bool, const ACC: usize>(logits: &[f32]) -> Top {
    cell_generic::<FMA, ACC>(logits).top
}

/// Entropy (nats) of the distribution `c` summarises.
pub fn entropy(logits: &[f32], c: &Cell) -> f64 {
    let (max, sum, other) = (c.max, c.sum, None);
    let weighted =
        dispatch!(exp_weighted_generic, f64, (logits: &[f32], max: f32, other: Option<&[f32]>));
    // H = log Z - sum(p * (l - max)) with Z = sum(exp(l - max)).
    (sum.ln() - weighted / sum).max(0.0)
}

/// KL(a || b) in nats between the distributions of two logit rows of the
/// same vocabulary, given their cells.
pub fn kl(a: &[f32], ca: &Cell, b: &[f32], cb: &Cell) -> f64 {
    debug_assert_eq!(a.len(), b.len());
    let (logits, max, other) = (a, ca.max, Some(b));
    // sum(p_a * (l_a - l_b)) - logZ_a + logZ_b.
    let weighted =
        dispatch!(exp_weighted_generic, f64, (logits: &[f32], max: f32, other: Option<&[f32]>));
    (weighted / ca.sum - ca.log_normaliser() + cb.log_normaliser()).max(0.0)
}

/// `sum(exp(l - max) * (l - other))`, with `other` = `max` when None.
#[inline(always)]
fn exp_weighted_generic<const FMA: bool, const ACC: usize>(
    logits: &[f32],
    max: f32,
    other: Option<&[f32]>,
) -> f64 {
    let mut total = 0f64;
    let mut add_block = |block: &[f32], reference: Option<&[f32]>| {
        let mut acc = [0f32; ACC];
        match reference {
            Some(r) => {
                for ((a, &l), &o) in acc.iter_mut().zip(block).zip(r) {
                    *a += exp_nonpositive::<FMA>(l - max) * (l - o);
                }
            }
            None => {
                for (a, &l) in acc.iter_mut().zip(block) {
                    let d = l - max;
                    *a += exp_nonpositive::<FMA>(d) * d;
                }
            }
        }
        total += acc.iter().map(|&x| f64::from(x)).sum::<f64>();
    };
    let n = logits.len() / ACC * ACC;
    for start in (0..n).step_by(ACC) {
        add_block(
            &logits[start..start + ACC],
            other.map(|o| &o[start..start + ACC]),
        );
    }
    for i in n..logits.len() {
        let l = logits[i];
        let o = other.map_or(max, |o| o[i]);
        total += f64::from(exp_nonpositive::<FMA>(l - max) * (l - o));
    }
    total
}

/// Rank of token `id` in the distribution of `logits`: how many tokens come
/// before it (higher logit, or equal logit and lower id). 0 = top.
pub fn rank_of(logits: &[f32], id: u32) -> u32 {
    let x = logits[id as usize];
    let (before, after) = logits.split_at(id as usize);
    let higher_before = before.iter().filter(|&&l| l >= x).count();
    let higher_after = after[1..].iter().filter(|&&l| l > x).count();
    (higher_before + higher_after) as u32
}

/// The top 5 logits by value (lower id first among equals).
#[inline(always)]
fn select_top(logits: &[f32]) -> Top {
    let mut best: Top = [(u32::MAX, f32::NEG_INFINITY); TOP_K];
    let blocks = logits.chunks_exact(SELECT_BLOCK);
    let tail = blocks.remainder();
    for (b, block) in blocks.enumerate() {
        // Does anything in the block beat the 5th best? A vector compare
        // and one flag; most blocks stop here.
        let threshold = best[TOP_K - 1].1;
        let mut hit = false;
        for &l in block {
            hit |= l > threshold;
        }
        if hit {
            for (j, &l) in block.iter().enumerate() {
                insert(&mut best, b * SELECT_BLOCK + j, l);
            }
        }
    }
    let base = logits.len() - tail.len();
    for (j, &l) in tail.iter().enumerate() {
        insert(&mut best, base + j, l);
    }
    best
}

/// Insert logit `l` of token `i` into a top-5 list sorted by value (an
/// equal logit goes after: ties keep the lower id first).
#[inline(always)]
fn insert(best: &mut Top, i: usize, l: f32) {
    if l > best[TOP_K - 1].1 {
        let mut j = TOP_K - 1;
        while j > 0 && l > best[j - 1].1 {
            best[j] = best[j - 1];
            j -= 1;
        }
        best[j] = (i as u32, l);
    }
}

/// `sum(exp(l - max))`: f32 lanes over short blocks (8 terms per lane),
/// each block's lanes added into an f64 total.
#[inline(always)]
fn sum_exp_shifted<const FMA: bool, const ACC: usize>(logits: &[f32], max: f32) -> f64 {
    sums::<FMA, ACC, false>(logits, max).0
}

/// `sum(exp(d))` and, with `WEIGHTED`, `sum(exp(d) * d)` for `d = l - max`
/// in the same pass (the entropy's second term costs one multiply-add).
#[inline(always)]
fn sums<const FMA: bool, const ACC: usize, const WEIGHTED: bool>(
    logits: &[f32],
    max: f32,
) -> (f64, f64) {
    let (mut sum, mut weighted) = (0f64, 0f64);
    let blocks = logits.chunks_exact(ACC * 8);
    let tail = blocks.remainder();
    for block in blocks {
        let mut acc = [0f32; ACC];
        let mut acc_w = [0f32; ACC];
        for step in block.chunks_exact(ACC) {
            for ((a, w), &l) in acc.iter_mut().zip(acc_w.iter_mut()).zip(step) {
                let d = l - max;
                let e = exp_nonpositive::<FMA>(d);
                *a += e;
                if WEIGHTED {
                    *w = mul_add::<FMA>(e, d, *w);
                }
            }
        }
        sum += acc.iter().map(|&a| f64::from(a)).sum::<f64>();
        if WEIGHTED {
            weighted += acc_w.iter().map(|&a| f64::from(a)).sum::<f64>();
        }
    }
    for &l in tail {
        let d = l - max;
        let e = exp_nonpositive::<FMA>(d);
        sum += f64::from(e);
        weighted += f64::from(e * d);
    }
    (sum, weighted)
}

/// [`Cell`] and the entropy (nats) of one distribution, in the passes a
/// cell alone takes.
pub fn cell_and_entropy(logits: &[f32]) -> (Cell, f64) {
    dispatch!(cell_entropy_generic, (Cell, f64), (logits: &[f32]))
}

#[inline(always)]
fn cell_entropy_generic<const FMA: bool, const ACC: usize>(logits: &[f32]) -> (Cell, f64) {
    let best = select_top(logits);
    let max = best[0].1;
    if max == f32::INFINITY || max.is_nan() || logits.is_empty() {
        let c = cell_exact(logits);
        return (c, entropy(logits, &c));
    }
    let (sum, weighted) = sums::<FMA, ACC, true>(logits, max);
    let c = Cell {
        top: best.map(|(id, l)| (id, ((l - max).exp() as f64 / sum) as f32)),
        max,
        sum,
    };
    // H = log Z - sum(p * (l - max)) with Z = sum(exp(l - max)).
    (c, (sum.ln() - weighted / sum).max(0.0))
}

/// `a * b + c`, fused where the caller is compiled with FMA (elsewhere
/// `mul_add` would be a libm call).
#[inline(always)]
fn mul_add<const FMA: bool>(a: f32, b: f32, c: f32) -> f32 {
    if FMA {
        a.mul_add(b, c)
    } else {
        a * b + c
    }
}

/// `exp(x)` for `x <= 0` within 2e-7 relative error (0 at -87 and below),
/// branch free so it vectorises: `x = n·ln2 + r`, `|r| <= ln2/2`, a
/// degree-7 Taylor polynomial for `exp(r)`, and `2^n` put in the exponent
/// bits.
#[inline(always)]
fn exp_nonpositive<const FMA: bool>(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    // ln 2 split so n·LN2_HI is exact for |n| < 2^8.
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    // Adding 1.5·2^23 rounds to an integer and leaves it in the low
    // mantissa bits: no float-to-int conversion needed.
    const ROUND: f32 = 12_582_912.0;
    let x = if x < -87.0 { -87.0 } else { x };
    let t = mul_add::<FMA>(x, LOG2E, ROUND);
    let n = t - ROUND;
    let r = mul_add::<FMA>(-n, LN2_LO, mul_add::<FMA>(-n, LN2_HI, x));
    let mut p = 1.0 / 5040.0;
    for c in [
        1.0 / 720.0,
        1.0 / 120.0,
        1.0 / 24.0,
        1.0 / 6.0,
        0.5,
        1.0,
        1.0,
    ] {
        p = mul_add::<FMA>(p, r, c);
    }
    let scale = f32::from_bits(t.to_bits().wrapping_sub(ROUND.to_bits()).wrapping_add(127) << 23);
    if x <= -87.0 {
        0.0
    } else {
        p * scale
    }
}

/// The straightforward version: libm `exp`, kept for inputs with infinities
/// or NaN and as the yardstick in tests.
pub fn top_k_softmax_exact(logits: &[f32]) -> Top {
    cell_exact(logits).top
}

fn cell_exact(logits: &[f32]) -> Cell {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let sum: f64 = logits.iter().map(|&l| f64::from((l - max).exp())).sum();
    let mut best: Top = [(u32::MAX, f32::NEG_INFINITY); TOP_K];
    for (i, &l) in logits.iter().enumerate() {
        insert(&mut best, i, l);
    }
    Cell {
        top: best.map(|(id, l)| (id, (f64::from((l - max).exp()) / sum) as f32)),
        max,
        sum,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic pseudo-random vocabulary of logits.
    fn logits(n: usize, seed: u64, spread: f32) -> Vec<f32> {
        let mut s = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (0..n)
            .map(|_| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((s >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * spread
            })
            .collect()
    }

    #[test]
    fn exp_is_within_2e7_relative() {
        let mut worst = 0f64;
        let mut x = -86.9f32;
        while x <= 0.0 {
            let want = (x as f64).exp();
            let got = exp_nonpositive::<false>(x) as f64;
            let fused = exp_nonpositive::<true>(x) as f64;
            worst = worst.max((fused - want).abs() / want);
            worst = worst.max((got - want).abs() / want);
            x += 0.001_3;
        }
        assert!(worst < 2e-7, "worst relative error {worst:e}");
        assert_eq!(exp_nonpositive::<false>(0.0), 1.0);
        assert_eq!(exp_nonpositive::<false>(-200.0), 0.0);
    }

    #[test]
    fn fast_path_agrees_with_the_exact_one() {
        for (n, spread) in [
            (49152, 40.0),
            (49152, 4.0),
            (151936, 60.0),
            (7, 3.0),
            (33, 1.0),
            (512, 0.0),
        ] {
            for seed in 0..4 {
                let l = logits(n, seed, spread);
                let exact = top_k_softmax_exact(&l);
                let dispatched = top_k_softmax(&l);
                let portable = top_k_softmax_generic::<false, 32>(&l);
                for (a, b) in dispatched.iter().chain(&portable).zip(exact.iter().cycle()) {
                    assert_eq!(a.0, b.0, "n={n} spread={spread} seed={seed}");
                    assert!(
                        (a.1 - b.1).abs() <= 1e-6 * b.1.max(1e-3),
                        "n={n}: {} vs {}",
                        a.1,
                        b.1
                    );
                }
            }
        }
    }

    #[test]
    fn ties_go_to_the_lower_id_and_order_is_descending() {
        let logits = [0.0f32, 3.0, 1.0, 3.0, -2.0, 2.0, 0.5];
        let top = top_k_softmax(&logits);
        assert_eq!(top.map(|t| t.0), [1, 3, 5, 2, 6]);
        let z: f32 = logits.iter().map(|l| l.exp()).sum();
        assert!((top[0].1 - 3f32.exp() / z).abs() < 1e-7);
        assert!(top.windows(2).all(|w| w[0].1 >= w[1].1));
        // A uniform row: the five lowest ids, each 1/V.
        let flat = vec![0.25f32; 100];
        let top = top_k_softmax(&flat);
        assert_eq!(top.map(|t| t.0), [0, 1, 2, 3, 4]);
        assert!(top.iter().all(|t| (t.1 - 0.01).abs() < 1e-8));
    }

    #[test]
    fn entropy_kl_and_rank_match_direct_formulas() {
        let a = logits(49152, 7, 20.0);
        let b = logits(49152, 8, 20.0);
        let (ca, cb) = (cell(&a), cell(&b));
        let lse = |l: &[f32]| {
            let m = l.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
            m + l.iter().map(|&x| (x as f64 - m).exp()).sum::<f64>().ln()
        };
        let (za, zb) = (lse(&a), lse(&b));
        let h: f64 = a
            .iter()
            .map(|&x| {
                let lp = x as f64 - za;
                -lp.exp() * lp
            })
            .sum();
        let k: f64 = a
            .iter()
            .zip(&b)
            .map(|(&x, &y)| {
                let (pa, pb) = (x as f64 - za, y as f64 - zb);
                pa.exp() * (pa - pb)
            })
            .sum();
        assert!(
            (entropy(&a, &ca) - h).abs() < 1e-5 * h,
            "{} vs {h}",
            entropy(&a, &ca)
        );
        assert!(
            (kl(&a, &ca, &b, &cb) - k).abs() < 1e-5 * k.max(1e-3),
            "{} vs {k}",
            kl(&a, &ca, &b, &cb)
        );
        assert_eq!(kl(&a, &ca, &a, &ca), 0.0, "identical rows: exactly 0");
        // A uniform row: entropy log V; KL(a || uniform) = log V - H(a).
        let u = vec![0f32; 49152];
        let cu = cell(&u);
        assert!((entropy(&u, &cu) - (49152f64).ln()).abs() < 1e-9);
        assert!((kl(&a, &ca, &u, &cu) - ((49152f64).ln() - h)).abs() < 1e-5);
        // Ranks: the top is 0, ties go to the lower id.
        let top = ca.top[0].0;
        assert_eq!(rank_of(&a, top), 0);
        assert_eq!(rank_of(&a, ca.top[3].0), 3);
        assert_eq!(rank_of(&[1.0, 2.0, 2.0, 0.5], 2), 1);
        assert_eq!(rank_of(&[1.0, 2.0, 2.0, 0.5], 1), 0);
        assert_eq!(rank_of(&[1.0, 2.0, 2.0, 0.5], 3), 3);
        assert!((ca.prob_of(a[top as usize]) as f32 - ca.top[0].1).abs() < 1e-7);
    }

    #[test]
    fn infinities_fall_back_to_the_exact_path() {
        let mut l = vec![0.0f32; 40];
        l[17] = f32::NEG_INFINITY;
        l[3] = 5.0;
        assert_eq!(top_k_softmax(&l), top_k_softmax_exact(&l));
        l[9] = f32::INFINITY;
        assert_eq!(top_k_softmax(&l)[0].0, top_k_softmax_exact(&l)[0].0);
    }
}
