// gelu.h -- GELU unit: GELU(x) = ReLU(x) - d(|x|), d(a) = a * Phi(-a) from a table over
// [0, GELU_RANGE] (step 2^-GELU_STEPS_LOG2, linear interpolation); ReLU beyond the table.
// Mirrors edgemoe.golden.units.gelu.gelu_fixed bit for bit.
//
// Call signatures:
//   hidden_t gelu(gelu_in_t x, int d_hidden, tab = GELU_TABLE);   // one value (inlined; fused in linear.h)
//   void gelu_unit(const gelu_in_t *x, hidden_t *y, int n, int d_hidden);   // a buffer
// d_hidden = D_HIDDEN[block] (the fraction-bit offset of the calibrated output type).
// ROM ports: one GELU reads its table twice (entries idx and idx + 1: both ports of a dual-port ROM),
// so GELUs that run in the same cycle each read their own copy `tab` (linear.h: GELU_ROM, one per
// output lane of the engine); the global GELU_TABLE serves one GELU per cycle.
#ifndef EDGEMOE_GELU_H
#define EDGEMOE_GELU_H

#include "edgemoe_fixed.h"
#include "edgemoe_mem.h"

inline hidden_t gelu(const gelu_in_t x, int d_hidden, const gelu_code_t (&tab)[GELU_TABLE_SIZE] = GELU_TABLE) {
#pragma HLS INLINE
    typedef fx_info<gelu_in_t> gi;
    const int SB = gi::F - GELU_STEPS_LOG2;   // fraction bits below the table step
    const int SBP = SB > 0 ? SB : 0;
    const int SBN = SB < 0 ? -SB : 0;
    ap_int<gi::W + 1> xr = fx_raw(x);
    ap_int<gi::W + 1> a = xr < 0 ? ap_int<gi::W + 1>(-xr) : xr;
    bool inside = a < GELU_LIMIT_RAW;
    ap_int<gi::W + 1 + SBN> idx_w = a;
    idx_w = (idx_w >> SBP) << SBN;
    ap_uint<SBP + 1> r = 0;
    if (SBP > 0) r = a & ((ap_int<gi::W + 1>(1) << SBP) - 1);
    int idx = inside ? int(idx_w) : 0;
    int idx1 = idx + 1 < GELU_TABLE_SIZE ? idx + 1 : GELU_TABLE_SIZE - 1;
    typedef fx_info<gelu_tab_t> ti;
    ap_int<ti::W + 2> t0 = rom_rd(tab, idx);     // the two reads use both ROM ports
    ap_int<ti::W + 2> t1 = rom_rd(tab, idx1);
    ap_int<ti::W + 2 + SBP + 2> prod = (t1 - t0) * r;
    ap_int<ti::W + 2> d = t0 + ap_int<ti::W + 2>(prod >> SBP);   // floor, at the table's scale
    if (!inside) d = 0;
    gelu_tab_t dt = fx_from_raw<gelu_tab_t>(d);
    gelu_in_t relu = x > 0 ? x : gelu_in_t(0);
    return rescale<hidden_t>(relu - dt, -d_hidden);
}

inline void gelu_unit(const gelu_in_t *x, hidden_t *y, int n, int d_hidden) {
gelu_loop:
    for (int i = 0; i < n; i++) {
#pragma HLS loop_tripcount min=1 max=MAX_OUT_DIM
#pragma HLS PIPELINE II=1
        EM_ITER("gelu_loop", i);
        y[i] = gelu(x[i], d_hidden);
    }
}

#endif  // EDGEMOE_GELU_H
