// linear.h -- the unified compute unit: ONE linear engine for every layer (Edge-MoE unit 1).
// Mirrors edgemoe.golden.units.linear.linear_fixed, the expert path of fixed_model._moe, the gate
// logits of units.moe_route and units.patch_embed, bit for bit.
//
// One instance by construction: linear_engine is a non-template function with INLINE off, the top
// calls it from its own scope only (every caller on the way is inlined) and names it in an
// ALLOCATION pragma.  Operands are raw integer codes of the widest input (eng_x_t holds lin_in_t and
// pixel_t codes, eng_w_t the weights, eng_acc_t the widest exact accumulator); what differs between
// layers is runtime data in an engine_cmd: the mode (which selects the bias, the epilogue and the
// destination), the source buffer, offsets, sizes and the scale offsets of the calibrated types.
//
// Modes (ENG_*, edgemoe_config.h from codegen/config_header.py ENGINE_MODES):
//        ENG_QKV   y = qkv_t(acc)                     -> g_qkv     (bias: qkv_b, D_QKV)
//        ENG_ACT   y = act_t(acc)                     -> g_tmp slot 0 (proj, dense fc2)
//        ENG_GATE  y = gate_logit_t(acc)              -> g_logits  (no bias: the MoE gate)
//        ENG_GELU  y = gelu(gelu_in_t(acc))           -> g_hid     (fc1, expert fc1; D_HIDDEN)
//        ENG_SCATTER y = act_t(score * act_t(acc))    -> g_tmp slot s of queue entry (token, s, score)
//        ENG_POS   y = act_t(patch_acc) + pos[t + 1]  -> g_x token t + 1 (the patch embedding)
// Sources: g_lnb (LayerNorm output; gathered rows for the experts), g_att, g_hid, g_pix (pixels).
// Every destination is only written (the MoE scatter writes one slot per top-k choice, which the
// residual unit adds later), so no iteration reads what another one writes except the accumulators.
//
// Weights (codegen/pack.py): a matrix is n_ot x n_it tiles of ENGINE_OUT x ENGINE_IN values in tile
// order, TW = engine_tile_words AXI words per tile.  A tile loads in LW = ceil(TW / WEIGHT_PORTS)
// steps; in step k port p carries tile word k * WEIGHT_PORTS + p.  Port p's words of the whole
// matrix are one contiguous range: at w_off + p * w_steps (w_steps = n_tiles * LW), step by step.
//
// Schedule of one call: a DATAFLOW of
//   engine_fetch   one pipelined loop of w_steps iterations reading word i of every port (a burst
//                  per port: unconditional, stride 1, indexed by the loop variable) into the FIFO ws
//   engine_compute a prologue of LW iterations (tile 0 from ws), then ONE pipelined loop of
//                  n_tiles * n_iter iterations over (ot, it, k), n_iter = max(n_rows, LW,
//                  ENGINE_ACC_DISTANCE): step k of the next tile comes from ws (k < LW) while row k
//                  computes with the current tile (ENGINE_IN x ENGINE_OUT MACs); the tiles switch at
//                  the end of a tile.  The FIFO absorbs the m_axi latency; a read of an empty FIFO
//                  stalls, so late data can never be used.
// Accumulators: acc[row][o] is read, added to and written within ENGINE_ACC_DISTANCE iterations and
// read again n_iter >= ENGINE_ACC_DISTANCE iterations later: the DEPENDENCE distance below is true.
// Cycles: m_axi latency + LW + n_tiles * max(n_rows, LW, ENGINE_ACC_DISTANCE, tile load time) + depth.
#ifndef EDGEMOE_LINEAR_H
#define EDGEMOE_LINEAR_H

#include <hls_stream.h>

#include "edgemoe_fixed.h"
#include "edgemoe_mem.h"
#include "gelu.h"
#include "pack2.h"

enum { ENG_SRC_LNB = 0, ENG_SRC_ATT = 1, ENG_SRC_HID = 2, ENG_SRC_PIX = 3 };

