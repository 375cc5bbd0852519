// patch_embed.h -- patch embedding unit: each PATCHxPATCH patch (flattened in (c, ky, kx) order)
// is a row of a linear layer on the MAC engine (linear.h's engine_run: exact patch_acc_t
// accumulators starting at the bias, weights in tile order, WEIGHT_PORTS AXI words per cycle overlapped
// with the MACs), whose epilogue casts to act_t and adds the position embedding; token 0 is CLS + pos[0].
// Mirrors edgemoe.golden.units.patch_embed.patch_embed_fixed bit for bit.
//
// Call signature:
//   void patch_embed_unit(const pixel_t *pix, const axi_word_t *w WPORTS_PARAMS(w), const bias_t *b,
//                         const bias_t *cls, const bias_t *pos, act_t *out, int n_patches);
//   pix: [n_patches][PATCH_DIM] on chip (the top caches an image's pixels once; ENGINE_IN consecutive
//   pixels are read per cycle); w: the [EMBED][PATCH_DIM] patch_w_t matrix in engine tile order
//   (engine_tile_words<patch_w_t>::value = PATCH_TILE_WORDS words per tile; w1..: the same through
//   the extra weight ports); b, cls: [EMBED];
//   pos: [n_patches + 1][EMBED]; out: [n_patches + 1][EMBED]; 1 <= n_patches <= NUM_PATCHES.
// Cycles: EMBED / ENGINE_OUT for the CLS row, then one engine_run (see linear.h).
#ifndef EDGEMOE_PATCH_EMBED_H
#define EDGEMOE_PATCH_EMBED_H

#include "edgemoe_fixed.h"
#include "linear.h"

inline void patch_embed_unit(const pixel_t *pix, const axi_word_t *w WPORTS_PARAMS(w), const bias_t *b,
                             const bias_t *cls, const bias_t *pos, act_t *out, int n_patches) {
    const tok_idx_t no_idx[1] = {0};       // gather / scatter disabled
    const gate_score_t no_score[1] = {0};
pe_cls:
    for (int c = 0; c < EMBED / ENGINE_OUT; c++) {
#pragma HLS PIPELINE II=1
    pe_cls_lanes:
        for (int o = 0; o < ENGINE_OUT; o++) {
            out[c * ENGINE_OUT + o] = cls[c * ENGINE_OUT + o] + pos[c * ENGINE_OUT + o];
        }
    }
    // patch rows: token t + 1, position t + 1
    engine_run<LIN_POS, patch_acc_t, patch_w_t>(pix, false, no_idx, w WPORTS_FWD(w, 0), b, out + EMBED, no_idx,
                                                no_score, pos + EMBED, n_patches, PATCH_DIM, EMBED, 0, 0);
}

#endif  // EDGEMOE_PATCH_EMBED_H
