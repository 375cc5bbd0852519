"""Bit-exact comparison of ``edgemoe.golden.apfixed`` with the real ap_types C++ library.

One C++ program is generated and compiled per test session (module fixture).  It reads cases from
a text file -- ``case_id n`` followed by raw bit patterns -- and prints the raw bits of the results;
every case is a template instantiation over the C++ types that mirror the Python ``FixedType``s.

No skips: without g++ or the ap_types headers the fixture fails with the ToolMissingError text.
"""
from __future__ import annotations

import random
import subprocess
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import pytest

from edgemoe.codegen.aptypes import compile_cpp, find_ap_types, find_cxx
from edgemoe.errors import ToolMissingError
from edgemoe.golden.apfixed import OVERFLOW_MODES, QUANT_MODES, FixedType, Fx, add_type, mul_type
from edgemoe.golden.exact_matmul import exact_int_matmul, fx_matmul
from edgemoe.golden.raw_codes import wrap

SEED = 20240611
N_CAST = 2500       # values per cast case (edge values included)
N_DOUBLE = 2500     # values per double-conversion case
N_ARITH = 2500      # operand pairs per arithmetic case

# (W, I) pool: widths 8..48 with integer bits negative, zero, small and larger than W
SHAPES = [(8, -3), (8, 0), (8, 3), (8, 12), (16, 5), (16, -4), (16, 0), (16, 20), (18, 1), (18, 9),
          (24, 0), (24, 8), (24, 30), (32, 16), (32, -8), (32, 40), (48, 20), (48, 4), (48, 56),
          (48, -30)]
MODE_COMBOS = [(q, o) for q in QUANT_MODES for o in OVERFLOW_MODES]


def T(W, I, signed=True, Q="AP_TRN", O="AP_WRAP") -> FixedType:
    return FixedType(W, I, signed, Q, O)


# ------------------------------------------------------------------------------------------------
# the cases
# ------------------------------------------------------------------------------------------------
def _cast_cases() -> list[tuple[FixedType, FixedType]]:
    rnd = random.Random(SEED)
    cases = []
    for q, o in MODE_COMBOS:
        for dst_signed in (True, False):
            W, I = rnd.choice(SHAPES)
            dst = T(W, I, dst_signed, q, o)
            # 1) more fraction and more integer bits than dst: rounding and overflow together
            wider = [s for s in SHAPES if s[0] - s[1] > dst.F and s[1] > dst.I] or SHAPES
            s1 = rnd.choice(wider)
            cases.append((T(*s1, signed=dst_signed), dst))
            # 2) any source of the other signedness (sign/unsigned conversions, left shifts)
            s2 = rnd.choice(SHAPES)
            cases.append((T(*s2, signed=not dst_signed), dst))
    # left shifts past int64 into saturating 64-bit / narrow targets, right shifts past 63 bits
    extra_dst = [T(64, 10, True, "AP_TRN", "AP_SAT"), T(64, 10, True, "AP_RND", "AP_SAT_ZERO"),
                 T(64, 10, True, "AP_TRN", "AP_SAT_SYM"), T(64, 10, True, "AP_TRN", "AP_WRAP"),
                 T(8, 12, True, "AP_RND", "AP_SAT"), T(8, 12, True, "AP_TRN_ZERO", "AP_WRAP"),
                 T(16, 16, False, "AP_RND_CONV", "AP_SAT"), T(8, -20, True, "AP_RND_INF", "AP_SAT_SYM")]
    extra_src = [T(48, 56), T(48, -30), T(32, 40, False), T(16, -40), T(48, 4)]
    for d in extra_dst:
        for s in extra_src:
            cases.append((s, d))
    return cases


def _double_cases() -> list[FixedType]:
    rnd = random.Random(SEED + 1)
    cases = []
    for q, o in MODE_COMBOS:
        for signed in (True, False):
            W, I = rnd.choice(SHAPES)
            cases.append(T(W, I, signed, q, o))
    cases += [T(64, 20, True, "AP_RND", "AP_SAT"), T(64, 20, True, "AP_TRN", "AP_SAT_ZERO"),
              T(64, 20, True, "AP_RND_CONV", "AP_WRAP"), T(64, 62, True, "AP_RND_MIN_INF", "AP_SAT_SYM"),
              T(63, 70, False, "AP_TRN_ZERO", "AP_SAT"), T(60, 100, True, "AP_RND_ZERO", "AP_WRAP")]
    return cases


