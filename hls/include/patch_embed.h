// patch_embed.h -- patch embedding unit: each PATCHxPATCH patch (flattened in (c, ky, kx) order)
// is a row of a linear layer on the MAC engine (exact patch_acc_t accumulators starting at the
// bias), cast to act_t, plus the position embedding; token 0 is CLS + pos[0].
// Mirrors edgemoe.golden.units.patch_embed.patch_embed_fixed bit for bit.
//
// Call signature:
//   template <class PP, class WP>
//   void patch_embed_unit(PP pix, WP w, const bias_t *b, const bias_t *cls,
//                         const bias_t *pos, act_t *out, int n_patches);
//   PP / WP: pixel_t / patch_w_t pointers, or packed_ptr<pixel_t> / packed_ptr<patch_w_t> (AXI words)
//   pix: [n_patches][PATCH_DIM]; w: [EMBED][PATCH_DIM]; b, cls: [EMBED]; pos: [n_patches + 1][EMBED];
//   out: [n_patches + 1][EMBED]; n_patches <= NUM_PATCHES.
#ifndef EDGEMOE_PATCH_EMBED_H
#define EDGEMOE_PATCH_EMBED_H

#include "edgemoe_fixed.h"
#include "linear.h"

template <class PP, class WP>
void patch_embed_unit(const PP pix, const WP w, const bias_t *b, const bias_t *cls,
                      const bias_t *pos, act_t *out, int n_patches) {
    patch_acc_t acc[MAX_ROWS][ENGINE_OUT];
    tok_idx_t no_gather[1] = {0};   // the engine reads rows directly here (gather disabled)
#pragma HLS ARRAY_PARTITION variable=acc complete dim=2
pe_cls:
    for (int c = 0; c < EMBED; c++) {
#pragma HLS PIPELINE II=1
        out[c] = cls[c] + pos[c];
    }
pe_tiles:
    for (int ot = 0; ot < EMBED / ENGINE_OUT; ot++) {
        const int o0 = ot * ENGINE_OUT;
        engine_column(acc, pix, false, no_gather, w, b, o0, n_patches, PATCH_DIM, 0);
    pe_write:
        for (int t = 0; t < n_patches; t++) {
#pragma HLS loop_tripcount min=1 max=NUM_PATCHES
        pe_write_cols:
            for (int o = 0; o < ENGINE_OUT; o++) {
#pragma HLS PIPELINE II=1
                act_t y = acc[t][o];
                out[(t + 1) * EMBED + o0 + o] = y + pos[(t + 1) * EMBED + o0 + o];
            }
        }
    }
}

#endif  // EDGEMOE_PATCH_EMBED_H
