// moe_route.h -- MoE routing unit (patch reordering): gate logits, softmax over all experts,
// top-k by logit (equal logits: lower expert first), per-expert queues of (token, score) in token
// order.  Mirrors edgemoe.golden.units.moe_route.route_fixed bit for bit.
//
// The task's gate weights are loaded on chip once per call (one AXI word per cycle from a packed
// pointer, one value per cycle from a plain one).  Per token: the logits of all experts at once
// (EMBED cycles, one x value times every expert's weight per cycle, exact gate_acc_t sums), then
// the single-pass softmax over the experts, the probabilities, top-k (an unrolled argmax per k)
// and the queue entries.  The softmax and probability loops run one exp per iteration: its two
// table reads take both ports of the one global EXP2_TABLE ROM (softmax.h), no copy needed.
//
// Call signature:
//   template <class GP> void moe_route_unit(const lin_in_t *x, GP wg, int n_tok, int d_x, int d_gw,
//                       gate_logit_t *logits, gate_score_t *probs,
//                       expert_idx_t *topk_idx, gate_score_t *topk_score,
//                       tok_idx_t *queue_tok, gate_score_t *queue_score, tok_idx_t *queue_len);
//   x: [n_tok][EMBED] (norm2 output); wg: [NUM_EXPERTS][EMBED] (the task's gate, one row per expert;
//   a gate_w_t pointer or a packed_ptr<gate_w_t> into AXI words);
//   logits, probs: [n_tok][NUM_EXPERTS] (taps); topk_idx, topk_score: [n_tok][TOP_K], best first;
//   queue_tok, queue_score: [NUM_EXPERTS][TOKENS]; queue_len: [NUM_EXPERTS] (0: expert skipped).
//   d_x = D_LN2[block], d_gw = D_GATE_W[block].
#ifndef EDGEMOE_MOE_ROUTE_H
#define EDGEMOE_MOE_ROUTE_H

#include "edgemoe_fixed.h"
#include "softmax.h"

// gate weights on chip: wbuf[e][i / GATE_PER][i % GATE_PER] = wg[e * EMBED + i], so that one AXI
// word (GATE_PER values) lands in GATE_PER banks and the dot products read one bank per expert
static const int GATE_PER = packed_ptr<gate_w_t>::PER;
static const int GATE_WORDS = (EMBED + GATE_PER - 1) / GATE_PER;   // words per expert row

// one value per cycle
template <class GP>
void gate_load_values(gate_w_t wbuf[NUM_EXPERTS][GATE_WORDS][GATE_PER], const GP wg) {
#pragma HLS INLINE
gate_load_rows:
    for (int e = 0; e < NUM_EXPERTS; e++) {
    gate_load_cols:
        for (int i = 0; i < EMBED; i++) {
#pragma HLS PIPELINE II=1
            wbuf[e][i / GATE_PER][i % GATE_PER] = wg[e * EMBED + i];
        }
    }
}

// a plain pointer: one value per cycle
template <class GP>
void gate_load(gate_w_t wbuf[NUM_EXPERTS][GATE_WORDS][GATE_PER], const GP wg) {
#pragma HLS INLINE
    gate_load_values(wbuf, wg);
}

// AXI words: one word per cycle when every expert row starts at a word boundary (always so in
// the kernel when EMBED is a multiple of GATE_PER), else one value per cycle
inline void gate_load(gate_w_t wbuf[NUM_EXPERTS][GATE_WORDS][GATE_PER], const packed_ptr<gate_w_t> wg) {
#pragma HLS INLINE
    if (EMBED % GATE_PER != 0 || wg.off % GATE_PER != 0) {
        gate_load_values(wbuf, wg);
        return;
    }
    const axi_word_t *w0 = wg.base + wg.off / GATE_PER;
gate_words_rows:
    for (int e = 0; e < NUM_EXPERTS; e++) {
    gate_words:
        for (int w = 0; w < GATE_WORDS; w++) {
#pragma HLS PIPELINE II=1
            const axi_word_t word = w0[e * GATE_WORDS + w];
        gate_word_lanes:
            for (int l = 0; l < GATE_PER; l++) {
                ap_uint<packed_ptr<gate_w_t>::SB> bits = word.range(l * packed_ptr<gate_w_t>::SB + packed_ptr<gate_w_t>::SB - 1,
                                                                     l * packed_ptr<gate_w_t>::SB);
                wbuf[e][w][l] = fx_from_raw<gate_w_t>(bits);
            }
        }
    }
}

