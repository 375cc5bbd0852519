// edgemoe_fixed.h -- fixed-point helpers shared by every unit (synthesizable).
//
//   fx_info<T>::W / I / F / S      width, integer bits, fraction bits, signedness of ap_(u)fixed T
//   fx_raw(v)                      the raw two's-complement bits of v (ap_int<W> / ap_uint<W>)
//   fx_from_raw<T>(r)              T whose raw bits are the low W bits of integer r
//   rescale<DST>(v, delta)         DST(v') where v' has v's raw bits and F(v) + delta fraction bits:
//                                  the cast of a tensor whose scale is only known at run time
//                                  (calibrated w8a8 types); |delta| <= RESCALE_SPAN.  The raw bits
//                                  are shifted into a static wide type and cast with DST's own
//                                  quantisation and overflow modes, so the result is exactly the
//                                  ap_fixed assignment.  With RESCALE_SPAN == 0 it is a plain cast.
//   floor_div / shift_floor        integer helpers with Python semantics (floor, clipped shifts)
//   packed_ptr<T>(base, off)       read-only "pointer" to T values packed in ap_uint<AXI_BITS> words
//                                  (the kernel's m_axi ports): value j of the buffer sits in word
//                                  j / per, bits [lane * SB, lane * SB + W), lane = j % per,
//                                  SB = storage_bits<T> (W rounded up to a power of two >= 8),
//                                  per = AXI_BITS / SB; p[i] reads value off + i
//   axi_lanes<SB>(word)[l]         lane l of an AXI word (SB-bit lanes; all lanes in one cycle)
//   ptr_elem<P>::type              the element type of a plain pointer or a packed_ptr
//   WPORTS_PARAMS / WPORTS_FWD / WPORTS_SAME   the extra weight ports' parameters (WEIGHT_PORTS > 1)
#ifndef EDGEMOE_FIXED_H
#define EDGEMOE_FIXED_H

#include <ap_fixed.h>
#include <ap_int.h>

#include "edgemoe_config.h"

#ifndef __SYNTHESIS__
#include <cassert>
#define EDGEMOE_CHECK(c) assert(c)
#else
#define EDGEMOE_CHECK(c)
#endif

template <class T> struct fx_info;
template <int W_, int I_, ap_q_mode Q_, ap_o_mode O_, int N_>
struct fx_info<ap_fixed<W_, I_, Q_, O_, N_> > {
    static const int W = W_;
    static const int I = I_;
    static const int F = W_ - I_;
    static const bool S = true;
};
template <int W_, int I_, ap_q_mode Q_, ap_o_mode O_, int N_>
struct fx_info<ap_ufixed<W_, I_, Q_, O_, N_> > {
    static const int W = W_;
    static const int I = I_;
    static const int F = W_ - I_;
    static const bool S = false;
};

template <int W, bool S> struct raw_int { typedef ap_int<W> type; };
template <int W> struct raw_int<W, false> { typedef ap_uint<W> type; };

template <int W, int I, bool S> struct fx_make { typedef ap_fixed<W, I> type; };
template <int W, int I> struct fx_make<W, I, false> { typedef ap_ufixed<W, I> type; };

template <class T>
struct fx_raw_t {
    typedef typename raw_int<fx_info<T>::W, fx_info<T>::S>::type type;
};

template <class T>
typename fx_raw_t<T>::type fx_raw(const T &v) {
#pragma HLS INLINE
    ap_uint<fx_info<T>::W> bits = v.range(fx_info<T>::W - 1, 0);
    typename fx_raw_t<T>::type r = bits;
    return r;
}

template <class T, class R>
T fx_from_raw(const R &raw) {
#pragma HLS INLINE
    ap_uint<fx_info<T>::W> bits = raw;  // the low W bits
    T v;
    v.range(fx_info<T>::W - 1, 0) = bits;
    return v;
}

template <class DST, class SRC>
DST rescale(const SRC &v, int delta) {
#pragma HLS INLINE
    EDGEMOE_CHECK(delta >= -RESCALE_SPAN && delta <= RESCALE_SPAN);
    typedef fx_info<SRC> si;
    typedef typename fx_make<si::W + 2 * RESCALE_SPAN, si::I + RESCALE_SPAN, si::S>::type wide_t;
    typename raw_int<si::W + 2 * RESCALE_SPAN, si::S>::type r = fx_raw(v);  // sign/zero extended
    r <<= (RESCALE_SPAN - delta);
    wide_t w = fx_from_raw<wide_t>(r);
    return DST(w);
}

// ceil(log2(N)) for N >= 1 (bits of an adder tree over N terms)
template <int N> struct clog2 { static const int value = 1 + clog2<(N + 1) / 2>::value; };
template <> struct clog2<1> { static const int value = 0; };

// mac_int<W>::type: a signed integer of at least W bits for exact raw-code MACs.  Synthesis gets the
// exact ap_int<W>; C simulation uses the native 64-bit integer whenever W <= 64 (the same values:
// W is chosen so that nothing overflows), which makes csim of the MAC loops several times faster.
template <int W, bool NATIVE = (W <= 64)> struct mac_int { typedef ap_int<W> type; };
#ifndef __SYNTHESIS__
template <int W> struct mac_int<W, true> { typedef long long type; };
#endif

