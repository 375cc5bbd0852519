// pack2.h -- two 8-bit products that share one operand, from ONE wide multiplication (synthesizable).
//
// A DSP48E2 multiplies 27 x 18 bits into a 48-bit accumulator P.  An int8 x int8 product uses a
// fraction of that, so two products that share an operand a can ride in one multiply:
//
//     pk = b1 * 2^S + b0                  (the DSP's 27-bit pre-adder: D + A)
//     p  = a * pk = (a*b1) * 2^S + a*b0   (one 27 x 18 multiply; a on the 18-bit port)
//
// The low S bits of p, read as a signed number, are a*b0; the bits above are a*b1, minus the 1 that
// a negative a*b0 "borrowed" from them (p - lo is an exact multiple of 2^S).  Because p is linear,
// N packed products can be summed first (P accumulation over cycles, or a PCOUT->PCIN cascade) and
// split once: sum a_i*pk_i = (sum a_i*b1_i) * 2^S + sum a_i*b0_i, exact while the low sum fits its field.
//
// Field width rule (s8 x s8): a product lies in [-16256, 16384] (16384 only for -128 * -128), so a sum of
// N products lies in [-16256 N, 16384 N].
//   PACK2_SIGNEXT (low field read as signed, borrow correction): needs 16384 N <= 2^(S-1) - 1,
//       i.e. S >= 16 + floor(log2 N) = 15 + ceil(log2(N + 1)).
//   PACK2_BIAS (a constant -min is added to P -- free in a DSP, e.g. P's initial value through the C port
//       -- which lifts the low sum into [0, 2^S): no sign extension and no borrow): needs the span
//       32640 N <= 2^S - 1.
// DSP48E2 limits: the packed operand needs S + 9 signed bits and must fit the 27-bit pre-adder, so
// S <= 18; P (48 bits) is never the limit at S <= 18 (N = 8 needs 37 bits).  Largest N per DSP chain
// (one P accumulation or one cascade column, S = 18):
//       s8 x s8:  7 with PACK2_SIGNEXT, 8 with PACK2_BIAS
//       u8 x s8 (either side unsigned, e.g. ap_ufixed<8,0> probabilities x v): products in
//                 [-32640, 32385], 4 with either split (S = 16 for N = 1, 17 for N = 2, 18 for N <= 4)
// Longer dot products: dot2_long splits them into chunks of pack2_max_terms, splits each chunk's P
// and adds the two sums in ordinary (fabric or a second DSP) adders.
//
// Everything below is generic over the operand types (ap_int<W> / ap_uint<W>): every range, width
// and limit is derived from them at compile time, and static_asserts reject a field that could overlap
// or an operand that does not fit the DSP ports.
//
// API (TA: shared operand type, TB: the two packed operands' type, results in any wide enough type):
//   mul2<S>(a, b0, b1, p0, p1)                      p0 = a*b0, p1 = a*b1 (one multiply)
//   dot2<N, S[, MODE]>(a, b0, b1, s0, s1)           s0 = sum a[i]*b0[i], s1 = sum a[i]*b1[i], i < N
//   dot2_long<N, S[, MODE]>(a, b0, b1, s0, s1)      the same for any N, in chunks of the largest fitting size
//   mul2_s8 / dot2_s8 / dot2_u8s8                   the same with the 8-bit types spelled out
//   pack2_min_shift<TA, TB, N, MODE>::value         smallest S for N terms
//   pack2_max_terms<TA, TB, S, MODE>::value         largest N for field width S
//   pack2_dsp_shift<TB>::value                      largest S whose packed operand fits the pre-adder
#ifndef EDGEMOE_PACK2_H
#define EDGEMOE_PACK2_H

#include <ap_int.h>

enum { PACK2_SIGNEXT = 0, PACK2_BIAS = 1 };

// DSP48E2 port widths: pre-adder / multiplier input A (27), multiplier input B (18), accumulator P (48)
enum { PACK2_DSP_A_BITS = 27, PACK2_DSP_B_BITS = 18, PACK2_DSP_P_BITS = 48 };

