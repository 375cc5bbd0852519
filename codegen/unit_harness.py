"""A shared library of every HLS unit, for bit-exact tests against the golden units.

:func:`build_unit_library` renders ``edgemoe_config.h`` for (spec, precision, design), writes a C++
file of ``extern "C"`` wrappers that take raw int64 arrays (each value's ap_fixed bit pattern,
sign- or zero-extended), compiles it with ``-Wall -Wextra -Werror`` (ap_types on ``-isystem``) and
loads it with ctypes.  :class:`UnitLib` calls the units with numpy arrays of raw codes.
"""
from __future__ import annotations

import ctypes
import hashlib
from pathlib import Path

import numpy as np

from edgemoe.errors import EdgeMoeError

from .aptypes import compile_cpp
from .config_header import CONFIG_NAME, DELTA_TABLES, ENGINE_MODE, render_config
from edgemoe.design import Design, get_design, DEFAULT_DESIGN
from .render import INCLUDE_DIR

UNIT_HEADERS = ("patch_embed.h", "layernorm.h", "linear.h", "attention.h", "softmax.h", "gelu.h",
                "moe_route.h", "residual.h")
CXX_FLAGS = ("-Wall", "-Wextra", "-Werror", "-Wno-unknown-pragmas", "-Wno-unused-label", "-O0")

# the linear calls the wrapper runs: the engine's own modes (ENG_* of the config header)
LIN_QKV, LIN_ACT, LIN_GELU, LIN_SCATTER = (ENGINE_MODE[m] for m in ("ENG_QKV", "ENG_ACT", "ENG_GELU", "ENG_SCATTER"))
BIAS_QKV, BIAS_B = 0, 1      # the wrapper's bias argument: qkv_b or b

