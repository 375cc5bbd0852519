// moe_route.h -- MoE routing unit (patch reordering): gate logits on the shared linear engine, then
// softmax over all experts, top-k by logit (equal logits: lower expert first), per-expert queues of
// (token, score) in token order.  Mirrors edgemoe.golden.units.moe_route.route_fixed bit for bit.
//
// Gate (gate_logits_unit): a linear layer without bias, logits[t][e] = x[t] . W_gate[e], run on the
// one linear engine (linear.h, LIN_PLAIN, no bias).  The task's gate is stored in engine tile order
// with its expert rows padded with zero weights to GATE_ROWS = NUM_EXPERTS rounded up to ENGINE_OUT
// (codegen/pack.py: GATE_OUT / GATE_TASK_WORDS in edgemoe_layout.h); the engine writes
// [n_tok][GATE_ROWS] logits, the padded ones are never read.  One engine call: n_rows = n_tok,
// in_dim = EMBED, out_dim = GATE_ROWS: (GATE_ROWS / ENGINE_OUT) * (EMBED / ENGINE_IN) tiles,
// cycles LW + tiles * max(n_tok, LW) + depth (linear.h).
//
// Route (moe_route_unit): route_groups, ceil(n_tok / G) iterations over groups of G = ROUTE_GROUP
// tokens t0 .. t0 + G - 1 (a partial last group computes copies of the last token and discards them):
//   route_sm     E * G iterations, II=1: iteration (e, g) feeds logit e of token g to that token's
//                single-pass softmax state (m[g], S[g]).  A token's state is touched again only G
//                iterations later (DEPENDENCE distance G), so the carried S update (exp, multiply,
//                add: a few cycles) does not bound the II as long as its latency is <= G.
//   route_recip  G iterations, II=1: r[g] = 1 / S[g] (one pipelined divider).
//   route_probs  E * G iterations, II=1: p = exp(l - m[g]) * r[g] (one exp per cycle: its two table
//                reads take both ports of the one EXP2_TABLE ROM, softmax.h).
//   route_group_tokens  G iterations, each route_topk: TOP_K iterations of an unrolled argmax
//                (route_argmax) over the token's logits (strict '>' in expert order keeps the lower
//                index on ties) and its queue entry (queues in token order, as before).
//   Cycles per call ~ ceil(n_tok / G) * (2 * E * G + G + G * TOP_K * c_k + D_sm + D_div + D_p), with
//   D_*: the three loops' pipeline depths (D_div: the divider's, ~F(recip) + F(sum) stages), c_k: the
//   cycles of one unrolled argmax (a few).
// Per MoE block (E = NUM_EXPERTS, T tokens, LW = the engine's load steps per tile):
//   gate   LW + (GATE_ROWS / ENGINE_OUT) * (EMBED / ENGINE_IN) * max(T, LW) + engine depth
//   route  ceil(T / G) * (2 * E * G + G + G * TOP_K * c_k + D_sm + D_div + D_p)
//   Tiny model (E = 16, EMBED = 192, T = 129, 16x16 engine, G = 4, TOP_K = 2): gate 12 tiles * 129
//   rows ~ 1.6k cycles; route 33 groups * (132 + 8 * c_k + ~60 depth) ~ 7k cycles (~54 per token,
//   was ~200 with the gate computed here).
//
// Call signatures:
//   void gate_logits_unit(const lin_in_t *x, const axi_word_t *w WPORTS_PARAMS(w), gate_logit_t *logits,
//                         int n_tok, int d_x, int d_gw);
//     x: [n_tok][EMBED] (norm2 output); w: the task's gate in engine tile order (AXI words, GATE_ROWS x
//     EMBED); logits: [n_tok][GATE_ROWS]; d_x = D_LN2[block], d_gw = D_GATE_W[block].
//   void moe_route_unit(const gate_logit_t *logits, int n_tok, gate_score_t *probs,
//                       expert_idx_t *topk_idx, gate_score_t *topk_score,
//                       tok_idx_t *queue_tok, gate_score_t *queue_score, tok_idx_t *queue_len,
//                       int tok_base = 0, int q_stride = TOKENS, bool append = false);
//     logits: [n_tok][GATE_ROWS]; probs: [n_tok][NUM_EXPERTS] (tap); topk_idx, topk_score:
//     [n_tok][TOP_K], best first; queue_tok, queue_score: [NUM_EXPERTS][q_stride]; queue_len:
//     [NUM_EXPERTS] (0: expert skipped).  append: the queues already hold queue_len entries (earlier
//     images of a batch) and this image's entries follow them, as token rows tok_base + t.
//   void gate_logits_compact(gate_logit_t *logits, int n_tok);
//     [n_tok][GATE_ROWS] -> [n_tok][NUM_EXPERTS] in place, for the logits tap (nothing when unpadded).
#ifndef EDGEMOE_MOE_ROUTE_H
#define EDGEMOE_MOE_ROUTE_H

