// attention.h -- reordered attention unit: Q.K^T, single-pass softmax, A.V for all heads.
// Mirrors edgemoe.golden.units.attention.attention_fixed bit for bit.
//
// R = ATTN_ROWS query rows are kept on chip per group (groups = ceil(n_tok / R)); K and V are
// streamed once per group, L = ATTN_LANES values (one chunk, inside one head since L divides
// HEAD_DIM) per cycle.  Per group:
//   1. load Q rows, L values per cycle (R * EMBED / L cycles); the A.V accumulators are cleared.
//   2. Q.K^T: for each key j, head h, chunk of L columns: R x L MACs add the chunk's exact sum to
//      the row's qk_acc_t partial sum; on the head's last chunk the sum is cast to qk_t (q.k before
//      the scale: wide enough for peaked attention) and multiplied by the scale into score_t.  Scores stay on chip (HEADS x R x TOKENS).
//   3. single-pass softmax, skewed: row r of the group visits keys (r mod R + c) mod n_tok,
//      c = 0 .. n_tok-1 (each row starts at a different key and wraps), all heads and rows per
//      step; then 1/S, R rows per cycle.
//   4. A.V: for each key j, head h, chunk of L columns: p = exp(s - m) * (1/S) of every row is
//      computed at the head's first chunk, then R x L MACs p * v into the exact av_acc_t
//      accumulators (exact, so the key order does not matter).
//   5. write the rows, L values per cycle, cast to attn_out_t.
// Steps 2 and 4 share one loop nest (attn_kv_pass): n_tok * HEADS * (HEAD_DIM / L) iterations.
// Their R x L products: two rows per DSP48E2 at w8a8 with R even (pack2.h, see attn_qk_sums /
// attn_av_macs below), one product per DSP or more at wider types.
//
// exp ROMs: an exp reads two entries of the 2^f table (both ports of a dual-port ROM), and step 3
// runs HEADS x R exps per step, step 4 R exps per iteration (at a head's first chunk).  So the unit
// keeps EXP2_ATTN_COPIES = HEADS * R copies of the table (ATTN_EXP_ROM, one ROM each after the
// complete partition): softmax unit (h, o) reads copy h * R + o, the A.V row o reads copy o (the two
// steps never overlap).  Cost: HEADS * R x EXP2_TABLE_SIZE x W(exp2_tab_t) bits (w16a32 / w8a8:
// 257 x 24 = 6168 bits per copy; Edge-MoE point HEADS = 3, R = 4: 12 copies, 74016 bits).  No
// port limit is left: step 3 runs at the II of its carried S update, step 4 at II=1.
//
// Call signature:
//   void attention_unit(const qkv_t qkv[QKV_WORDS][QKV_BANKS][QKV_GROUP],
//                       lin_in_t out[ATT_WORDS][ATT_BANKS][ATT_GROUP], int n_tok, int d_qkv, int d_out,
//                       int d_prob = 0);
//   qkv: the qkv linear output, lane words (edgemoe_mem.h), row t = QKV_DIM values: Q at columns
//   0 .., K at EMBED .., V at 2 * EMBED .., heads concatenated (head h at h * HEAD_DIM ..); out:
//   [n_tok][EMBED] lane words; n_tok <= TOKENS; d_qkv = D_QKV[block], d_out = D_ATTN_OUT[block],
//   d_prob = D_PROB[block] (the calibrated probability type's fraction-bit offset).  Every cycle
//   reads ATTN_LANES values of one row (one word) or writes ATTN_LANES values (part of one word).
//   INLINE off: one call site in the top.
#ifndef EDGEMOE_ATTENTION_H
#define EDGEMOE_ATTENTION_H

#include "edgemoe_fixed.h"
#include "edgemoe_mem.h"
#include "pack2.h"
#include "softmax.h"

// iterations of attn_kv_pass between two visits of one accumulator chunk (the same chunk of the
// next key): the true distance of oacc's carried dependence, for every n_tok
#define ATTN_OACC_DIST (EMBED / ATTN_LANES)

