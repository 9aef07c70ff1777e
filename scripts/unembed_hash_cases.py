#!/usr/bin/env python3
"""Generate tests/fixtures/unembed_hash_cases.json for the unembedding hash.

The tuned-lens package records in a lens's config.json an `unembed_hash`:
SHA-256 of `np.array_str(W, precision=1)` of the float32 unembedding
matrix, with numpy's default print options. The Rust port
(crates/engine/src/nn/unembed_hash.rs) re-implements numpy's array printing
to get the same digest; this script records numpy's own answers for a
spread of matrices that exercise every branch of that printing: whole and
summarised arrays (more than 1000 elements: only the 3 leading and 3
trailing rows/columns are printed, and only they choose the format), line
wrapping at 75 columns, positional and scientific notation, rounding ties,
negative zero, values that round to zero, inf and nan, subnormals, single
rows and columns, and the unembeddings of the two tiny fixture models
(whose expected hashes are the ones the package wrote into
tests/fixtures/research/tuned/{llama,qwen3}/config.json).

Every case stores its shape, its float32 values as concatenated 8-digit
hex bit patterns, numpy's text and the hash. A summarised case ("corners")
stores only the printed rows/columns (numpy's `_leading_trailing` block);
the test fills the rest of the matrix with values that would change the
text if they were read.

Needs numpy >= 2.2, which the Rust port follows (the file records the
version used). Older numpy prints differently only where a printed
magnitude is >= 1e6 (scientific from 1e8 up before 2.2) or, in numpy 1.x,
where the smallest is exactly float32(1e-4): about 30 of the cases.

    python3 -m venv /tmp/venv && /tmp/venv/bin/pip install numpy
    /tmp/venv/bin/python scripts/unembed_hash_cases.py [--out PATH] [--root REPO]
"""

import argparse
import hashlib
import json
import os
import struct

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "fixtures", "unembed_hash_cases.json")
EDGE = 3  # numpy's default edgeitems
THRESHOLD = 1000  # numpy's default threshold

F32 = np.float32


def tensor_hash(w):
    """The package's `tensor_hash`, verbatim."""
    return hashlib.sha256(str.encode(np.array_str(w, precision=1))).hexdigest()


def corner_block(w):
    """The elements numpy prints for a summarised 2-D array."""
    r, c = w.shape
    rows = list(range(r)) if r <= 2 * EDGE else list(range(EDGE)) + list(range(r - EDGE, r))
    cols = list(range(c)) if c <= 2 * EDGE else list(range(EDGE)) + list(range(c - EDGE, c))
    return w[np.ix_(rows, cols)]


def hexbits(a):
    bits = np.ascontiguousarray(a, dtype=F32).view(np.uint32).ravel()
    return "".join(f"{int(b):08x}" for b in bits)


class Cases:
    def __init__(self):
        self.cases = []
        self.names = set()

    def add(self, name, w, expect=None):
        w = np.asarray(w)
        if w.dtype != F32:
            w = w.astype(F32)
        if w.ndim == 1:
            w = w.reshape(1, -1)
        assert w.ndim == 2, name
        assert name not in self.names, name
        self.names.add(name)
        text = np.array_str(w, precision=1)
        h = tensor_hash(w)
        if expect is not None:
            assert h == expect, f"{name}: numpy gives {h}, expected {expect}"
        summarised = w.size > THRESHOLD
        block = corner_block(w) if summarised else w
        self.cases.append({
            "name": name,
            "rows": int(w.shape[0]),
            "cols": int(w.shape[1]),
            "layout": "corners" if summarised else "full",
            "bits": hexbits(block),
            "text": text,
            "hash": h,
        })