def _arith_cases() -> list[tuple[FixedType, FixedType, FixedType]]:
    """(a type, b type, destination of a*b, a+b, a-b) -- the destinations cover every mode pair."""
    rnd = random.Random(SEED + 2)
    operand_pairs = [  # kernel-like mixes: activations x weights, sums of different scales
        (T(24, 8), T(18, 1)), (T(32, 16), T(32, 2)), (T(16, 5, False), T(16, -4)),
        (T(48, 20), T(16, 5)), (T(18, 9, True, "AP_RND", "AP_SAT"), T(24, 0, False)),
        (T(8, 3, False), T(8, 12, False)), (T(32, -8), T(24, 10)), (T(16, 0), T(48, 4))]
    cases = []
    for k, (q, o) in enumerate(MODE_COMBOS):
        a, b = operand_pairs[k % len(operand_pairs)]
        for signed in (True, False):
            W, I = rnd.choice([(8, 3), (16, 5), (18, 9), (24, 8), (24, 0), (32, 16), (16, -4)])
            cases.append((a, b, T(W, I, signed, q, o)))
    return cases


CAST_CASES = _cast_cases()
DOUBLE_CASES = _double_cases()
ARITH_CASES = _arith_cases()
# MAC loops as a kernel writes them (acc += a*b, AP_WRAP accumulator): a type, b type, acc, M, K, N
MAC_CASES = [(T(32, 8), T(16, 4), T(56, 20), 3, 1536, 4),
             (T(32, 8), T(32, 2), T(64, 10), 4, 64, 4),
             (T(16, 5, False), T(8, 1), T(24, 6), 4, 768, 3)]


# ------------------------------------------------------------------------------------------------
# the C++ program
# ------------------------------------------------------------------------------------------------
def _cpp(t: FixedType) -> str:
    base = "ap_fixed" if t.signed else "ap_ufixed"
    return f"{base}<{t.W}, {t.I}, {t.Q}, {t.O}>"


CPP_HEAD = r"""
#include <ap_fixed.h>
#include <cstdio>
#include <cstring>
#include <cstdlib>

typedef unsigned long long u64;
static u64 rd() { u64 v; if (std::scanf("%llu", &v) != 1) std::abort(); return v; }
template <class X> static u64 bits(const X& x) { return x.range(X::width - 1, 0).to_uint64(); }
template <class X> static X from_bits(u64 v) { X x; x.range(X::width - 1, 0) = v; return x; }
template <int W, int I, bool S, ap_q_mode Q, ap_o_mode O, int N>
static int sgn(const ap_fixed_base<W, I, S, Q, O, N>&) { return S; }
template <class X> static void type_line(const X& x) {
  std::printf("%d %d %d ", (int)X::width, (int)X::iwidth, sgn(x));
}

template <class S, class D> static void run_cast() {
  u64 n = rd();
  for (u64 i = 0; i < n; ++i) {
    S s = from_bits<S>(rd());
    D d = s;
    std::printf("%llu\n", bits(d));
  }
}

template <class D> static void run_double() {
  u64 n = rd();
  for (u64 i = 0; i < n; ++i) {
    u64 b = rd();
    double x;
    std::memcpy(&x, &b, sizeof x);
    D d = x;
    std::printf("%llu\n", bits(d));
  }
}

template <class A, class B, class D> static void run_arith() {
  u64 n = rd();
  A a0 = 0; B b0 = 0;
  type_line(a0 * b0); type_line(a0 + b0); type_line(a0 - b0); std::printf("\n");
  for (u64 i = 0; i < n; ++i) {
    A a = from_bits<A>(rd());
    B b = from_bits<B>(rd());
    D dp = a * b, ds = a + b, dm = a - b;
    std::printf("%llu %llu %llu %llu %llu %llu\n", bits(a * b), bits(a + b), bits(a - b),
                bits(dp), bits(ds), bits(dm));
  }
}

template <class A, class B, class ACC> static void run_mac() {
  u64 m = rd(), k = rd(), n = rd();
  A* a = new A[m * k];
  B* b = new B[k * n];
  for (u64 i = 0; i < m * k; ++i) a[i] = from_bits<A>(rd());
  for (u64 i = 0; i < k * n; ++i) b[i] = from_bits<B>(rd());
  for (u64 i = 0; i < m; ++i)
    for (u64 j = 0; j < n; ++j) {
      ACC acc = 0;
      for (u64 t = 0; t < k; ++t) acc += a[i * k + t] * b[t * n + j];
      std::printf("%llu\n", bits(acc));
    }
  delete[] a;
  delete[] b;
}

int main() {
  u64 id;
  while (std::scanf("%llu", &id) == 1) {
    switch (id) {
"""


