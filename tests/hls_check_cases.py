"""Small C++ kernels for tests/test_hls_check.py: a clean kernel that keeps every rule (mutated by the
tests to seed one defect each), a probe kernel exercising the recorder, and a tiny project around them."""
from __future__ import annotations

import json
from pathlib import Path

MINI_H = r"""// mini.h: what the tests' kernels share (the axi helpers of edgemoe_mem.h, in small)
#ifndef MINI_H
#define MINI_H
#include <ap_int.h>
#include "edgemoe_probe.h"
typedef ap_uint<64> axi_word_t;
#define N 16
#define PORTS 4

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
#endif
"""

GOOD_TOP = r"""// a kernel that keeps every rule of hls-check
#include "mini.h"

static int acc[4][4];   // [word][bank]
static const short g_rom[2][8] = {{1, 2, 3, 4, 5, 6, 7, 8}, {1, 2, 3, 4, 5, 6, 7, 8}};   // two copies
static int acc_out[4];

template <int M>
int mac(int a, int b) {
#pragma HLS INLINE
    return a * M + b;
}

int rom_read(int k) {
#pragma HLS INLINE
    EM_ROM(&g_rom[0][k]);
    return g_rom[0][k];
}

axi_word_t read_pair(const axi_word_t *p, int j) {
#pragma HLS INLINE
    return axi_rd(p, 2 * j);
}

void linear_engine(const axi_word_t *w, long off, int n, int bo) {
#pragma HLS INLINE off
engine_read:
    for (int i = 0; i < n; i++) {
#pragma HLS loop_tripcount min=1 max=16
#pragma HLS PIPELINE II=1
#pragma HLS DEPENDENCE variable=acc inter distance=4 true
        EM_ITER("engine_read", i);
        const axi_word_t v = axi_rd(w, off + i);
        const int r = rom_read(i % 8);
    engine_lanes:
        for (int b = 0; b < 4; b++) {
#pragma HLS UNROLL
            const int bank = (b + 4 * bo) % 4;   // a run-time offset of whole words: bank b
            EM_MEM(&acc[0][0], bank, 0);
            EM_MEM(&acc[0][0], bank, 1);
            acc[i % 4][bank] = mac<2>(acc[i % 4][bank], int(v.range(7, 0))) + mac<3>(r, 1);
        }
    }
}

void layernorm_unit(int x[4]) {
#pragma HLS INLINE off
ln_loop:
    for (int i = 0; i < 4; i++) {
#pragma HLS PIPELINE II=1
        EM_ITER("ln_loop", i);
        x[i] = x[i] / 2 + acc[i][0];
    }
}

void residual_unit(int x[4]) {
#pragma HLS INLINE off
res_loop:
    for (int i = 0; i < 4; i++) {
#pragma HLS PIPELINE II=1
        EM_ITER("res_loop", i);
        x[i] = x[i] + acc[i][1];
    }
}

void extra_engine(const axi_word_t *w) {
    linear_engine(w, 0, N, 0);
}

extern "C" void edgemoe_top(const axi_word_t *pixels, const axi_word_t *weights, axi_word_t *out, int n_images) {
#pragma HLS INTERFACE m_axi port=pixels offset=slave bundle=gmem_act
#pragma HLS INTERFACE m_axi port=weights offset=slave bundle=gmem_w
#pragma HLS INTERFACE m_axi port=out offset=slave bundle=gmem_act
#pragma HLS allocation function instances=linear_engine limit=1
#pragma HLS allocation function instances=layernorm_unit limit=1
#pragma HLS allocation function instances=residual_unit limit=1
#pragma HLS ARRAY_PARTITION variable=acc complete dim=2
#ifdef EDGEMOE_PROBE
    em_probe_buffer(&acc[0][0], sizeof(acc), "acc", 4, 0);
    em_probe_rom_table(&g_rom[0][0], sizeof(g_rom[0]), 2, "g_rom");
#endif
    (void)n_images;
    linear_engine(weights, 0, N, 0);
    linear_engine(weights, N, N, 0);
    layernorm_unit(acc_out);
    residual_unit(acc_out);
two_ports:
    for (int i = 0; i < N; i++) {
#pragma HLS PIPELINE II=1
        EM_ITER("two_ports", i);
        axi_word_t a = 0;
        if (PORTS > 1) a = axi_rd(pixels, long(i));
        axi_wr(out, long(i) + 0, a);
    }
}
"""

