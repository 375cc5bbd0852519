// layernorm.h -- LayerNorm unit: a row of the residual stream on chip, exact sum, floor mean,
// truncated squares, rsqrt as mantissa/exponent (seed table + RSQRT_NEWTON_STEPS Newton steps).
// Mirrors edgemoe.golden.units.layernorm.layernorm_fixed bit for bit.
//
// Call signature:
//   void layernorm_unit(const act_t *x, const ln_param_t *gamma, const ln_param_t *beta,
//                       ln_out_t *y, int n_rows, int d_out);
//   x, y: [n_rows][EMBED] row-major; gamma, beta: [EMBED]; d_out = D_LN1[block] or D_LN2[block].
// Helpers (also used by tests): ln_rsqrt(v, &y, &k): 1/sqrt(v * 2^-F(ln_sq_acc)) = y * 2^-RSQRT_MANT_F * 2^k.
#ifndef EDGEMOE_LAYERNORM_H
#define EDGEMOE_LAYERNORM_H

#include "edgemoe_fixed.h"

#define LN_SUM_BITS (fx_info<act_t>::W + 12)     // exact row sum (EMBED < 2^11)
#define LN_V_BITS (fx_info<ln_sq_acc_t>::W + 1)  // var + eps

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
    ap_int<64> y = ap_int<64>(RSQRT_TABLE[idx]) << (RSQRT_MANT_F - RSQRT_SEED_F);
    const ap_int<64> three = ap_int<64>(3) << RSQRT_MANT_F;
ln_newton:
    for (int it = 0; it < RSQRT_NEWTON_STEPS; it++) {
#pragma HLS UNROLL
        ap_int<64> ysq = (y * y) >> RSQRT_MANT_F;
        ap_int<64> my = (m * ysq) >> RSQRT_MANT_F;
        y = (y * (three - my)) >> (RSQRT_MANT_F + 1);
    }
    y_out = y;
    k_out = -(e >> 1);
}

inline void layernorm_unit(const act_t *x, const ln_param_t *gamma, const ln_param_t *beta,
                           ln_out_t *y, int n_rows, int d_out) {
    typedef fx_info<ln_diff_t> di;
    typedef fx_info<ln_sq_acc_t> qi;
    typedef fx_info<ln_norm_t> ni;
    const int SQ_SHIFT = 2 * di::F - qi::F;     // squares: truncating right shift (or exact left)
    act_t row[EMBED];
    ln_diff_t diff[EMBED];
#pragma HLS ARRAY_PARTITION variable=row cyclic factor=ENGINE_IN
#pragma HLS ARRAY_PARTITION variable=diff cyclic factor=ENGINE_IN
ln_rows:
    for (int t = 0; t < n_rows; t++) {
#pragma HLS loop_tripcount min=1 max=TOKENS
        ap_int<LN_SUM_BITS> s = 0;
    ln_sum:
        for (int i = 0; i < EMBED; i++) {
#pragma HLS PIPELINE II=1
            act_t v = x[t * EMBED + i];
            row[i] = v;
            s += fx_raw(v);
        }
        act_t mean = fx_from_raw<act_t>(floor_div(s, EMBED));
        ap_int<qi::W> var_acc = 0;                 // wraps at ln_sq_acc's width
    ln_var:
        for (int i = 0; i < EMBED; i++) {
#pragma HLS PIPELINE II=1
            ln_diff_t dv = row[i] - mean;
            diff[i] = dv;
            ap_int<di::W> dr = fx_raw(dv);
            ap_int<2 * di::W> sq2 = dr * dr;
            ap_int<2 * di::W + 64> sq = sq2;
            if (SQ_SHIFT >= 0) {
                sq = sq >> (SQ_SHIFT >= 0 ? SQ_SHIFT : 0);
            } else {
                sq = sq << (SQ_SHIFT < 0 ? -SQ_SHIFT : 0);
            }
            var_acc += ap_int<qi::W>(sq);
        }
        ap_int<qi::W> var = floor_div(var_acc, EMBED);
        ap_int<LN_V_BITS> v = ap_int<LN_V_BITS>(var) + LN_EPS_RAW;
        ap_int<64> ym;
        int k;
        ln_rsqrt(v, ym, k);
        const int nsh = ni::F - di::F - RSQRT_MANT_F + k;
    ln_norm:
        for (int i = 0; i < EMBED; i++) {
#pragma HLS PIPELINE II=1
            ap_int<64> p = ap_int<64>(fx_raw(diff[i])) * ym;
            ap_int<64> ps = shift_clip62(p, nsh);
            typedef ap_fixed<64, 64 - ni::F> nw_t;
            ln_norm_t nv = ln_norm_t(fx_from_raw<nw_t>(ps));   // the norm type's overflow mode
            y[t * EMBED + i] = rescale<ln_out_t>(nv * gamma[i] + beta[i], -d_out);
        }
    }
}

#endif  // EDGEMOE_LAYERNORM_H