// value range of an integer operand type (small widths only: the range arithmetic uses long long)
template <class T> struct pack2_range;
template <int W> struct pack2_range<ap_int<W> > {
    static_assert(W >= 1 && W <= 48, "pack2: operand wider than 48 bits");
    static const long long lo = -(1LL << (W - 1));
    static const long long hi = (1LL << (W - 1)) - 1;
};
template <int W> struct pack2_range<ap_uint<W> > {
    static_assert(W >= 1 && W <= 48, "pack2: operand wider than 48 bits");
    static const long long lo = 0;
    static const long long hi = (1LL << W) - 1;
};

constexpr long long pack2_min(long long x, long long y) { return x < y ? x : y; }
constexpr long long pack2_max(long long x, long long y) { return x > y ? x : y; }

// smallest W such that ap_int<W> holds every value of [LO, HI]
template <long long LO, long long HI, int W = 1,
          bool FITS = (LO >= -(1LL << (W - 1)) && HI <= (1LL << (W - 1)) - 1) || W >= 63>
struct pack2_sbits { static const int value = pack2_sbits<LO, HI, W + 1>::value; };
template <long long LO, long long HI, int W>
struct pack2_sbits<LO, HI, W, true> { static const int value = W; };

// range of one product a * b
template <class TA, class TB>
struct pack2_prod {
    typedef pack2_range<TA> ra;
    typedef pack2_range<TB> rb;
    static const long long lo = pack2_min(pack2_min(ra::lo * rb::lo, ra::lo * rb::hi),
                                          pack2_min(ra::hi * rb::lo, ra::hi * rb::hi));
    static const long long hi = pack2_max(pack2_max(ra::lo * rb::lo, ra::lo * rb::hi),
                                          pack2_max(ra::hi * rb::lo, ra::hi * rb::hi));
};

// does a sum of N products fit a low field of S bits under split MODE?
template <class TA, class TB, int N, int S, int MODE>
struct pack2_field_ok {
    typedef pack2_prod<TA, TB> pr;
    static const bool in_range = N >= 1 && N <= 65536 && S >= 1 && S <= 40;  // keeps the sums below exact
    static const long long lo = in_range ? N * pr::lo : 0, hi = in_range ? N * pr::hi : 0;
    static const long long half = 1LL << ((in_range ? S : 1) - 1);
    static const bool value = in_range && (MODE == PACK2_BIAS ? hi - lo <= 2 * half - 1
                                                              : lo >= -half && hi <= half - 1);
};

// smallest field width S for N terms, and largest N for a field width S
template <class TA, class TB, int N, int MODE = PACK2_SIGNEXT, int S = 1,
          bool OK = pack2_field_ok<TA, TB, N, S, MODE>::value || S >= 40>
struct pack2_min_shift { static const int value = pack2_min_shift<TA, TB, N, MODE, S + 1>::value; };
template <class TA, class TB, int N, int MODE, int S>
struct pack2_min_shift<TA, TB, N, MODE, S, true> { static const int value = S; };

template <class TA, class TB, int S, int MODE = PACK2_SIGNEXT>
struct pack2_max_terms {
    typedef pack2_prod<TA, TB> pr;
    static const long long half = 1LL << (S - 1);
    static const long long span = pr::hi - pr::lo;
    static const long long n_bias = span > 0 ? (2 * half - 1) / span : 65536;
    static const long long n_hi = pr::hi > 0 ? (half - 1) / pr::hi : 65536;
    static const long long n_lo = (pr::lo) < 0 ? half / -pr::lo : 65536;
    static const int value = int(MODE == PACK2_BIAS ? n_bias : pack2_min(n_hi, n_lo));
};