# seeded defects that only the instrumented simulation sees (plus the static ones of DEFECTS)
DYNAMIC_DEFECTS = {
    "rom read 16 times": [("const int r = rom_read(i % 8);",
                           "int r = 0;\n    rom_lanes:\n        for (int k = 0; k < 16; k++) {\n"
                           "#pragma HLS UNROLL\n            r += rom_read(k % 8);\n        }")],
    # lanes whose bank is computed from a run-time offset land in one bank: 4 accesses of 2 ports
    "runtime bank offset": [("const int bank = (b + 4 * bo) % 4;", "const int bank = (b / 2 + bo) % 4;")],
}

CSIM = r"""// the tiny project's ctypes harness (the interface of a generated project's csim/edgemoe_csim.cpp)
#include <cstring>
#include "mini.h"

extern "C" void edgemoe_top(const axi_word_t *pixels, const axi_word_t *weights, axi_word_t *out, int n_images);
static axi_word_t g_w[2 * N];

static void to_words(const unsigned char *b, axi_word_t *w, int n) {
    for (int i = 0; i < n; i++) {
        unsigned long long v;
        std::memcpy(&v, b + 8 * i, 8);
        w[i] = v;
    }
}

extern "C" int em_load_weights(const unsigned char *bytes, long long n_words) {
    if (n_words != 2 * N) return -1;
    to_words(bytes, g_w, 2 * N);
    return 0;
}

extern "C" int em_run(const unsigned char *pixels, unsigned char *out, unsigned char *scratch, int n_images,
                      int task, int reload, int tap_id) {
    static axi_word_t pix[N], res[N];
    (void)scratch; (void)task; (void)reload; (void)tap_id;
    to_words(pixels, pix, N);
#ifdef EDGEMOE_PROBE
    em_probe_port(pix, N, "pixels", "gmem_act");
    em_probe_port(res, N, "out", "gmem_act");
    em_probe_port(g_w, 2 * N, "weights", "gmem_w");
#endif
    edgemoe_top(pix, g_w, res, n_images);
    for (int i = 0; i < N; i++) {
        unsigned long long v = res[i].to_uint64();
        std::memcpy(out + 8 * i, &v, 8);
    }
    return 0;
}
"""


def write_mini_project(root: Path, top_src: str) -> Path:
    """A folder shaped like a generated project around ``top_src`` (edgemoe_probe.h deliberately absent
    from src/: hls-check supplies its own)."""
    root = Path(root)
    for d in ("src", "csim", "compat", "data"):
        (root / d).mkdir(parents=True, exist_ok=True)
    (root / "src" / "mini.h").write_text(MINI_H)
    (root / "src" / "edgemoe_top.cpp").write_text(top_src)
    (root / "csim" / "edgemoe_csim.cpp").write_text(CSIM)
    (root / "data" / "weights.bin").write_bytes(bytes(range(256)))
    (root / "data" / "input_pixels.bin").write_bytes(bytes(range(128)))
    manifest = dict(top="edgemoe_top", axi_bits=64, design=dict(batch=1),
                    sizes=dict(weight_words=32, pix_words=16, out_words=16, scratch_words=1))
    (root / "data" / "manifest.json").write_text(json.dumps(manifest))
    return root


