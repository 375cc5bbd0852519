// residual.h -- residual add of the residual stream: x = act_t(x + y) (in place).
// Mirrors `(x + proj).cast(act)` / `(x + y).cast(act)` of edgemoe.golden.fixed_model.
//
// Call signature:
//   void residual_add(act_t *x, const act_t *y, int n);     // n = rows * EMBED <= ACT_ELEMS
//   act_t residual_score_mac(act_t out, gate_score_t s, act_t y);  // act_t(out + act_t(s * y)), the
//                                                                   // MoE scatter accumulate
// residual_add takes VEC_LANES consecutive values of x and y per cycle (res_loop: ceil(n / VEC_LANES)
// iterations, II=1, the lanes unrolled; x and y partitioned cyclic by a multiple of VEC_LANES in the
// caller).  Lanes past n (n not a multiple of VEC_LANES, only in tests) are left alone.
#ifndef EDGEMOE_RESIDUAL_H
#define EDGEMOE_RESIDUAL_H

#include "edgemoe_fixed.h"

inline void residual_add(act_t *x, const act_t *y, int n) {
    EDGEMOE_CHECK(n >= 0 && n <= ACT_ELEMS);
res_loop:
    for (int i = 0; i < ACT_ELEMS / VEC_LANES; i++) {   // static bound; n ends it early
#pragma HLS PIPELINE II=1
        if (i * VEC_LANES >= n) break;
    res_lanes:
        for (int l = 0; l < VEC_LANES; l++) {
#pragma HLS UNROLL
            const int j = i * VEC_LANES + l;
            if (j < n) x[j] = x[j] + y[j];
        }
    }
}

inline act_t residual_score_mac(const act_t out, const gate_score_t s, const act_t y) {
#pragma HLS INLINE
    act_t c = s * y;
    return out + c;
}

#endif  // EDGEMOE_RESIDUAL_H