HARNESS_CPP = r"""
// unit test harness: extern "C" wrappers over the HLS units (raw int64 in and out). Generated.
// The units run on buffers declared exactly as the top kernel declares them (codegen/buffers.py),
// so the engine, LayerNorm, attention, route and residual functions under test are the kernel's.
#include "edgemoe_config.h"
#include "edgemoe_fixed.h"
#include "edgemoe_mem.h"
%(includes)s

template <class T> static T in_(const long long *p, int i) { return fx_from_raw<T>(ap_int<64>(p[i])); }
template <class T> static long long out_(const T &v) { return fx_raw(v).to_int64(); }
#define IN_ARRAY(T, dst, src, n) for (int i_ = 0; i_ < (n); i_++) (dst)[i_] = in_<T>((src), i_)
#define OUT_ARRAY(dst, src, n) for (int i_ = 0; i_ < (n); i_++) (dst)[i_] = out_((src)[i_])

%(declarations)s

// value i of a lane-word buffer (the harness's own element access)
template <class T, int NB, int G> static T &at_(T (*buf)[NB][G], long i) {
    return buf[i / (NB * G)][(i %% (NB * G)) / G][i %% G];
}
template <class T, int NB, int G> static void put_raw(T (*buf)[NB][G], const long long *src, long n) {
    for (long i = 0; i < n; i++) at_(buf, i) = in_<T>(src, int(i));
}
template <class T, int NB, int G> static void get_raw(T (*buf)[NB][G], long long *dst, long n) {
    for (long i = 0; i < n; i++) dst[i] = out_(at_(buf, i));
}

#define HARNESS_MAX_IN (MAX_IN_DIM > PATCH_DIM ? MAX_IN_DIM : PATCH_DIM)
static w_t g_w[MAX_OUT_DIM * HARNESS_MAX_IN];
static axi_word_t g_wt[(MAX_OUT_DIM / ENGINE_OUT) * (HARNESS_MAX_IN / ENGINE_IN) * ENG_LW * WEIGHT_PORTS];

// a [out_dim][in_dim] matrix -> AXI words in engine tile order, each weight port's words one
// contiguous segment (the layout codegen/pack.py writes)
template <class W_T>
static void pack_tiles(const W_T *w, int out_dim, int in_dim, axi_word_t *dst) {
    const int SB = packed_ptr<W_T>::SB, PER = packed_ptr<W_T>::PER, TW = engine_tile_words<W_T>::value;
    const int W = fx_info<W_T>::W;
    const long n_tiles = long(out_dim / ENGINE_OUT) * (in_dim / ENGINE_IN);
    for (long i = 0; i < n_tiles * ENG_LW * WEIGHT_PORTS; i++) dst[i] = 0;
    long t = 0;
    for (int o0 = 0; o0 < out_dim; o0 += ENGINE_OUT)
        for (int i0 = 0; i0 < in_dim; i0 += ENGINE_IN, t++)
            for (int k = 0; k < TW; k++) {
                axi_word_t word = 0;
                for (int l = 0; l < PER; l++) {
                    const int j = k * PER + l;
                    if (j < ENGINE_OUT * ENGINE_IN)
                        word.range(l * SB + W - 1, l * SB) =
                            ap_uint<W>(fx_raw(w[(o0 + j / ENGINE_IN) * in_dim + i0 + j %% ENGINE_IN]));
                }
                dst[(k %% WEIGHT_PORTS) * n_tiles * ENG_LW + t * ENG_LW + k / WEIGHT_PORTS] = word;
            }
}

static void run_engine(const engine_cmd &c) {
    linear_engine(c, g_wt WPORTS_SAME(g_wt), ENGINE_BUFFER_ARGS);
}

extern "C" {

int em_sizes(long long *out) {
    const long long v[] = {TOKENS, EMBED, HEADS, HEAD_DIM, MLP_HIDDEN, NUM_EXPERTS, EXPERT_HIDDEN,
                           TOP_K, DEPTH, PATCH_DIM, ENGINE_IN, ENGINE_OUT, ATTN_ROWS, AXI_BITS,
                           RESCALE_SPAN, MAX_IN_DIM, MAX_OUT_DIM, SM_MAX_LEN, NUM_SLOTS};
    const int n = sizeof(v) / sizeof(v[0]);
    for (int i = 0; i < n; i++) out[i] = v[i];
    return n;
}

int em_deltas(long long *out) {
    const signed char *t[] = {%(delta_names)s};
    const int n = sizeof(t) / sizeof(t[0]);
    for (int j = 0; j < n; j++)
        for (int i = 0; i < DEPTH; i++) out[j * DEPTH + i] = t[j][i];
    return n;
}

void em_gelu(const long long *x, long long *y, int n, int d_hidden) {
    for (int i = 0; i < n; i++) y[i] = out_(gelu(in_<gelu_in_t>(x, i), d_hidden));
}

void em_softmax(int gate, const long long *s, long long *p, int rows, int n, const long long *start) {
    for (int r = 0; r < rows; r++) {
        if (gate) {
            gate_logit_t sb[SM_MAX_LEN];
            gate_score_t pb[SM_MAX_LEN];
            IN_ARRAY(gate_logit_t, sb, s + r * n, n);
            softmax_row(sb, pb, n, int(start[r]));
            OUT_ARRAY(p + r * n, pb, n);
        } else {
            score_t sb[SM_MAX_LEN];
            prob_t pb[SM_MAX_LEN];
            IN_ARRAY(score_t, sb, s + r * n, n);
            softmax_row(sb, pb, n, int(start[r]));
            OUT_ARRAY(p + r * n, pb, n);
        }
    }
}

// the kernel's layernorm_unit: x in g_x, gamma and beta in g_ln (gamma from word 0, beta after it), y from g_lnb
void em_layernorm(const long long *x, const long long *g, const long long *b, long long *y, int n_rows, int d_out) {
    put_raw(g_x, x, long(n_rows) * EMBED);
    put_raw(g_ln, g, EMBED);
    put_raw(g_ln + EMBED / LNP_LANES, b, EMBED);
    layernorm_unit(g_x, 0, g_ln, 0, EMBED / LNP_LANES, g_lnb, 0, n_rows, d_out);
    get_raw(g_lnb, y, long(n_rows) * EMBED);
}

void em_rsqrt(const long long *v, long long *y, long long *k, int n) {
    for (int i = 0; i < n; i++) {
        ap_int<64> ym;
        int kk;
        ln_rsqrt(ap_int<LN_V_BITS>(v[i]), ym, kk);
        y[i] = ym.to_int64();
        k[i] = kk;
    }
}

// the kernel's linear_engine.  mode: ENG_QKV qkv_t (bias qkv_b), ENG_ACT act_t, ENG_GELU GELU,
// ENG_SCATTER act_t(score * y) into each scatter row's slot, added to y here as the residual unit adds slots.
// The source: g_lnb for in_dim == EMBED (g_att for ENG_ACT), else g_hid.  Returns 0, or -1 for a
// combination the engine does not run (another mode, gather and scatter at once, qkv with another bias).
int em_linear(int mode, int bias_kind, const long long *x, int n_x_rows, int gather_en,
              const long long *gidx, const long long *w, const long long *bias, long long *y,
              int n_y_rows, const long long *sidx, const long long *score, int n_rows, int in_dim,
              int out_dim, int d_x, int d_w, int d_y) {
    if (mode != ENG_QKV && mode != ENG_ACT && mode != ENG_GELU && mode != ENG_SCATTER) return -1;
    if ((gather_en && mode == ENG_SCATTER) || ((mode == ENG_QKV) != (bias_kind == %(BIAS_QKV)d))) return -1;
    IN_ARRAY(w_t, g_w, w, out_dim * in_dim);
    pack_tiles(g_w, out_dim, in_dim, g_wt);
    int src;
    if (in_dim == EMBED && mode == ENG_ACT) {
        put_raw(g_att, x, long(n_x_rows) * in_dim);
        src = ENG_SRC_ATT;
    } else if (in_dim == EMBED) {
        put_raw(g_lnb, x, long(n_x_rows) * in_dim);
        src = ENG_SRC_LNB;
    } else {
        put_raw(g_hid, x, long(n_x_rows) * in_dim);
        src = ENG_SRC_HID;
    }
    for (int i = 0; i < n_rows; i++) {
        g_qtok[i] = gather_en ? tok_idx_t(gidx[i]) : mode == ENG_SCATTER ? tok_idx_t(sidx[i]) : tok_idx_t(0);
        g_qslot[i] = 0;
        g_qscore[i] = mode == ENG_SCATTER ? in_<gate_score_t>(score, i) : gate_score_t(0);
    }
    if (bias_kind == %(BIAS_QKV)d) {
        put_raw(g_qkv_b, bias, out_dim);
    } else {
        put_raw(g_bias, bias, out_dim);
    }
    run_engine(engine_call(mode, src, n_rows, in_dim, out_dim, 0, 0, 0, 0, d_x + d_w, d_y, gather_en != 0));
    if (mode == ENG_QKV) {
        get_raw(g_qkv, y, long(n_rows) * out_dim);
    } else if (mode == ENG_ACT) {
        get_raw(g_tmp[0], y, long(n_rows) * out_dim);
    } else if (mode == ENG_GELU) {
        get_raw(g_hid, y, long(n_rows) * out_dim);
    } else {
        for (int i = 0; i < n_rows; i++) {
            const long r = long(sidx[i]) * out_dim;
            for (int o = 0; o < out_dim; o++) {
                const act_t sum = in_<act_t>(y, int(r + o)) + at_(g_tmp[0], r + o);
                y[r + o] = out_(sum);
            }
        }
    }
    (void)n_y_rows;
    return 0;
}

void em_attention(const long long *qkv, long long *out, int n_tok, int d_qkv, int d_out, int d_prob) {
    put_raw(g_qkv, qkv, long(n_tok) * QKV_DIM);
    attention_unit(g_qkv, g_att, n_tok, d_qkv, d_out, d_prob);
    get_raw(g_att, out, long(n_tok) * EMBED);
}

// the route after the gate: logits [n_tok][GATE_ROWS] in g_logits -> probs, top-k, queues
static void route_outputs(int n_tok, long long *probs, long long *topk_idx, long long *topk_score,
                          long long *queue_tok, long long *queue_slot, long long *queue_score, long long *queue_len) {
    moe_route_unit(g_logits, n_tok, g_probs, g_topk_idx, g_topk_score, g_qtok, g_qslot, g_qscore, g_qlen, 0,
                   BATCH_ROWS, false);
    get_raw(g_probs, probs, long(n_tok) * NUM_EXPERTS);
    for (int i = 0; i < n_tok * TOP_K; i++) topk_idx[i] = at_(g_topk_idx, i).to_int64();
    get_raw(g_topk_score, topk_score, long(n_tok) * TOP_K);
    for (int e = 0; e < NUM_EXPERTS; e++) {
        queue_len[e] = g_qlen[e].to_int64();
        for (int j = 0; j < int(g_qlen[e]); j++) {
            queue_tok[e * TOKENS + j] = g_qtok[e * BATCH_ROWS + j].to_int64();
            queue_slot[e * TOKENS + j] = g_qslot[e * BATCH_ROWS + j].to_int64();
            queue_score[e * TOKENS + j] = out_(g_qscore[e * BATCH_ROWS + j]);
        }
    }
}

// the gate on the linear engine (wg: [NUM_EXPERTS][EMBED], packed in tile order with zero rows up to
// GATE_ROWS, as codegen/pack.py does), then the route; logits out as the tap: [n_tok][NUM_EXPERTS]
void em_moe_route(const long long *x, const long long *wg, int n_tok, int d_x, int d_gw,
                  long long *logits, long long *probs, long long *topk_idx, long long *topk_score,
                  long long *queue_tok, long long *queue_slot, long long *queue_score, long long *queue_len) {
    static gate_w_t wb[GATE_ROWS * EMBED];
    put_raw(g_lnb, x, long(n_tok) * EMBED);
    for (int i = 0; i < GATE_ROWS * EMBED; i++) wb[i] = i < NUM_EXPERTS * EMBED ? in_<gate_w_t>(wg, i) : gate_w_t(0);
    pack_tiles(wb, GATE_ROWS, EMBED, g_wt);
    run_engine(engine_call(ENG_GATE, ENG_SRC_LNB, n_tok, EMBED, GATE_ROWS, 0, 0, 0, 0, d_x + d_gw, 0));
    route_outputs(n_tok, probs, topk_idx, topk_score, queue_tok, queue_slot, queue_score, queue_len);
    gate_logits_tap(g_logits, g_lgtap, n_tok);
    get_raw(g_lgtap, logits, long(n_tok) * NUM_EXPERTS);
}

// the route alone from given logits [n_tok][NUM_EXPERTS] (the padded rows get junk: never read)
void em_route_logits(const long long *logits, int n_tok, long long *probs, long long *topk_idx,
                     long long *topk_score, long long *queue_tok, long long *queue_slot, long long *queue_score,
                     long long *queue_len) {
    for (int t = 0; t < n_tok; t++)
        for (int e = 0; e < GATE_ROWS; e++)
            at_(g_logits, long(t) * GATE_ROWS + e) = e < NUM_EXPERTS ? in_<gate_logit_t>(logits, t * NUM_EXPERTS + e)
                                                                       : gate_logit_t(100);   // would win top-k if read
    route_outputs(n_tok, probs, topk_idx, topk_score, queue_tok, queue_slot, queue_score, queue_len);
}

// the patch embedding as the top runs it: CLS row, then the engine in ENG_POS mode from g_pix
void em_patch_embed(const long long *pix, const long long *w, const long long *b, const long long *cls,
                    const long long *pos, long long *out, int n_patches) {
    static patch_w_t wb[EMBED * PATCH_DIM];
    put_raw(g_pix, pix, long(n_patches) * PATCH_DIM);
    IN_ARRAY(patch_w_t, wb, w, EMBED * PATCH_DIM);
    pack_tiles(wb, EMBED, PATCH_DIM, g_wt);
    put_raw(g_pe_b, b, EMBED);
    put_raw(g_cls, cls, EMBED);
    put_raw(g_pos, pos, long(n_patches + 1) * EMBED);
    patch_embed_cls(g_x, g_cls, g_pos, 0);
    run_engine(engine_call(ENG_POS, ENG_SRC_PIX, n_patches, PATCH_DIM, EMBED, 0, EMBED / X_LANES, 0, 0, 0, 0));
    get_raw(g_x, out, long(n_patches + 1) * EMBED);
}

// the kernel's residual_unit on n values in chunks of one image (the tail padded): x += y, or with
// score: x = act_t(x + act_t(s * y)) (the scatter's arithmetic, residual_score_mac)
void em_residual(long long *x, const long long *y, int n, const long long *score, int mac) {
    for (int base = 0; base < n; base += ACT_ELEMS) {
        const int m = n - base < ACT_ELEMS ? n - base : ACT_ELEMS;
        if (mac) {
            for (int i = 0; i < m; i++)
                x[base + i] = out_(residual_score_mac(in_<act_t>(x, base + i), in_<gate_score_t>(score, base + i),
                                                      in_<act_t>(y, base + i)));
            continue;
        }
        for (long i = 0; i < ACT_ELEMS; i++) {
            at_(g_x, i) = i < m ? in_<act_t>(x, int(base + i)) : act_t(0);
            at_(g_tmp[0], i) = i < m ? in_<act_t>(y, int(base + i)) : act_t(0);
        }
        residual_unit(g_x, g_tmp, 0, 0, 1);
        get_raw(g_x, x + base, m);
    }
}

// the MoE combination: x += act_t(...(slot 0 + slot 1) ... + slot K-1) over one image (n = TOKENS * EMBED),
// ys: NUM_SLOTS slots of n values; the combined output comes back in comb
void em_residual_slots(long long *x, const long long *ys, long long *comb) {
    put_raw(g_x, x, ACT_ELEMS);
    for (int s = 0; s < NUM_SLOTS; s++) put_raw(g_tmp[s], ys + long(s) * ACT_ELEMS, ACT_ELEMS);
    residual_unit(g_x, g_tmp, 0, 0, NUM_SLOTS);
    get_raw(g_x, x, ACT_ELEMS);
    get_raw(g_tmp[0], comb, ACT_ELEMS);
}

}  // extern "C"
"""


