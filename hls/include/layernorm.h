// layernorm.h -- LayerNorm unit: a row of the residual stream on chip, exact sum, floor mean,
// truncated squares, rsqrt as mantissa/exponent (seed table + RSQRT_NEWTON_STEPS Newton steps).
// Mirrors edgemoe.golden.units.layernorm.layernorm_fixed bit for bit.
//
// Call signature:
//   void layernorm_unit(const act_t x[X_WORDS][X_BANKS][X_GROUP], int x_word,
//                       const ln_param_t ln[LNP_WORDS][LNP_BANKS][LNP_GROUP], int g_word, int b_word,
//                       lin_in_t y[LNB_WORDS][LNB_BANKS][LNB_GROUP], int y_word, int n_rows, int d_out);
//   x, y: the top's lane-word buffers (edgemoe_mem.h); rows of EMBED values from word x_word / y_word
//   (a batch image's offset), n_rows <= TOKENS; gamma, beta: EMBED values from words g_word, b_word
//   of the LayerNorm parameters; d_out = D_LN1[block] or D_LN2[block].  Each cycle reads VEC_LANES
//   consecutive values of x (one word), of gamma and of beta (two words of the parameters) and
//   writes VEC_LANES values of y (part of one word).  INLINE off: the top calls it twice per block
//   from its own scope and shares one instance (allocation limit=1).
// Three passes over a row, each S = EMBED / VEC_LANES cycles of VEC_LANES values:
//   pass 1: load x, adder-tree sum               -> mean = floor(sum / EMBED)
//   pass 2: diff = x - mean, truncated squares,  -> var = floor(acc / EMBED), rsqrt(var + eps)
//           sum into a wrapping accumulator
//   pass 3: diff times rsqrt (one truncating shift), gamma, beta, cast
// Schedule: the passes run at once on three consecutive rows, so a row costs S cycles:
//   ln_pipe    ONE pipelined loop (II=1) of (n_rows + 2) * S iterations = steps t = 0 .. n_rows + 1
//              of S iterations each; iteration (t, i) does, on columns i*VEC_LANES ..+VEC_LANES-1,
//                pass 3 of row t - 2 (t >= 2), pass 2 of row t - 1 (1 <= t <= n_rows),
//                pass 1 of row t (t < n_rows),
//              and the last iteration of a step computes mean(row t) and rsqrt(row t - 1), which
//              the next step uses.  These are feed-forward from the accumulators, so the two
//              divisions and the rsqrt chain only deepen the pipeline, paid once per call.
//              (The price: pass 2 / pass 3 operands wait in pipeline registers over those stages.)
//   cycles per call ~= (n_rows + 2) * S + D_PIPE, where
//     D_PIPE = D_LOAD + D_TREE + D_DIV + D_SQ + D_TREE + D_DIV + D_RSQRT + D_NORM
//     (memory read, adder tree of clog2(VEC_LANES) levels, division by EMBED, subtract + square,
//     bit length + seed table + 3 * RSQRT_NEWTON_STEPS dependent multiplies, normalise multiply +
//     shift + gamma multiply + cast + store).
//   Buffers: row[] and diff[] (EMBED each, cyclic by VEC_LANES, indexed i * VEC_LANES + lane): one
//   copy each, since in every column the older row is read before the newer one is written in the
//   same iteration.
// Helpers (also used by tests): ln_rsqrt(v, &y, &k): 1/sqrt(v * 2^-F(ln_sq_acc)) = y * 2^-RSQRT_MANT_F * 2^k.
#ifndef EDGEMOE_LAYERNORM_H
#define EDGEMOE_LAYERNORM_H

#include "edgemoe_fixed.h"
#include "edgemoe_mem.h"

#define LN_SUM_BITS (fx_info<act_t>::W + 12)     // exact row sum (EMBED < 2^11)
#define LN_V_BITS (fx_info<ln_sq_acc_t>::W + 1)  // var + eps
#define LN_Y_BITS (RSQRT_MANT_F + 2)             // rsqrt mantissa: y <= 2^RSQRT_MANT_F, signed
#define LN_STEPS (EMBED / VEC_LANES)             // cycles of one pass over a row
#define LN_PIPE_MAX ((TOKENS + 2) * LN_STEPS)    // ln_pipe iterations at n_rows = TOKENS