def _program() -> str:
    lines = [CPP_HEAD]
    cid = 0
    for s, d in CAST_CASES:
        lines.append(f"      case {cid}: run_cast<{_cpp(s)}, {_cpp(d)} >(); break;")
        cid += 1
    for d in DOUBLE_CASES:
        lines.append(f"      case {cid}: run_double<{_cpp(d)} >(); break;")
        cid += 1
    for a, b, d in ARITH_CASES:
        lines.append(f"      case {cid}: run_arith<{_cpp(a)}, {_cpp(b)}, {_cpp(d)} >(); break;")
        cid += 1
    for a, b, acc, *_ in MAC_CASES:
        lines.append(f"      case {cid}: run_mac<{_cpp(a)}, {_cpp(b)}, {_cpp(acc)} >(); break;")
        cid += 1
    lines.append("      default: std::abort();\n    }\n  }\n  return 0;\n}\n")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------
# value generation (seeded); raw values are Python ints in the source type's range
# ------------------------------------------------------------------------------------------------
def _in_range(vals, t: FixedType) -> list[int]:
    return [int(v) for v in vals if t.min_raw <= int(v) <= t.max_raw]


def _random_raw(t: FixedType, n: int, rng: np.random.Generator) -> list[int]:
    """Half uniform over the whole range, half log-uniform magnitudes (small values too)."""
    span = t.max_raw - t.min_raw + 1
    uni = [t.min_raw + int(v) for v in rng.integers(0, span, size=n // 2, dtype=np.uint64)]
    bl = rng.integers(0, t.W + 1, size=n - n // 2)
    mag = [int(v) >> (64 - int(b)) if b else 0
           for v, b in zip(rng.integers(0, 2 ** 64, size=len(bl), dtype=np.uint64), bl)]
    signs = rng.integers(0, 2, size=len(mag)) if t.signed else np.zeros(len(mag), dtype=int)
    return uni + _in_range([-m if s else m for m, s in zip(mag, signs)], t)


def _edges(t: FixedType) -> list[int]:
    return _in_range([t.min_raw, t.min_raw + 1, t.max_raw, t.max_raw - 1, 0, 1, -1, 2, -2,
                      t.max_raw // 2, t.min_raw // 2], t)


def _cast_values(src: FixedType, dst: FixedType, rng, n: int) -> list[int]:
    vals = _edges(src)
    shift = src.F - dst.F
    if shift > 0:  # exact multiples, half-lsb ties and their neighbours, at dst's lsb
        ks = rng.integers(max(src.min_raw >> shift, -(2 ** 40)), min(src.max_raw >> shift, 2 ** 40) + 1,
                          size=n // 8)
        ks = [int(k) for k in ks] + [0, -1, 1, -2, dst.max_raw, dst.min_raw, dst.max_raw + 1,
                                     dst.min_raw - 1, -dst.max_raw]
        for k in ks:
            base = k << shift
            half = 1 << (shift - 1)
            vals += [base, base + half, base + half - 1, base + half + 1, base - 1, base + 1]
        # values that wrap / saturate: dst limits in src scale, and a bit beyond
        for lim in (dst.max_raw, dst.min_raw, -dst.max_raw, 2 * dst.max_raw, 2 * dst.min_raw):
            vals += [(lim << shift) + d for d in (-(1 << shift), -1, 0, 1, 1 << (shift - 1), 1 << shift)]
    else:
        for lim in (dst.max_raw, dst.min_raw, -dst.max_raw):
            c = lim >> -shift
            vals += [c - 1, c, c + 1, 2 * c, -c]
    vals = _in_range(vals, src)
    return vals + _random_raw(src, max(n - len(vals), n // 2), rng)


def _double_values(t: FixedType, rng, n: int) -> np.ndarray:
    lsb = 2.0 ** -t.F
    lo, hi = t.min_raw * lsb, t.max_raw * lsb
    rng_f = rng.uniform
    vals = [0.0, -0.0, lo, hi, hi + lsb, lo - lsb, 2 * hi, 2 * lo - lsb, -hi, 1e30, -1e30, 1e300,
            -1e300, 1e-300, -1e-300, 5e-324, -5e-324, 1.0, -1.0, 0.5, -0.5]
    # half-lsb ties and values a hair either side (in units of the lsb: k + 0.5 +- 2**-e)
    ks = np.concatenate([rng.integers(-2 ** 20, 2 ** 20, size=n // 10), [0, -1, 1, -2, 2, 3, -3]])
    for k in ks:
        for frac in (0.5, 0.25, 0.75, 0.5 + 2.0 ** -30, 0.5 - 2.0 ** -30):
            vals.append((float(k) + frac) * lsb)
    for e in (53, 54, 55):  # -0.5 +- tiny: 1 + v rounds in double, fl + 0.5 does not
        for v in (-0.5 + 2.0 ** -e, -0.5 - 2.0 ** -e, 0.5 - 2.0 ** -e, -1.5 + 2.0 ** -(e - 1)):
            vals.append(v * lsb)
    span = max(abs(lo), abs(hi))
    vals += list(rng_f(-1.5 * span, 1.5 * span, size=n // 2))  # random, mostly not on the grid
    mant = rng_f(-1, 1, size=n // 4)
    vals += list(mant * 2.0 ** rng.integers(-t.F - 10, t.I + 10, size=len(mant)))  # all scales
    return np.array(vals, dtype=np.float64)


def _as_signed(u, width: int, signed: bool) -> np.ndarray:
    """C++ printed bits (unsigned decimal) to int64 raw values."""
    u = np.asarray(u, dtype=np.uint64)
    if width < 64:
        u = u & np.uint64((1 << width) - 1)
    r = u.view(np.int64) if u.dtype == np.uint64 else u
    return wrap(r, width, signed)


def _bits(raw, t: FixedType) -> list[int]:
    mask = (1 << t.W) - 1
    return [int(v) & mask for v in raw]


# ------------------------------------------------------------------------------------------------
# running
# ------------------------------------------------------------------------------------------------
@dataclass
class Run:
    cast_in: list = field(default_factory=list)       # raw int64 arrays per cast case
    double_in: list = field(default_factory=list)     # float64 arrays per double case
    arith_in: list = field(default_factory=list)      # (a raw, b raw) per arith case
    mac_in: list = field(default_factory=list)        # (a raw MxK, b raw KxN)
    cast_out: list = field(default_factory=list)
    double_out: list = field(default_factory=list)
    arith_types: list = field(default_factory=list)
    arith_out: list = field(default_factory=list)
    mac_out: list = field(default_factory=list)


@pytest.fixture(scope="module")
def cpp_run(tmp_path_factory) -> Run:
    try:
        find_cxx()
        find_ap_types()
    except ToolMissingError as e:
        pytest.fail(str(e), pytrace=False)
    d = tmp_path_factory.mktemp("apfixed_cpp")
    src = d / "apfixed_check.cpp"
    src.write_text(_program())
    exe = compile_cpp([src], d / "apfixed_check", flags=["-O1", "-DNDEBUG"], timeout=600)

    rng = np.random.default_rng(SEED)
    run = Run()
    chunks = []
    cid = 0
    for s, t in CAST_CASES:
        raw = np.array(_cast_values(s, t, rng, N_CAST), dtype=np.int64)
        run.cast_in.append(raw)
        chunks.append(f"{cid} {len(raw)}\n" + "\n".join(map(str, _bits(raw, s))))
        cid += 1
    for t in DOUBLE_CASES:
        x = _double_values(t, rng, N_DOUBLE)
        run.double_in.append(x)
        chunks.append(f"{cid} {len(x)}\n" + "\n".join(map(str, x.view(np.uint64).tolist())))
        cid += 1
    for a_t, b_t, _ in ARITH_CASES:
        ea, eb = _edges(a_t), _edges(b_t)  # every pair of edge values, then random pairs
        a = [x for x in ea for _ in eb] + _random_raw(a_t, N_ARITH, rng)
        b = [y for _ in ea for y in eb] + _random_raw(b_t, N_ARITH, rng)
        m = min(len(a), len(b))
        a, b = np.array(a[:m], dtype=np.int64), np.array(b[:m], dtype=np.int64)
        run.arith_in.append((a, b))
        pairs = "\n".join(f"{x} {y}" for x, y in zip(_bits(a, a_t), _bits(b, b_t)))
        chunks.append(f"{cid} {m}\n{pairs}")
        cid += 1
    for a_t, b_t, _, M, K, N in MAC_CASES:
        a = np.array(_random_raw(a_t, 4 * M * K, rng), dtype=np.int64)
        b = np.array(_random_raw(b_t, 4 * K * N, rng), dtype=np.int64)
        a = rng.permutation(a)[:M * K].reshape(M, K)
        b = rng.permutation(b)[:K * N].reshape(K, N)
        a[0, :8] = a_t.min_raw  # a few extremes so the accumulator sees large sums
        b[:8, 0] = b_t.min_raw
        run.mac_in.append((a, b))
        chunks.append(f"{cid} {M} {K} {N}\n" + "\n".join(map(str, _bits(a.ravel(), a_t)))
                      + "\n" + "\n".join(map(str, _bits(b.ravel(), b_t))))
        cid += 1
    inp = d / "input.txt"
    inp.write_text("\n".join(chunks) + "\n")
    with open(inp) as fin:
        res = subprocess.run([str(exe)], stdin=fin, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, f"C++ checker failed ({res.returncode}): {res.stderr[:500]}"

    lines = res.stdout.split("\n")
    pos = 0

    def take(k):
        nonlocal pos
        out = lines[pos:pos + k]
        pos += k
        return out

    for raw in run.cast_in:
        run.cast_out.append(np.array([int(v) for v in take(len(raw))], dtype=np.uint64))
    for x in run.double_in:
        run.double_out.append(np.array([int(v) for v in take(len(x))], dtype=np.uint64))
    for a, _ in run.arith_in:
        run.arith_types.append([int(v) for v in take(1)[0].split()])
        rows = [[int(v) for v in ln.split()] for ln in take(len(a))]
        run.arith_out.append(np.array(rows, dtype=np.uint64).reshape(len(a), 6))
    for (_, _, _, M, _, N) in MAC_CASES:
        run.mac_out.append(np.array([int(v) for v in take(M * N)], dtype=np.uint64).reshape(M, N))
    assert all(not ln.strip() for ln in lines[pos:]), "unexpected extra output from the C++ checker"
    return run


def _mismatch(what, inputs, got, want, limit=5) -> str:
    bad = np.nonzero(np.asarray(got) != np.asarray(want))[0]
    rows = [f"  in={inputs[i]!r} python={int(got[i])} c++={int(want[i])}" for i in bad[:limit]]
    return f"{what}: {len(bad)} of {len(got)} differ\n" + "\n".join(rows)


def mode_counts(run: Run) -> Counter:
    """Values compared per (category, mode / signedness of the destination type)."""
    counts: Counter = Counter()
    items = ([("cast", t, len(raw)) for (_, t), raw in zip(CAST_CASES, run.cast_in)]
             + [("double", t, len(x)) for t, x in zip(DOUBLE_CASES, run.double_in)]
             + [("arith", d, 3 * len(a)) for (_, _, d), (a, _) in zip(ARITH_CASES, run.arith_in)])
    for cat, t, n in items:
        for key in (t.Q, t.O, "signed" if t.signed else "unsigned"):
            counts[(cat, key)] += n
    return counts


# ------------------------------------------------------------------------------------------------
# tests
# ------------------------------------------------------------------------------------------------
def test_cast_matches_cpp(cpp_run):
    failures = []
    for (s, t), raw, out in zip(CAST_CASES, cpp_run.cast_in, cpp_run.cast_out):
        want = _as_signed(out, t.W, t.signed)
        got = t.cast_raw(raw, s)
        if not np.array_equal(got, want):
            failures.append(_mismatch(f"{t.cpp} <- {s.cpp}", raw.tolist(), got, want))
    assert not failures, "\n".join(failures[:10])


def test_double_matches_cpp(cpp_run):
    failures = []
    for t, x, out in zip(DOUBLE_CASES, cpp_run.double_in, cpp_run.double_out):
        want = _as_signed(out, t.W, t.signed)
        got = t.quantize(x)
        if not np.array_equal(got, want):
            failures.append(_mismatch(f"{t.cpp}(double)", [float(v).hex() for v in x], got, want))
    assert not failures, "\n".join(failures[:10])


def test_arith_matches_cpp(cpp_run):
    failures = []
    for (a_t, b_t, d), (a, b), types, out in zip(ARITH_CASES, cpp_run.arith_in, cpp_run.arith_types,
                                                 cpp_run.arith_out):
        fa, fb = Fx(a, a_t), Fx(b, b_t)
        results = (fa * fb, fa + fb, fa - fb)
        # result types as C++ declares them: width, iwidth, signedness of a*b, a+b, a-b
        assert [results[0].t.W, results[0].t.I, int(results[0].t.signed)] == types[0:3], (a_t, b_t)
        assert [results[1].t.W, results[1].t.I, int(results[1].t.signed)] == types[3:6], (a_t, b_t)
        assert [results[2].t.W, results[2].t.I, int(results[2].t.signed)] == types[6:9], (a_t, b_t)
        assert results[0].t == mul_type(a_t, b_t) and results[1].t == add_type(a_t, b_t)
        inputs = list(zip(a.tolist(), b.tolist()))
        for j, (r, name) in enumerate(zip(results, ("*", "+", "-"))):
            want = _as_signed(out[:, j], r.t.W, r.t.signed)
            if not np.array_equal(r.raw, want):
                failures.append(_mismatch(f"{a_t.cpp} {name} {b_t.cpp}", inputs, r.raw, want))
            want_d = _as_signed(out[:, 3 + j], d.W, d.signed)
            got_d = r.cast(d).raw
            if not np.array_equal(got_d, want_d):
                failures.append(_mismatch(f"{d.cpp} = {a_t.cpp} {name} {b_t.cpp}", inputs, got_d, want_d))
    assert not failures, "\n".join(failures[:10])


def _ref_matmul_wrapped(a, b, acc: FixedType) -> np.ndarray:
    """Plain Python ints (object arrays), wrapped into ``acc``."""
    s = np.asarray(a, dtype=object) @ np.asarray(b, dtype=object)
    mod = 1 << acc.W
    f = np.vectorize(lambda v: ((v + (mod >> 1)) % mod) - (mod >> 1) if acc.signed else v % mod,
                     otypes=[object])
    return f(s).astype(np.int64)


def test_mac_loop_matches_cpp(cpp_run):
    for (a_t, b_t, acc, M, _K, N), (a, b), out in zip(MAC_CASES, cpp_run.mac_in, cpp_run.mac_out):
        want = _as_signed(out.ravel(), acc.W, acc.signed).reshape(M, N)
        got = fx_matmul(Fx(a, a_t), Fx(b, b_t), acc).raw
        np.testing.assert_array_equal(got, want, err_msg=f"{acc.cpp} += {a_t.cpp} * {b_t.cpp}")
        np.testing.assert_array_equal(_ref_matmul_wrapped(a, b, acc), want)


@pytest.mark.parametrize("a_w, b_w, k, acc_w", [(32, 16, 1536, 48), (32, 16, 1536, 64),
                                                (32, 32, 64, 64), (32, 32, 64, 40), (16, 16, 300, 33)])
def test_fx_matmul_matches_python_ints(a_w, b_w, k, acc_w):
    """Wide operands over many terms; the narrower accumulators wrap for sure."""
    rng = np.random.default_rng(SEED + k + a_w + acc_w)
    a_t, b_t = T(a_w, 4), T(b_w, 1)
    acc = T(acc_w, acc_w - (a_t.F + b_t.F))
    a = rng.integers(a_t.min_raw, a_t.max_raw + 1, size=(5, k), dtype=np.int64)
    b = rng.integers(b_t.min_raw, b_t.max_raw + 1, size=(k, 7), dtype=np.int64)
    a[0] = a_t.min_raw  # extreme rows/columns: largest possible sums
    b[:, 0] = b_t.min_raw
    a[1] = a_t.max_raw
    want = _ref_matmul_wrapped(a, b, acc)
    got = fx_matmul(Fx(a, a_t), Fx(b, b_t), acc).raw
    np.testing.assert_array_equal(got, want)
    # exact_int_matmul is exact modulo 2**64 (int64), whichever operand is wider
    s = np.asarray(a, dtype=object) @ np.asarray(b, dtype=object)
    want64 = np.vectorize(lambda v: ((v + 2 ** 63) % 2 ** 64) - 2 ** 63, otypes=[object])(s).astype(np.int64)
    np.testing.assert_array_equal(exact_int_matmul(a, b), want64)
    np.testing.assert_array_equal(exact_int_matmul(b.T, a.T), want64.T)
    if acc_w <= 48:  # the accumulator really wrapped somewhere
        assert np.any(np.abs(s.astype(float)) > 2.0 ** (acc_w - 1))


def test_every_mode_compared(cpp_run):
    """The cases above compare thousands of values for every quantisation and overflow mode."""
    counts = mode_counts(cpp_run)
    for cat in ("cast", "double", "arith"):
        for mode in QUANT_MODES + OVERFLOW_MODES + ("signed", "unsigned"):
            assert counts[(cat, mode)] >= 2000, (cat, mode, counts[(cat, mode)])


# ------------------------------------------------------------------------------------------------
# the tool finders themselves
# ------------------------------------------------------------------------------------------------
def test_find_ap_types_prefers_xilinx_hls_and_never_imports_hls4ml(tmp_path, monkeypatch):
    import sys

    import edgemoe.codegen.aptypes as aptypes

    (tmp_path / "vitis" / "include").mkdir(parents=True)
    (tmp_path / "vitis" / "include" / "ap_fixed.h").write_text("// stub\n")
    monkeypatch.setenv("XILINX_HLS", str(tmp_path / "vitis"))
    assert aptypes.find_ap_types() == tmp_path / "vitis" / "include"
    monkeypatch.setenv("XILINX_HLS", str(tmp_path / "empty"))  # no headers there: use hls4ml's
    d = aptypes.find_ap_types()
    assert (d / "ap_fixed.h").is_file() and (d / "ap_int.h").is_file() and (d / "hls_stream.h").is_file()
    assert d.parts[-4:] == ("hls4ml", "templates", "vivado", "ap_types")
    assert "hls4ml" not in sys.modules
    monkeypatch.setattr(aptypes.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ToolMissingError, match=r"ap_fixed\.h.*pip install --no-deps hls4ml==1\.3\.0 "
                                               r"or set XILINX_HLS"):
        aptypes.find_ap_types()


def test_find_cxx_and_compile_errors(tmp_path, monkeypatch):
    from edgemoe.errors import EdgeMoeError

    good = tmp_path / "ok.cpp"
    good.write_text("#include <ap_fixed.h>\n#include <hls_stream.h>\n#include <cstdio>\n"
                    "int main() { ap_fixed<8, 4, AP_RND, AP_SAT> x = 1.03125; "
                    "std::printf(\"%d\\n\", (int)x.range(7, 0)); return 0; }\n")
    exe = compile_cpp(good, tmp_path / "bin" / "ok", flags=["-O0"])
    assert subprocess.run([str(exe)], capture_output=True, text=True).stdout.strip() == "17"
    lib = compile_cpp([good], tmp_path / "libok.so", shared=True, include_dirs=[tmp_path])
    assert lib.is_file()
    bad = tmp_path / "bad.cpp"
    bad.write_text("int main() { return undeclared_thing; }\n")
    with pytest.raises(EdgeMoeError, match="bad.cpp failed: .*error.*undeclared_thing"):
        compile_cpp(bad, tmp_path / "bad")
    with pytest.raises(EdgeMoeError, match="does not exist"):
        compile_cpp(tmp_path / "missing.cpp", tmp_path / "missing")
    monkeypatch.setenv("CXX", "no-such-compiler-xyz")
    with pytest.raises(ToolMissingError):
        find_cxx()
    monkeypatch.delenv("CXX")
    monkeypatch.setenv("PATH", str(tmp_path / "nothing"))
    with pytest.raises(ToolMissingError, match="g\\+\\+ not found: apt-get install g\\+\\+"):
        find_cxx()
