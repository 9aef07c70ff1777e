//! f32 weight products at a few dozen tokens, over weights laid out once at
//! load in the order the kernel reads them.
//!
//! gemm copies ("packs") a weight into its kernel's order on every call. A
//! forward uses each weight once, so at 17–54 tokens that copy, and the
//! strided reads it does, cost as much as the product (docs/PERFORMANCE.md:
//! gemm reached 53–97 GFLOP/s on SmolLM2's shapes where the machine does
//! 250–350). gemm takes no operand packed ahead of time, so this module packs
//! each f32 weight once, into panels of 16 output columns stored
//! `[panel][in][16]`, and multiplies with a small register-blocked kernel:
//! up to 14 rows × 2 panels of accumulators on AVX-512, 6 rows × 1 panel on
//! AVX2 (+FMA), picked at run time. Elsewhere (other CPUs, f64, weights
//! kept as stored) the weight stays a gemm operand.
//!
//! Every output is one fused multiply-add chain over the input in order,
//! whatever the rows beside it or the vector width: a row gives the same bits
//! alone, in a batch, on AVX-512 or on AVX2.

/// Output columns per panel: one AVX-512 register of f32.
const LANES: usize = 16;
/// Rows per task: tasks are (rows, panel pair) tiles spread over the threads;
/// a chunk of rows this tall stays in L2 while its panels stream past.
const CHUNK: usize = 112;

/// One panel row, aligned so that no load straddles two cache lines.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Line([f32; LANES]);

/// How a weight given to [`Panels::pack`] is laid out.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Order {
    /// `[in, out]`: rows are inputs (the tests' reference layout).
    #[cfg(test)]
    InOut,
    /// `[out, in]`, as checkpoints store a linear layer.
    OutIn,
}

/// The vector unit the kernel is compiled for.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Isa {
    Avx512,
    Avx2,
}

impl Isa {
    fn detect() -> Option<Isa> {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::is_x86_feature_detected as has;
            if has!("avx512f") {
                return Some(Isa::Avx512);
            }
            if has!("avx2") && has!("fma") {
                return Some(Isa::Avx2);
            }
        }
        None
    }
}

/// An `[in, out]` f32 weight in panels of 16 output columns (the last one
/// padded with zeros).
pub(crate) struct Panels {
    lines: Vec<Line>,
    k: usize,
    n: usize,
    isa: Isa,
}

impl Panels {
    /// Lays out a `[k, n]` weight (`x · wt` is the product) given as
    /// `[k, n]` or, as checkpoints store it, `[n, k]` (`order`), row-major;
    /// `None` when this CPU has no kernel, or when `LOGITLENS_GEMM_ONLY` is
    /// set (the bench's before/after).
    pub(crate) fn pack(w: &[f32], k: usize, n: usize, order: Order) -> Option<Panels> {
        assert_eq!(w.len(), k * n, "a [{k}, {n}] weight");
        let isa = Isa::detect()?;
        // gemm sums an input of 1 or 2 otherwise (`gevv`); no layer is that thin.
        if std::env::var_os("LOGITLENS_GEMM_ONLY").is_some() || k <= 2 || n == 0 {
            return None;
        }
        Some(Self::pack_for(w, k, n, order, isa))
    }

    fn pack_for(w: &[f32], k: usize, n: usize, order: Order, isa: Isa) -> Panels {
        let panels = n.div_ceil(LANES);
        let mut lines = vec![Line([0.0; LANES]); panels * k];
        for (p, panel) in lines.chunks_mut(k).enumerate() {
            let cols = (n - p * LANES).min(LANES);
            match order {
                #[cfg(test)]
                Order::InOut => {
                    for (i, line) in panel.iter_mut().enumerate() {
                        line.0[..cols].copy_from_slice(&w[i * n + p * LANES..][..cols]);
                    }
                }
                Order::OutIn => {
                    for j in 0..cols {
                        let row = &w[(p * LANES + j) * k..][..k];
                        for (line, &v) in panel.iter_mut().zip(row) {
                            line.0[j] = v;
                        }
                    }
                }
            }
        }
        Panels { lines, k, n, isa }
    }

