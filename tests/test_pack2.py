"""hls/include/pack2.h: two 8-bit products sharing one operand from one wide multiply (DSP48E2 packing).

A C++ driver (g++, ap_types on -isystem, -Wall -Wextra -Werror) checks mul2 exhaustively over all
2^24 (a, b0, b1) triples (s8 x s8 at the smallest and the DSP field width, u8 x s8 and s8 x u8) and
dot2 / dot2_long on random and extreme vectors (every constant vector of edge values, so the sums hit
the ends of their ranges) against plain int products; every case must have 0 mismatches.  The limits
(largest N per field width, smallest S per N) are checked against the closed-form rule, and a field
too narrow for N, an operand too wide for the 27-bit pre-adder and a too narrow result type must fail
to compile with the header's static_assert.
"""
from __future__ import annotations

import subprocess

import pytest

from edgemoe.codegen.aptypes import compile_cpp, find_ap_types, find_cxx
from edgemoe.codegen.render import INCLUDE_DIR
from edgemoe.errors import EdgeMoeError, ToolMissingError

# ap_private.h's own temporaries give false (maybe-)uninitialized reports at -O1 and above
FLAGS = ["-O2", "-Wall", "-Wextra", "-Werror", "-Wno-unknown-pragmas", "-Wno-uninitialized",
         "-Wno-maybe-uninitialized"]

