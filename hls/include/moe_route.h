// moe_route.h -- MoE routing unit (patch reordering): gate logits on the shared linear engine, then
// softmax over all experts, top-k by logit (equal logits: lower expert first), per-expert queues of
// (token, slot, score) in token order.  Mirrors edgemoe.golden.units.moe_route.route_fixed bit for bit.
//
// Gate: a linear layer without bias, logits[t][e] = x[t] . W_gate[e], run on the one linear engine
// (linear.h, mode ENG_GATE).  The task's gate is stored in engine tile order with its expert rows
// padded with zero weights to GATE_ROWS = NUM_EXPERTS rounded up to ENGINE_OUT (codegen/pack.py:
// GATE_OUT / GATE_TASK_WORDS in edgemoe_layout.h); the engine writes [n_tok][GATE_ROWS] logits, the
// padded ones are never read.  One engine call: n_rows = n_tok, in_dim = EMBED, out_dim = GATE_ROWS:
// (GATE_ROWS / ENGINE_OUT) * (EMBED / ENGINE_IN) tiles (cycles: linear.h).
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
//                index on ties), then route_enqueue: TOP_K queue entries (queues in token order), each
//                with its slot (the expert's rank among the token's experts in expert order).
//   Cycles per call ~ ceil(n_tok / G) * (2 * E * G + G + G * TOP_K * c_k + D_sm + D_div + D_p), with
//   D_*: the three loops' pipeline depths (D_div: the divider's, ~F(recip) + F(sum) stages), c_k: the
//   cycles of one unrolled argmax (a few).
// Per MoE block (E = NUM_EXPERTS, T tokens): route ceil(T / G) * (2 * E * G + G + G * TOP_K * c_k +
//   D_sm + D_div + D_p).  Tiny model (E = 16, T = 129, G = 4, TOP_K = 2): 33 groups * (132 + 8 * c_k +
//   ~60 depth) ~ 7k cycles (~54 per token).
//
// Call signatures:
//   the gate: linear_engine with mode ENG_GATE (linear.h; the top builds the call)
//   void moe_route_unit(const gate_logit_t logits[LOGITS_WORDS][LOGITS_BANKS][LOGITS_GROUP], int n_tok,
//                       gate_score_t probs[PROBS_WORDS][PROBS_BANKS][PROBS_GROUP],
//                       expert_idx_t topk_idx[..], gate_score_t topk_score[..],
//                       tok_idx_t *queue_tok, slot_idx_t *queue_slot, gate_score_t *queue_score,
//                       tok_idx_t *queue_len, int tok_base, int q_stride, bool append);
//     logits: [n_tok][GATE_ROWS] lane words; probs: [n_tok][NUM_EXPERTS], topk_idx / topk_score:
//     [n_tok][TOP_K] (best first), lane words of TAP_LANES values (what the taps dump); queue_*:
//     [NUM_EXPERTS][q_stride] plain arrays; queue_len: [NUM_EXPERTS] (0: expert skipped).  A queue
//     entry is (token row tok_base + t, slot, score): the slot is the rank of the expert among the
//     token's top-k experts in expert order, so that the experts' outputs, written into their slots,
//     add up in the golden model's order.  append: the queues already hold queue_len entries
//     (earlier images of a batch) and this image's entries follow them.  INLINE off: one call site.
//   void gate_logits_tap(const gate_logit_t logits[..], gate_logit_t lgtap[LGTAP_WORDS][..], int n_tok);
//     [n_tok][GATE_ROWS] -> [n_tok][NUM_EXPERTS] for the logits tap (one value per cycle).
#ifndef EDGEMOE_MOE_ROUTE_H
#define EDGEMOE_MOE_ROUTE_H

#include "edgemoe_fixed.h"
#include "edgemoe_mem.h"
#include "softmax.h"

// expert rows of the gate on the engine: whole output tiles (the padding rows are zero weights)
static const int GATE_ROWS = (NUM_EXPERTS + ENGINE_OUT - 1) / ENGINE_OUT * ENGINE_OUT;

// tokens whose softmax runs interleaved (ROUTE_GROUP, edgemoe_config.h, from codegen/design.py): at
// least the latency of the carried S update
#define ROUTE_GROUPS ((TOKENS + ROUTE_GROUP - 1) / ROUTE_GROUP)

// the gate runs on the engine: its weights are stored like the linear weights (checked in linear.h)
static_assert(fx_info<gate_w_t>::F == fx_info<w_t>::F,
              "the MoE gate weights must have the linear weights' storage type to run on the linear engine");