inline void ln_rsqrt(ap_int<LN_V_BITS> v_in, ap_int<64> &y_out, int &k_out) {
#pragma HLS INLINE
    const int VF = fx_info<ln_sq_acc_t>::F;
    ap_int<LN_V_BITS> v = v_in < 1 ? ap_int<LN_V_BITS>(1) : v_in;
    int nb = 0;
ln_bitlen:
    for (int b = 0; b < LN_V_BITS; b++) {
#pragma HLS UNROLL
        if ((v >> b) != 0) nb = b + 1;
    }
    int e = nb - 1 - VF;              // v = m * 2^e, m in [1, 2)
    int odd = e & 1;
    e = e - odd;                      // even: m in [1, 4)
    ap_int<64> v64 = v;
    ap_int<64> m = shift_clip62(v64, RSQRT_MANT_F - (nb - 1) + odd);
    int idx = int(m >> (RSQRT_MANT_F - RSQRT_IDX_BITS)) - (1 << RSQRT_IDX_BITS);
    // Newton operands at RSQRT_MANT_F fraction bits, all below 4 in magnitude (m < 4; the seed is
    // within 1/128 of 1/sqrt(m), so y <= 1, y^2 <= 1 and m y^2 stays near 1): 34-bit factors, exact
    // products (the same values as the golden model's int64 arithmetic) on smaller multipliers.
    typedef ap_int<RSQRT_MANT_F + 4> nt_t;
    const nt_t mn = m;
    nt_t y = nt_t(rom_rd(RSQRT_TABLE, idx)) << (RSQRT_MANT_F - RSQRT_SEED_F);
    const nt_t three = nt_t(3) << RSQRT_MANT_F;
ln_newton:
    for (int it = 0; it < RSQRT_NEWTON_STEPS; it++) {
#pragma HLS UNROLL
        nt_t ysq = (y * y) >> RSQRT_MANT_F;
        nt_t my = (mn * ysq) >> RSQRT_MANT_F;
        y = (y * (three - my)) >> (RSQRT_MANT_F + 1);
    }
    y_out = y;
    k_out = -(e >> 1);
}

// Sum of the VEC_LANES terms in v as a balanced adder tree (clog2(VEC_LANES) adder levels, any lane
// count).  T's own addition: exact for the row sum, wrapping for the variance, which gives the
// same result as adding the terms one by one.
template <class T>
T ln_tree_sum(T v[VEC_LANES]) {
#pragma HLS INLINE
ln_tree_level:
    for (int h = 1; h < VEC_LANES; h *= 2) {
#pragma HLS UNROLL
    ln_tree_add:
        for (int l = 0; l < VEC_LANES; l += 2 * h) {
#pragma HLS UNROLL
            if (l + h < VEC_LANES) v[l] = v[l] + v[l + h];
        }
    }
    return v[0];
}

// Pass 3 on one value: (x - mean) times the rsqrt mantissa (exact: |y| <= 2^RSQRT_MANT_F, so the
// product fits where the golden model's int64 product does), one truncating shift into ln_norm,
// gamma and beta, the cast to the output type.
inline ln_out_t ln_norm_value(ln_diff_t dv, ap_int<LN_Y_BITS> ym, int nsh, ln_param_t g,
                              ln_param_t b, int d_out) {
#pragma HLS INLINE
    typedef ap_fixed<64, 64 - fx_info<ln_norm_t>::F> nw_t;
    ap_int<64> p = fx_raw(dv) * ym;
    ap_int<64> ps = shift_clip62(p, nsh);
    ln_norm_t nv = ln_norm_t(fx_from_raw<nw_t>(ps));   // the norm type's overflow mode
    return rescale<ln_out_t>(nv * g + b, -d_out);
}