DRIVER = r"""
#include "pack2.h"
#include <cstdio>
#include <random>

typedef ap_int<8> s8;
typedef ap_uint<8> u8;
static std::mt19937_64 rng(20240611);
static const int S8_EDGES[] = {-128, -127, -1, 0, 1, 126, 127};
static const int U8_EDGES[] = {0, 1, 127, 128, 254, 255};

template <class T> struct lim;
template <> struct lim<s8> { static const int lo = -128, hi = 127;
    static const int *edges() { return S8_EDGES; } static const int n_edges = 7; };
template <> struct lim<u8> { static const int lo = 0, hi = 255;
    static const int *edges() { return U8_EDGES; } static const int n_edges = 6; };

// half uniform, half edge values: the extremes are where a field would overflow
template <class T> static int draw() {
    if (rng() & 1) return lim<T>::lo + int(rng() % (lim<T>::hi - lim<T>::lo + 1));
    return lim<T>::edges()[rng() % lim<T>::n_edges];
}

static void report(const char *name, long long cases, long long bad) {
    printf("%s %lld %lld\n", name, cases, bad);
}

// every (a, b0, b1): mul2 against a * b0, a * b1
template <int S, class TA, class TB>
static void mul2_all(const char *name) {
    long long cases = 0, bad = 0;
    for (int a = lim<TA>::lo; a <= lim<TA>::hi; a++)
        for (int b0 = lim<TB>::lo; b0 <= lim<TB>::hi; b0++)
            for (int b1 = lim<TB>::lo; b1 <= lim<TB>::hi; b1++) {
                ap_int<17> p0, p1;
                mul2<S>(TA(a), TB(b0), TB(b1), p0, p1);
                bad += (p0.to_int() != a * b0) || (p1.to_int() != a * b1);
                cases++;
            }
    report(name, cases, bad);
}

// dot2 (N within one field) or dot2_long (any N): only the one used is instantiated
template <bool LONG> struct run_dot {
    template <int N, int S, int MODE, class TA, class TB, class R>
    static void go(const TA *a, const TB *b0, const TB *b1, R &s0, R &s1) { dot2<N, S, MODE>(a, b0, b1, s0, s1); }
};
template <> struct run_dot<true> {
    template <int N, int S, int MODE, class TA, class TB, class R>
    static void go(const TA *a, const TB *b0, const TB *b1, R &s0, R &s1) { dot2_long<N, S, MODE>(a, b0, b1, s0, s1); }
};

template <int N, int S, int MODE, bool LONG, class TA, class TB>
static bool dot_one(const int *a, const int *b0, const int *b1) {
    TA av[N];
    TB bv0[N], bv1[N];
    long long r0 = 0, r1 = 0;
    for (int i = 0; i < N; i++) {
        av[i] = a[i]; bv0[i] = b0[i]; bv1[i] = b1[i];
        r0 += (long long)a[i] * b0[i];
        r1 += (long long)a[i] * b1[i];
    }
    ap_int<40> s0, s1;
    run_dot<LONG>::template go<N, S, MODE>(av, bv0, bv1, s0, s1);
    return s0.to_int64() != r0 || s1.to_int64() != r1;
}

// random vectors, then every constant vector of edge values (sums at the ends of their ranges),
// then vectors whose low and high sums run to opposite ends
template <int N, int S, int MODE, bool LONG, class TA, class TB>
static void dot_check(const char *name, int n_random) {
    long long cases = 0, bad = 0;
    int a[N], b0[N], b1[N];
    for (int t = 0; t < n_random; t++) {
        for (int i = 0; i < N; i++) { a[i] = draw<TA>(); b0[i] = draw<TB>(); b1[i] = draw<TB>(); }
        bad += dot_one<N, S, MODE, LONG, TA, TB>(a, b0, b1);
        cases++;
    }
    for (int ea = 0; ea < lim<TA>::n_edges; ea++)
        for (int e0 = 0; e0 < lim<TB>::n_edges; e0++)
            for (int e1 = 0; e1 < lim<TB>::n_edges; e1++)
                for (int alt = 0; alt < 2; alt++) {
                    // alt: the b1 term alternates with the other end, so the two fields differ in sign
                    for (int i = 0; i < N; i++) {
                        a[i] = lim<TA>::edges()[ea];
                        b0[i] = lim<TB>::edges()[e0];
                        b1[i] = (alt && (i & 1)) ? lim<TB>::lo + lim<TB>::hi - lim<TB>::edges()[e1]
                                                 : lim<TB>::edges()[e1];
                    }
                    bad += dot_one<N, S, MODE, LONG, TA, TB>(a, b0, b1);
                    cases++;
                }
    report(name, cases, bad);
}

int main() {
    // exhaustive single products
    mul2_all<18, s8, s8>("mul2_s8_S18");
    mul2_all<16, s8, s8>("mul2_s8_S16");
    mul2_all<18, u8, s8>("mul2_u8s8_S18");
    mul2_all<18, s8, u8>("mul2_s8u8_S18");
    {   // the named wrapper, exhaustively (it is what callers use)
        long long cases = 0, bad = 0;
        for (int a = -128; a < 128; a++)
            for (int b0 = -128; b0 < 128; b0++)
                for (int b1 = -128; b1 < 128; b1++) {
                    ap_int<16> p0, p1;
                    mul2_s8<17>(a, b0, b1, p0, p1);
                    bad += (p0.to_int() != a * b0) || (p1.to_int() != a * b1);
                    cases++;
                }
        report("mul2_s8_wrapper_S17", cases, bad);
    }

    // packed dot products: N = 1, 2 at their smallest S and at S = 18, the largest N per DSP
    dot_check<1, 16, PACK2_SIGNEXT, false, s8, s8>("dot2_s8_N1_S16", 200000);
    dot_check<1, 18, PACK2_SIGNEXT, false, s8, s8>("dot2_s8_N1_S18", 200000);
    dot_check<2, 17, PACK2_SIGNEXT, false, s8, s8>("dot2_s8_N2_S17", 200000);
    dot_check<2, 18, PACK2_SIGNEXT, false, s8, s8>("dot2_s8_N2_S18", 200000);
    dot_check<2, 17, PACK2_BIAS, false, s8, s8>("dot2_s8_N2_S17_bias", 200000);
    dot_check<7, 18, PACK2_SIGNEXT, false, s8, s8>("dot2_s8_N7_S18", 300000);
    dot_check<8, 18, PACK2_BIAS, false, s8, s8>("dot2_s8_N8_S18_bias", 300000);
    dot_check<4, 18, PACK2_SIGNEXT, false, u8, s8>("dot2_u8s8_N4_S18", 300000);
    dot_check<4, 18, PACK2_BIAS, false, u8, s8>("dot2_u8s8_N4_S18_bias", 300000);
    dot_check<4, 18, PACK2_SIGNEXT, false, s8, u8>("dot2_s8u8_N4_S18", 300000);
    dot_check<4, 18, PACK2_BIAS, false, u8, u8>("dot2_u8u8_N4_S18_bias", 100000);
    // long dot products in chunks of the largest N (the last chunk partly padded)
    dot_check<192, 18, PACK2_SIGNEXT, true, s8, s8>("dot2_long_s8_N192_S18", 20000);
    dot_check<192, 18, PACK2_BIAS, true, s8, s8>("dot2_long_s8_N192_S18_bias", 20000);
    dot_check<129, 18, PACK2_SIGNEXT, true, u8, s8>("dot2_long_u8s8_N129_S18", 20000);
    {   // the named wrappers
        long long cases = 0, bad = 0;
        for (int t = 0; t < 100000; t++) {
            s8 a[7], b0[7], b1[7];
            long long r0 = 0, r1 = 0;
            for (int i = 0; i < 7; i++) {
                const int x = draw<s8>(), y0 = draw<s8>(), y1 = draw<s8>();
                a[i] = x; b0[i] = y0; b1[i] = y1;
                r0 += x * y0; r1 += x * y1;
            }
            ap_int<18> s0, s1;
            dot2_s8<7, 18>(a, b0, b1, s0, s1);
            bad += s0.to_int() != r0 || s1.to_int() != r1;
            u8 pa[4];
            for (int i = 0; i < 4; i++) pa[i] = draw<u8>();
            ap_int<18> q0, q1;
            dot2_u8s8<4, 18>(pa, b0, b1, q0, q1);
            long long t0 = 0, t1 = 0;
            for (int i = 0; i < 4; i++) { t0 += pa[i].to_int() * b0[i].to_int(); t1 += pa[i].to_int() * b1[i].to_int(); }
            bad += q0.to_int() != t0 || q1.to_int() != t1;
            cases += 2;
        }
        report("dot2_named_wrappers", cases, bad);
    }

    // the limits, for the Python side to compare with the closed-form rule
    printf("max_terms s8s8 signext S16 %d S17 %d S18 %d\n", pack2_max_terms<s8, s8, 16>::value,
           pack2_max_terms<s8, s8, 17>::value, pack2_max_terms<s8, s8, 18>::value);
    printf("max_terms s8s8 bias S16 %d S17 %d S18 %d\n", pack2_max_terms<s8, s8, 16, PACK2_BIAS>::value,
           pack2_max_terms<s8, s8, 17, PACK2_BIAS>::value, pack2_max_terms<s8, s8, 18, PACK2_BIAS>::value);
    printf("max_terms u8s8 signext_S18 %d bias_S18 %d\n", pack2_max_terms<u8, s8, 18>::value,
           pack2_max_terms<u8, s8, 18, PACK2_BIAS>::value);
    printf("min_shift s8s8 signext N1 %d N2 %d N3 %d N4 %d N7 %d N8 %d\n",
           pack2_min_shift<s8, s8, 1>::value, pack2_min_shift<s8, s8, 2>::value,
           pack2_min_shift<s8, s8, 3>::value, pack2_min_shift<s8, s8, 4>::value,
           pack2_min_shift<s8, s8, 7>::value, pack2_min_shift<s8, s8, 8>::value);
    printf("widths N7S18 pk %d acc %d sum %d\n", pack2_traits<s8, s8, 7, 18, PACK2_SIGNEXT>::PK_W,
           pack2_traits<s8, s8, 7, 18, PACK2_SIGNEXT>::ACC_W, pack2_traits<s8, s8, 7, 18, PACK2_SIGNEXT>::SUM_W);
    return 0;
}
"""