// logit (t, e) of the engine's [n_tok][GATE_ROWS] output
inline gate_logit_t route_logit(const gate_logit_t logits[LOGITS_WORDS][LOGITS_BANKS][LOGITS_GROUP], int t, int e) {
#pragma HLS INLINE
    gate_logit_t v[1];
    lw_get<1>(logits, 0, t * GATE_ROWS + e, v);
    return v[0];
}

// value i of a tap-word buffer (TAP_LANES values per word): one lane written, the others untouched
template <class T, int NB, int G>
void route_put(T (*buf)[NB][G], int i, const T &v) {
#pragma HLS INLINE
    T one[1] = {v};
    lw_put<1>(buf, 0, i, one);
}

inline void gate_logits_tap(const gate_logit_t logits[LOGITS_WORDS][LOGITS_BANKS][LOGITS_GROUP],
                            gate_logit_t lgtap[LGTAP_WORDS][LGTAP_BANKS][LGTAP_GROUP], int n_tok) {
#pragma HLS INLINE
gate_tap:
    for (int i = 0; i < n_tok * NUM_EXPERTS; i++) {
#pragma HLS loop_tripcount min=1 max=TOKENS*NUM_EXPERTS
#pragma HLS PIPELINE II=1
        EM_ITER("gate_tap", i);
        route_put(lgtap, i, route_logit(logits, i / NUM_EXPERTS, i % NUM_EXPERTS));
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

inline void moe_route_unit(const gate_logit_t logits[LOGITS_WORDS][LOGITS_BANKS][LOGITS_GROUP], int n_tok,
                           gate_score_t probs[PROBS_WORDS][PROBS_BANKS][PROBS_GROUP],
                           expert_idx_t topk_idx[TOPK_IDX_WORDS][TOPK_IDX_BANKS][TOPK_IDX_GROUP],
                           gate_score_t topk_score[TOPK_SCORE_WORDS][TOPK_SCORE_BANKS][TOPK_SCORE_GROUP],
                           tok_idx_t queue_tok[QTOK_WORDS], slot_idx_t queue_slot[QSLOT_WORDS],
                           gate_score_t queue_score[QSCORE_WORDS], tok_idx_t queue_len[NUM_EXPERTS], int tok_base,
                           int q_stride, bool append) {
#pragma HLS INLINE off
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
            EM_ITER("route_sm", n);
            const int t = t0 + g < n_tok ? t0 + g : n_tok - 1;   // past the last token: a discarded copy
            const gate_logit_t l = route_logit(logits, t, e);
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
            EM_ITER("route_recip", k);
            r[k] = sm_recip(S[k]);
        }
        e = 0;
        g = 0;
    route_probs:
        for (int n = 0; n < NUM_EXPERTS * G; n++) {
#pragma HLS PIPELINE II=1
            EM_ITER("route_probs", n);
            const gate_score_t p = sm_prob<gate_score_t>(lg[g][e], m[g], r[g]);
            pr[g][e] = p;
            if (t0 + g < n_tok) route_put(probs, (t0 + g) * NUM_EXPERTS + e, p);
            route_next(e, g);
        }
    route_group_tokens:
        for (int k = 0; k < G; k++) {
            const int t = t0 + k;
            if (t < n_tok) {
                // top-k by logit: strict '>' in expert order keeps the lower index on ties
                bool taken[NUM_EXPERTS];
                int pick[TOP_K];
#pragma HLS ARRAY_PARTITION variable=taken complete
#pragma HLS ARRAY_PARTITION variable=pick complete
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
                    pick[j] = best;
                    route_put(topk_idx, t * TOP_K + j, expert_idx_t(best));
                    route_put(topk_score, t * TOP_K + j, pr[k][best]);
                }
                // queue entries: the slot of an expert is the number of the token's experts below it
            route_enqueue:
                for (int j = 0; j < TOP_K; j++) {
                    const int best = pick[j];
                    int slot = 0;
                route_slot:
                    for (int j2 = 0; j2 < TOP_K; j2++) {
#pragma HLS UNROLL
                        if (pick[j2] < best) slot++;
                    }
                    const int at = best * q_stride + int(qlen[best]);
                    pl_wr(queue_tok, at, tok_idx_t(tok_base + t));
                    pl_wr(queue_slot, at, slot_idx_t(slot));
                    pl_wr(queue_score, at, pr[k][best]);
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