// largest field width S whose packed operand b1 * 2^S + b0 still fits the DSP's 27-bit pre-adder
// (18 for 8-bit b, signed or unsigned): the widest field, so the most terms per chain
template <class TB, int S>
struct pack2_operand_fits {
    typedef pack2_range<TB> rb;
    static const long long scale = 1LL << S;
    static const bool value = pack2_sbits<rb::lo * scale + rb::lo, rb::hi * scale + rb::hi>::value <= PACK2_DSP_A_BITS;
};
template <class TB, int S = 24, bool FITS = pack2_operand_fits<TB, S>::value || S <= 1>
struct pack2_dsp_shift { static const int value = pack2_dsp_shift<TB, S - 1>::value; };
template <class TB, int S>
struct pack2_dsp_shift<TB, S, true> { static const int value = S; };

// every width of an N-term packed dot product with field width S; static_asserts on the limits
template <class TA, class TB, int N, int S, int MODE>
struct pack2_traits {
    typedef pack2_range<TA> ra;
    typedef pack2_range<TB> rb;
    typedef pack2_field_ok<TA, TB, N, S, MODE> field;
    static_assert(MODE == PACK2_SIGNEXT || MODE == PACK2_BIAS, "pack2: MODE is PACK2_SIGNEXT or PACK2_BIAS");
    static_assert(N >= 1, "pack2: N must be >= 1");
    static_assert(field::value, "pack2: the low field (S bits) is too narrow for a sum of N products: "
                                "the two sums would overlap (see pack2_min_shift / pack2_max_terms)");
    // inputs that keep the compile-time arithmetic below inside long long (else the asserts speak)
    static const bool ok_in = field::value && (rb::hi) < (1LL << 17) && (ra::hi) < (1LL << 20) &&
                              ra::lo > -(1LL << 20) && rb::lo > -(1LL << 17) && S <= 24;
    static const int s = ok_in ? S : 1;
    static const int n = ok_in ? N : 1;

    // packed operand b1 * 2^S + b0: its width must fit the pre-adder / multiplier's 27-bit input
    static const long long pk_lo = ok_in ? rb::lo * (1LL << s) + rb::lo : 0;
    static const long long pk_hi = ok_in ? rb::hi * (1LL << s) + rb::hi : 0;
    static const int PK_W = pack2_sbits<pk_lo, pk_hi>::value;
    static_assert(PK_W <= PACK2_DSP_A_BITS, "pack2: b1 * 2^S + b0 does not fit the DSP48E2's 27-bit "
                                            "pre-adder / multiplier input (S too large for these operand types)");
    static const int A_W = pack2_sbits<ra::lo, ra::hi>::value;
    static_assert(A_W <= PACK2_DSP_B_BITS, "pack2: the shared operand does not fit the 18-bit multiplier input");

    // each of the two sums, and the bias that lifts the low one into [0, 2^S) (PACK2_BIAS)
    static const long long sum_lo = field::lo, sum_hi = field::hi;
    static const int SUM_W = pack2_sbits<sum_lo, sum_hi>::value;
    static const long long bias = MODE == PACK2_BIAS ? -sum_lo : 0;

    // the accumulator P = (sum b1 products) * 2^S + (sum b0 products) + bias: must fit 48 bits
    static const long long acc_lo = ok_in ? sum_lo * (1LL << s) + sum_lo + bias : 0;
    static const long long acc_hi = ok_in ? sum_hi * (1LL << s) + sum_hi + bias : 0;
    static const int ACC_W = pack2_sbits<acc_lo, acc_hi>::value;
    static_assert(ACC_W <= PACK2_DSP_P_BITS, "pack2: the packed sum does not fit the DSP48E2's 48-bit accumulator");