PROBE_KERNEL = r"""// a kernel of probe hooks only: one case per seeded pattern (run_case(which))
#include <ap_int.h>
#include "edgemoe_probe.h"
typedef ap_uint<64> axi_word_t;
static axi_word_t P[64], Q[64];
static int buf[16][4];
static int ubuf[8][2];
static short rom[2][8];

static void inner(int i) {
inner_loop:
    for (int j = 0; j < 1; j++) {
        EM_ITER("inner_loop", j);
        EM_MAXI(&P[i], 0);
    }
}

extern "C" void run_case(int which) {
    em_probe_port(P, 64, "p", "gmem0");
    em_probe_port(Q, 64, "q", "gmem1");
    em_probe_buffer(buf, sizeof(buf), "buf", 4, 0);
    em_probe_buffer(ubuf, sizeof(ubuf), "ubuf", 2, 1);
    em_probe_rom_table(rom, sizeof(rom[0]), 2, "rom");
    switch (which) {
    case 0:
    burst_loop: for (int i = 0; i < 16; i++) { EM_ITER("burst_loop", i); EM_MAXI(&P[i], 0); }
        for (int r = 0; r < 2; r++) {
        again_loop: for (int i = 0; i < 8; i++) { EM_ITER("again_loop", i); EM_MAXI(&P[8 * r + i], 0); }
        }
        break;
    case 1:
    strided_loop: for (int i = 0; i < 16; i++) { EM_ITER("strided_loop", i); EM_MAXI(&P[2 * i], 0); }
        break;
    case 2:
    cond_loop: for (int i = 0; i < 16; i++) { EM_ITER("cond_loop", i); if (i % 2 == 0) EM_MAXI(&P[i], 0); }
        break;
    case 3:
    multi_loop: for (int i = 0; i < 8; i++) { EM_ITER("multi_loop", i); EM_MAXI(&P[2 * i], 0); EM_MAXI(&P[2 * i + 1], 0); }
        break;
    case 4:
    two_ports: for (int i = 0; i < 16; i++) { EM_ITER("two_ports", i); EM_MAXI(&P[i], 0); EM_MAXI(&Q[i + 3], 1); }
        break;
    case 5:
    bank_loop: for (int i = 0; i < 4; i++) {
            EM_ITER("bank_loop", i);
            for (int k = 0; k < 3; k++) EM_MEM(buf, 1, 0);
            EM_MEM(buf, 0, 1);
        }
        break;
    case 6:
    bank_ok: for (int i = 0; i < 4; i++) {
            EM_ITER("bank_ok", i);
            for (int b = 0; b < 4; b++) EM_MEM(buf, b, 0);
            EM_MEM(buf, 0, 1);
        }
        break;
    case 7:
    rom_loop: for (int i = 0; i < 4; i++) { EM_ITER("rom_loop", i); for (int k = 0; k < 16; k++) EM_ROM(&rom[0][k % 8]); }
        break;
    case 8:
    rom_ok: for (int i = 0; i < 4; i++) { EM_ITER("rom_ok", i); for (int k = 0; k < 4; k++) EM_ROM(&rom[k / 2][k]); }
        break;
    case 9:
    uram_loop: for (int i = 0; i < 4; i++) { EM_ITER("uram_loop", i); EM_MEM(ubuf, 0, 1); EM_MEM(ubuf, 0, 1); }
        break;
    case 10:
    uram_ok: for (int i = 0; i < 4; i++) {
            EM_ITER("uram_ok", i);
            EM_MEM(ubuf, 0, 1); EM_MEM(ubuf, 0, 0); EM_MEM(ubuf, 1, 0); EM_MEM(ubuf, 1, 0);
        }
        break;
    case 11:
        EM_MAXI(&P[0], 0);
        EM_MAXI(&P[1], 0);
        break;
    case 12:
    outer_loop: for (int i = 0; i < 8; i++) { EM_ITER("outer_loop", i); inner(i); }
        break;
    }
}
"""


def _kinds(rep, port="p"):
    return {p["kind"]: p["count"] for p in rep["bursts"][port]["problems"]}


# name: (run_case argument, the rule its report must raise (None: none), a check of the report)
PROBE_CASES = {
    "burst loop": (0, None, lambda r: r["bursts"]["p"]["contiguous"] and r["bursts"]["p"]["accesses"] == 32),
    "strided read": (1, "burst", lambda r: _kinds(r) == {"non-contiguous": 15}),
    "conditional read": (2, "burst", lambda r: _kinds(r)["conditional"] == 8),
    "two accesses per iteration": (3, "burst", lambda r: _kinds(r) == {"multiple": 8}),
    "two ports in one loop": (4, None, lambda r: r["bursts"]["p"]["contiguous"] and r["bursts"]["q"]["contiguous"]
                              and r["bursts"]["q"]["loops"] == ["two_ports"]),
    "three accesses to a BRAM bank": (5, "bank-conflict", lambda r: r["bank_conflicts"] == [dict(
        loop="bank_loop", buffer="buf", bank=1, max_accesses=3, max_writes=0, ports=2, uram=False, iterations=4)]),
    "two accesses per BRAM bank": (6, None, lambda r: r["bank_conflicts"] == []),
    "ROM copy read 16 times": (7, "rom-ports", lambda r: r["rom_oversubscribed"] == [dict(
        loop="rom_loop", rom="rom", copy=0, max_reads=16, iterations=4)]),
    "two reads per ROM copy": (8, None, lambda r: r["rom_oversubscribed"] == []),
    "UltraRAM word written twice": (9, "bank-conflict", lambda r: r["bank_conflicts"][0]["max_writes"] == 2
                                    and r["bank_conflicts"][0]["uram"]),
    "UltraRAM one write one read": (10, None, lambda r: r["bank_conflicts"] == []),
    "access outside any loop": (11, "burst", lambda r: _kinds(r) == {"outside-loop": 2}),
    "nested EM_ITER merges": (12, None, lambda r: r["loops"] == {"outer_loop": {"iterations": 8, "invocations": 1}}
                              and r["bursts"]["p"]["contiguous"]),
}


