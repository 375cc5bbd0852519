"""The DSP-packed int8 MAC paths of the units (pack2.h inside linear.h's engine_macs and attention.h's
Q.K^T / A.V products) against plain C++ integer references, with extreme codes.

A C++ driver, compiled against each precision's edgemoe_config.h, feeds the MAC cores raw codes at the
ends of their ranges (-128 / 127 and neighbours for s8, 0 / 255 for u8 probabilities and pixels):
every constant-vector combination, pairs whose two sums run to opposite ends, then random vectors
half made of edge values.  Accumulators start from random codes over their whole width, so the
wrap-around is checked too.  The reference is plain wide-integer arithmetic on the raw codes; every
case must have 0 mismatches.  The engine's x operand holds the codes of both its inputs (the 8-bit
activations and the unsigned pixels: 9 bits at w8a8), so both code ranges go through the same MAC
array.  It also prints which paths are packed (w8a8 with even ENGINE_OUT / ATTN_ROWS; never at w16a32
or with odd ATTN_ROWS) and ENG_SUM_DEPTH, the depth of the engine's summing stage.
"""
from __future__ import annotations

import subprocess

import pytest

from edgemoe.codegen.aptypes import compile_cpp
from edgemoe.codegen.config_header import CONFIG_NAME, render_config
from edgemoe.design import get_design
from edgemoe.codegen.render import INCLUDE_DIR
from edgemoe.golden.precision import base_precision
from edgemoe.spec import get_preset

FLAGS = ["-O1", "-Wall", "-Wextra", "-Werror", "-Wno-unknown-pragmas", "-Wno-unused-label",
         "-Wno-uninitialized", "-Wno-maybe-uninitialized"]