    // one multiplier output a * pk
    static const long long prod_lo = pack2_min(pack2_min(ra::lo * pk_lo, ra::lo * pk_hi),
                                               pack2_min(ra::hi * pk_lo, ra::hi * pk_hi));
    static const long long prod_hi = pack2_max(pack2_max(ra::lo * pk_lo, ra::lo * pk_hi),
                                               pack2_max(ra::hi * pk_lo, ra::hi * pk_hi));
    static const int PROD_W = pack2_sbits<prod_lo, prod_hi>::value;
    typedef ap_int<PK_W> pk_t;
    typedef ap_int<PROD_W> prod_t;
    typedef ap_int<ACC_W> acc_t;
    typedef ap_int<SUM_W> sum_t;
};

// static check that a result type R holds every value of [LO, HI]
template <class R, long long LO, long long HI>
struct pack2_holds {
    static const bool value = pack2_range<R>::lo <= LO && pack2_range<R>::hi >= HI;
};

// the packed operand b1 * 2^S + b0 (the pre-adder's D + A; b0 enters sign- or zero-extended)
template <class T, int S, class TB>
typename T::pk_t pack2_operand(TB b0, TB b1) {
#pragma HLS INLINE
    typename T::pk_t hi = b1;
    return (hi << S) + typename T::pk_t(b0);
}

// split an accumulated P into its two sums
template <class T, int S, int MODE, class R>
void pack2_split(typename T::acc_t acc, R &s0, R &s1) {
#pragma HLS INLINE
    if (MODE == PACK2_BIAS) {
        // P already carries the bias: the low field is the lifted low sum, the rest is the high sum
        ap_uint<S> lo = acc;  // keeps the low S bits
        s0 = R(ap_int<S + 1>(lo) - ap_int<S + 1>(T::bias));
        s1 = R(acc >> S);     // arithmetic shift: floor((P - lo) / 2^S), exact
    } else {
        ap_int<S> lo = acc;   // the low S bits read as signed: the low sum
        // P - lo is an exact multiple of 2^S; a negative lo borrowed 1 from the high field
        s0 = R(lo);
        s1 = R((acc >> S) + ap_int<2>(lo < 0 ? 1 : 0));
    }
}

// p0 = a * b0, p1 = a * b1 with one multiplication of a by b1 * 2^S + b0
template <int S, class TA, class TB, class R>
void mul2(TA a, TB b0, TB b1, R &p0, R &p1) {
#pragma HLS INLINE
    typedef pack2_traits<TA, TB, 1, S, PACK2_SIGNEXT> T;
    static_assert(pack2_holds<R, T::sum_lo, T::sum_hi>::value, "pack2: result type too narrow for a product");
    typename T::pk_t pk = pack2_operand<T, S>(b0, b1);
    typename T::prod_t prod = a * pk;
#pragma HLS BIND_OP variable=prod op=mul impl=dsp
    pack2_split<T, S, PACK2_SIGNEXT>(typename T::acc_t(prod), p0, p1);
}

// s0 = sum a[i] * b0[i], s1 = sum a[i] * b1[i] over i < N: N packed multiplies summed in one
// accumulator (a DSP's P / cascade chain) and split once.  N must fit the field (pack2_max_terms).
template <int N, int S, int MODE = PACK2_SIGNEXT, class TA, class TB, class R>
void dot2(const TA a[N], const TB b0[N], const TB b1[N], R &s0, R &s1) {
#pragma HLS INLINE
    typedef pack2_traits<TA, TB, N, S, MODE> T;
    static_assert(pack2_holds<R, T::sum_lo, T::sum_hi>::value, "pack2: result type too narrow for the sums");
    typename T::acc_t acc = T::bias;  // the DSP's P starts from the bias (0 for PACK2_SIGNEXT)
#pragma HLS EXPRESSION_BALANCE off
    for (int i = 0; i < N; i++) {
#pragma HLS UNROLL
        // a chain of multiply-adds, which Vitis can map onto cascaded DSPs (PCOUT -> PCIN)
        typename T::pk_t pk = pack2_operand<T, S>(b0[i], b1[i]);
        typename T::prod_t prod = a[i] * pk;
#pragma HLS BIND_OP variable=prod op=mul impl=dsp
        acc += prod;
    }
    pack2_split<T, S, MODE>(acc, s0, s1);
}