// ---- packed AXI words -------------------------------------------------------------------------
typedef ap_uint<AXI_BITS> axi_word_t;

// WEIGHT_PORTS m_axi ports read the same streamed weights side by side (port p reads the words j with
// j % WEIGHT_PORTS == p).  HLS cannot take an array of pointers to different ports, so the extra ports
// p##1 .. p##(WEIGHT_PORTS-1) travel as separate parameters:
//   WPORTS_PARAMS(p)    declares them after the parameter p (nothing when WEIGHT_PORTS == 1)
//   WPORTS_FWD(p, off)  passes them on, each advanced by off words (as p + off is for the first port)
//   WPORTS_SAME(q)      passes q for each of them (a caller whose weights are one on-chip buffer)
static_assert(WEIGHT_PORTS >= 1 && WEIGHT_PORTS <= 4, "WEIGHT_PORTS must be 1..4");
#if WEIGHT_PORTS == 1
#define WPORTS_PARAMS(p)
#define WPORTS_FWD(p, off)
#define WPORTS_SAME(q)
#elif WEIGHT_PORTS == 2
#define WPORTS_PARAMS(p) , const axi_word_t *p##1
#define WPORTS_FWD(p, off) , p##1 + (off)
#define WPORTS_SAME(q) , q
#elif WEIGHT_PORTS == 3
#define WPORTS_PARAMS(p) , const axi_word_t *p##1, const axi_word_t *p##2
#define WPORTS_FWD(p, off) , p##1 + (off), p##2 + (off)
#define WPORTS_SAME(q) , q, q
#else
#define WPORTS_PARAMS(p) , const axi_word_t *p##1, const axi_word_t *p##2, const axi_word_t *p##3
#define WPORTS_FWD(p, off) , p##1 + (off), p##2 + (off), p##3 + (off)
#define WPORTS_SAME(q) , q, q, q
#endif

template <int W> struct storage_bits {
    static const int value = W <= 8 ? 8 : W <= 16 ? 16 : W <= 32 ? 32 : 64;
};

template <class T>
struct packed_ptr {
    static const int SB = storage_bits<fx_info<T>::W>::value;
    static const int PER = AXI_BITS / SB;
    const axi_word_t *base;
    long off;
    packed_ptr(const axi_word_t *b, long o) : base(b), off(o) {}
    T operator[](long i) const {
#pragma HLS INLINE
        const long j = off + i;
        const axi_word_t word = base[j / PER];
        const int lane = int(j % PER);
        ap_uint<SB> bits = word.range(lane * SB + SB - 1, lane * SB);
        return fx_from_raw<T>(bits);
    }
    packed_ptr operator+(long n) const { return packed_ptr(base, off + n); }
};

// axi_lanes<SB>(word)[l]: lane l (bits [l * SB, l * SB + SB)) of an AXI word, SB in {8, 16, 32, 64}:
// every lane of a word is unpacked in one cycle.  C simulation splits the word into native 64-bit
// chunks once (a range() per lane of a wide ap_uint is slow there); synthesis slices the word.
template <int SB>
struct axi_lanes {
    static const int PER = AXI_BITS / SB;
#ifndef __SYNTHESIS__
    static const int CHUNKS = (AXI_BITS + 63) / 64;
    unsigned long long c[CHUNKS];
    axi_lanes(const axi_word_t &w) {
        for (int i = 0; i < CHUNKS; i++) {
            const int hi = i * 64 + 63 < AXI_BITS ? i * 64 + 63 : AXI_BITS - 1;
            c[i] = w.range(hi, i * 64).to_uint64();
        }
    }
    ap_uint<SB> operator[](int l) const { return ap_uint<SB>(c[(l * SB) / 64] >> ((l * SB) % 64)); }
#else
    axi_word_t w;
    axi_lanes(const axi_word_t &word) : w(word) {}
    ap_uint<SB> operator[](int l) const {
#pragma HLS INLINE
        return w.range(l * SB + SB - 1, l * SB);
    }
#endif
};

template <class P> struct ptr_elem;
template <class T> struct ptr_elem<T *> { typedef T type; };
template <class T> struct ptr_elem<const T *> { typedef T type; };
template <class T> struct ptr_elem<packed_ptr<T> > { typedef T type; };

// floor(a / b) for b > 0 (C++ division truncates toward zero)
template <int W>
ap_int<W> floor_div(const ap_int<W> &a, int b) {
#pragma HLS INLINE
    ap_int<W> q = a / b;
    if (a < 0 && q * b != a) q -= 1;
    return q;
}

// v * 2^n: left shift for n > 0 (wraps at W bits), floor right shift for n < 0; both shift
// amounts clipped to 62 like the golden model's int64 shifts
template <int W>
ap_int<W> shift_clip62(const ap_int<W> &v, int n) {
#pragma HLS INLINE
    ap_int<W> r;
    if (n >= 0) {
        r = v << (n > 62 ? 62 : n);
    } else {
        int m = -n > 62 ? 62 : -n;
        r = v >> m;
    }
    return r;
}

#endif  // EDGEMOE_FIXED_H