DRIVER = r"""
#include "edgemoe_config.h"
#include "edgemoe_fixed.h"
#include "linear.h"
#include "attention.h"
#include <cstdio>
#include <random>

typedef ap_int<128> wide_t;
static std::mt19937_64 rng(7);

// the raw-code range of T and the codes at its ends (the values that fill a packed field)
template <class T> struct codes {
    static const bool S = fx_info<T>::S;
    static const int W = fx_info<T>::W;
    static long long lo() { return S ? -(1LL << (W - 1)) : 0; }
    static long long hi() { return S ? (1LL << (W - 1)) - 1 : (1LL << W) - 1; }
    static const int N_EDGES = 6;
    static long long edge(int e) {
        const long long v[N_EDGES] = {lo(), lo() + 1, S ? -1 : 1, 0, hi() - 1, hi()};
        return v[e];
    }
    static long long draw() {
        if (rng() & 1) return edge(int(rng() % N_EDGES));
        return lo() + (long long)(rng() % (unsigned long long)(hi() - lo() + 1));
    }
    static long long mirror(long long v) { return lo() + hi() - v; }   // the other end
};

// a random code over T's whole width (accumulator start values: exercises the wrap)
template <class T> static T any_code() {
    ap_uint<fx_info<T>::W> bits = 0;
    for (int i = 0; i < fx_info<T>::W; i += 32) bits = (bits << 32) | ap_uint<fx_info<T>::W>(rng() & 0xffffffffULL);
    return fx_from_raw<T>(bits);
}

// acc's raw code plus sum (at the products' fraction bits F), wrapped at acc's width
template <class ACC_T> static bool same_acc(const ACC_T &got, const ACC_T &start, wide_t sum, int f_prod) {
    ap_int<fx_info<ACC_T>::W> want = fx_raw(start);
    want += ap_int<fx_info<ACC_T>::W>(sum << (fx_info<ACC_T>::F - f_prod));
    return ap_int<fx_info<ACC_T>::W>(fx_raw(got)) == want;
}

// vector filler: mode 0 constant edge e, mode 1 alternating edge e / its mirror, mode 2 random
template <class T> static long long fill(int mode, int e, int i) {
    if (mode == 2) return codes<T>::draw();
    const long long v = codes<T>::edge(e);
    return (mode == 1 && (i & 1)) ? codes<T>::mirror(v) : v;
}

// engine_macs: x (shared, codes of X_T) times the tile, into random accumulators
template <class X_T>
static void check_engine(const char *name) {
    typedef ap_int<ENG_ACC_BITS> acc_raw_t;
    const int F = 0;   // raw codes: the sum at the codes' scale
    long long cases = 0, bad = 0;
    eng_x_t xv[ENGINE_IN];
    eng_w_t w[ENGINE_OUT][ENGINE_IN];
    eng_acc_t a_in[ENGINE_OUT], a_out[ENGINE_OUT];
    const int NE = codes<X_T>::N_EDGES;
    for (int t = 0; t < NE * NE * NE * 3 + 2000; t++) {
        // every (x edge, even-column edge, odd-column edge), plain or alternating, then random
        const int ex = t % NE, e0 = (t / NE) % NE, e1 = (t / (NE * NE)) % NE;
        const int mode = t < NE * NE * NE * 3 ? t / (NE * NE * NE) : 2;
        for (int i = 0; i < ENGINE_IN; i++) xv[i] = fill<X_T>(mode == 2 ? 2 : 0, ex, i);
        for (int o = 0; o < ENGINE_OUT; o++)
            for (int i = 0; i < ENGINE_IN; i++) w[o][i] = fill<w_t>(mode, (o & 1) ? e1 : e0, i + o / 2);
        for (int o = 0; o < ENGINE_OUT; o++) a_in[o] = fx_raw(any_code<ap_fixed<ENG_ACC_BITS, ENG_ACC_BITS> >());
        engine_macs(xv, w, a_in, a_out);
        for (int o = 0; o < ENGINE_OUT; o++) {
            wide_t s = 0;
            for (int i = 0; i < ENGINE_IN; i++) s += wide_t(xv[i]) * wide_t(w[o][i]);
            acc_raw_t want = a_in[o];
            want += acc_raw_t(s << F);
            bad += a_out[o] != want;
        }
        cases++;
    }
    printf("%s %lld %lld\n", name, cases, bad);
}

// Q.K^T chunk sums (K shared by the row pairs) and A.V products (V shared, probabilities packed)
static void check_attention() {
    static qkv_t qbuf[ATTN_ROWS][EMBED];
    static av_acc_t oacc[ATTN_ROWS][EMBED], start[ATTN_ROWS][EMBED];
    qkv_t x[ATTN_LANES];
    qk_acc_t ps[ATTN_ROWS];
    prob_t p[ATTN_ROWS];
    const int NQ = codes<qkv_t>::N_EDGES, NP = codes<prob_t>::N_EDGES;
    long long qk_cases = 0, qk_bad = 0, av_cases = 0, av_bad = 0;
    for (int t = 0; t < NQ * NQ * NQ * 3 + 2000; t++) {
        const int ek = t % NQ, e0 = (t / NQ) % NQ, e1 = (t / (NQ * NQ)) % NQ;
        const int mode = t < NQ * NQ * NQ * 3 ? t / (NQ * NQ * NQ) : 2;
        const int col = ATTN_LANES * int(rng() % (EMBED / ATTN_LANES));
        for (int l = 0; l < ATTN_LANES; l++) x[l] = fx_from_raw<qkv_t>(fill<qkv_t>(mode == 2 ? 2 : 0, ek, l));
        for (int o = 0; o < ATTN_ROWS; o++)
            for (int l = 0; l < ATTN_LANES; l++)
                qbuf[o][col + l] = fx_from_raw<qkv_t>(fill<qkv_t>(mode, (o & 1) ? e1 : e0, l + o / 2));
        attn_qk_sums<qkv_t, qk_acc_t>::run(qbuf, col, x, ps);
        for (int o = 0; o < ATTN_ROWS; o++) {
            wide_t s = 0;
            for (int l = 0; l < ATTN_LANES; l++) s += wide_t(fx_raw(qbuf[o][col + l])) * wide_t(fx_raw(x[l]));
            qk_bad += !same_acc(ps[o], qk_acc_t(0), s, 2 * fx_info<qkv_t>::F);
        }
        qk_cases++;
    }
    for (int t = 0; t < NP * NP * NQ + 2000; t++) {
        const bool edges = t < NP * NP * NQ;
        const int e0 = t % NP, e1 = (t / NP) % NP, ev = (t / (NP * NP)) % NQ;
        const int col = ATTN_LANES * int(rng() % (EMBED / ATTN_LANES));
        for (int o = 0; o < ATTN_ROWS; o++)
            p[o] = fx_from_raw<prob_t>(edges ? codes<prob_t>::edge((o & 1) ? e1 : e0) : codes<prob_t>::draw());
        for (int l = 0; l < ATTN_LANES; l++) x[l] = fx_from_raw<qkv_t>(fill<qkv_t>(edges ? 1 : 2, ev, l));
        for (int o = 0; o < ATTN_ROWS; o++)
            for (int l = 0; l < ATTN_LANES; l++) oacc[o][col + l] = start[o][col + l] = any_code<av_acc_t>();
        attn_av_macs<prob_t, qkv_t, av_acc_t>::run(p, x, col, oacc);
        for (int o = 0; o < ATTN_ROWS; o++)
            for (int l = 0; l < ATTN_LANES; l++) {
                const wide_t prod = wide_t(fx_raw(p[o])) * wide_t(fx_raw(x[l]));
                av_bad += !same_acc(oacc[o][col + l], start[o][col + l], prod, fx_info<prob_t>::F + fx_info<qkv_t>::F);
            }
        av_cases++;
    }
    printf("qk %lld %lld\n", qk_cases, qk_bad);
    printf("av %lld %lld\n", av_cases, av_bad);
}

int main() {
    printf("packed %d %d %d\n", int(ENG_PACKED), int(attn_qk_sums<qkv_t, qk_acc_t>::packed),
           int(attn_av_macs<prob_t, qkv_t, av_acc_t>::packed));
    printf("sum_depth %d\n", int(ENG_SUM_DEPTH));
    check_engine<lin_in_t>("engine");
    check_engine<pixel_t>("patch");
    check_attention();
    return 0;
}
"""