// dot2 for any N: chunks of the largest size the field allows, each split, then added normally
template <int N, int S, int MODE = PACK2_SIGNEXT, class TA, class TB, class R>
void dot2_long(const TA a[N], const TB b0[N], const TB b1[N], R &s0, R &s1) {
#pragma HLS INLINE
    static const int MAX_N = pack2_max_terms<TA, TB, S, MODE>::value;
    static const int CHUNK = MAX_N > N ? N : MAX_N;
    static const int CHUNKS = (N + CHUNK - 1) / CHUNK;
    static_assert(CHUNK >= 1, "pack2: field width S cannot hold even one product");
    typedef pack2_prod<TA, TB> pr;
    static_assert(pack2_holds<R, N * pr::lo, N * pr::hi>::value, "pack2: result type too narrow for the sums");
    typedef typename pack2_traits<TA, TB, CHUNK, S, MODE>::sum_t chunk_sum_t;
    R t0 = 0, t1 = 0;
    for (int c = 0; c < CHUNKS; c++) {
#pragma HLS UNROLL
        // the last chunk is padded with zero products: the field holds CHUNK terms whatever they are
        TA ac[CHUNK];
        TB bc0[CHUNK], bc1[CHUNK];
#pragma HLS ARRAY_PARTITION variable=ac complete
#pragma HLS ARRAY_PARTITION variable=bc0 complete
#pragma HLS ARRAY_PARTITION variable=bc1 complete
        for (int i = 0; i < CHUNK; i++) {
#pragma HLS UNROLL
            const int j = c * CHUNK + i;
            ac[i] = j < N ? a[j] : TA(0);
            bc0[i] = j < N ? b0[j] : TB(0);
            bc1[i] = j < N ? b1[j] : TB(0);
        }
        chunk_sum_t c0, c1;
        dot2<CHUNK, S, MODE>(ac, bc0, bc1, c0, c1);
        t0 += c0;
        t1 += c1;
    }
    s0 = t0;
    s1 = t1;
}

// ---- the 8-bit cases by name --------------------------------------------------------------------
// s8 x s8 (activations x weights): S in [16, 18]; dot2_s8: N <= 7 (S = 18), N <= 8 with PACK2_BIAS.
// The sums come back in exactly pack2_traits<...>::sum_t (ap_int<18> for N = 7; N = 8 needs ap_int<19>:
// 8 * 2^14 = 2^17); dot2 itself takes any result type wide enough.
template <int S>
void mul2_s8(ap_int<8> a, ap_int<8> b0, ap_int<8> b1, ap_int<16> &p0, ap_int<16> &p1) {
#pragma HLS INLINE
    mul2<S>(a, b0, b1, p0, p1);
}

template <int N, int S, int MODE = PACK2_SIGNEXT>
void dot2_s8(const ap_int<8> a[N], const ap_int<8> b0[N], const ap_int<8> b1[N],
             typename pack2_traits<ap_int<8>, ap_int<8>, N, S, MODE>::sum_t &s0,
             typename pack2_traits<ap_int<8>, ap_int<8>, N, S, MODE>::sum_t &s1) {
#pragma HLS INLINE
    dot2<N, S, MODE>(a, b0, b1, s0, s1);
}

// u8 shared x s8 packed (a probability ap_ufixed<8,0>'s raw code times two v values): N <= 4 at S = 18
template <int N, int S, int MODE = PACK2_SIGNEXT>
void dot2_u8s8(const ap_uint<8> a[N], const ap_int<8> b0[N], const ap_int<8> b1[N],
               typename pack2_traits<ap_uint<8>, ap_int<8>, N, S, MODE>::sum_t &s0,
               typename pack2_traits<ap_uint<8>, ap_int<8>, N, S, MODE>::sum_t &s1) {
#pragma HLS INLINE
    dot2<N, S, MODE>(a, b0, b1, s0, s1);
}

#endif
