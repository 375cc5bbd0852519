// attention.h -- reordered attention unit: Q.K^T, single-pass softmax, A.V for all heads.
// Mirrors edgemoe.golden.units.attention.attention_fixed bit for bit.
//
// Per group of ATTN_ROWS query rows (kept on chip):
//   1. Q.K^T: each K row is read once per group (all heads at once); for every head and row the
//      exact dot product (qk_acc_t) is cast to score_t, then multiplied by the scale (score_t).
//      The group's scores stay on chip (HEADS x ATTN_ROWS x TOKENS).
//   2. single-pass softmax, skewed: row r of the group visits keys (r mod ATTN_ROWS + c) mod T,
//      c = 0 .. T-1 (each row starts at a different key and wraps); keeps (m, 1/S) per row.
//   3. A.V: each V row is read once per group; p = exp(s - m) * (1/S) on the fly; exact
//      accumulation (av_acc_t), so the order of the keys does not matter; cast to attn_out_t.
//
// Call signature:
//   void attention_unit(const qkv_t *q, const qkv_t *k, const qkv_t *v, int ld,
//                       attn_out_t *out, int n_tok, int d_qkv, int d_out, int d_prob = 0);
//   q/k/v: row t at q[t * ld], heads concatenated (head h at columns h*HEAD_DIM ..); with the qkv
//   linear output [T][QKV_DIM]: q = qkv, k = qkv + EMBED, v = qkv + 2*EMBED, ld = QKV_DIM.
//   out: [n_tok][EMBED]; n_tok <= TOKENS; d_qkv = D_QKV[block], d_out = D_ATTN_OUT[block],
//   d_prob = D_PROB[block] (the calibrated probability type's fraction-bit offset).
#ifndef EDGEMOE_ATTENTION_H
#define EDGEMOE_ATTENTION_H

#include "edgemoe_fixed.h"
#include "softmax.h"

inline void attention_unit(const qkv_t *q, const qkv_t *k, const qkv_t *v, int ld, attn_out_t *out,
                           int n_tok, int d_qkv, int d_out, int d_prob = 0) {
    qkv_t qbuf[ATTN_ROWS][EMBED];
    score_t sbuf[HEADS][ATTN_ROWS][TOKENS];
    score_t m[HEADS][ATTN_ROWS];
    sm_sum_t ssum[HEADS][ATTN_ROWS];
    recip_t rcp[HEADS][ATTN_ROWS];
    av_acc_t oacc[ATTN_ROWS][EMBED];
    qkv_t kv[EMBED];
#pragma HLS ARRAY_PARTITION variable=qbuf complete dim=1
#pragma HLS ARRAY_PARTITION variable=sbuf complete dim=1
#pragma HLS ARRAY_PARTITION variable=sbuf complete dim=2
#pragma HLS ARRAY_PARTITION variable=m complete dim=0
#pragma HLS ARRAY_PARTITION variable=ssum complete dim=0
#pragma HLS ARRAY_PARTITION variable=rcp complete dim=0
#pragma HLS ARRAY_PARTITION variable=oacc complete dim=1
    const scale_t scale = fx_from_raw<scale_t>(ap_uint<fx_info<scale_t>::W>(SCALE_RAW));
groups:
    for (int r0 = 0; r0 < n_tok; r0 += ATTN_ROWS) {
#pragma HLS loop_tripcount min=1 max=ATTN_GROUPS
    load_q:
        for (int o = 0; o < ATTN_ROWS; o++) {
        load_q_cols:
            for (int c = 0; c < EMBED; c++) {
#pragma HLS PIPELINE II=1
                qbuf[o][c] = (r0 + o < n_tok) ? q[(r0 + o) * ld + c] : qkv_t(0);
            }
        }
        // 1. Q.K^T, one K row per step, all heads and rows of the group
    qk_keys:
        for (int j = 0; j < n_tok; j++) {
#pragma HLS loop_tripcount min=1 max=TOKENS
        qk_load:
            for (int c = 0; c < EMBED; c++) {
#pragma HLS PIPELINE II=1
                kv[c] = k[j * ld + c];
            }
        qk_heads:
            for (int h = 0; h < HEADS; h++) {
            qk_rows:
                for (int o = 0; o < ATTN_ROWS; o++) {
#pragma HLS PIPELINE II=1
                    qk_acc_t a = 0;
                qk_dot:
                    for (int c = 0; c < HEAD_DIM; c++) {
                        a += qbuf[o][h * HEAD_DIM + c] * kv[h * HEAD_DIM + c];
                    }
                    score_t raw = rescale<score_t>(a, 2 * d_qkv);
                    sbuf[h][o][j] = raw * scale;
                }
            }
        }
        // 2. single-pass softmax in the skewed order
    sm_keys:
        for (int c = 0; c < n_tok; c++) {
#pragma HLS loop_tripcount min=1 max=TOKENS
#pragma HLS PIPELINE II=1
        sm_heads:
            for (int h = 0; h < HEADS; h++) {
            sm_rows:
                for (int o = 0; o < ATTN_ROWS; o++) {
                    if (r0 + o < n_tok) {
                        int j = o + c;               // start key o = (r0 + o) mod ATTN_ROWS
                        if (j >= n_tok) j -= n_tok;
                        if (c == 0) {
                            sm_init(sbuf[h][o][j], m[h][o], ssum[h][o]);
                        } else {
                            sm_update(sbuf[h][o][j], m[h][o], ssum[h][o]);
                        }
                    }
                }
            }
        }
    sm_recips:
        for (int h = 0; h < HEADS; h++) {
        sm_recip_rows:
            for (int o = 0; o < ATTN_ROWS; o++) {
#pragma HLS PIPELINE II=1
                rcp[h][o] = sm_recip(ssum[h][o]);
            }
        }
        // 3. A.V, one V row per step
    av_init:
        for (int o = 0; o < ATTN_ROWS; o++) {
        av_init_cols:
            for (int c = 0; c < EMBED; c++) {
#pragma HLS PIPELINE II=1
                oacc[o][c] = 0;
            }
        }
    av_keys:
        for (int j = 0; j < n_tok; j++) {
#pragma HLS loop_tripcount min=1 max=TOKENS
        av_load:
            for (int c = 0; c < EMBED; c++) {
#pragma HLS PIPELINE II=1
                kv[c] = v[j * ld + c];
            }
        av_heads:
            for (int h = 0; h < HEADS; h++) {
            av_rows:
                for (int o = 0; o < ATTN_ROWS; o++) {
#pragma HLS PIPELINE II=1
                    prob_t p = sm_prob_scaled<prob_t>(sbuf[h][o][j], m[h][o], rcp[h][o], d_prob);
                av_cols:
                    for (int c = 0; c < HEAD_DIM; c++) {
                        oacc[o][h * HEAD_DIM + c] += p * kv[h * HEAD_DIM + c];
                    }
                }
            }
        }
    av_write:
        for (int o = 0; o < ATTN_ROWS; o++) {
        av_write_cols:
            for (int c = 0; c < EMBED; c++) {
#pragma HLS PIPELINE II=1
                if (r0 + o < n_tok) out[(r0 + o) * EMBED + c] = rescale<attn_out_t>(oacc[o][c], d_qkv + d_prob - d_out);
            }
        }
    }
}

#endif  // EDGEMOE_ATTENTION_H