// the exp ROM copies (see above), built from the config's table.  File scope with internal linkage,
// like EXP2_TABLE: a function-local static of an inline function would be one object shared by
// every C-sim library loaded into a process, whatever its size.
static_assert(EXP2_ATTN_COPIES == HEADS * ATTN_ROWS, "edgemoe_config.h: one exp ROM per (head, row)");
static const exp2_code_t ATTN_EXP_ROM[EXP2_ATTN_COPIES][EXP2_TABLE_SIZE] = EXP2_ROMS_ATTN_INIT;

// int8 packing (pack2.h): when qkv_t and prob_t are at most 8 bits wide (w8a8) and ATTN_ROWS is even,
// rows 2k and 2k+1 share every K / V value, so one DSP48E2 multiply gives both rows' products:
//   Q.K^T: K (shared, 18-bit port) x q[2k+1] * 2^S + q[2k] (pre-adder); the chunk's ATTN_LANES
//          products run as dot2_long chains (at most 8 s8 x s8 terms each) and are split once.
//   A.V:   V (shared) x p[2k+1] * 2^S + p[2k] (u8 probabilities, pre-adder), one product each (mul2).
// Both give the exact integer products / sums, so the accumulators see the same values.  (Each
// product array packs on its own condition: Q.K^T needs qkv_t, A.V qkv_t and prob_t at most 8 bits.)
// DSPs per MAC: 1/2 packed (ATTN_ROWS * ATTN_LANES / 2 per product array); w16a32: 4 for Q.K^T
// (32 x 32 bits), 2 for A.V (18 x 32 bits).  Depth: the Q.K^T chain adds one DSP stage per term
// (min(ATTN_LANES, 8) + 1 split + the chunk adds, instead of the adder tree's clog2(ATTN_LANES)),
// A.V one split; both paid once per pass, the loop-carried adds are unchanged.

// Q.K^T: ps[o] = the exact sum over the chunk's lanes of q[o][col + l] * k[l]
template <class Q_T, class ACC_T, bool PACK = fx_info<Q_T>::W <= 8 && ATTN_ROWS % 2 == 0>
struct attn_qk_sums {
    static const bool packed = false;
    static void run(const Q_T qbuf[ATTN_ROWS][EMBED], int col, const Q_T x[ATTN_LANES], ACC_T ps[ATTN_ROWS]) {
#pragma HLS INLINE
    qk_rows:
        for (int o = 0; o < ATTN_ROWS; o++) {
            // the accumulator wraps: the exact chunk sum first, then one add per chunk
            ACC_T t = 0;
        qk_lanes:
            for (int l = 0; l < ATTN_LANES; l++) {
                t += qbuf[o][col + l] * x[l];
            }
            ps[o] = t;
        }
    }
};

template <class Q_T, class ACC_T>
struct attn_qk_sums<Q_T, ACC_T, true> {
    static const bool packed = true;
    typedef typename fx_raw_t<Q_T>::type raw_t;
    static const int S = pack2_dsp_shift<raw_t>::value;
    static const int F = 2 * fx_info<Q_T>::F;                    // fraction bits of a product
    static const int SW = 2 * fx_info<Q_T>::W + 2 + clog2<ATTN_LANES>::value;
    typedef ap_fixed<SW, SW - F> sum_fx_t;                        // an exact chunk sum
    static_assert(fx_info<ACC_T>::F >= F, "the Q.K^T accumulator must hold every product exactly");
    static void run(const Q_T qbuf[ATTN_ROWS][EMBED], int col, const Q_T x[ATTN_LANES], ACC_T ps[ATTN_ROWS]) {
#pragma HLS INLINE
        raw_t a[ATTN_LANES];
#pragma HLS ARRAY_PARTITION variable=a complete
    qk_pk_k:
        for (int l = 0; l < ATTN_LANES; l++) {
            a[l] = fx_raw(x[l]);
        }
    qk_pk_pairs:
        for (int k = 0; k < ATTN_ROWS / 2; k++) {
            raw_t b0[ATTN_LANES], b1[ATTN_LANES];
#pragma HLS ARRAY_PARTITION variable=b0 complete
#pragma HLS ARRAY_PARTITION variable=b1 complete
        qk_pk_q:
            for (int l = 0; l < ATTN_LANES; l++) {
                b0[l] = fx_raw(qbuf[2 * k][col + l]);
                b1[l] = fx_raw(qbuf[2 * k + 1][col + l]);
            }
            ap_int<SW> s0, s1;
            dot2_long<ATTN_LANES, S, PACK2_BIAS>(a, b0, b1, s0, s1);
            ps[2 * k] = ACC_T(fx_from_raw<sum_fx_t>(s0));   // the same cast as the plain sum's
            ps[2 * k + 1] = ACC_T(fx_from_raw<sum_fx_t>(s1));
        }
    }
};