template <int A, int B> struct cmax { static const int value = A > B ? A : B; };
// bits of a signed integer that holds every raw code of T
template <class T> struct sraw_bits { static const int value = fx_info<T>::W + (fx_info<T>::S ? 0 : 1); };

// the engine's concrete operand types
static const int ENG_X_BITS = cmax<sraw_bits<lin_in_t>::value, sraw_bits<pixel_t>::value>::value;
typedef ap_int<ENG_X_BITS> eng_x_t;
static_assert(fx_info<w_t>::W == fx_info<patch_w_t>::W && fx_info<w_t>::S == fx_info<patch_w_t>::S &&
              fx_info<gate_w_t>::W == fx_info<w_t>::W && fx_info<gate_w_t>::S == fx_info<w_t>::S,
              "the patch embedding and the MoE gate run on the linear engine: their weights need w_t's width");
typedef fx_raw_t<w_t>::type eng_w_t;
static const int ENG_ACC_BITS = cmax<fx_info<acc_t>::W, fx_info<patch_acc_t>::W>::value;
typedef ap_int<ENG_ACC_BITS> eng_acc_t;
static_assert(fx_info<gate_acc_t>::W == fx_info<acc_t>::W && fx_info<gate_acc_t>::F == fx_info<acc_t>::F,
              "the linear engine's accumulator must be the gate's exact accumulator (gate_acc_t)");
// the exact sum of ENGINE_IN products (synthesis: ap_int; C simulation: a native integer, same values)
typedef mac_int<ENG_X_BITS + fx_info<w_t>::W + 1 + clog2<ENGINE_IN>::value>::type eng_psum_t;
typedef mac_int<ENG_X_BITS>::type eng_xm_t;
typedef mac_int<fx_info<w_t>::W>::type eng_wm_t;

// AXI words of one ENGINE_OUT x ENGINE_IN tile of W_T values (tiles are padded to whole words)
template <class W_T>
struct engine_tile_words {
    static const int PER = packed_ptr<W_T>::PER;
    static const int value = (ENGINE_OUT * ENGINE_IN + PER - 1) / PER;
};
static const int ENG_TW = engine_tile_words<w_t>::value;
static const int ENG_LW = (ENG_TW + WEIGHT_PORTS - 1) / WEIGHT_PORTS;   // load steps of one tile
typedef ap_uint<WEIGHT_PORTS * AXI_BITS> eng_step_t;                   // one load step: a word per port

// int8 packing (pack2.h): when x and w codes fit 9 and 8 bits (w8a8: s8 activations and u8 pixels)
// and ENGINE_OUT is even, output columns 2k and 2k+1 share x[i]: one DSP48E2 multiplies x[i] (18-bit
// port) by w[2k+1][i] * 2^S + w[2k][i] (27-bit pre-adder), so two MACs take one DSP.  The pair's
// ENGINE_IN products run as dot2_long chains (4 terms for 9-bit x 8-bit codes) whose sums are split
// and added: the same exact integer sums as the plain adder tree.
static const bool ENG_PACKED = ENG_X_BITS <= 9 && fx_info<w_t>::W <= 8 && ENGINE_OUT % 2 == 0;

// the packed chains' length and the summing stage's depth: the adder tree, or a chain, its split
// and the chunk adds (computed only for the packed case: pack2's checks need 8-bit operands)
template <bool PACK, int D = 0>
struct eng_pack_info {
    static const int CHUNK = ENGINE_IN;
    static const int SUM_DEPTH = clog2<ENGINE_IN>::value;
};
template <int D>
struct eng_pack_info<true, D> {
    static const int S = pack2_dsp_shift<eng_w_t>::value + D;   // D = 0: only makes S dependent
    static const int MAX_N = pack2_max_terms<eng_x_t, eng_w_t, S, PACK2_BIAS>::value;
    static const int CHUNK = MAX_N < ENGINE_IN ? MAX_N : ENGINE_IN;
    static const int SUM_DEPTH = CHUNK + 1 + clog2<(ENGINE_IN + CHUNK - 1) / CHUNK>::value;
};
// the config header's ENG_SUM_DEPTH is the cycle model's (codegen/model_common.py engine_sum_depth)
static_assert(ENG_SUM_DEPTH == eng_pack_info<ENG_PACKED>::SUM_DEPTH,
              "edgemoe_config.h's ENG_SUM_DEPTH (codegen/model_common.py) differs from the engine's summing stage");

