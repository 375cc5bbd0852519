// softmax.h -- single-pass softmax unit (attention rows and the MoE gate).
// Mirrors edgemoe.golden.units.softmax bit for bit:
//   per row a running max m and sum S (sm_sum_t); on a new score s:
//     s > m:  S = floor(S * exp(m - s)) + 1, m = s        else  S = S + exp(s - m)
//   1/S = floor(2^(F(recip)+F(sum)) / S) (one integer division per row);
//   p = exp(s - m) * (1/S) cast to the probability type.
//   exp(d), d <= 0: t = d * log2(e) in exp_arg_t; 2^t = 2^floor(t) (a shift) * 2^frac(t) from
//   the 2^f table (2^EXP2_SEG_LOG2 segments, linear interpolation).
//
// ROM ports: one exp reads its table twice (entries idx and idx + 1), i.e. both ports of a
// dual-port ROM.  Every exp that runs in the same cycle as another must therefore read its own
// copy: the functions below take the table as `tab` (default: the global EXP2_TABLE, enough for
// one exp per cycle, e.g. moe_route); attention.h passes one copy per parallel exp unit.
//
// Call signatures (S_T: the score type, score_t or gate_logit_t; P_T: prob_t or gate_score_t;
// tab: const exp2_code_t[EXP2_TABLE_SIZE], default EXP2_TABLE):
//   exp_t sm_exp_neg<D_T>(D_T d, tab);                          // d <= 0
//   void  sm_init<S_T>(S_T s, S_T &m, sm_sum_t &S);             // first score of a row
//   void  sm_update<S_T>(S_T s, S_T &m, sm_sum_t &S, tab);      // every further score
//   recip_t sm_recip(sm_sum_t S);
//   P_T   sm_prob<P_T, S_T>(S_T s, S_T m, recip_t r, tab);
//   P_T   sm_prob_scaled<P_T, S_T>(S_T s, S_T m, recip_t r, int d_p, tab);  // calibrated P_T (offset d_p)
//   void  softmax_row<S_T, P_T>(const S_T *s, P_T *p, int n, int start);  // a row of n <= SM_MAX_LEN
//         scores visited in the order (start + c) mod n (the attention unit's skew), c = 0..n-1
#ifndef EDGEMOE_SOFTMAX_H
#define EDGEMOE_SOFTMAX_H

#include "edgemoe_fixed.h"
#include "edgemoe_mem.h"

template <class S_T>
struct sm_diff {
    // type of s - m (as the golden model's FixedType(W + 1, I + 1))
    typedef ap_fixed<fx_info<S_T>::W + 1, fx_info<S_T>::I + 1> type;
};

template <class D_T>
exp_t sm_exp_neg(const D_T d, const exp2_code_t (&tab)[EXP2_TABLE_SIZE] = EXP2_TABLE) {
#pragma HLS INLINE
    typedef fx_info<exp_arg_t> ai;
    typedef fx_info<exp2_tab_t> ti;
    typedef fx_info<exp_t> ei;
    const int SB = ai::F - EXP2_SEG_LOG2;
    const log2e_t l2e = fx_from_raw<log2e_t>(ap_uint<18>(LOG2E_RAW));
    exp_arg_t t = d * l2e;
    ap_int<ai::W> tr = fx_raw(t);
    ap_int<ai::W> n = tr >> ai::F;                       // integer part (floor), <= 0
    ap_uint<ai::F> f = tr;                               // fraction bits
    ap_uint<EXP2_SEG_LOG2> idx = f >> SB;
    ap_uint<SB + 1> r = f & ((ap_uint<ai::F>(1) << SB) - 1);
    ap_int<ti::W + 2> t0 = rom_rd(tab, int(idx));        // the two reads use both ROM ports
    ap_int<ti::W + 2> t1 = rom_rd(tab, int(idx) + 1);
    ap_int<ti::W + SB + 4> prod = (t1 - t0) * r;
    ap_int<ti::W + 2> p = t0 + ap_int<ti::W + 2>(prod >> SB);   // 2^frac at the table's scale
    // 2^floor(t) as a shift (floor for right shifts); only the low W(exp) bits are kept, so the
    // register needs the width of p (right shifts) or of exp_t (left shifts), whichever is larger
    const int RW = (ti::W + 2 > ei::W ? ti::W + 2 : ei::W) + 1;
    int sh = (ei::F - ti::F) + int(n);
    ap_int<RW> pw = p;
    ap_int<RW> res;
    if (sh > 0) {
        res = sh >= RW ? ap_int<RW>(0) : ap_int<RW>(pw << sh);
    } else {
        int m = -sh;
        res = m >= RW ? ap_int<RW>(0) : ap_int<RW>(pw >> m);
    }
    return fx_from_raw<exp_t>(res);
}