// the unit on any lane-word buffers (the kernel's, below, or a unit top's own)
template <int XB, int XG, int PB, int PG, int YB, int YG>
void layernorm_core(const act_t (*x)[XB][XG], int x_word, const ln_param_t (*ln)[PB][PG], int g_word, int b_word,
                    lin_in_t (*y)[YB][YG], int y_word, int n_rows, int d_out) {
#pragma HLS INLINE
    const int X_L = XB * XG, P_L = PB * PG, Y_L = YB * YG;
    typedef fx_info<ln_diff_t> di;
    typedef fx_info<ln_sq_acc_t> qi;
    typedef fx_info<ln_norm_t> ni;
    const int SQ_SHIFT = 2 * di::F - qi::F;     // squares: truncating right shift (or exact left)
    static_assert(EMBED % X_L == 0 && EMBED % Y_L == 0 && EMBED % P_L == 0 && X_L % VEC_LANES == 0 &&
                  Y_L % VEC_LANES == 0 && P_L % VEC_LANES == 0,
                  "layernorm: rows must be whole words of VEC_LANES multiples");
    EDGEMOE_CHECK(n_rows >= 0 && n_rows <= TOKENS);
    // One buffer each suffices: in every column a pass reads the older row before the next pass
    // overwrites it with the newer row (same iteration, read first).
    act_t row[EMBED];        // pass 1 writes row t, pass 2 reads row t - 1
    ln_diff_t diff[EMBED];   // pass 2 writes row t - 1 (x - mean), pass 3 reads row t - 2
#pragma HLS ARRAY_PARTITION variable=row cyclic factor=VEC_LANES
#pragma HLS ARRAY_PARTITION variable=diff cyclic factor=VEC_LANES
    // Per-row results, each updated at the end of a step and used during the next one.
    ap_int<LN_SUM_BITS> s = 0;                  // pass 1: sum of row t
    ap_int<qi::W> var_acc = 0;                  // pass 2: squares of row t - 1 (wraps at ln_sq_acc's width)
    act_t mean = 0;                             // mean of row t - 1
    ap_int<LN_Y_BITS> ym = 0;                   // rsqrt mantissa and shift of row t - 2
    int nsh = 0;
    int t = 0, i = 0;                           // step and position in the row (flattened by hand)
ln_pipe:
    for (int it = 0; it < (n_rows + 2) * LN_STEPS; it++) {
#pragma HLS loop_tripcount min=1 max=LN_PIPE_MAX
#pragma HLS PIPELINE II=1
// a column of row[] / diff[] is next touched LN_STEPS iterations later (the next step)
#pragma HLS DEPENDENCE variable=row inter distance=LN_STEPS true
#pragma HLS DEPENDENCE variable=diff inter distance=LN_STEPS true
        EM_ITER("ln_pipe", it);
        const int c0 = i * VEC_LANES;
        ap_int<LN_SUM_BITS> spart[VEC_LANES];
        ap_int<qi::W> qpart[VEC_LANES];
        act_t xv[VEC_LANES];
        ln_param_t gv[VEC_LANES], bv[VEC_LANES];
        lin_in_t yv[VEC_LANES];
#pragma HLS ARRAY_PARTITION variable=spart complete
#pragma HLS ARRAY_PARTITION variable=qpart complete
#pragma HLS ARRAY_PARTITION variable=xv complete
#pragma HLS ARRAY_PARTITION variable=gv complete
#pragma HLS ARRAY_PARTITION variable=bv complete
#pragma HLS ARRAY_PARTITION variable=yv complete
        if (t < n_rows) lw_get<VEC_LANES>(x, x_word + t * (EMBED / X_L), c0, xv);
        if (t >= 2) {
            lw_get<VEC_LANES>(ln, g_word, c0, gv);
            lw_get<VEC_LANES>(ln, b_word, c0, bv);
        }
    ln_pipe_lanes:
        for (int l = 0; l < VEC_LANES; l++) {
#pragma HLS UNROLL
            const int c = c0 + l;
            // pass 3, row t - 2: (x - mean) times rsqrt, gamma, beta
            yv[l] = 0;
            if (t >= 2) yv[l] = ln_norm_value(diff[c], ym, nsh, gv[l], bv[l], d_out);
            // pass 2, row t - 1: diff = x - mean, truncated squares
            qpart[l] = 0;
            if (t >= 1 && t <= n_rows) {
                ln_diff_t dv = row[c] - mean;
                diff[c] = dv;
                ap_int<di::W> dr = fx_raw(dv);
                ap_int<2 * di::W> sq2 = dr * dr;
                ap_int<2 * di::W + 64> sq = sq2;
                if (SQ_SHIFT >= 0) {
                    sq = sq >> (SQ_SHIFT >= 0 ? SQ_SHIFT : 0);
                } else {
                    sq = sq << (SQ_SHIFT < 0 ? -SQ_SHIFT : 0);
                }
                qpart[l] = ap_int<qi::W>(sq);
            }
            // pass 1, row t: load, sum
            spart[l] = 0;
            if (t < n_rows) {
                row[c] = xv[l];
                spart[l] = fx_raw(xv[l]);
            }
        }
        if (t >= 2) {
            lw_put<VEC_LANES>(y, y_word + (t - 2) * (EMBED / Y_L), c0, yv);
        }
        s += ln_tree_sum(spart);
        var_acc += ln_tree_sum(qpart);
        if (i < LN_STEPS - 1) {
            i++;
        } else {
            // End of step t: the rows move one pass on.  The divisions and the rsqrt chain are
            // feed-forward from the accumulators, so the pipeline absorbs their latency once per call.
            ap_int<qi::W> var = floor_div(var_acc, EMBED);
            ap_int<LN_V_BITS> v = ap_int<LN_V_BITS>(var) + LN_EPS_RAW;
            ap_int<64> y64;
            int k;
            ln_rsqrt(v, y64, k);
            ym = y64;                               // y64 <= 2^RSQRT_MANT_F: no bits lost
            EDGEMOE_CHECK(ap_int<64>(ym) == y64);
            nsh = ni::F - di::F - RSQRT_MANT_F + k;
            mean = fx_from_raw<act_t>(floor_div(s, EMBED));
            s = 0;
            var_acc = 0;
            i = 0;
            t++;
        }
    }
}

// the kernel's one LayerNorm instance
inline void layernorm_unit(const act_t x[X_WORDS][X_BANKS][X_GROUP], int x_word,
                           const ln_param_t ln[LNP_WORDS][LNP_BANKS][LNP_GROUP], int g_word, int b_word,
                           lin_in_t y[LNB_WORDS][LNB_BANKS][LNB_GROUP], int y_word, int n_rows, int d_out) {
#pragma HLS INLINE off
    layernorm_core(x, x_word, ln, g_word, b_word, y, y_word, n_rows, d_out);
}

#endif  // EDGEMOE_LAYERNORM_H
