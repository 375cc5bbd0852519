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
//   template <int MODE, class OUT_T, class BIAS_T>
//   void linear_unit(const lin_in_t *x, bool gather_en, const tok_idx_t *gather,
//                    const w_t *w, const BIAS_T *bias, OUT_T *y,
//                    const tok_idx_t *scatter, const gate_score_t *score,
//                    int n_rows, int in_dim, int out_dim, int d_x, int d_w, int d_y);
//   MODE LIN_PLAIN:   y[t][o] = OUT_T(acc)                   (OUT_T = qkv_t: d_y = D_QKV; act_t: d_y = 0)
//   MODE LIN_GELU:    y[t][o] = gelu(gelu_in_t(acc), d_y)    (OUT_T = hidden_t, d_y = D_HIDDEN)
//   MODE LIN_SCATTER: y[scatter[t]][o] = act_t(y[..] + act_t(score[t] * act_t(acc)))  (OUT_T = act_t)
//   x: [*][in_dim] (row t or row gather[t]); w: [out_dim][in_dim] (PyTorch layout); bias: [out_dim]
//   (qkv_b_t for qkv, b_t otherwise); y: [*][out_dim]; in_dim % ENGINE_IN == 0, out_dim % ENGINE_OUT == 0,
//   n_rows <= MAX_ROWS.  d_x / d_w / d_y: fraction-bit offsets of x, w and y (D_* tables).
#ifndef EDGEMOE_LINEAR_H
#define EDGEMOE_LINEAR_H

#include "edgemoe_fixed.h"
#include "gelu.h"

enum { LIN_PLAIN = 0, LIN_GELU = 1, LIN_SCATTER = 2 };

// load one ENGINE_OUT x ENGINE_IN weight tile (rows o0.., columns i0..) of a [*][ld] matrix
template <class W_T>
void engine_load_tile(const W_T *w, int ld, int o0, int i0, W_T tile[ENGINE_OUT][ENGINE_IN]) {
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
template <class IN_T, class W_T, class ACC_T>
void engine_tile(ACC_T acc[MAX_ROWS][ENGINE_OUT], const IN_T *x, int ld_x, int i0,
                 bool gather_en, const tok_idx_t *gather, const W_T tile[ENGINE_OUT][ENGINE_IN],
                 int n_rows) {
#pragma HLS INLINE off
engine_rows:
    for (int t = 0; t < n_rows; t++) {
#pragma HLS loop_tripcount min=1 max=MAX_ROWS
#pragma HLS PIPELINE II=1
        int src = gather_en ? int(gather[t]) : t;
        IN_T xv[ENGINE_IN];
#pragma HLS ARRAY_PARTITION variable=xv complete
    engine_read:
        for (int i = 0; i < ENGINE_IN; i++) {
            xv[i] = x[src * ld_x + i0 + i];
        }
    engine_out:
        for (int o = 0; o < ENGINE_OUT; o++) {
            ACC_T a = acc[t][o];
        engine_in:
            for (int i = 0; i < ENGINE_IN; i++) {
                a += xv[i] * tile[o][i];
            }
            acc[t][o] = a;
        }
    }
}

// one output tile: bias into the accumulators, then all input tiles with ping/pong weight tiles
template <class IN_T, class W_T, class ACC_T, class BIAS_T>
void engine_column(ACC_T acc[MAX_ROWS][ENGINE_OUT], const IN_T *x, bool gather_en,
                   const tok_idx_t *gather, const W_T *w, const BIAS_T *bias, int o0,
                   int n_rows, int in_dim, int bias_delta) {
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

template <int MODE, class OUT_T, class BIAS_T>
void linear_unit(const lin_in_t *x, bool gather_en, const tok_idx_t *gather, const w_t *w,
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