template <class S_T>
void sm_init(const S_T s, S_T &m, sm_sum_t &S) {
#pragma HLS INLINE
    m = s;
    S = 1;
}

template <class S_T>
void sm_update(const S_T s, S_T &m, sm_sum_t &S, const exp2_code_t (&tab)[EXP2_TABLE_SIZE] = EXP2_TABLE) {
#pragma HLS INLINE
    typedef typename sm_diff<S_T>::type diff_t;
    typedef fx_info<sm_sum_t> si;
    typedef ap_ufixed<si::W + 8, si::I + 8> wide_t;   // holds S * e (< 2^(I+1)) + 1 exactly
    bool bigger = s > m;
    diff_t d = bigger ? diff_t(m - s) : diff_t(s - m);
    exp_t e = sm_exp_neg(d, tab);
    wide_t rescaled = S * e;          // floor at the sum's scale
    rescaled += wide_t(1);
    wide_t added = S;
    added += wide_t(e);               // e floored to the sum's scale
    S = bigger ? sm_sum_t(rescaled) : sm_sum_t(added);
    if (bigger) m = s;
}

inline recip_t sm_recip(const sm_sum_t S) {
#pragma HLS INLINE
    typedef fx_info<sm_sum_t> si;
    typedef fx_info<recip_t> ri;
    const int NB = ri::F + si::F;
    ap_uint<si::W> sr = fx_raw(S);
    if (sr == 0) sr = 1;
    ap_uint<NB + 1> num = ap_uint<NB + 1>(1) << NB;
    ap_uint<NB + 1> q = num / sr;
    typedef ap_ufixed<NB + 1, NB + 1 - ri::F> q_t;
    return recip_t(fx_from_raw<q_t>(q));
}

template <class P_T, class S_T>
P_T sm_prob(const S_T s, const S_T m, const recip_t r,
            const exp2_code_t (&tab)[EXP2_TABLE_SIZE] = EXP2_TABLE) {
#pragma HLS INLINE
    typedef typename sm_diff<S_T>::type diff_t;
    diff_t d = s - m;
    exp_t e = sm_exp_neg(d, tab);
    return P_T(e * r);
}

// p = exp(s - m) * (1/S) cast to a calibrated probability type stored in P_T with d_p more
// fraction bits than P_T's own (d_p = 0: sm_prob)
template <class P_T, class S_T>
P_T sm_prob_scaled(const S_T s, const S_T m, const recip_t r, int d_p,
                   const exp2_code_t (&tab)[EXP2_TABLE_SIZE] = EXP2_TABLE) {
#pragma HLS INLINE
    typedef typename sm_diff<S_T>::type diff_t;
    diff_t d = s - m;
    exp_t e = sm_exp_neg(d, tab);
    return rescale<P_T>(e * r, -d_p);
}

template <class S_T, class P_T>
void softmax_row(const S_T *s, P_T *p, int n, int start) {
    S_T buf[SM_MAX_LEN];
    S_T m = 0;
    sm_sum_t S = 0;
sm_load:
    for (int c = 0; c < n; c++) {
#pragma HLS loop_tripcount min=1 max=SM_MAX_LEN
#pragma HLS PIPELINE II=1
        EM_ITER("sm_load", c);
        buf[c] = s[c];
    }
sm_pass:
    for (int c = 0; c < n; c++) {
#pragma HLS loop_tripcount min=1 max=SM_MAX_LEN
        int j = start + c;
        if (j >= n) j -= n;
        if (c == 0) {
            sm_init(buf[j], m, S);
        } else {
            sm_update(buf[j], m, S);
        }
    }
    recip_t r = sm_recip(S);
sm_probs:
    for (int c = 0; c < n; c++) {
#pragma HLS loop_tripcount min=1 max=SM_MAX_LEN
#pragma HLS PIPELINE II=1
        EM_ITER("sm_probs", c);
        p[c] = sm_prob<P_T>(buf[c], m, r);
    }
}

#endif  // EDGEMOE_SOFTMAX_H