// A.V: oacc[o][col + l] += p[o] * v[l]
template <class P_T, class V_T, class ACC_T,
          bool PACK = fx_info<P_T>::W <= 8 && fx_info<V_T>::W <= 8 && ATTN_ROWS % 2 == 0>
struct attn_av_macs {
    static const bool packed = false;
    static void run(const P_T p[ATTN_ROWS], const V_T x[ATTN_LANES], int col, ACC_T oacc[ATTN_ROWS][EMBED]) {
#pragma HLS INLINE
    av_rows:
        for (int o = 0; o < ATTN_ROWS; o++) {
        av_lanes:
            for (int l = 0; l < ATTN_LANES; l++) {
                oacc[o][col + l] += p[o] * x[l];
            }
        }
    }
};

template <class P_T, class V_T, class ACC_T>
struct attn_av_macs<P_T, V_T, ACC_T, true> {
    static const bool packed = true;
    typedef typename fx_raw_t<V_T>::type v_raw_t;
    typedef typename fx_raw_t<P_T>::type p_raw_t;
    static const int S = pack2_dsp_shift<p_raw_t>::value;
    static const int F = fx_info<P_T>::F + fx_info<V_T>::F;      // fraction bits of a product
    static const int PW = fx_info<P_T>::W + fx_info<V_T>::W + 1;
    typedef ap_fixed<PW, PW - F> prod_fx_t;                       // an exact product
    static_assert(fx_info<ACC_T>::F >= F, "the A.V accumulator must hold every product exactly");
    static void run(const P_T p[ATTN_ROWS], const V_T x[ATTN_LANES], int col, ACC_T oacc[ATTN_ROWS][EMBED]) {
#pragma HLS INLINE
    av_pk_pairs:
        for (int k = 0; k < ATTN_ROWS / 2; k++) {
            const p_raw_t p0 = fx_raw(p[2 * k]), p1 = fx_raw(p[2 * k + 1]);
        av_pk_lanes:
            for (int l = 0; l < ATTN_LANES; l++) {
                ap_int<PW> r0, r1;
                mul2<S>(v_raw_t(fx_raw(x[l])), p0, p1, r0, r1);
                oacc[2 * k][col + l] += fx_from_raw<prod_fx_t>(r0);
                oacc[2 * k + 1][col + l] += fx_from_raw<prod_fx_t>(r1);
            }
        }
    }
};

// one pass over K (AV = false: Q.K^T into sbuf) or V (AV = true: A.V into oacc) for a group of
// rows; n_valid = rows of the group that exist (the others get no probability mass)
// ATTN_LANES values of row t of qkv from column col (one word, the lanes picked in registers)
inline void attn_read(const qkv_t qkv[QKV_WORDS][QKV_BANKS][QKV_GROUP], int t, int col, qkv_t v[ATTN_LANES]) {
#pragma HLS INLINE
    lw_get<ATTN_LANES>(qkv, t * (QKV_DIM / QKV_LANES), col, v);
}

