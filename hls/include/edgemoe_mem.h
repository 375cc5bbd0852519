// edgemoe_mem.h -- how the kernel touches memory: lane-word buffers, ROM reads and m_axi words.
//
// Lane-word buffers (codegen/buffers.py): a buffer that units access several values of per cycle at
// run-time offsets is declared T buf[WORDS][BANKS][GROUP]: a word of LANES = BANKS * GROUP consecutive
// values; dimension 2 is partitioned completely (BANKS physical memories) and dimension 3 is either a
// single lane (block RAM: GROUP = 1, one memory per lane) or reshaped into one wide word (UltraRAM:
// GROUP lanes per memory, the narrowest write of any unit, so every write is a whole UltraRAM word).
// The helpers take the buffer as a pointer to its words (an array argument decays to one), the first
// word of the buffer (or of one of its parts).  Every run-time offset is a whole number of words; every lane is named by a compile-time index
// (the unrolled loops below), so Vitis knows the memory of every access by construction.
//   lw_read(buf, word, v)            v[0 .. LANES) = the word (one access per memory)
//   lw_write(buf, word, v)           the whole word
//   lw_write_part<N>(buf, word, sub, v)   lanes sub * N .. sub * N + N - 1 = v[0 .. N) (N divides
//                                    LANES; a multiple of GROUP: whole memories, the others untouched)
//   lw_pick<N>(w, sub, v)            v[0 .. N) = w[sub * N .. sub * N + N) of a word read into registers
//   lw_get<N>(buf, word, elem, v)    v[0 .. N) = values elem .. elem + N - 1 of the row starting at word
//                                    `word` (elem a multiple of N): the word holding them, picked
//   lw_put<N>(buf, word, elem, v)    the same N values written (lw_write_part of their word)
// Plain arrays (one memory): pl_rd(buf, i) / pl_wr(buf, i, v), buf the array's first element.
// ROMs: rom_rd(tab, i) reads entry i of one copy of a table (dual-port: two reads per copy per cycle).
// m_axi: axi_rd(p, i) / axi_wr(p, i, v) read or write AXI word i of port p.
// All of them report to the probe recorder in instrumented builds (edgemoe_probe.h) and are plain
// array accesses otherwise.
#ifndef EDGEMOE_MEM_H
#define EDGEMOE_MEM_H

#include "edgemoe_probe.h"

template <class T, int NB, int G>
void lw_read(const T (*buf)[NB][G], int word, T v[NB * G]) {
#pragma HLS INLINE
lw_read_banks:
    for (int b = 0; b < NB; b++) {
#pragma HLS UNROLL
        EM_MEM(&buf[0][0][0], b, 0);
    lw_read_lanes:
        for (int g = 0; g < G; g++) {
#pragma HLS UNROLL
            v[b * G + g] = buf[word][b][g];
        }
    }
}

template <class T, int NB, int G>
void lw_write(T (*buf)[NB][G], int word, const T v[NB * G]) {
#pragma HLS INLINE
lw_write_banks:
    for (int b = 0; b < NB; b++) {
#pragma HLS UNROLL
        EM_MEM(&buf[0][0][0], b, 1);
    lw_write_lanes:
        for (int g = 0; g < G; g++) {
#pragma HLS UNROLL
            buf[word][b][g] = v[b * G + g];
        }
    }
}

template <int N, class T, int NB, int G>
void lw_write_part(T (*buf)[NB][G], int word, int sub, const T v[N]) {
#pragma HLS INLINE
    static_assert((NB * G) % N == 0 && N % G == 0, "lw_write_part: N must divide the word and be whole memories");
lw_part_banks:
    for (int b = 0; b < NB; b++) {
#pragma HLS UNROLL
        if ((b * G) / N == sub) {
            EM_MEM(&buf[0][0][0], b, 1);
        lw_part_lanes:
            for (int g = 0; g < G; g++) {
#pragma HLS UNROLL
                buf[word][b][g] = v[(b * G + g) % N];
            }
        }
    }
}

template <int N, int L, class T>
void lw_pick(const T w[L], int sub, T v[N]) {
#pragma HLS INLINE
    static_assert(L % N == 0, "lw_pick: N must divide the word");
lw_pick_lanes:
    for (int l = 0; l < N; l++) {
#pragma HLS UNROLL
        v[l] = w[sub * N + l];
    }
}

// a plain (one-memory) array: one access of its single bank
template <class T>
T pl_rd(const T *buf, int i) {
#pragma HLS INLINE
    EM_MEM(buf, 0, 0);
    return buf[i];
}

template <class T>
void pl_wr(T *buf, int i, const T &v) {
#pragma HLS INLINE
    EM_MEM(buf, 0, 1);
    buf[i] = v;
}

template <int N, class T, int NB, int G>
void lw_get(const T (*buf)[NB][G], int word, int elem, T v[N]) {
#pragma HLS INLINE
    T w[NB * G];
#pragma HLS ARRAY_PARTITION variable=w complete
    lw_read(buf, word + elem / (NB * G), w);
    lw_pick<N, NB * G>(w, (elem % (NB * G)) / N, v);
}

template <int N, class T, int NB, int G>
void lw_put(T (*buf)[NB][G], int word, int elem, const T v[N]) {
#pragma HLS INLINE
    lw_write_part<N>(buf, word + elem / (NB * G), (elem % (NB * G)) / N, v);
}

template <class T, int N>
T rom_rd(const T (&tab)[N], int i) {
#pragma HLS INLINE
    EM_ROM(&tab[i]);
    return tab[i];
}

template <class W>
W axi_rd(const W *p, long i) {
#pragma HLS INLINE
    EM_MAXI(p + i, 0);
    return p[i];
}

template <class W>
void axi_wr(W *p, long i, const W &v) {
#pragma HLS INLINE
    EM_MAXI(p + i, 1);
    p[i] = v;
}

#endif  // EDGEMOE_MEM_H