# ---- the static bank rule (hls_banks): one pipelined loop over partitioned memories ------------------
BANK_KERNEL = r"""// kernels of the bank rule: BODY is one pipelined iteration
#include "edgemoe_mem.h"
#define W 8
#define NB 4
static int lw[W][NB][1];        // lane words: NB block-RAM banks
static int t2[2][W][NB][1];     // two parts of lane words
static int ur[W][1][4];         // UltraRAM: one memory of 4-lane words
static int cyc[32];             // cyclic by 4
static int reg[4];              // registers
static const short ROM[2][16] = {{0}, {0}};   // one dual-port copy per row

int k(int off, int n, int sel) {
#pragma HLS ARRAY_PARTITION variable=lw complete dim=2
#pragma HLS ARRAY_PARTITION variable=t2 complete dim=1
#pragma HLS ARRAY_PARTITION variable=t2 complete dim=3
#pragma HLS ARRAY_PARTITION variable=ur complete dim=2
#pragma HLS ARRAY_RESHAPE variable=ur complete dim=3
#pragma HLS BIND_STORAGE variable=ur type=ram_2p impl=uram
#pragma HLS ARRAY_PARTITION variable=cyc cyclic factor=NB
#pragma HLS ARRAY_PARTITION variable=reg complete
#pragma HLS ARRAY_PARTITION variable=ROM complete dim=1
    int acc = 0;
lanes:
    for (int i = 0; i < n; i++) {
#pragma HLS PIPELINE II=1
        int v[4];
#pragma HLS ARRAY_PARTITION variable=v complete
        (void)v;
        BODY
    }
    return acc;
}
"""

LANE = "for (int l = 0; l < 4; l++) "
# name: (BODY, flagged by the bank rule)
BANK_CASES = {
    "lanes on their own banks": (LANE + "acc += cyc[i * 4 + l];", False),
    "run-time offset of whole words": (LANE + "acc += cyc[(i + off) * 4 + l];", False),
    "run-time offset inside the word": (LANE + "acc += cyc[i * 4 + l + off];", True),
    "one run-time-bank access (a mux)": ("acc += cyc[off];", False),
    "three run-time-bank accesses": ("acc += cyc[off] + cyc[off + 1] + cyc[off + 2];", True),
    "if / else share the ports": ("if (sel) { acc += cyc[off] + cyc[off + 5]; } else { acc += cyc[off + 1] + cyc[off + 7]; }",
                                  False),
    "sequential ifs add up": ("if (sel) acc += cyc[off] + cyc[off + 5];\n        if (sel > 1) acc += cyc[off + 1];", True),
    "constant lane conditions": (LANE + "{ if (l < 2) acc += cyc[4 * i + 2 * l]; else acc += cyc[4 * i + 1]; }", False),
    "lane-word read and write": ("lw_read(lw, i, v);\n        lw_write(lw, i + 1, v);", False),
    "lane-word bank from a run-time value": ("for (int b = 0; b < NB; b++) acc += lw[i][(b + off) % NB][0];", True),
    "UltraRAM word: its lanes are one access": ("lw_read(ur, i, v);\n        lw_write(ur, off, v);", False),
    "UltraRAM word written twice": ("lw_write(ur, i, v);\n        lw_write(ur, off, v);", True),
    "a part of a buffer per lane": ("for (int s = 0; s < 2; s++) { lw_read(t2[s], i, v); acc += v[s]; }", False),
    "every lane on one part": ("for (int s = 0; s < 2; s++) { lw_read(t2[0], i + s, v); acc += v[s]; }\n"
                               "        lw_write(t2[0], off, v);", True),
    "registers take any index": (LANE + "acc += reg[(l + off) % 4];", False),
    "a ROM copy per lane": ("for (int c = 0; c < 2; c++) acc += rom_rd(ROM[c], off) + rom_rd(ROM[c], off + 1);", False),
    "one ROM copy for every lane": ("for (int c = 0; c < 2; c++) acc += rom_rd(ROM[0], off + c) + rom_rd(ROM[0], off + c + 1);",
                                    True),
}
