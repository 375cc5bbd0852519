// linear.h -- the unified compute unit: y = x W^T + b on an ENGINE_IN x ENGINE_OUT MAC engine.
// Mirrors edgemoe.golden.units.linear.linear_fixed (and the expert path of fixed_model._moe).
//
// Dataflow per output tile of ENGINE_OUT columns: the accumulators of every row start at the bias
// (cast to the exact accumulator), then for each ENGINE_IN-wide input tile the ENGINE_OUT x
// ENGINE_IN weight tile is used from one half of a ping/pong buffer while the next tile is loaded
// into the other; every row (read directly, or gathered by token index) adds its products; the
// write stage casts the accumulators (plain, through the fused GELU, or scattered to token rows
// as out += score * y).  Accumulators are exact (F = F(x) + F(w)) and wrap, so the result does not
// depend on the tiling.
//
// Call signature (one template instance per output kind; the MAC core `engine_tile` is shared):
//   template <int MODE, class OUT_T, class BIAS_T, class WP>
//   void linear_unit(const lin_in_t *x, bool gather_en, const tok_idx_t *gather,
//                    WP w, const BIAS_T *bias, OUT_T *y,
//                    const tok_idx_t *scatter, const gate_score_t *score,
//                    int n_rows, int in_dim, int out_dim, int d_x, int d_w, int d_y);
//   MODE LIN_PLAIN:   y[t][o] = OUT_T(acc)                   (OUT_T = qkv_t: d_y = D_QKV; act_t: d_y = 0)
//   MODE LIN_GELU:    y[t][o] = gelu(gelu_in_t(acc), d_y)    (OUT_T = hidden_t, d_y = D_HIDDEN)
//   MODE LIN_SCATTER: y[scatter[t]][o] = act_t(y[..] + act_t(score[t] * act_t(acc)))  (OUT_T = act_t)
//   x: [*][in_dim] (row t or row gather[t]); w: [out_dim][in_dim] (PyTorch layout), a w_t pointer or
//   a packed_ptr<w_t> reading AXI words (the top kernel's weight port); bias: [out_dim]
//   (qkv_b_t for qkv, b_t otherwise); y: [*][out_dim]; in_dim % ENGINE_IN == 0, out_dim % ENGINE_OUT == 0,
//   n_rows <= MAX_ROWS.  d_x / d_w / d_y: fraction-bit offsets of x, w and y (D_* tables).
#ifndef EDGEMOE_LINEAR_H
#define EDGEMOE_LINEAR_H

#include "edgemoe_fixed.h"
#include "gelu.h"

enum { LIN_PLAIN = 0, LIN_GELU = 1, LIN_SCATTER = 2 };

// load one ENGINE_OUT x ENGINE_IN weight tile (rows o0.., columns i0..) of a [*][ld] matrix;
// WP: a plain pointer or a packed_ptr<W_T> into AXI words (edgemoe_fixed.h)
template <class WP, class W_T>
void engine_load_tile(const WP w, int ld, int o0, int i0, W_T tile[ENGINE_OUT][ENGINE_IN]) {
#pragma HLS INLINE off
load_rows:
    for (int o = 0; o < ENGINE_OUT; o++) {
    load_cols:
        for (int i = 0; i < ENGINE_IN; i++) {
#pragma HLS PIPELINE II=1
            tile[o][i] = w[(o0 + o) * ld + i0 + i];
        }
    }
}

// the MAC array: every row adds x[row][i0 .. i0+ENGINE_IN) . tile^T to its ENGINE_OUT accumulators
// (XP: a plain input pointer or a packed_ptr, e.g. the pixels of the patch embedding).
// The accumulator is exact (F(ACC) = F(x) + F(w)), so the MACs work on the raw integer codes: each
// output adds the exact sum of its ENGINE_IN products (an adder tree) to its wrapping accumulator,
// which is the same value as adding the products one by one.
template <class XP, class W_T, class ACC_T>
void engine_tile(ACC_T acc[MAX_ROWS][ENGINE_OUT], const XP x, int ld_x, int i0,
                 bool gather_en, const tok_idx_t *gather, const W_T tile[ENGINE_OUT][ENGINE_IN],
                 int n_rows) {
#pragma HLS INLINE off
    typedef typename ptr_elem<XP>::type IN_T;
    typedef fx_info<IN_T> xi;
    typedef fx_info<W_T> wi;
    typedef fx_info<ACC_T> ai;
    static_assert(ai::F == xi::F + wi::F, "the linear engine's accumulator must hold every product exactly");
    static const int PSUM_W = xi::W + wi::W + 2 + clog2<ENGINE_IN>::value;
    typedef typename mac_int<PSUM_W>::type psum_t;                 // exact sum of ENGINE_IN products
    typedef typename mac_int<xi::W + 1>::type xr_t;                // raw x, sign- or zero-extended
    typedef typename mac_int<wi::W + 1>::type wr_t;                // raw w
    typedef ap_int<ai::W> accr_t;
    wr_t wr[ENGINE_OUT][ENGINE_IN];
#pragma HLS ARRAY_PARTITION variable=wr complete dim=0
engine_wraw:
    for (int o = 0; o < ENGINE_OUT; o++) {
    engine_wraw_cols:
        for (int i = 0; i < ENGINE_IN; i++) {
            wr[o][i] = wr_t(fx_raw(tile[o][i]));
        }
    }
engine_rows:
    for (int t = 0; t < n_rows; t++) {
#pragma HLS loop_tripcount min=1 max=MAX_ROWS
#pragma HLS PIPELINE II=1
        int src = gather_en ? int(gather[t]) : t;
        xr_t xv[ENGINE_IN];
#pragma HLS ARRAY_PARTITION variable=xv complete
    engine_read:
        for (int i = 0; i < ENGINE_IN; i++) {
            xv[i] = xr_t(fx_raw(x[src * ld_x + i0 + i]));
        }
    engine_out:
        for (int o = 0; o < ENGINE_OUT; o++) {
            psum_t s = 0;
        engine_in:
            for (int i = 0; i < ENGINE_IN; i++) {
                s += xv[i] * wr[o][i];
            }
            accr_t a = fx_raw(acc[t][o]);
            a += accr_t(s);                           // wraps at the accumulator's width
            acc[t][o] = fx_from_raw<ACC_T>(a);
        }
    }
}

