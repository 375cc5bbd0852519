// moe_route.h -- MoE routing unit (patch reordering): gate logits, softmax over all experts,
// top-k by logit (equal logits: lower expert first), per-expert queues of (token, score) in token
// order.  Mirrors edgemoe.golden.units.moe_route.route_fixed bit for bit.
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

template <class GP>
void moe_route_unit(const lin_in_t *x, const GP wg, int n_tok, int d_x, int d_gw,
                    gate_logit_t *logits, gate_score_t *probs, expert_idx_t *topk_idx,
                    gate_score_t *topk_score, tok_idx_t *queue_tok, gate_score_t *queue_score,
                    tok_idx_t *queue_len) {
    gate_w_t wbuf[NUM_EXPERTS][EMBED];
    gate_logit_t lg[NUM_EXPERTS];
    gate_score_t pr[NUM_EXPERTS];
    tok_idx_t qlen[NUM_EXPERTS];
#pragma HLS ARRAY_PARTITION variable=wbuf complete dim=1
#pragma HLS ARRAY_PARTITION variable=lg complete
#pragma HLS ARRAY_PARTITION variable=pr complete
#pragma HLS ARRAY_PARTITION variable=qlen complete
route_load_w:
    for (int e = 0; e < NUM_EXPERTS; e++) {
    route_load_w_cols:
        for (int i = 0; i < EMBED; i++) {
#pragma HLS PIPELINE II=1
            wbuf[e][i] = wg[e * EMBED + i];
        }
    }
route_clear:
    for (int e = 0; e < NUM_EXPERTS; e++) {
#pragma HLS UNROLL
        qlen[e] = 0;
    }
route_tokens:
    for (int t = 0; t < n_tok; t++) {
#pragma HLS loop_tripcount min=1 max=TOKENS
        // gate logits: exact dot products (gate_acc_t), cast to gate_logit_t
    route_gate:
        for (int e = 0; e < NUM_EXPERTS; e++) {
            gate_acc_t a = 0;
        route_dot:
            for (int i = 0; i < EMBED; i++) {
#pragma HLS PIPELINE II=1
                a += x[t * EMBED + i] * wbuf[e][i];
            }
            lg[e] = rescale<gate_logit_t>(a, d_x + d_gw);
            logits[t * NUM_EXPERTS + e] = lg[e];
        }
        // softmax over all experts, in expert order
        gate_logit_t m = 0;
        sm_sum_t S = 0;
    route_sm:
        for (int e = 0; e < NUM_EXPERTS; e++) {
#pragma HLS PIPELINE II=1
            if (e == 0) {
                sm_init(lg[0], m, S);
            } else {
                sm_update(lg[e], m, S);
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