    /// Input width.
    pub(crate) fn k(&self) -> usize {
        self.k
    }

    /// Output width.
    pub(crate) fn n(&self) -> usize {
        self.n
    }

    /// Bytes the panels take.
    pub(crate) fn bytes(&self) -> usize {
        std::mem::size_of_val(self.lines.as_slice())
    }

    /// The `[k, n]` weight back, row-major.
    pub(crate) fn dense(&self) -> Vec<f32> {
        let mut wt = vec![0.0; self.k * self.n];
        for (p, panel) in self.lines.chunks(self.k).enumerate() {
            let cols = (self.n - p * LANES).min(LANES);
            for (i, line) in panel.iter().enumerate() {
                wt[i * self.n + p * LANES..][..cols].copy_from_slice(&line.0[..cols]);
            }
        }
        wt
    }

    /// `x · wt` for `x` of `t` rows of `k`: `t` rows of `n`.
    pub(crate) fn matmul(&self, x: &[f32], t: usize) -> Vec<f32> {
        let (k, n) = (self.k, self.n);
        assert_eq!(x.len(), t * k, "{t} rows of {k}");
        let panels = n.div_ceil(LANES);
        let pairs = panels.div_ceil(2);
        let chunks = t.div_ceil(CHUNK);
        let kc = gemm_span(t, n, k, self.isa);
        assert!(kc > 0, "a span of no inputs");
        // Rows padded to whole panels: the kernel writes 16 lanes a panel.
        let ld = panels * LANES;
        let mut y: Vec<f32> = Vec::with_capacity(t * ld);
        let out = Out(y.as_mut_ptr());
        // candle's own pool, the one its elementwise ops run on: its workers
        // spin for a while after each op, so work handed to a second pool
        // would share the cores with them (measured: 15% of a 54-token
        // forward spent spinning). Tasks are tiles, chunk-major: (rows of
        // one chunk) x (a pair of panels).
        candle_core::utils::barrier_pool().execute_chunked(chunks * pairs, |tasks| {
            for i in tasks {
                let (c, q) = (i / pairs, i % pairs);
                let r0 = c * CHUNK;
                let rows = (t - r0).min(CHUNK);
                let width = (panels - 2 * q).min(2);
                let (x, w) = (
                    &x[r0 * k..][..rows * k],
                    &self.lines[2 * q * k..][..width * k],
                );
                let tile = Tile {
                    x: x.as_ptr(),
                    rows,
                    k,
                    kc,
                    w: w.as_ptr().cast(),
                    width,
                    // SAFETY: inside `y`'s capacity of `t` rows of `ld`.
                    y: unsafe { out.at(r0 * ld + 2 * q * LANES) },
                    ldy: ld,
                };
                // SAFETY: the slices bound what the tile reads; tiles are
                // disjoint (rows r0.., columns 32q..).
                unsafe { kernel(self.isa, &tile) };
            }
        });
        // SAFETY: the tiles cover every row and every panel's 16 lanes.
        unsafe { y.set_len(t * ld) };
        if ld != n {
            // A last panel in part: keep its real columns.
            y = y.chunks(ld).flat_map(|row| &row[..n]).copied().collect();
        }
        y
    }
}