#include "edgemoe_fixed.h"
#include "softmax.h"
#include "linear.h"

// expert rows of the gate on the engine: whole output tiles (the padding rows are zero weights)
static const int GATE_ROWS = (NUM_EXPERTS + ENGINE_OUT - 1) / ENGINE_OUT * ENGINE_OUT;

// tokens whose softmax runs interleaved: at least the latency of the carried S update
#ifndef ROUTE_GROUP
#define ROUTE_GROUP 4
#endif
#define ROUTE_GROUPS ((TOKENS + ROUTE_GROUP - 1) / ROUTE_GROUP)

// the gate runs on the engine instance of the other layers: same weight storage, and an accumulator
// of the gate's exact width and scale (so the logits are the golden's gate_acc_t sums)
static_assert(fx_info<gate_w_t>::W == fx_info<w_t>::W && fx_info<gate_w_t>::S == fx_info<w_t>::S &&
              fx_info<gate_w_t>::F == fx_info<w_t>::F,
              "the MoE gate weights must have the linear weights' storage type to run on the linear engine");
static_assert(fx_info<gate_acc_t>::W == fx_info<acc_t>::W && fx_info<gate_acc_t>::F == fx_info<acc_t>::F,
              "the linear engine's accumulator must be the gate's exact accumulator (gate_acc_t)");

// operands the gate's engine call does not read
static const tok_idx_t ROUTE_NO_IDX[1] = {0};
static const gate_score_t ROUTE_NO_SCORE[1] = {0};
static const lin_no_bias ROUTE_NO_BIAS[1] = {};

inline void gate_logits_unit(const lin_in_t *x, const axi_word_t *w WPORTS_PARAMS(w), gate_logit_t *logits,
                             int n_tok, int d_x, int d_gw) {
#pragma HLS INLINE
    engine_run<LIN_PLAIN, acc_t, w_t>(x, false, ROUTE_NO_IDX, w WPORTS_FWD(w, 0), ROUTE_NO_BIAS, logits,
                                      ROUTE_NO_IDX, ROUTE_NO_SCORE, ROUTE_NO_SCORE, n_tok, EMBED, GATE_ROWS,
                                      d_x + d_gw, 0);
}

// in place: write index i never passes the read index, so no logit is overwritten before it is read
inline void gate_logits_compact(gate_logit_t *logits, int n_tok) {
    if (GATE_ROWS == NUM_EXPERTS) return;
gate_compact:
    for (int i = 0; i < n_tok * NUM_EXPERTS; i++) {
#pragma HLS loop_tripcount min=1 max=TOKENS*NUM_EXPERTS
#pragma HLS PIPELINE
        logits[i] = logits[(i / NUM_EXPERTS) * GATE_ROWS + i % NUM_EXPERTS];
    }
}

// the next (expert, token of the group) of a route loop: the token fastest
inline void route_next(int &e, int &g) {
#pragma HLS INLINE
    if (g == ROUTE_GROUP - 1) {
        g = 0;
        e++;
    } else {
        g++;
    }
}