template <bool PACK, int D = 0>
struct engine_sums {
    // s[o] = sum over i of x[i] * w[o][i], exact: one multiplier per MAC and an adder tree
    static void run(const eng_x_t xv[ENGINE_IN], const eng_w_t w[ENGINE_OUT][ENGINE_IN], eng_psum_t s[ENGINE_OUT]) {
#pragma HLS INLINE
    eng_sum_out:
        for (int o = 0; o < ENGINE_OUT; o++) {
            eng_psum_t t = 0;
        eng_sum_in:
            for (int i = 0; i < ENGINE_IN; i++) {
                t += eng_psum_t(eng_xm_t(xv[i]) * eng_wm_t(w[o][i]));
            }
            s[o] = t;
        }
    }
};

template <int D>
struct engine_sums<true, D> {
    static void run(const eng_x_t xv[ENGINE_IN], const eng_w_t w[ENGINE_OUT][ENGINE_IN], eng_psum_t s[ENGINE_OUT]) {
#pragma HLS INLINE
    eng_pk_pairs:
        for (int k = 0; k < ENGINE_OUT / 2; k++) {
            eng_w_t b0[ENGINE_IN], b1[ENGINE_IN];
#pragma HLS ARRAY_PARTITION variable=b0 complete
#pragma HLS ARRAY_PARTITION variable=b1 complete
        eng_pk_w:
            for (int i = 0; i < ENGINE_IN; i++) {
                b0[i] = w[2 * k][i];
                b1[i] = w[2 * k + 1][i];
            }
            ap_int<ENG_X_BITS + fx_info<w_t>::W + 1 + clog2<ENGINE_IN>::value> s0, s1;
            dot2_long<ENGINE_IN, eng_pack_info<true, D>::S, PACK2_BIAS>(xv, b0, b1, s0, s1);
            s[2 * k] = eng_psum_t(s0);
            s[2 * k + 1] = eng_psum_t(s1);
        }
    }
};

// The MAC array on one row: a_out[o] = a_in[o] + sum_i x[i] * w[o][i], wrapping at the accumulator's
// width (which gives the same value as adding the products one by one).  Also the standalone unit
// top's MAC core (unit_tops/linear_top.cpp.j2).
inline void engine_macs(const eng_x_t xv[ENGINE_IN], const eng_w_t w[ENGINE_OUT][ENGINE_IN],
                        const eng_acc_t a_in[ENGINE_OUT], eng_acc_t a_out[ENGINE_OUT]) {
#pragma HLS INLINE
    eng_psum_t s[ENGINE_OUT];
#pragma HLS ARRAY_PARTITION variable=s complete
    engine_sums<ENG_PACKED>::run(xv, w, s);
eng_macs_acc:
    for (int o = 0; o < ENGINE_OUT; o++) {
        a_out[o] = a_in[o] + eng_acc_t(s[o]);
    }
}