def _tools():
    try:
        find_cxx()
        find_ap_types()
    except ToolMissingError as e:
        pytest.fail(str(e), pytrace=False)


@pytest.fixture(scope="module")
def driver_output(tmp_path_factory) -> str:
    _tools()
    d = tmp_path_factory.mktemp("pack2")
    src = d / "pack2_check.cpp"
    src.write_text(DRIVER)
    exe = compile_cpp([src], d / "pack2_check", include_dirs=[INCLUDE_DIR], flags=FLAGS, timeout=600)
    res = subprocess.run([str(exe)], capture_output=True, text=True, timeout=600, check=True)
    return res.stdout


def _results(out: str) -> dict:
    rows = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1].isdigit():
            rows[parts[0]] = (int(parts[1]), int(parts[2]))
    return rows


def _numbers(out: str, prefix: str) -> dict:
    line = next(ln for ln in out.splitlines() if ln.startswith(prefix))
    toks = line[len(prefix):].split()
    return dict(zip(toks[0::2], map(int, toks[1::2])))


def test_mul2_exhaustive(driver_output):
    rows = _results(driver_output)
    for name in ("mul2_s8_S18", "mul2_s8_S16", "mul2_u8s8_S18", "mul2_s8u8_S18", "mul2_s8_wrapper_S17"):
        cases, bad = rows[name]
        assert cases == 1 << 24, name
        assert bad == 0, f"{name}: {bad} mismatches"


def test_dot2_random_and_extremes(driver_output):
    rows = _results(driver_output)
    dots = {k: v for k, v in rows.items() if k.startswith("dot2")}
    assert len(dots) == 15
    for name, (cases, bad) in dots.items():
        assert cases >= 20000, name
        assert bad == 0, f"{name}: {bad} mismatches"