/// The spans of input over which gemm 0.19 sums a product of `m` rows
/// (`[m, k] x [k, n]`, f32): each span is one fused multiply-add chain from
/// zero, and the spans' sums are added in turn. Summing in the same spans
/// makes these products the same bits as the gemm products they replace,
/// so every answer recorded before stays as it was (tests/golden.rs). The
/// rules are gemm's own: one row is a matrix-vector product, one chain;
/// small products take spans of 512; others spans of the length gemm's
/// cache model picks (`kernel_params`, with its micro-kernel's tile:
/// 64 x 6 on AVX-512, 16 x 6 on AVX2), evened out over the input.
fn gemm_span(m: usize, n: usize, k: usize, isa: Isa) -> usize {
    if m <= 1 {
        k
    } else if m <= 64 && n <= 64 {
        k.min(512)
    } else {
        let (mr, nr) = match isa {
            Isa::Avx512 => (64, 6),
            Isa::Avx2 => (16, 6),
        };
        gemm_common::cache::kernel_params(m, n, k, mr, nr, 4)
            .kc
            .max(1)
    }
}

/// Where the tiles are written, shared by the tasks.
struct Out(*mut f32);
// SAFETY: each task writes its own tile of the buffer (see `matmul`).
unsafe impl Sync for Out {}

impl Out {
    /// # Safety
    /// `offset` is inside the buffer.
    unsafe fn at(&self, offset: usize) -> *mut f32 {
        self.0.add(offset)
    }
}

/// A kernel's task: `rows` rows of `x` (`k` wide) times `width` panels
/// (`w`), summed in spans of `kc`, into rows of `y` `ldy` apart.
#[derive(Clone, Copy)]
struct Tile {
    x: *const f32,
    rows: usize,
    k: usize,
    kc: usize,
    w: *const f32,
    width: usize,
    y: *mut f32,
    ldy: usize,
}