# (precision, engine_in, engine_out, attn_rows, attn_lanes) -> (engine, Q.K^T, A.V packed), ENG_SUM_DEPTH:
# the engine's 9-bit x (s8 activations and u8 pixels) times s8 weights: 4-term chains
CASES = {
    ("w8a8", 16, 16, 4, 8): ((1, 1, 1), 4 + 1 + 2),          # four 4-term chains per pair
    ("w8a8", 8, 8, 2, 16): ((1, 1, 1), 4 + 1 + 1),           # two chains; Q.K^T in two chunks
    ("w8a8", 32, 2, 6, 4): ((1, 1, 1), 4 + 1 + 3),           # eight chunks
    ("w8a8", 16, 16, 3, 4): ((1, 0, 0), 4 + 1 + 2),          # odd ATTN_ROWS: plain attention
    ("w16a32", 16, 16, 4, 8): ((0, 0, 0), 4),                # wide types: plain everywhere, an adder tree
}


@pytest.mark.parametrize("case", list(CASES), ids=lambda c: "-".join(map(str, c)))
def test_packed_mac_paths_with_extreme_codes(tmp_path, case):
    pname, ei, eo, rows, lanes = case
    spec = get_preset("micro")
    design = get_design("edge-moe").with_(engine_in=ei, engine_out=eo, attn_rows=rows, attn_lanes=lanes)
    (tmp_path / CONFIG_NAME).write_text(render_config(spec, base_precision(pname), design))
    src = tmp_path / "pack_units.cpp"
    src.write_text(DRIVER)
    exe = compile_cpp(src, tmp_path / "pack_units", flags=FLAGS, include_dirs=[tmp_path, INCLUDE_DIR])
    out = subprocess.run([str(exe)], capture_output=True, text=True, timeout=300, check=True).stdout
    rows_out = {line.split()[0]: line.split()[1:] for line in out.splitlines()}
    packed, sum_depth = CASES[case]
    assert tuple(int(v) for v in rows_out["packed"]) == packed, out
    assert int(rows_out["sum_depth"][0]) == sum_depth, out
    for name in ("engine", "patch", "qk", "av"):
        cases, bad = map(int, rows_out[name])
        assert cases > 600 and bad == 0, f"{name}: {bad} of {cases} cases differ\n{out}"