def harness_source(spec, prec, design) -> str:
    from .buffers import declarations
    return HARNESS_CPP % dict(includes="\n".join(f'#include "{h}"' for h in UNIT_HEADERS),
                              BIAS_QKV=BIAS_QKV,
                              delta_names=", ".join(name for name, *_ in DELTA_TABLES),
                              declarations="\n".join(declarations(spec, prec, design)))


_P = ctypes.POINTER(ctypes.c_longlong)


def _arr(a) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(a, dtype=np.int64))


def _ptr(a: np.ndarray):
    return a.ctypes.data_as(_P)


class UnitLib:
    """The compiled units; every method takes and returns numpy int64 arrays of raw codes."""

    def __init__(self, path: Path, spec, prec, design: Design):
        self.path, self.spec, self.prec, self.design = Path(path), spec, prec, design
        self.lib = ctypes.CDLL(str(path))
        out = np.zeros(32, dtype=np.int64)
        n = self.lib.em_sizes(_ptr(out))
        self.sizes = dict(zip(("tokens", "embed", "heads", "head_dim", "mlp_hidden", "num_experts",
                               "expert_hidden", "top_k", "depth", "patch_dim", "engine_in", "engine_out",
                               "attn_rows", "axi_bits", "rescale_span", "max_in_dim", "max_out_dim",
                               "sm_max_len", "slots"), (int(v) for v in out[:n])))
        depth = self.sizes["depth"]
        dl = np.zeros(len(DELTA_TABLES) * depth, dtype=np.int64)
        n = self.lib.em_deltas(_ptr(dl))
        #: the compiled per-block scale offsets, {"D_LN1": [...], ...}
        self.deltas = {name: [int(v) for v in dl[j * depth:(j + 1) * depth]]
                       for j, (name, *_) in enumerate(DELTA_TABLES[:n])}

    def block_deltas(self, block: int) -> dict:
        """The scale offsets of one block: {"D_LN1": d, ...}."""
        return {k: v[block] for k, v in self.deltas.items()}

    @staticmethod
    def _check(what: str, n: int, limit: int):
        if n > limit:
            raise EdgeMoeError(f"{what} {n} exceeds the compiled bound {limit}")

    def gelu(self, x, d_hidden: int = 0) -> np.ndarray:
        x = _arr(x)
        y = np.zeros_like(x)
        self.lib.em_gelu(_ptr(x), _ptr(y), ctypes.c_int(x.size), ctypes.c_int(d_hidden))
        return y

    def softmax(self, scores, start=None, gate: bool = False) -> np.ndarray:
        """scores [rows, n] (score_t, or gate_logit_t with ``gate``) -> probabilities (raw)."""
        s = _arr(scores)
        rows, n = s.shape
        if n > self.sizes["sm_max_len"]:
            raise EdgeMoeError(f"softmax row of {n} > SM_MAX_LEN {self.sizes['sm_max_len']}")
        st = _arr(np.zeros(rows) if start is None else np.broadcast_to(start, (rows,)))
        p = np.zeros_like(s)
        self.lib.em_softmax(ctypes.c_int(int(gate)), _ptr(s), _ptr(p), ctypes.c_int(rows), ctypes.c_int(n), _ptr(st))
        return p

    def layernorm(self, x, gamma, beta, d_out: int = 0) -> np.ndarray:
        x = _arr(x)
        self._check("layernorm rows", x.shape[0], self.sizes["tokens"])
        y = np.zeros_like(x)
        self.lib.em_layernorm(_ptr(x), _ptr(_arr(gamma)), _ptr(_arr(beta)), _ptr(y),
                              ctypes.c_int(x.shape[0]), ctypes.c_int(d_out))
        return y

    def rsqrt(self, v):
        v = _arr(v)
        y, k = np.zeros_like(v), np.zeros_like(v)
        self.lib.em_rsqrt(_ptr(v), _ptr(y), _ptr(k), ctypes.c_int(v.size))
        return y, k

    def linear(self, kind: int, x, w, bias, *, bias_kind: int = BIAS_B, gather=None, scatter=None,
               score=None, y_in=None, d_x: int = 0, d_w: int = 0, d_y: int = 0) -> np.ndarray:
        x, w, bias = _arr(x), _arr(w), _arr(bias)
        out_dim, in_dim = w.shape
        self._check("linear rows", x.shape[0], self.sizes["tokens"])
        self._check("linear in_dim", in_dim, max(self.sizes["max_in_dim"], self.sizes["patch_dim"]))
        self._check("linear out_dim", out_dim, self.sizes["max_out_dim"])
        n_rows = len(gather) if gather is not None else (len(scatter) if scatter is not None else x.shape[0])
        g = _arr(gather if gather is not None else np.zeros(n_rows))
        if kind == LIN_SCATTER:
            y = _arr(y_in).copy()
            s_idx, sc = _arr(scatter), _arr(score)
        else:
            y = np.zeros((n_rows, out_dim), dtype=np.int64)
            s_idx = sc = _arr(np.zeros(n_rows))
        rc = self.lib.em_linear(ctypes.c_int(kind), ctypes.c_int(bias_kind), _ptr(x), ctypes.c_int(x.shape[0]),
                                ctypes.c_int(int(gather is not None)), _ptr(g), _ptr(w), _ptr(bias), _ptr(y),
                                ctypes.c_int(y.shape[0]), _ptr(s_idx), _ptr(sc), ctypes.c_int(n_rows),
                                ctypes.c_int(in_dim), ctypes.c_int(out_dim), ctypes.c_int(d_x), ctypes.c_int(d_w),
                                ctypes.c_int(d_y))
        if rc != 0:
            raise EdgeMoeError("linear: kind is LIN_QKV, LIN_ACT, LIN_GELU or LIN_SCATTER (the engine's modes); the "
                               "engine runs gather or scatter (not both in one call), and qkv with the qkv bias only")
        return y

    def attention(self, qkv, d_qkv: int = 0, d_out: int = 0, d_prob: int = 0) -> np.ndarray:
        qkv = _arr(qkv)
        t = qkv.shape[0]
        self._check("attention tokens", t, self.sizes["tokens"])
        out = np.zeros((t, self.sizes["embed"]), dtype=np.int64)
        self.lib.em_attention(_ptr(qkv), _ptr(out), ctypes.c_int(t), ctypes.c_int(d_qkv), ctypes.c_int(d_out),
                              ctypes.c_int(d_prob))
        return out

    def _route_out(self, t: int) -> dict:
        e, k, T = self.sizes["num_experts"], self.sizes["top_k"], self.sizes["tokens"]
        return dict(logits=np.zeros((t, e), np.int64), probs=np.zeros((t, e), np.int64),
                    topk_idx=np.zeros((t, k), np.int64), topk_score=np.zeros((t, k), np.int64),
                    queue_tok=np.zeros((e, T), np.int64), queue_slot=np.zeros((e, T), np.int64),
                    queue_score=np.zeros((e, T), np.int64), queue_len=np.zeros(e, np.int64))

    @staticmethod
    def _route_queues(r: dict) -> dict:
        r["queues"] = [(r["queue_tok"][i, :r["queue_len"][i]], r["queue_score"][i, :r["queue_len"][i]])
                       for i in range(len(r["queue_len"]))]
        return r

    _ROUTE_OUT = ("probs", "topk_idx", "topk_score", "queue_tok", "queue_slot", "queue_score", "queue_len")

    def moe_route(self, x, w_gate, d_x: int = 0, d_gw: int = 0) -> dict:
        """The gate on the linear engine, then the route: x [t][embed], w_gate [experts][embed]."""
        x, wg = _arr(x), _arr(w_gate)
        t = x.shape[0]
        self._check("route tokens", t, self.sizes["tokens"])
        r = self._route_out(t)
        self.lib.em_moe_route(_ptr(x), _ptr(wg), ctypes.c_int(t), ctypes.c_int(d_x), ctypes.c_int(d_gw),
                              _ptr(r["logits"]), *(_ptr(r[n]) for n in self._ROUTE_OUT))
        return self._route_queues(r)

    def route_logits(self, logits) -> dict:
        """The route alone (softmax, top-k, queues) from gate logits [t][experts] (raw gate_logit_t)."""
        lg = _arr(logits)
        t = lg.shape[0]
        self._check("route tokens", t, self.sizes["tokens"])
        r = self._route_out(t)
        r["logits"] = lg.copy()
        self.lib.em_route_logits(_ptr(lg), ctypes.c_int(t), *(_ptr(r[n]) for n in self._ROUTE_OUT))
        return self._route_queues(r)

    def patch_embed(self, pixels, w, b, cls, pos) -> np.ndarray:
        pix = _arr(pixels)
        p = pix.shape[0]
        out = np.zeros((p + 1, self.sizes["embed"]), dtype=np.int64)
        self.lib.em_patch_embed(_ptr(pix), _ptr(_arr(w)), _ptr(_arr(b)), _ptr(_arr(cls)), _ptr(_arr(pos)),
                                _ptr(out), ctypes.c_int(p))
        return out

    def residual_slots(self, x, ys):
        """The MoE combination of one image: (x + combined, combined), ys: [slots][tokens * embed]."""
        x = _arr(x).copy()
        ys = _arr(ys)
        n = self.sizes["tokens"] * self.sizes["embed"]
        if x.size != n or ys.shape != (self.sizes["slots"], n):
            raise EdgeMoeError(f"residual_slots: x of {n} values and {self.sizes['slots']} slots of {n} values")
        comb = np.zeros(n, np.int64)
        self.lib.em_residual_slots(_ptr(x), _ptr(ys), _ptr(comb))
        return x, comb

    def residual(self, x, y, score=None) -> np.ndarray:
        x = _arr(x).copy()
        y = _arr(y)
        sc = _arr(score if score is not None else np.zeros(x.size))
        self.lib.em_residual(_ptr(x), _ptr(y), ctypes.c_int(x.size), _ptr(sc), ctypes.c_int(score is not None))
        return x