/// Runs one tile on the kernel of `isa`.
///
/// # Safety
/// `tile` reads only inside `x` and the panels, and writes `rows` rows of
/// `width` panels' 16 lanes of `y`, `ldy` apart, that no other thread
/// touches.
unsafe fn kernel(isa: Isa, tile: &Tile) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: `isa` was detected on this CPU (Isa::detect); the memory as
    // the caller promises.
    unsafe {
        match isa {
            Isa::Avx512 => x86::tile512(tile),
            Isa::Avx2 => x86::tile256(tile),
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    unreachable!(
        "Panels are only made on x86-64, not for {isa:?} ({} rows)",
        tile.rows
    );
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::{Tile, LANES};

    /// How far ahead in a panel to prefetch, in floats (32 lines).
    const PREFETCH: usize = 32 * LANES;

    /// Where a block reads and writes: `M` rows of `x` (`ldx` apart) from
    /// input `k0`, the panels (`ldw` floats apart) from their line `k0`,
    /// `len` inputs; rows of `y` `ldy` apart, written, or added to when the
    /// span is not the first.
    #[derive(Clone, Copy)]
    struct Span {
        x: *const f32,
        ldx: usize,
        w: *const f32,
        ldw: usize,
        len: usize,
        y: *mut f32,
        ldy: usize,
        add: bool,
    }

    impl Span {
        /// A tile's rows from panel `p` on, before the blocks and spans
        /// narrow it.
        unsafe fn first(t: &Tile, p: usize) -> Span {
            Span {
                x: t.x,
                ldx: t.k,
                w: t.w.add(p * t.k * LANES),
                ldw: t.k * LANES,
                len: 0,
                y: t.y.add(p * LANES),
                ldy: t.ldy,
                add: false,
            }
        }
    }

    /// Runs `$block::<M>` over `rows` rows in blocks of `M` = the rows left
    /// (at most the largest size listed) and, within each, over the input in
    /// spans of `kc`.
    macro_rules! blocks {
        ($block:ident, [$($m:literal)*], $rows:expr, $k:expr, $kc:expr, $span:expr) => {{
            let most = [$($m),*].into_iter().max().unwrap_or(1);
            let s: Span = $span;
            let mut r0 = 0;
            while r0 < $rows {
                let m = ($rows - r0).min(most);
                let mut k0 = 0;
                while k0 < $k {
                    let span = Span {
                        x: s.x.add(r0 * s.ldx + k0),
                        w: s.w.add(k0 * LANES),
                        len: $kc.min($k - k0),
                        y: s.y.add(r0 * s.ldy),
                        add: k0 > 0,
                        ..s
                    };
                    match m {
                        $($m => $block::<$m>(span),)*
                        _ => unreachable!(),
                    }
                    k0 += $kc;
                }
                r0 += m;
            }
        }};
    }

    /// `M` rows × `P` panels: `M·P` accumulators, `P` weight registers and one
    /// broadcast of 32.
    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn block512<const M: usize, const P: usize>(s: Span) {
        let mut acc = [[_mm512_setzero_ps(); P]; M];
        for i in 0..s.len {
            let mut wv = [_mm512_setzero_ps(); P];
            for (p, v) in wv.iter_mut().enumerate() {
                let line = s.w.add(p * s.ldw + i * LANES);
                // The first rows of a tile read the panel from memory: ask for
                // it half a page ahead (+10-20% at 17 tokens). A prefetch past
                // the end is harmless, hence no bound.
                _mm_prefetch::<_MM_HINT_T0>(line.wrapping_add(PREFETCH).cast());
                *v = _mm512_load_ps(line);
            }
            for (r, a) in acc.iter_mut().enumerate() {
                let xv = _mm512_set1_ps(*s.x.add(r * s.ldx + i));
                for p in 0..P {
                    a[p] = _mm512_fmadd_ps(xv, wv[p], a[p]);
                }
            }
        }
        for (r, a) in acc.iter().enumerate() {
            for (p, v) in a.iter().enumerate() {
                let dst = s.y.add(r * s.ldy + p * LANES);
                let v = if s.add {
                    _mm512_add_ps(_mm512_loadu_ps(dst), *v)
                } else {
                    *v
                };
                _mm512_storeu_ps(dst, v);
            }
        }
    }

    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn two<const M: usize>(s: Span) {
        block512::<M, 2>(s)
    }

    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn one<const M: usize>(s: Span) {
        block512::<M, 1>(s)
    }

    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn tile512(t: &Tile) {
        let span = Span::first(t, 0);
        if t.width == 2 {
            blocks!(two, [1 2 3 4 5 6 7 8 9 10 11 12 13 14], t.rows, t.k, t.kc, span);
        } else {
            blocks!(one, [1 2 3 4 5 6 7 8 9 10 11 12 13 14], t.rows, t.k, t.kc, span);
        }
    }

    /// `M` rows × one panel as two halves: `2M` accumulators of 16 registers.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    unsafe fn block256<const M: usize>(s: Span) {
        let mut acc = [[_mm256_setzero_ps(); 2]; M];
        for i in 0..s.len {
            let line = s.w.add(i * LANES);
            _mm_prefetch::<_MM_HINT_T0>(line.wrapping_add(PREFETCH).cast());
            let (lo, hi) = (_mm256_load_ps(line), _mm256_load_ps(line.add(8)));
            for (r, a) in acc.iter_mut().enumerate() {
                let xv = _mm256_set1_ps(*s.x.add(r * s.ldx + i));
                a[0] = _mm256_fmadd_ps(xv, lo, a[0]);
                a[1] = _mm256_fmadd_ps(xv, hi, a[1]);
            }
        }
        for (r, a) in acc.iter().enumerate() {
            for (h, v) in a.iter().enumerate() {
                let dst = s.y.add(r * s.ldy + h * 8);
                let v = if s.add {
                    _mm256_add_ps(_mm256_loadu_ps(dst), *v)
                } else {
                    *v
                };
                _mm256_storeu_ps(dst, v);
            }
        }
    }

    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn tile256(t: &Tile) {
        for p in 0..t.width {
            blocks!(block256, [1 2 3 4 5 6], t.rows, t.k, t.kc, Span::first(t, p));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numbers(len: usize, seed: u64) -> Vec<f32> {
        let mut s = seed;
        (0..len)
            .map(|_| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((s >> 40) as f32 / (1u64 << 24) as f32) - 0.5
            })
            .collect()
    }

    /// Each output is fused multiply-add chains from zero over spans of
    /// `kc` inputs, the spans' sums added in turn.
    fn chains(x: &[f32], wt: &[f32], t: usize, k: usize, n: usize, kc: usize) -> Vec<f32> {
        let mut y = vec![0.0f32; t * n];
        for r in 0..t {
            for c in 0..n {
                let span = |k0: usize| {
                    (k0..(k0 + kc).min(k))
                        .fold(0.0f32, |a, i| x[r * k + i].mul_add(wt[i * n + c], a))
                };
                y[r * n + c] = (kc..k).step_by(kc).fold(span(0), |a, k0| a + span(k0));
            }
        }
        y
    }

    fn same_bits(a: &[f32], b: &[f32]) -> bool {
        a.len() == b.len() && a.iter().zip(b).all(|(a, b)| a.to_bits() == b.to_bits())
    }

    #[test]
    fn every_shape_sums_in_spans_bit_for_bit_on_every_kernel() {
        let Some(best) = Isa::detect() else { return };
        let isas: &[Isa] = if best == Isa::Avx512 {
            &[Isa::Avx512, Isa::Avx2]
        } else {
            &[Isa::Avx2]
        };
        // Rows across the block sizes and the chunk; panels odd, padded,
        // single; inputs in one span and in several, one uneven.
        for &(t, k, n) in &[
            (1, 7, 5),
            (15, 33, 48),
            (29, 64, 80),
            (54, 40, 16),
            (CHUNK + 3, 9, 40),
            (3, 1100, 20),
        ] {
            let (x, wt) = (numbers(t * k, 1), numbers(k * n, 2));
            for &isa in isas {
                let p = Panels::pack_for(&wt, k, n, Order::InOut, isa);
                assert_eq!(p.dense(), wt);
                // The same panels from the weight as stored, `[n, k]`.
                let stored: Vec<f32> = (0..n)
                    .flat_map(|c| (0..k).map(move |i| (i, c)))
                    .map(|(i, c)| wt[i * n + c])
                    .collect();
                assert_eq!(
                    Panels::pack_for(&stored, k, n, Order::OutIn, isa).dense(),
                    wt
                );
                let got = p.matmul(&x, t);
                let kc = gemm_span(t, n, k, isa);
                assert!(
                    same_bits(&got, &chains(&x, &wt, t, k, n, kc)),
                    "{isa:?} t={t} k={k} n={n}"
                );
                // A row alone: one chain, as gemm's matrix-vector product.
                let alone = p.matmul(&x[(t - 1) * k..], 1);
                assert!(same_bits(
                    &alone,
                    &chains(&x[(t - 1) * k..], &wt, 1, k, n, k)
                ));
            }
        }
    }

    /// The products replace gemm's (through candle) without changing a bit,
    /// on the shapes of SmolLM2's layers and on small and odd ones.
    #[test]
    fn products_are_gemms_bit_for_bit() {
        use candle_core::{Device, Tensor};
        if Isa::detect().is_none() {
            return;
        }
        crate::nn::tune_gemm();
        for &(t, k, n) in &[
            (1, 576, 1536),
            (2, 576, 192),
            (17, 576, 576),
            (54, 1536, 576),
            (70, 576, 1536),
            (40, 600, 40),
            (30, 1100, 64),
            (130, 700, 50),
        ] {
            let (x, wt) = (numbers(t * k, 3), numbers(k * n, 4));
            let p = Panels::pack(&wt, k, n, Order::InOut).expect("a kernel on this CPU");
            let xt = Tensor::from_vec(x.clone(), (t, k), &Device::Cpu).unwrap();
            let wtt = Tensor::from_vec(wt, (k, n), &Device::Cpu).unwrap();
            let want: Vec<f32> = xt
                .matmul(&wtt)
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1()
                .unwrap();
            assert!(same_bits(&p.matmul(&x, t), &want), "t={t} k={k} n={n}");
        }
    }
}