// one engine call
struct engine_cmd {
    int mode;          // ENG_*
    int src;           // ENG_SRC_*
    bool gather;       // row k is queue entry q_off + k (its token row), else row k
    int q_off;         // first queue entry (ENG_SCATTER and gathered calls)
    int n_rows;        // 1 .. MAX_ROWS
    int n_it, n_ot;    // input tiles (in_dim / ENGINE_IN), output tiles (out_dim / ENGINE_OUT)
    int x_word;        // the source's word of row 0 (a batch image's offset)
    int x_row_words;   // source words per row (in_dim / the source's lanes)
    int y_word;        // the destination's word of row 0
    int y_row_words;   // destination words per row (out_dim / the destination's lanes)
    int b_chunk;       // first bias chunk (bias element offset / ENGINE_OUT)
    long w_off;        // port 0's first weight word; port p's at w_off + p * w_steps
    int w_steps;       // load steps of the call (n_ot * n_it * ENG_LW)
    int d_acc, d_y;    // fraction-bit offsets of the accumulator and the output (D_* tables)
};

// the engine call of a layer: sizes in tiles and words, the bias as chunks of ENGINE_OUT values
inline engine_cmd engine_call(int mode, int src, int n_rows, int in_dim, int out_dim, int x_word, int y_word,
                              int b_off, long w_off, int d_acc, int d_y, bool gather = false, int q_off = 0) {
#pragma HLS INLINE
    const int src_lanes = src == ENG_SRC_LNB ? LNB_LANES : src == ENG_SRC_ATT ? ATT_LANES
                        : src == ENG_SRC_HID ? HID_LANES : PIXEL_LANES;
    const int dst_lanes = mode == ENG_QKV ? QKV_LANES : mode == ENG_GATE ? LOGITS_LANES
                        : mode == ENG_GELU ? HID_LANES : mode == ENG_POS ? X_LANES : TMP_LANES;
    engine_cmd c;
    c.mode = mode;
    c.src = src;
    c.gather = gather;
    c.q_off = q_off;
    c.n_rows = n_rows;
    c.n_it = in_dim / ENGINE_IN;
    c.n_ot = out_dim / ENGINE_OUT;
    c.x_word = x_word;
    c.x_row_words = in_dim / src_lanes;
    c.y_word = y_word;
    c.y_row_words = out_dim / dst_lanes;
    c.b_chunk = b_off / ENGINE_OUT;
    c.w_off = w_off;
    c.w_steps = c.n_ot * c.n_it * ENG_LW;
    c.d_acc = d_acc;
    c.d_y = d_y;
    return c;
}

// unpack load step k (one AXI word per port) into the next tile's raw weights; the words past the
// tile's last value are padding
inline void engine_unpack(const eng_step_t &step, int k, eng_w_t tile[ENGINE_OUT][ENGINE_IN]) {
#pragma HLS INLINE
    const int SB = packed_ptr<w_t>::SB;
    const int PER = packed_ptr<w_t>::PER;
    const int W = fx_info<w_t>::W;
eng_unpack_ports:
    for (int p = 0; p < WEIGHT_PORTS; p++) {
        const axi_lanes<SB> lanes(axi_word_t(step.range(p * AXI_BITS + AXI_BITS - 1, p * AXI_BITS)));
    eng_unpack_lanes:
        for (int l = 0; l < PER; l++) {
            const int j = (k * WEIGHT_PORTS + p) * PER + l;
            if (j < ENGINE_OUT * ENGINE_IN) {
                const ap_uint<W> bits = lanes[l];
                tile[j / ENGINE_IN][j % ENGINE_IN] = eng_w_t(bits);
            }
        }
    }
}

// per-channel weight scales (ENG_PER_CHANNEL, golden/channel_scales.py): output lane o of a layer reads
// its shift beside its bias (wsh beside bias, qkv_wsh beside qkv_b); its accumulator has that many more
// fraction bits, which the bias rescale and the epilogue's rescale take in
#if ENG_PER_CHANNEL
#define ENG_WSH_PARAMS , const wsh_t wsh[WSH_WORDS][WSH_BANKS][WSH_GROUP], \
        const wsh_t qkv_wsh[QKV_WSH_WORDS][QKV_WSH_BANKS][QKV_WSH_GROUP]
#define ENG_WSH_NAMES , wsh, qkv_wsh
#define ENG_WSH_ARGS , g_wsh, g_qkv_wsh
#else
#define ENG_WSH_PARAMS
#define ENG_WSH_NAMES
#define ENG_WSH_ARGS
#endif