inline void moe_route_unit(const gate_logit_t *logits, int n_tok, gate_score_t *probs, expert_idx_t *topk_idx,
                           gate_score_t *topk_score, tok_idx_t *queue_tok, gate_score_t *queue_score,
                           tok_idx_t *queue_len, int tok_base = 0, int q_stride = TOKENS, bool append = false) {
    const int G = ROUTE_GROUP;
    gate_logit_t lg[G][NUM_EXPERTS];   // the group's logits, for the probabilities and top-k
    gate_score_t pr[G][NUM_EXPERTS];
    gate_logit_t m[G];                 // softmax state per token of the group
    sm_sum_t S[G];
    recip_t r[G];
    tok_idx_t qlen[NUM_EXPERTS];
#pragma HLS ARRAY_PARTITION variable=lg complete dim=0
#pragma HLS ARRAY_PARTITION variable=pr complete dim=0
#pragma HLS ARRAY_PARTITION variable=m complete
#pragma HLS ARRAY_PARTITION variable=S complete
#pragma HLS ARRAY_PARTITION variable=r complete
#pragma HLS ARRAY_PARTITION variable=qlen complete
route_clear:
    for (int e = 0; e < NUM_EXPERTS; e++) {
#pragma HLS UNROLL
        qlen[e] = append ? queue_len[e] : tok_idx_t(0);
    }
route_groups:
    for (int t0 = 0; t0 < n_tok; t0 += G) {
#pragma HLS loop_tripcount min=1 max=ROUTE_GROUPS
        // (e, g) with g fastest: consecutive iterations update different tokens' (m, S)
        int e = 0, g = 0;
    route_sm:
        for (int n = 0; n < NUM_EXPERTS * G; n++) {
#pragma HLS PIPELINE II=1
#pragma HLS DEPENDENCE variable=m inter RAW distance=ROUTE_GROUP true
#pragma HLS DEPENDENCE variable=S inter RAW distance=ROUTE_GROUP true
            const int t = t0 + g < n_tok ? t0 + g : n_tok - 1;   // past the last token: a discarded copy
            const gate_logit_t l = logits[t * GATE_ROWS + e];
            lg[g][e] = l;
            gate_logit_t mg = m[g];
            sm_sum_t sg = S[g];
            if (e == 0) {
                sm_init(l, mg, sg);
            } else {
                sm_update(l, mg, sg);
            }
            m[g] = mg;
            S[g] = sg;
            route_next(e, g);
        }
    route_recip:
        for (int k = 0; k < G; k++) {
#pragma HLS PIPELINE II=1
            r[k] = sm_recip(S[k]);
        }
        e = 0;
        g = 0;
    route_probs:
        for (int n = 0; n < NUM_EXPERTS * G; n++) {
#pragma HLS PIPELINE II=1
            const gate_score_t p = sm_prob<gate_score_t>(lg[g][e], m[g], r[g]);
            pr[g][e] = p;
            if (t0 + g < n_tok) probs[(t0 + g) * NUM_EXPERTS + e] = p;
            route_next(e, g);
        }
    route_group_tokens:
        for (int k = 0; k < G; k++) {
            const int t = t0 + k;
            if (t < n_tok) {
                // top-k by logit: strict '>' in expert order keeps the lower index on ties
                bool taken[NUM_EXPERTS];
#pragma HLS ARRAY_PARTITION variable=taken complete
            route_untake:
                for (int x = 0; x < NUM_EXPERTS; x++) {
#pragma HLS UNROLL
                    taken[x] = false;
                }
            route_topk:
                for (int j = 0; j < TOP_K; j++) {
                    int best = -1;
                route_argmax:
                    for (int x = 0; x < NUM_EXPERTS; x++) {
#pragma HLS UNROLL
                        if (!taken[x] && (best < 0 || lg[k][x] > lg[k][best])) best = x;
                    }
                    taken[best] = true;
                    topk_idx[t * TOP_K + j] = best;
                    topk_score[t * TOP_K + j] = pr[k][best];
                    const int slot = best * q_stride + int(qlen[best]);
                    queue_tok[slot] = tok_base + t;
                    queue_score[slot] = pr[k][best];
                    qlen[best] = qlen[best] + 1;
                }
            }
        }
    }
route_lens:
    for (int e = 0; e < NUM_EXPERTS; e++) {
        queue_len[e] = qlen[e];
    }
}

#endif  // EDGEMOE_MOE_ROUTE_H