def build_unit_library(spec, prec, design: Design | None = None, out_dir=None) -> UnitLib:
    """Render the config, write the harness, compile (cached by content hash) and load it."""
    import tempfile
    design = design or get_design(DEFAULT_DESIGN)
    config = render_config(spec, prec, design)
    src = harness_source(spec, prec, design)
    headers = "".join((INCLUDE_DIR / h).read_text() for h in ("edgemoe_fixed.h", "edgemoe_mem.h", "edgemoe_probe.h",
                                                              "pack2.h") + UNIT_HEADERS)
    key = hashlib.sha256((config + src + headers + " ".join(CXX_FLAGS)).encode()).hexdigest()[:16]
    out_dir = Path(out_dir) if out_dir is not None else Path(tempfile.gettempdir()) / "edgemoe_units"
    build = out_dir / f"units_{prec.name}_{key}"
    build.mkdir(parents=True, exist_ok=True)
    (build / CONFIG_NAME).write_text(config)
    (build / "harness.cpp").write_text(src)
    lib = build / "libedgemoe_units.so"
    if not lib.is_file():
        compile_cpp(build / "harness.cpp", build / "libedgemoe_units.tmp.so", flags=CXX_FLAGS,
                    include_dirs=[build, INCLUDE_DIR], shared=True)
        (build / "libedgemoe_units.tmp.so").rename(lib)
    return UnitLib(lib, spec, prec, design)


__all__ = ["build_unit_library", "UnitLib", "harness_source", "UNIT_HEADERS", "CXX_FLAGS",
           "LIN_QKV", "LIN_ACT", "LIN_GELU", "LIN_SCATTER", "BIAS_QKV", "BIAS_B"]