// the buffers the engine reads and writes: the top's globals (and the unit test harness's)
#define ENGINE_BUFFER_PARAMS                                                                          \
    const lin_in_t lnb[LNB_WORDS][LNB_BANKS][LNB_GROUP], const lin_in_t att[ATT_WORDS][ATT_BANKS][ATT_GROUP], \
        lin_in_t hid[HID_WORDS][HID_BANKS][HID_GROUP], const pixel_t pix[PIXEL_WORDS][PIXEL_BANKS][PIXEL_GROUP], \
        const b_t bias[BIAS_WORDS][BIAS_BANKS][BIAS_GROUP],                                           \
        const qkv_b_t qkv_b[QKV_B_WORDS][QKV_B_BANKS][QKV_B_GROUP],                                    \
        const bias_t pe_b[PE_B_WORDS][PE_B_BANKS][PE_B_GROUP], const bias_t pos[POS_WORDS][POS_BANKS][POS_GROUP], \
        const tok_idx_t qtok[QTOK_WORDS], const slot_idx_t qslot[QSLOT_WORDS],                         \
        const gate_score_t qscore[QSCORE_WORDS], qkv_t qkv[QKV_WORDS][QKV_BANKS][QKV_GROUP],          \
        act_t tmp[TMP_PARTS][TMP_WORDS][TMP_BANKS][TMP_GROUP],                                       \
        gate_logit_t logits[LOGITS_WORDS][LOGITS_BANKS][LOGITS_GROUP], act_t x[X_WORDS][X_BANKS][X_GROUP]  \
        ENG_WSH_PARAMS
#define ENGINE_BUFFER_NAMES lnb, att, hid, pix, bias, qkv_b, pe_b, pos, qtok, qslot, qscore, qkv, tmp, logits, x \
    ENG_WSH_NAMES
#define ENGINE_BUFFER_ARGS g_lnb, g_att, g_hid, g_pix, g_bias, g_qkv_b, g_pe_b, g_pos, g_qtok, g_qslot, g_qscore, \
    g_qkv, g_tmp, g_logits, g_x ENG_WSH_ARGS

// the GELU's table: one dual-port copy per output lane (a GELU reads two entries)
static const gelu_code_t GELU_ROM[ENGINE_OUT][GELU_TABLE_SIZE] = GELU_ROMS_ENGINE_INIT;

// row k's ENGINE_IN inputs from a source buffer, as raw codes
template <class T, int NB, int G>
void engine_read_x(const T (*buf)[NB][G], int word, int it, eng_x_t xv[ENGINE_IN]) {
#pragma HLS INLINE
    T v[ENGINE_IN];
#pragma HLS ARRAY_PARTITION variable=v complete
    lw_get<ENGINE_IN>(buf, word, it * ENGINE_IN, v);
eng_read_lanes:
    for (int i = 0; i < ENGINE_IN; i++) {
        xv[i] = eng_x_t(fx_raw(v[i]));   // sign- or zero-extended by T's sign
    }
}

inline void engine_fetch(long w_off, int w_steps, const axi_word_t *w WPORTS_PARAMS(w), hls::stream<eng_step_t> &ws) {
#pragma HLS INLINE off
    const long base0 = w_off;
#if WEIGHT_PORTS > 1
    const long base1 = w_off + w_steps;
#endif
#if WEIGHT_PORTS > 2
    const long base2 = w_off + 2 * long(w_steps);
#endif
#if WEIGHT_PORTS > 3
    const long base3 = w_off + 3 * long(w_steps);
#endif
eng_fetch:
    for (int i = 0; i < w_steps; i++) {
#pragma HLS loop_tripcount min=1 max=ENG_MAX_STEPS
#pragma HLS PIPELINE II=1
        EM_ITER("eng_fetch", i);
        eng_step_t s;
        s.range(AXI_BITS - 1, 0) = axi_rd(w, base0 + i);
#if WEIGHT_PORTS > 1
        s.range(2 * AXI_BITS - 1, AXI_BITS) = axi_rd(w1, base1 + i);
#endif
#if WEIGHT_PORTS > 2
        s.range(3 * AXI_BITS - 1, 2 * AXI_BITS) = axi_rd(w2, base2 + i);
#endif
#if WEIGHT_PORTS > 3
        s.range(4 * AXI_BITS - 1, 3 * AXI_BITS) = axi_rd(w3, base3 + i);
#endif
        ws.write(s);
    }
}