template <bool AV>
void attn_kv_pass(const qkv_t qkv[QKV_WORDS][QKV_BANKS][QKV_GROUP], int base, int n_tok, int n_valid,
                  const qkv_t qbuf[ATTN_ROWS][EMBED], score_t sbuf[HEADS][ATTN_ROWS][TOKENS],
                  const score_t m[HEADS][ATTN_ROWS], const recip_t rcp[HEADS][ATTN_ROWS],
                  av_acc_t oacc[ATTN_ROWS][EMBED], scale_t scale, int d_qkv, int d_prob) {
#pragma HLS INLINE
    const int CHUNKS = HEAD_DIM / ATTN_LANES;   // chunks per head
    qk_acc_t qacc[ATTN_ROWS];                   // the current head's partial sums (Q.K^T)
    prob_t p[ATTN_ROWS];                        // the current head's probabilities (A.V)
#pragma HLS ARRAY_PARTITION variable=qacc complete
#pragma HLS ARRAY_PARTITION variable=p complete
kv_keys:
    for (int j = 0; j < n_tok; j++) {
#pragma HLS loop_tripcount min=1 max=TOKENS
    kv_heads:
        for (int h = 0; h < HEADS; h++) {
        kv_chunks:
            for (int cc = 0; cc < CHUNKS; cc++) {
#pragma HLS PIPELINE II=1
// an accumulator chunk comes back EMBED / ATTN_LANES iterations later (the next key): that distance
#pragma HLS DEPENDENCE variable=oacc inter RAW distance=ATTN_OACC_DIST true
                EM_ITER("kv_chunks", j * (EMBED / ATTN_LANES) + h * CHUNKS + cc);
                const int col = h * HEAD_DIM + cc * ATTN_LANES;
                qkv_t x[ATTN_LANES];
#pragma HLS ARRAY_PARTITION variable=x complete
                attn_read(qkv, j, base + col, x);
                if (!AV) {
                    // exact sum of each row's chunk products first, so that the loop-carried
                    // dependence is a single add (the accumulator wraps: order is free)
                    qk_acc_t ps[ATTN_ROWS];
#pragma HLS ARRAY_PARTITION variable=ps complete
                    attn_qk_sums<qkv_t, qk_acc_t>::run(qbuf, col, x, ps);
                kv_rows:
                    for (int o = 0; o < ATTN_ROWS; o++) {
                        qk_acc_t a = (cc == 0 ? qk_acc_t(0) : qacc[o]) + ps[o];
                        qacc[o] = a;
                        if (cc == CHUNKS - 1) {
                            qk_t raw = rescale<qk_t>(a, 2 * d_qkv);
                            sbuf[h][o][j] = raw * scale;
                        }
                    }
                } else {
                kv_probs:
                    for (int o = 0; o < ATTN_ROWS; o++) {
                        if (cc == 0) {
                            // row o's own table copy: R exps in this iteration
                            p[o] = o < n_valid ? sm_prob_scaled<prob_t>(sbuf[h][o][j], m[h][o], rcp[h][o], d_prob,
                                                                        ATTN_EXP_ROM[o])
                                               : prob_t(0);
                        }
                    }
                    attn_av_macs<prob_t, qkv_t, av_acc_t>::run(p, x, col, oacc);
                }
            }
        }
    }
}