template <class GP>
void moe_route_unit(const lin_in_t *x, const GP wg, int n_tok, int d_x, int d_gw,
                    gate_logit_t *logits, gate_score_t *probs, expert_idx_t *topk_idx,
                    gate_score_t *topk_score, tok_idx_t *queue_tok, gate_score_t *queue_score,
                    tok_idx_t *queue_len) {
    gate_w_t wbuf[NUM_EXPERTS][GATE_WORDS][GATE_PER];
    gate_acc_t acc[NUM_EXPERTS];
    gate_logit_t lg[NUM_EXPERTS];
    gate_score_t pr[NUM_EXPERTS];
    tok_idx_t qlen[NUM_EXPERTS];
#pragma HLS ARRAY_PARTITION variable=wbuf complete dim=1
#pragma HLS ARRAY_PARTITION variable=wbuf complete dim=3
#pragma HLS ARRAY_PARTITION variable=acc complete
#pragma HLS ARRAY_PARTITION variable=lg complete
#pragma HLS ARRAY_PARTITION variable=pr complete
#pragma HLS ARRAY_PARTITION variable=qlen complete
    gate_load(wbuf, wg);
route_clear:
    for (int e = 0; e < NUM_EXPERTS; e++) {
#pragma HLS UNROLL
        qlen[e] = 0;
    }
route_tokens:
    for (int t = 0; t < n_tok; t++) {
#pragma HLS loop_tripcount min=1 max=TOKENS
        // gate logits of every expert at once: one x value per cycle times each expert's weight,
        // exact accumulators (gate_acc_t)
    route_acc_clear:
        for (int e = 0; e < NUM_EXPERTS; e++) {
#pragma HLS UNROLL
            acc[e] = 0;
        }
    route_dot:
        for (int i = 0; i < EMBED; i++) {
#pragma HLS PIPELINE II=1
            const lin_in_t xv = x[t * EMBED + i];
        route_dot_experts:
            for (int e = 0; e < NUM_EXPERTS; e++) {
                acc[e] += xv * wbuf[e][i / GATE_PER][i % GATE_PER];
            }
        }
        // logits out and the softmax over all experts, in expert order
        gate_logit_t m = 0;
        sm_sum_t S = 0;
    route_sm:
        for (int e = 0; e < NUM_EXPERTS; e++) {
#pragma HLS PIPELINE II=1
            const gate_logit_t l = rescale<gate_logit_t>(acc[e], d_x + d_gw);
            lg[e] = l;
            logits[t * NUM_EXPERTS + e] = l;
            if (e == 0) {
                sm_init(l, m, S);
            } else {
                sm_update(l, m, S);
            }
        }
        recip_t r = sm_recip(S);
    route_probs:
        for (int e = 0; e < NUM_EXPERTS; e++) {
#pragma HLS PIPELINE II=1
            pr[e] = sm_prob<gate_score_t>(lg[e], m, r);
            probs[t * NUM_EXPERTS + e] = pr[e];
        }
        // top-k by logit: strict '>' in expert order keeps the lower index on ties
        bool taken[NUM_EXPERTS];
#pragma HLS ARRAY_PARTITION variable=taken complete
    route_untake:
        for (int e = 0; e < NUM_EXPERTS; e++) {
#pragma HLS UNROLL
            taken[e] = false;
        }
    route_topk:
        for (int j = 0; j < TOP_K; j++) {
            int best = -1;
        route_argmax:
            for (int e = 0; e < NUM_EXPERTS; e++) {
#pragma HLS UNROLL
                if (!taken[e] && (best < 0 || lg[e] > lg[best])) best = e;
            }
            taken[best] = true;
            topk_idx[t * TOP_K + j] = best;
            topk_score[t * TOP_K + j] = pr[best];
            const int slot = best * TOKENS + int(qlen[best]);
            queue_tok[slot] = t;
            queue_score[slot] = pr[best];
            qlen[best] = qlen[best] + 1;
        }
    }
route_lens:
    for (int e = 0; e < NUM_EXPERTS; e++) {
        queue_len[e] = qlen[e];
    }
}

#endif  // EDGEMOE_MOE_ROUTE_H