// one output tile: bias into the accumulators, then all input tiles with ping/pong weight tiles
template <class XP, class WP, class ACC_T, class BIAS_T>
void engine_column(ACC_T acc[MAX_ROWS][ENGINE_OUT], const XP x, bool gather_en,
                   const tok_idx_t *gather, const WP w, const BIAS_T *bias, int o0,
                   int n_rows, int in_dim, int bias_delta) {
    typedef typename ptr_elem<WP>::type W_T;
    W_T wbuf[2][ENGINE_OUT][ENGINE_IN];
#pragma HLS ARRAY_PARTITION variable=wbuf complete dim=2
#pragma HLS ARRAY_PARTITION variable=wbuf complete dim=3
bias_rows:
    for (int t = 0; t < n_rows; t++) {
#pragma HLS loop_tripcount min=1 max=MAX_ROWS
#pragma HLS PIPELINE II=1
    bias_cols:
        for (int o = 0; o < ENGINE_OUT; o++) {
            acc[t][o] = rescale<ACC_T>(bias[o0 + o], bias_delta);
        }
    }
    const int n_it = in_dim / ENGINE_IN;
    engine_load_tile(w, in_dim, o0, 0, wbuf[0]);
in_tiles:
    for (int it = 0; it < n_it; it++) {
#pragma HLS loop_tripcount min=1 max=MAX_IN_TILES
        if (it + 1 < n_it) engine_load_tile(w, in_dim, o0, (it + 1) * ENGINE_IN, wbuf[(it + 1) & 1]);
        engine_tile(acc, x, in_dim, it * ENGINE_IN, gather_en, gather, wbuf[it & 1], n_rows);
    }
}

template <int MODE, class OUT_T, class BIAS_T, class WP>
void linear_unit(const lin_in_t *x, bool gather_en, const tok_idx_t *gather, const WP w,
                 const BIAS_T *bias, OUT_T *y, const tok_idx_t *scatter, const gate_score_t *score,
                 int n_rows, int in_dim, int out_dim, int d_x, int d_w, int d_y) {
    acc_t acc[MAX_ROWS][ENGINE_OUT];
#pragma HLS ARRAY_PARTITION variable=acc complete dim=2
    const int d_acc = d_x + d_w;     // fraction-bit offset of the accumulator
    const int n_ot = out_dim / ENGINE_OUT;
out_tiles:
    for (int ot = 0; ot < n_ot; ot++) {
#pragma HLS loop_tripcount min=1 max=MAX_OUT_TILES
        const int o0 = ot * ENGINE_OUT;
        engine_column(acc, x, gather_en, gather, w, bias, o0, n_rows, in_dim, -d_acc);
    write_rows:
        for (int t = 0; t < n_rows; t++) {
#pragma HLS loop_tripcount min=1 max=MAX_ROWS
        write_cols:
            for (int o = 0; o < ENGINE_OUT; o++) {
#pragma HLS PIPELINE II=1
                const acc_t a = acc[t][o];
                if (MODE == LIN_PLAIN) {
                    y[t * out_dim + o0 + o] = rescale<OUT_T>(a, d_acc - d_y);
                } else if (MODE == LIN_GELU) {
                    y[t * out_dim + o0 + o] = gelu(rescale<gelu_in_t>(a, d_acc), d_y);
                } else {
                    const int dst = int(scatter[t]) * out_dim + o0 + o;
                    act_t yv = rescale<act_t>(a, d_acc);
                    act_t c = score[t] * yv;
                    y[dst] = y[dst] + c;
                }
            }
        }
    }
}

#endif  // EDGEMOE_LINEAR_H