inline void attention_unit(const qkv_t qkv[QKV_WORDS][QKV_BANKS][QKV_GROUP],
                           lin_in_t out[ATT_WORDS][ATT_BANKS][ATT_GROUP], int n_tok, int d_qkv, int d_out,
                           int d_prob = 0) {
#pragma HLS INLINE off
    const int CHUNKS = EMBED / ATTN_LANES;      // chunks per row
    static_assert(QKV_LANES % ATTN_LANES == 0 && ATT_LANES % ATTN_LANES == 0 && EMBED % QKV_LANES == 0 &&
                  EMBED % ATT_LANES == 0, "attention: rows must be whole words of ATTN_LANES multiples");
    qkv_t qbuf[ATTN_ROWS][EMBED];
    score_t sbuf[HEADS][ATTN_ROWS][TOKENS];
    score_t m[HEADS][ATTN_ROWS];
    sm_sum_t ssum[HEADS][ATTN_ROWS];
    recip_t rcp[HEADS][ATTN_ROWS];
    av_acc_t oacc[ATTN_ROWS][EMBED];
#pragma HLS ARRAY_PARTITION variable=qbuf complete dim=1
#pragma HLS ARRAY_PARTITION variable=qbuf cyclic factor=ATTN_LANES dim=2
#pragma HLS ARRAY_PARTITION variable=sbuf complete dim=1
#pragma HLS ARRAY_PARTITION variable=sbuf complete dim=2
#pragma HLS ARRAY_PARTITION variable=m complete dim=0
#pragma HLS ARRAY_PARTITION variable=ssum complete dim=0
#pragma HLS ARRAY_PARTITION variable=rcp complete dim=0
#pragma HLS ARRAY_PARTITION variable=oacc complete dim=1
#pragma HLS ARRAY_PARTITION variable=oacc cyclic factor=ATTN_LANES dim=2
    // one dual-port ROM per parallel exp unit (see the top of the file)
#pragma HLS ARRAY_PARTITION variable=ATTN_EXP_ROM complete dim=1
#pragma HLS BIND_STORAGE variable=ATTN_EXP_ROM type=rom_2p
    const scale_t scale = fx_from_raw<scale_t>(ap_uint<fx_info<scale_t>::W>(SCALE_RAW));
groups:
    for (int r0 = 0; r0 < n_tok; r0 += ATTN_ROWS) {
#pragma HLS loop_tripcount min=1 max=ATTN_GROUPS
        const int n_valid = n_tok - r0 < ATTN_ROWS ? n_tok - r0 : ATTN_ROWS;
        // 1. Q rows in (missing rows: 0), accumulators cleared
    load_q:
        for (int o = 0; o < ATTN_ROWS; o++) {
        load_q_chunks:
            for (int c = 0; c < CHUNKS; c++) {
#pragma HLS PIPELINE II=1
                EM_ITER("load_q_chunks", o * CHUNKS + c);
                qkv_t qv[ATTN_LANES];
#pragma HLS ARRAY_PARTITION variable=qv complete
                if (o < n_valid) attn_read(qkv, r0 + o, c * ATTN_LANES, qv);
            load_q_lanes:
                for (int l = 0; l < ATTN_LANES; l++) {
                    const int col = c * ATTN_LANES + l;
                    qbuf[o][col] = o < n_valid ? qv[l] : qkv_t(0);
                    oacc[o][col] = 0;
                }
            }
        }
        // 2. Q.K^T
        attn_kv_pass<false>(qkv, EMBED, n_tok, n_valid, qbuf, sbuf, m, rcp, oacc, scale, d_qkv, d_prob);
        // 3. single-pass softmax in the skewed order
    sm_keys:
        for (int c = 0; c < n_tok; c++) {
#pragma HLS loop_tripcount min=1 max=TOKENS
#pragma HLS PIPELINE II=1
            EM_ITER("sm_keys", c);
        sm_heads:
            for (int h = 0; h < HEADS; h++) {
            sm_rows:
                for (int o = 0; o < ATTN_ROWS; o++) {
                    if (o < n_valid) {
                        int j = o + c;               // start key o = (r0 + o) mod ATTN_ROWS
                        if (j >= n_tok) j -= n_tok;
                        if (c == 0) {
                            sm_init(sbuf[h][o][j], m[h][o], ssum[h][o]);
                        } else {
                            sm_update(sbuf[h][o][j], m[h][o], ssum[h][o], ATTN_EXP_ROM[h * ATTN_ROWS + o]);
                        }
                    } else if (c == 0) {
                        sm_init(score_t(0), m[h][o], ssum[h][o]);   // unused row: defined values
                    }
                }
            }
        }
    sm_recips:
        for (int h = 0; h < HEADS; h++) {
#pragma HLS PIPELINE II=1
            EM_ITER("sm_recips", h);
        sm_recip_rows:
            for (int o = 0; o < ATTN_ROWS; o++) {
                rcp[h][o] = sm_recip(ssum[h][o]);
            }
        }
        // 4. A.V
        attn_kv_pass<true>(qkv, 2 * EMBED, n_tok, n_valid, qbuf, sbuf, m, rcp, oacc, scale, d_qkv, d_prob);
        // 5. the group's rows out
    av_write:
        for (int o = 0; o < ATTN_ROWS; o++) {
        av_write_chunks:
            for (int c = 0; c < CHUNKS; c++) {
#pragma HLS PIPELINE II=1
                EM_ITER("av_write_chunks", o * CHUNKS + c);
                lin_in_t v[ATTN_LANES];
#pragma HLS ARRAY_PARTITION variable=v complete
            av_write_lanes:
                for (int l = 0; l < ATTN_LANES; l++) {
                    v[l] = rescale<attn_out_t>(oacc[o][c * ATTN_LANES + l], d_qkv + d_prob - d_out);
                }
                if (o < n_valid) lw_put<ATTN_LANES>(out, (r0 + o) * (EMBED / ATT_LANES), c * ATTN_LANES, v);
            }
        }
    }
}

#endif  // EDGEMOE_ATTENTION_H