def _max_terms(plo: int, phi: int, s: int, bias: bool) -> int:
    half = 1 << (s - 1)
    if bias:
        return (2 * half - 1) // (phi - plo)
    return min((half - 1) // phi, half // -plo)


def test_limits_follow_the_field_rule(driver_output):
    s8 = (-128 * 127, 128 * 128)       # product range of s8 x s8
    u8s8 = (255 * -128, 255 * 127)
    sig = _numbers(driver_output, "max_terms s8s8 signext")
    bia = _numbers(driver_output, "max_terms s8s8 bias")
    for s in (16, 17, 18):
        assert sig[f"S{s}"] == _max_terms(*s8, s, False)
        assert bia[f"S{s}"] == _max_terms(*s8, s, True)
    assert (sig["S18"], bia["S18"]) == (7, 8)          # the largest N on one DSP48E2 (S <= 18)
    u = _numbers(driver_output, "max_terms u8s8")
    assert u == {"signext_S18": 4, "bias_S18": 4}
    assert _max_terms(*u8s8, 18, False) == _max_terms(*u8s8, 18, True) == 4
    # S >= 16 + floor(log2 N) (the -128 * -128 = 2^14 corner needs the extra bit)
    ms = _numbers(driver_output, "min_shift s8s8 signext")
    for n in (1, 2, 3, 4, 7, 8):
        assert ms[f"N{n}"] == 16 + n.bit_length() - 1, n
    w = _numbers(driver_output, "widths N7S18")
    assert w["pk"] <= 27 and w["acc"] <= 48 and w["sum"] == 18


# each snippet: (code, message of the static_assert that must fire, or None: must compile)
SNIPPETS = {
    "s8_N7_S18_ok": ("ap_int<18> s0, s1; dot2_s8<7, 18>(a, b0, b1, s0, s1);", None),
    "s8_N8_S18_bias_ok": ("ap_int<19> s0, s1; dot2_s8<8, 18, PACK2_BIAS>(a, b0, b1, s0, s1);", None),
    "s8_N1_S16_ok": ("ap_int<16> p0, p1; mul2_s8<16>(a[0], b0[0], b1[0], p0, p1);", None),
    "s8_N8_S18_overlap": ("ap_int<18> s0, s1; dot2_s8<8, 18>(a, b0, b1, s0, s1);", "too narrow for a sum"),
    "s8_N9_S18_bias_overlap": ("ap_int<19> s0, s1; dot2<9, 18, PACK2_BIAS>(a, b0, b1, s0, s1);",
                               "too narrow for a sum"),
    "s8_N2_S16_overlap": ("ap_int<17> s0, s1; dot2<2, 16>(a, b0, b1, s0, s1);", "too narrow for a sum"),
    "s8_N1_S15_overlap": ("ap_int<16> p0, p1; mul2_s8<15>(a[0], b0[0], b1[0], p0, p1);", "too narrow for a sum"),
    "u8s8_N5_S18_overlap": ("ap_int<19> s0, s1; dot2_u8s8<5, 18>(u, b0, b1, s0, s1);", "too narrow for a sum"),
    "s8_S19_preadder": ("ap_int<16> p0, p1; mul2_s8<19>(a[0], b0[0], b1[0], p0, p1);", "27-bit"),
    "s8_N8_S19_preadder": ("ap_int<19> s0, s1; dot2<8, 19>(a, b0, b1, s0, s1);", "27-bit"),
    "result_too_narrow": ("ap_int<15> p0, p1; mul2<18>(a[0], b0[0], b1[0], p0, p1);", "result type too narrow"),
}


@pytest.mark.parametrize("name", list(SNIPPETS))
def test_static_asserts(tmp_path, name):
    _tools()
    body, message = SNIPPETS[name]
    src = tmp_path / f"{name}.cpp"
    src.write_text('#include "pack2.h"\n'
                   "void f(const ap_int<8> a[16], const ap_int<8> b0[16], const ap_int<8> b1[16],\n"
                   "       const ap_uint<8> u[16]) {\n"
                   f"    (void)u; {body}\n"
                   "}\n")
    flags = ["-fsyntax-only", "-Wall", "-Wextra", "-Werror", "-Wno-unknown-pragmas"]
    if message is None:
        compile_cpp([src], tmp_path / name, include_dirs=[INCLUDE_DIR], flags=flags)
    else:
        with pytest.raises(EdgeMoeError, match="static assertion failed.*" + message):
            compile_cpp([src], tmp_path / name, include_dirs=[INCLUDE_DIR], flags=flags)
