// residual.h -- residual add of the residual stream: x = act_t(x + y), y the MLP or attention output.
// Mirrors `(x + proj).cast(act)` / `(x + y).cast(act)` of edgemoe.golden.fixed_model, and for MoE
// blocks the experts' combination `out = act_t(out + contribution)` in expert order: the experts
// write their contributions into TOP_K slots (g_tmp part s holds a token's s-th expert in expert
// order, linear.h's ENG_SCATTER), so y = act_t(...act_t(slot 0 + slot 1) ... + slot K-1).
//
// Call signatures:
//   void residual_unit(act_t x[X_WORDS][X_BANKS][X_GROUP], act_t tmp[TMP_PARTS][TMP_WORDS][TMP_BANKS][TMP_GROUP],
//                      int x_word, int t_word, int slots);
//     image rows from word x_word of x and t_word of every slot of tmp: TOKENS * EMBED values;
//     slots = 1 (attention, dense MLP) or NUM_SLOTS (MoE: the combined output is also written back
//     into slot 0, the MLP-output tap).  VEC_LANES values per cycle: res_loop, TOKENS * EMBED /
//     VEC_LANES iterations (II=1), each reading one word of x and of every slot and writing
//     VEC_LANES values of x (and of slot 0).  INLINE off: the top calls it from its own scope and
//     shares one instance (allocation limit=1).
//   act_t residual_score_mac(act_t out, gate_score_t s, act_t y);   // act_t(out + act_t(s * y)), the
//                                                                   // MoE scatter accumulate (tests)
#ifndef EDGEMOE_RESIDUAL_H
#define EDGEMOE_RESIDUAL_H

#include "edgemoe_fixed.h"
#include "edgemoe_mem.h"

inline void residual_unit(act_t x[X_WORDS][X_BANKS][X_GROUP], act_t tmp[TMP_PARTS][TMP_WORDS][TMP_BANKS][TMP_GROUP],
                          int x_word, int t_word, int slots) {
#pragma HLS INLINE off
    static_assert(X_LANES == TMP_LANES && X_LANES % VEC_LANES == 0, "residual: x and the slots share their words");
    EDGEMOE_CHECK(slots >= 1 && slots <= TMP_PARTS);
res_loop:
    for (int i = 0; i < TOKENS * EMBED / VEC_LANES; i++) {
#pragma HLS PIPELINE II=1
        EM_ITER("res_loop", i);
        const int c0 = i * VEC_LANES;
        act_t xv[VEC_LANES], y[VEC_LANES] = {};
#pragma HLS ARRAY_PARTITION variable=xv complete
#pragma HLS ARRAY_PARTITION variable=y complete
        lw_get<VEC_LANES>(x, x_word, c0, xv);
    res_slots:
        for (int s = 0; s < TMP_PARTS; s++) {
            if (s < slots) {
                act_t tv[VEC_LANES];
#pragma HLS ARRAY_PARTITION variable=tv complete
                lw_get<VEC_LANES>(tmp[s], t_word, c0, tv);
            res_combine:
                for (int l = 0; l < VEC_LANES; l++) {
                    y[l] = s == 0 ? tv[l] : act_t(y[l] + tv[l]);
                }
            }
        }
    res_lanes:
        for (int l = 0; l < VEC_LANES; l++) {
            xv[l] = xv[l] + y[l];
        }
        lw_put<VEC_LANES>(x, x_word, c0, xv);
        if (slots > 1) lw_put<VEC_LANES>(tmp[0], t_word, c0, y);
    }
}

inline act_t residual_score_mac(const act_t out, const gate_score_t s, const act_t y) {
#pragma HLS INLINE
    act_t c = s * y;
    return out + c;
}

#endif  // EDGEMOE_RESIDUAL_H