inline void engine_compute(const engine_cmd c, hls::stream<eng_step_t> &ws, ENGINE_BUFFER_PARAMS) {
#pragma HLS INLINE off
    EDGEMOE_CHECK(c.n_rows >= 1 && c.n_rows <= MAX_ROWS && c.n_it >= 1 && c.n_ot >= 1);
    EDGEMOE_CHECK(c.w_steps == c.n_ot * c.n_it * ENG_LW);
    // the current and the next weight tile, as raw codes in registers
    eng_w_t wcur[ENGINE_OUT][ENGINE_IN], wnext[ENGINE_OUT][ENGINE_IN];
#pragma HLS ARRAY_PARTITION variable=wcur complete dim=0
#pragma HLS ARRAY_PARTITION variable=wnext complete dim=0
    // a row's accumulators: one memory per output lane
    eng_acc_t acc[MAX_ROWS][ENGINE_OUT][1];
#pragma HLS ARRAY_PARTITION variable=acc complete dim=2
#ifdef EDGEMOE_PROBE
    em_probe_buffer(acc, sizeof(acc), "engine.acc", ENGINE_OUT, 0);
#endif
eng_prologue:
    for (int k = 0; k < ENG_LW; k++) {
#pragma HLS PIPELINE II=1
        EM_ITER("eng_prologue", k);
        engine_unpack(ws.read(), k, wnext);
    }
eng_first_tile:
    for (int o = 0; o < ENGINE_OUT; o++) {
#pragma HLS UNROLL
    eng_first_tile_in:
        for (int i = 0; i < ENGINE_IN; i++) {
            wcur[o][i] = wnext[o][i];
        }
    }
    const int n_tiles = c.n_ot * c.n_it;
    int n_iter = c.n_rows > ENG_LW ? c.n_rows : ENG_LW;          // max(rows, LW, ENGINE_ACC_DISTANCE)
    if (n_iter < ENGINE_ACC_DISTANCE) n_iter = ENGINE_ACC_DISTANCE;
    int k = 0, it = 0, ot = 0, tile = 0;
eng_loop:
    for (int n = 0; n < n_tiles * n_iter; n++) {
#pragma HLS loop_tripcount min=1 max=MAX_OUT_TILES*MAX_IN_TILES*MAX_ROWS
#pragma HLS PIPELINE II=1
#pragma HLS DEPENDENCE variable=acc inter RAW distance=ENGINE_ACC_DISTANCE true
        EM_ITER("eng_loop", n);
        const bool first = it == 0;
        const bool last = it == c.n_it - 1;
        // load: step k of the next tile
        if (k < ENG_LW && tile + 1 < n_tiles) engine_unpack(ws.read(), k, wnext);
        if (k < c.n_rows) {
            // the row: its source row (a queue entry's token row when gathered) and destination
            const int q = c.q_off + k;
            const int tok = int(pl_rd(qtok, q));
            const int src_row = c.gather ? tok : k;
            const int xw = c.x_word + src_row * c.x_row_words;
            eng_x_t xv[ENGINE_IN];
#pragma HLS ARRAY_PARTITION variable=xv complete
            if (c.src == ENG_SRC_LNB) {
                engine_read_x(lnb, xw, it, xv);
            } else if (c.src == ENG_SRC_ATT) {
                engine_read_x(att, xw, it, xv);
            } else if (c.src == ENG_SRC_HID) {
                engine_read_x(hid, xw, it, xv);
            } else {
                engine_read_x(pix, xw, it, xv);
            }
            // the lanes' per-channel weight scales (0 without them; the gate and the patch embedding have none)
            int sh[ENGINE_OUT];
#pragma HLS ARRAY_PARTITION variable=sh complete
#if ENG_PER_CHANNEL
            {
                const bool none = c.mode == ENG_GATE || c.mode == ENG_POS;
                const int sc = none ? 0 : (c.b_chunk + ot) * ENGINE_OUT;
                wsh_t sv[ENGINE_OUT];
                if (c.mode == ENG_QKV) {
                    lw_get<ENGINE_OUT>(qkv_wsh, 0, sc, sv);
                } else {
                    lw_get<ENGINE_OUT>(wsh, 0, sc, sv);
                }
            eng_wsh:
                for (int o = 0; o < ENGINE_OUT; o++) sh[o] = none ? 0 : int(fx_raw(sv[o]));
            }
#else
        eng_wsh_none:
            for (int o = 0; o < ENGINE_OUT; o++) sh[o] = 0;
#endif
            // the row's accumulators: the bias (at the accumulator's scale) on the first input tile
            eng_acc_t a_in[ENGINE_OUT], a_out[ENGINE_OUT];
#pragma HLS ARRAY_PARTITION variable=a_in complete
#pragma HLS ARRAY_PARTITION variable=a_out complete
            if (first) {
                const int bc = c.b_chunk + ot;
                if (c.mode == ENG_QKV) {
                    qkv_b_t bv[ENGINE_OUT];
                    lw_get<ENGINE_OUT>(qkv_b, 0, bc * ENGINE_OUT, bv);
                eng_bias_qkv:
                    for (int o = 0; o < ENGINE_OUT; o++) a_in[o] = eng_acc_t(fx_raw(rescale<acc_t>(bv[o], -(c.d_acc + sh[o]))));
                } else if (c.mode == ENG_POS) {
                    bias_t bv[ENGINE_OUT];
                    lw_get<ENGINE_OUT>(pe_b, 0, bc * ENGINE_OUT, bv);
                eng_bias_pos:
                    for (int o = 0; o < ENGINE_OUT; o++) a_in[o] = eng_acc_t(fx_raw(rescale<patch_acc_t>(bv[o], 0)));
                } else if (c.mode == ENG_GATE) {
                eng_bias_none:
                    for (int o = 0; o < ENGINE_OUT; o++) a_in[o] = 0;
                } else {
                    b_t bv[ENGINE_OUT];
                    lw_get<ENGINE_OUT>(bias, 0, bc * ENGINE_OUT, bv);
                eng_bias_b:
                    for (int o = 0; o < ENGINE_OUT; o++) a_in[o] = eng_acc_t(fx_raw(rescale<acc_t>(bv[o], -(c.d_acc + sh[o]))));
                }
            } else {
            eng_acc_read:
                for (int o = 0; o < ENGINE_OUT; o++) {
                    EM_MEM(&acc[0][0][0], o, 0);
                    a_in[o] = acc[k][o][0];
                }
            }
            engine_macs(xv, wcur, a_in, a_out);
            if (!last) {
            eng_acc_write:
                for (int o = 0; o < ENGINE_OUT; o++) {
                    EM_MEM(&acc[0][0][0], o, 1);
                    acc[k][o][0] = a_out[o];
                }
            } else {
                // the epilogue: the mode's cast (and GELU, score, position), written to its destination
                const int dst_row = c.mode == ENG_SCATTER ? tok : k;
                const int yw = c.y_word + dst_row * c.y_row_words;
                if (c.mode == ENG_QKV) {
                    qkv_t y[ENGINE_OUT];
                eng_epi_qkv:
                    for (int o = 0; o < ENGINE_OUT; o++) {
                        y[o] = rescale<qkv_t>(fx_from_raw<acc_t>(a_out[o]), c.d_acc + sh[o] - c.d_y);
                    }
                    lw_put<ENGINE_OUT>(qkv, yw, ot * ENGINE_OUT, y);
                } else if (c.mode == ENG_GATE) {
                    gate_logit_t y[ENGINE_OUT];
                eng_epi_gate:
                    for (int o = 0; o < ENGINE_OUT; o++) {
                        y[o] = rescale<gate_logit_t>(fx_from_raw<acc_t>(a_out[o]), c.d_acc);
                    }
                    lw_put<ENGINE_OUT>(logits, yw, ot * ENGINE_OUT, y);
                } else if (c.mode == ENG_GELU) {
                    lin_in_t y[ENGINE_OUT];
                eng_epi_gelu:
                    for (int o = 0; o < ENGINE_OUT; o++) {
                        y[o] = gelu(rescale<gelu_in_t>(fx_from_raw<acc_t>(a_out[o]), c.d_acc + sh[o]), c.d_y, GELU_ROM[o]);
                    }
                    lw_put<ENGINE_OUT>(hid, yw, ot * ENGINE_OUT, y);
                } else if (c.mode == ENG_POS) {
                    bias_t pv[ENGINE_OUT];
                    act_t y[ENGINE_OUT];
                    lw_get<ENGINE_OUT>(pos, (k + 1) * (EMBED / POS_LANES), ot * ENGINE_OUT, pv);
                eng_epi_pos:
                    for (int o = 0; o < ENGINE_OUT; o++) {
                        const act_t yv = fx_from_raw<patch_acc_t>(a_out[o]);
                        y[o] = yv + pv[o];
                    }
                    lw_put<ENGINE_OUT>(x, yw, ot * ENGINE_OUT, y);
                } else {
                    // ENG_ACT into slot 0, ENG_SCATTER into the entry's slot: one write site per slot
                    const int slot = c.mode == ENG_SCATTER ? int(pl_rd(qslot, q)) : 0;
                    const gate_score_t sc = pl_rd(qscore, q);
                    act_t y[ENGINE_OUT];
                eng_epi_act:
                    for (int o = 0; o < ENGINE_OUT; o++) {
                        const act_t yv = rescale<act_t>(fx_from_raw<acc_t>(a_out[o]), c.d_acc + sh[o]);
                        const act_t cv = sc * yv;
                        y[o] = c.mode == ENG_SCATTER ? cv : yv;
                    }
                eng_epi_slots:
                    for (int s = 0; s < TMP_PARTS; s++) {
                        if (s == slot) lw_put<ENGINE_OUT>(tmp[s], yw, ot * ENGINE_OUT, y);
                    }
                }
            }
        }
        // advance (ot, it, k); the next tile becomes the current one at the end of a tile
        if (k == n_iter - 1) {
        eng_switch:
            for (int o = 0; o < ENGINE_OUT; o++) {
            eng_switch_in:
                for (int i = 0; i < ENGINE_IN; i++) {
                    wcur[o][i] = wnext[o][i];
                }
            }
            k = 0;
            tile++;
            if (last) {
                it = 0;
                ot++;
            } else {
                it++;
            }
        } else {
            k++;
        }
    }
}

// One engine call (see the top of this file).  Called by the top only; its argument list is the
// same at every call site.
inline void linear_engine(const engine_cmd c, const axi_word_t *w WPORTS_PARAMS(w), ENGINE_BUFFER_PARAMS) {
#pragma HLS INLINE off
#pragma HLS DATAFLOW
    hls::stream<eng_step_t> ws;
#pragma HLS STREAM variable=ws depth=ENG_FIFO_DEPTH
#pragma HLS BIND_STORAGE variable=ws type=fifo impl=lutram
    engine_fetch(c.w_off, c.w_steps, w WPORTS_FWD(w, 0), ws);
    engine_compute(c, ws, ENGINE_BUFFER_NAMES);
}

#endif  // EDGEMOE_LINEAR_H
