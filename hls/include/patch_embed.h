// patch_embed.h -- patch embedding unit: each PATCHxPATCH patch (flattened in (c, ky, kx) order) is a
// row of a linear layer on THE linear engine (linear.h, mode ENG_POS: exact patch_acc_t accumulators
// starting at the patch bias, weights in tile order streamed like every layer's, an epilogue that
// casts to act_t and adds the position embedding); token 0 is CLS + pos[0].  No multipliers of its own.
// Mirrors edgemoe.golden.units.patch_embed.patch_embed_fixed bit for bit.
//
// The top runs, per image b (its pixels cached in g_pix, one AXI word per cycle):
//   patch_embed_cls(x, cls, pos, x_word)      token 0 of the image at word x_word of x:
//                                             EMBED / X_LANES cycles, a word of CLS + pos[0] each
//   linear_engine(ENG_POS from g_pix, NUM_PATCHES rows, PATCH_DIM -> EMBED, into tokens 1..)
#ifndef EDGEMOE_PATCH_EMBED_H
#define EDGEMOE_PATCH_EMBED_H

#include "edgemoe_fixed.h"
#include "edgemoe_mem.h"

inline void patch_embed_cls(act_t x[X_WORDS][X_BANKS][X_GROUP], const bias_t cls[CLS_WORDS][CLS_BANKS][CLS_GROUP],
                            const bias_t pos[POS_WORDS][POS_BANKS][POS_GROUP], int x_word) {
#pragma HLS INLINE
    static_assert(X_LANES == CLS_LANES && X_LANES == POS_LANES && EMBED % X_LANES == 0,
                  "patch embedding: x, CLS and positions share their words");
pe_cls:
    for (int w = 0; w < EMBED / X_LANES; w++) {
#pragma HLS PIPELINE II=1
        EM_ITER("pe_cls", w);
        bias_t cv[X_LANES], pv[X_LANES];
        act_t y[X_LANES];
#pragma HLS ARRAY_PARTITION variable=cv complete
#pragma HLS ARRAY_PARTITION variable=pv complete
#pragma HLS ARRAY_PARTITION variable=y complete
        lw_read(cls, w, cv);
        lw_read(pos, w, pv);
    pe_cls_lanes:
        for (int l = 0; l < X_LANES; l++) {
            y[l] = cv[l] + pv[l];
        }
        lw_write(x, x_word + w, y);
    }
}

#endif  // EDGEMOE_PATCH_EMBED_H