def read_safetensors(path, names):
    """The first of `names` in a safetensors file, as float32 (torch's .float())."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        base = 8 + n
        for name in names:
            if name not in header:
                continue
            meta = header[name]
            start, end = meta["data_offsets"]
            f.seek(base + start)
            raw = f.read(end - start)
            dt = meta["dtype"]
            if dt == "F32":
                a = np.frombuffer(raw, dtype="<f4")
            elif dt == "F64":
                a = np.frombuffer(raw, dtype="<f8").astype(F32)
            elif dt == "F16":
                a = np.frombuffer(raw, dtype="<f2").astype(F32)
            elif dt == "BF16":
                a = (np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16).view(F32)
            else:
                raise ValueError(f"{path}: {name} has dtype {dt}")
            return a.reshape(meta["shape"])
    raise KeyError(f"{path}: none of {names}")


def real_models(cases, root):
    for model in ["llama", "qwen3"]:
        st = os.path.join(root, "tests", "fixtures", "tiny", model, "model.safetensors")
        cfg = os.path.join(root, "tests", "fixtures", "research", "tuned", model, "config.json")
        if not (os.path.exists(st) and os.path.exists(cfg)):
            print(f"skipping real model {model}: fixture missing")
            continue
        with open(cfg) as f:
            expect = json.load(f)["unembed_hash"]
        w = read_safetensors(st, ["lm_head.weight", "model.embed_tokens.weight"])
        cases.add(f"tiny_{model}_unembedding", w, expect=expect)


def nudge(v, steps):
    """`steps` float32 ulps away from float32(v)."""
    x = F32(v)
    direction = F32(np.inf) if steps > 0 else F32(-np.inf)
    for _ in range(abs(steps)):
        x = np.nextafter(x, direction)
    return x


def generate(root):
    rng = np.random.default_rng(20261130)
    cases = Cases()

    real_models(cases, root)

    # Random normal matrices at every scale, small (printed whole) shapes.
    shapes = [(1, 1), (1, 2), (2, 1), (2, 2), (3, 5), (5, 3), (4, 7), (7, 4), (8, 8),
              (10, 10), (12, 9), (16, 16), (20, 30), (25, 40)]
    scales = [1e-7, 1e-6, 1e-5, 1e-4, 3e-4, 1e-3, 0.01, 0.02, 0.05, 0.1, 0.3, 1.0, 3.0,
              10.0, 100.0, 1e3, 1e4, 1e5, 3e5, 1e6, 1e7, 1e9, 1e20]
    for i, s in enumerate(scales):
        for j in range(3):
            shape = shapes[(i * 3 + j) % len(shapes)]
            w = rng.standard_normal(shape) * s
            cases.add(f"normal_s{s:g}_{shape[0]}x{shape[1]}_{j}", w)

    # Uniform in [0, s) (no negatives: pad_left 1) and all-negative.
    for s in [1e-3, 0.5, 1.0, 50.0, 1e5, 9e5]:
        w = rng.random((6, 11)) * s
        cases.add(f"uniform_pos_s{s:g}", w)
        cases.add(f"uniform_neg_s{s:g}", -w)

    # Typical unembedding scales, whole and just-summarised shapes.
    for shape in [(40, 25), (50, 20), (1000, 1), (1, 1000), (10, 100), (100, 10), (20, 50),
                  (1001, 1), (1, 1001), (7, 143), (143, 7), (11, 91), (91, 11), (13, 77),
                  (2, 501), (501, 2), (3, 334), (6, 167), (167, 6), (7, 7)]:
        # Near-1000-element whole arrays are bulky: one scale each.
        like_scales = [0.02, 0.2]
        if 500 <= shape[0] * shape[1] <= THRESHOLD:
            like_scales = [like_scales[len(cases.cases) % 2 == 0]]
        for s in like_scales:
            w = rng.standard_normal(shape) * s
            cases.add(f"unembed_like_s{s:g}_{shape[0]}x{shape[1]}", w)

    # Big, summarised.
    for shape in [(300, 64), (1000, 17), (512, 64), (2, 600), (600, 2), (4, 300), (300, 4),
                  (6, 200), (200, 6), (7, 200), (200, 7), (1000, 1000), (32000, 8),
                  (1, 5000), (5000, 1), (1002, 1), (1, 1002)]:
        for s in [0.02, 1.0, 1e-5, 3e6]:
            w = rng.standard_normal(shape).astype(F32) * F32(s)
            cases.add(f"big_s{s:g}_{shape[0]}x{shape[1]}", w)

    # Summarised: only the printed corners choose the format. Poison the
    # rest with values that would switch to scientific notation, widen the
    # padding, or add inf/nan.
    for shape in [(300, 64), (64, 300), (10, 200), (1, 3000), (3000, 1), (1000, 17)]:
        for k, poison in enumerate([1e-30, 1e30, -np.inf, np.nan, -12345.6, 0.0]):
            w = np.full(shape, poison, dtype=F32)
            blk = corner_block(w)
            r, c = w.shape
            rows = list(range(r)) if r <= 6 else [0, 1, 2, r - 3, r - 2, r - 1]
            cols = list(range(c)) if c <= 6 else [0, 1, 2, c - 3, c - 2, c - 1]
            vals = (rng.standard_normal(blk.shape) * 0.1).astype(F32)
            w[np.ix_(rows, cols)] = vals
            cases.add(f"poisoned_interior_{k}_{shape[0]}x{shape[1]}", w)

    # Integers stored as floats.
    for lo, hi, shape in [(-5, 6, (5, 9)), (-1000, 1001, (8, 12)), (0, 10**6, (6, 6)),
                          (0, 10**7, (6, 6)), (-(2**24), 2**24, (4, 4)), (0, 2, (20, 20))]:
        w = rng.integers(lo, hi, size=shape).astype(F32)
        cases.add(f"ints_{lo}_{hi}", w)

    # Zeros.
    cases.add("zeros_1x1", np.zeros((1, 1)))
    cases.add("zeros_4x5", np.zeros((4, 5)))
    cases.add("neg_zeros_3x4", -np.zeros((3, 4)))
    cases.add("neg_zero_1x1", np.array([[-0.0]]))
    z = np.zeros((5, 6), dtype=F32)
    z[::2, 1::2] = -0.0
    cases.add("mixed_zeros", z)
    cases.add("zeros_big", np.zeros((100, 100)))
    cases.add("neg_zeros_big", -np.zeros((100, 100)))
    cases.add("zeros_and_one", np.array([[0.0, 1.0, -0.0]]))
    cases.add("zeros_and_tiny", np.array([[0.0, 1e-8, -0.0]]))

    # Values that round to zero, with and without sign.
    cases.add("round_to_zero", np.array([[0.04, -0.04, 0.001, -0.0499, 0.5, 0.0049, -0.001]]))
    cases.add("round_to_zero_small_ratio", np.array([[0.04, -0.04, 0.01, -0.03]]))
    cases.add("round_to_zero_1e-4", np.array([[1e-4, 0.03, -0.02, 0.09]]))

    # Rounding boundaries, in positional notation.
    ties = [0.05, 0.15, 0.25, 0.35, 0.45, 0.55, 0.65, 0.75, 0.85, 0.95]
    cases.add("ties_tenths", np.array([ties]))
    cases.add("ties_tenths_neg", -np.array([ties]))
    cases.add("ties_ones", np.array([[1.05, 1.15, 1.25, 2.25, 2.5, 3.75, 9.95, 10.25, 99.95, 12.35]]))
    cases.add("ties_hundreds", np.array([[100.25, 100.75, 101.25, 999.95, 1000.05, 200.5]]))
    dyadic = [k / 8 for k in range(-24, 25)]
    cases.add("eighths", np.array(dyadic).reshape(7, 7))
    cases.add("sixteenths", np.array([k / 16 for k in range(0, 64)]).reshape(8, 8))
    near = []
    for t in ties + [1.25, 2.5, 10.05]:
        for steps in (-2, -1, 1, 2):
            near.append(nudge(t, steps))
    cases.add("near_ties", np.array(near, dtype=F32).reshape(-1, 4))
    cases.add("carries", np.array([[0.96, 9.96, 99.96, 999.96, 9999.96, 99999.96, 999999.9]]))
    cases.add("carries_neg", -np.array([[0.96, 9.96, 99.96, 999.96, 9999.96, 99999.96]]))

    # Rounding boundaries, in scientific notation (two significant digits).
    cases.add("sci_ties", np.array([[1.25e-5, 1.35e-5, 125.0, 135.0, 1050.0, 1.25e10, 1.35e10, 2.5e-7]]))
    cases.add("sci_ties_neg", -np.array([[1.25e-5, 1.35e-5, 125.0, 135.0, 1050.0, 1.25e10]]))
    cases.add("sci_carries", np.array([[9.96e-5, 9.95e-5, 9.94e-5, 99.6, 9.99e9, 1e-6]]))
    cases.add("sci_one_digit", np.array([[1e-5, 2e-5, 3e-4, 5e7]]))
    cases.add("sci_one_digit_neg", np.array([[1e-5, -2e-5, 3e-4, 5e7]]))
    cases.add("sci_with_zero", np.array([[0.0, 1e-5, -0.0, 3.0]]))
    cases.add("sci_with_nonfinite", np.array([[1e-5, np.nan, np.inf, 3.0]]))
    cases.add("sci_with_neginf", np.array([[1e-5, np.nan, -np.inf, 3.0]]))
    cases.add("sci_one_digit_nonfinite", np.array([[1e-5, np.nan, -np.inf, 3.0e4]]))

    # Thresholds between positional and scientific notation.
    cases.add("thr_min_exact", np.array([[F32(1e-4), 0.05]]))
    cases.add("thr_min_below", np.array([[nudge(1e-4, -1), 0.05]]))
    cases.add("thr_min_above", np.array([[nudge(1e-4, 1), 0.05]]))
    cases.add("thr_max_below", np.array([[nudge(1e6, -1), 1000.0]]))
    cases.add("thr_max_exact", np.array([[1e6, 1000.0]]))
    cases.add("thr_max_1e8", np.array([[5e7, 1e5]]))
    cases.add("thr_ratio_exact", np.array([[1.0, 1000.0]]))
    cases.add("thr_ratio_above", np.array([[1.0, nudge(1000.0, 1)]]))
    cases.add("thr_ratio_f32_division", np.array([[F32(0.1), F32(1e-4)]]))
    cases.add("thr_ratio_f32_division2", np.array([[F32(0.3), F32(3e-4)]]))
    cases.add("thr_ratio_neg", np.array([[-1.0, -1000.0, 0.5]]))
    cases.add("thr_ratio_neg_above", np.array([[-1.0, -1000.5]]))

    # Extremes.
    fi = np.finfo(F32)
    cases.add("f32_max", np.array([[fi.max, -fi.max, 1.0]]))
    cases.add("f32_tiny", np.array([[fi.tiny, -fi.tiny, 1.0]]))
    sub = np.array([1, 2, 3, 7, 10, 100, 1000, 2**22, 2**23 - 1], dtype=np.uint32).view(F32)
    cases.add("subnormals", sub)
    cases.add("subnormals_neg", -sub)
    cases.add("subnormal_only_smallest", np.array([[np.uint32(1)]]).view(F32))
    cases.add("powers_of_two", np.array([2.0 ** k for k in range(-149, 128, 6)], dtype=F32).reshape(-1, 1))
    cases.add("powers_of_ten", np.array([10.0 ** k for k in range(-45, 39)], dtype=F32).reshape(6, 14))
    cases.add("powers_of_ten_pos", np.array([10.0 ** k for k in range(-4, 6)], dtype=F32).reshape(2, 5))

    # Non-finite.
    cases.add("nan_1x1", np.array([[np.nan]]))
    cases.add("inf_1x1", np.array([[np.inf]]))
    cases.add("neginf_1x1", np.array([[-np.inf]]))
    cases.add("nonfinite_only", np.array([[np.nan, np.inf, -np.inf, np.nan]]))
    cases.add("nan_inf_only", np.array([[np.nan, np.inf]]))
    cases.add("nan_with_values", np.array([[np.nan, 0.1, -0.2], [0.3, np.nan, 1.5]]))
    cases.add("inf_with_values", np.array([[np.inf, 0.1, 0.2], [0.3, 12.5, 1.5]]))
    cases.add("neginf_with_values", np.array([[-np.inf, 0.1, 0.2], [0.3, 12.5, 1.5]]))
    cases.add("nonfinite_with_zero", np.array([[np.nan, 0.0, -np.inf]]))
    cases.add("nonfinite_with_wide", np.array([[np.nan, 12345.6, -np.inf]]))
    cases.add("neg_nan", np.array([[-np.nan, 1.0]]))
    nan_payload = np.array([0x7fc00001, 0xffc00000, 0x7f800001, 0x3f800000], dtype=np.uint32).view(F32)
    cases.add("nan_payloads", nan_payload.reshape(1, -1))
    w = rng.standard_normal((20, 20)).astype(F32)
    w[rng.random((20, 20)) < 0.1] = np.nan
    w[rng.random((20, 20)) < 0.05] = -np.inf
    cases.add("sprinkled_nonfinite", w)
    w = rng.standard_normal((400, 30)).astype(F32)
    w[0, 0] = np.nan
    w[-1, -1] = np.inf
    w[200, 15] = -np.inf  # not printed: must not widen the columns
    cases.add("big_nonfinite_edges", w)

    # Mixed magnitudes: scientific notation.
    for j in range(8):
        w = rng.standard_normal((5, 7)) * 10.0 ** rng.integers(-12, 12, size=(5, 7))
        cases.add(f"mixed_magnitudes_{j}", w)
    for j in range(4):
        w = rng.standard_normal((1, 10)) * 10.0 ** rng.integers(-40, 38, size=(1, 10))
        cases.add(f"extreme_magnitudes_{j}", w)

    # Line wrapping: one row of n elements for several element widths.
    for width_name, gen in [
        ("w3", lambda n: rng.random(n) * 0.9),                       # "0.x"
        ("w4", lambda n: rng.standard_normal(n) * 0.3),              # " 0.x"/"-0.x"
        ("w5", lambda n: rng.random(n) * 90 + 10),                   # "xx.x"
        ("w8", lambda n: rng.standard_normal(n) * 1e-5),             # "-x.xe-xx"
        ("w9", lambda n: rng.random(n) * 9e5 + 1e5),                 # "xxxxxx.x"
    ]:
        for n in [1, 8, 9, 12, 15, 17, 18, 19, 24, 25, 26, 37, 38, 50]:
            cases.add(f"wrap_{width_name}_n{n}", gen(n).reshape(1, -1))
            if n in (18, 25, 37):
                cases.add(f"wrap_{width_name}_3x{n}", gen(3 * n).reshape(3, n))

    # Single rows and columns.
    for n in [1, 2, 3, 6, 7, 100, 999, 1000, 1001, 1234]:
        cases.add(f"row_{n}", rng.standard_normal((1, n)) * 0.05)
        cases.add(f"col_{n}", rng.standard_normal((n, 1)) * 0.05)

    # Random bit patterns: any float32 at all (subnormals, nan, inf, huge).
    for j in range(30):
        shape = [(1, 1), (1, 3), (3, 3), (4, 6), (2, 9), (8, 5)][j % 6]
        bits = rng.integers(0, 2**32, size=shape, dtype=np.uint64).astype(np.uint32)
        cases.add(f"random_bits_{j}", bits.view(F32))
    for j in range(10):
        # Random finite bits within a few binades, so positional notation happens too.
        e = rng.integers(120, 127, size=(4, 8)).astype(np.uint32)
        m = rng.integers(0, 2**23, size=(4, 8)).astype(np.uint32)
        s = rng.integers(0, 2, size=(4, 8)).astype(np.uint32)
        cases.add(f"random_binades_{j}", ((s << 31) | (e << 23) | m).view(F32))
    for j in range(6):
        bits = rng.integers(0, 2**32, size=(50, 40), dtype=np.uint64).astype(np.uint32)
        cases.add(f"random_bits_big_{j}", bits.view(F32))

    # Random shapes, random scales.
    for j in range(60):
        r = int(rng.integers(1, 51))
        c = int(rng.integers(1, 41 if j % 3 == 0 else 21))
        s = 10.0 ** rng.uniform(-6, 6)
        cases.add(f"random_shape_{j}_{r}x{c}", rng.standard_normal((r, c)) * s)

    # Rounded-looking data (few digits) and one outlier.
    cases.add("one_decimal", np.round(rng.standard_normal((9, 9)), 1))
    w = rng.standard_normal((9, 9)) * 0.05
    w[4, 4] = 250.0
    cases.add("one_outlier_positional", w)
    w[4, 4] = 2500.0
    cases.add("one_outlier_scientific", w)

    return cases.cases


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=OUT)
    ap.add_argument("--root", default=ROOT, help="repository root holding tests/fixtures")
    args = ap.parse_args()
    cases = generate(args.root)
    doc = {
        "about": "np.array_str(W, precision=1) and its SHA-256 for float32 matrices; "
                 "written by scripts/unembed_hash_cases.py",
        "numpy_version": np.__version__,
        "cases": cases,
    }
    with open(args.out, "w") as f:
        json.dump(doc, f, indent=0, separators=(",", ":"))
        f.write("\n")
    print(f"{len(cases)} cases, {os.path.getsize(args.out)} bytes -> {args.out}")


if __name__ == "__main__":
    main()
