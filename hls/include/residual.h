// residual.h -- residual add of the residual stream: x = act_t(x + y) (in place).
// Mirrors `(x + proj).cast(act)` / `(x + y).cast(act)` of edgemoe.golden.fixed_model.
//
// Call signature:
//   void residual_add(act_t *x, const act_t *y, int n);     // n = rows * EMBED
//   act_t residual_score_mac(act_t out, gate_score_t s, act_t y);  // act_t(out + act_t(s * y)), the
//                                                                   // MoE scatter accumulate
#ifndef EDGEMOE_RESIDUAL_H
#define EDGEMOE_RESIDUAL_H

#include "edgemoe_fixed.h"

inline void residual_add(act_t *x, const act_t *y, int n) {
res_loop:
    for (int i = 0; i < n; i++) {
#pragma HLS loop_tripcount min=1 max=ACT_ELEMS
#pragma HLS PIPELINE II=1
        x[i] = x[i] + y[i];
    }
}

inline act_t residual_score_mac(const act_t out, const gate_score_t s, const act_t y) {
#pragma HLS INLINE
    act_t c = s * y;
    return out + c;
}

#endif  // EDGEMOE_RESIDUAL_H
