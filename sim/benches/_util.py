"""Shared plumbing of the unit benches: configuration from the environment, clock and reset,
AXI-Stream source/sink with random gaps and backpressure, a hang watchdog, realistic inputs
(taps of golden fixed-point model runs, cached in a .npz) and the result JSON.

Environment (set by ``edgemoe sim`` / :mod:`edgemoe.sim.runner`):
  EDGEMOE_VECTORS      number of input vectors (default 1000)
  EDGEMOE_SEED         random seed (default 0)
  EDGEMOE_CONFIG       JSON {"preset", "precision", "design"[, "block"]} (default edgemoe.sim.units.DEFAULT_SPEC)
  EDGEMOE_SPEC         JSON of the ModelSpec the RTL was rendered with (any spec, not only a preset's;
                       default: the config's preset)
  EDGEMOE_PRECISION    JSON of the Precision the RTL was rendered with (default: from the config)
  EDGEMOE_DESIGN       JSON of the Design the RTL was rendered with (default: the config's design)
  (edgemoe.sim.bench_config.bench_files writes those four files; bench_objects reads them)
  EDGEMOE_RESULT       where to write the result JSON (default ./result.json)
  EDGEMOE_CYCLE_LIMIT  cycles without any handshake after which the bench fails as hung
  EDGEMOE_TAPS_CACHE   optional path of the .npz of golden-model taps (default: beside the build dir)
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import random
from pathlib import Path

import numpy as np

CLOCK_NS = 10


def bench_objects(environ=None) -> tuple:
    """(config, ModelSpec, Precision, Design) the runner rendered the RTL with, read from the JSON files
    named by EDGEMOE_CONFIG / EDGEMOE_SPEC / EDGEMOE_PRECISION / EDGEMOE_DESIGN; an object whose variable
    is unset comes from the config (a bench run by hand), the config from edgemoe.sim.units.DEFAULT_SPEC."""
    from edgemoe.design import Design
    from edgemoe.golden.precision import Precision
    from edgemoe.sim.bench_config import config_objects, default_spec, resolve_config
    from edgemoe.spec import ModelSpec

    environ = os.environ if environ is None else environ

    def read(var: str):
        path = environ.get(var)
        return json.loads(Path(path).read_text()) if path else None

    cfg = read("EDGEMOE_CONFIG") or dict(zip(("preset", "precision", "design"), default_spec()))
    spec, prec, design = (read(v) for v in ("EDGEMOE_SPEC", "EDGEMOE_PRECISION", "EDGEMOE_DESIGN"))
    if spec is None or prec is None or design is None:
        named = config_objects(resolve_config(cfg))
    return (cfg, ModelSpec.from_dict(spec) if spec is not None else named[0],
            Precision.from_dict(prec) if prec is not None else named[1],
            Design.from_dict(design) if design is not None else named[2])


class Env:
    def __init__(self, unit: str):
        self.unit = unit
        self.vectors = int(os.environ.get("EDGEMOE_VECTORS", "1000"))
        self.seed = int(os.environ.get("EDGEMOE_SEED", "0"))
        self.cfg, self.spec, self.prec, self.design = bench_objects()
        self.result_path = Path(os.environ.get("EDGEMOE_RESULT", "result.json"))
        lim = os.environ.get("EDGEMOE_CYCLE_LIMIT")
        self.cycle_limit = int(lim) if lim else None
        self.rng = np.random.default_rng(self.seed)
        self.prng = random.Random(self.seed)
        from edgemoe.sim.rtl import unit_context
        self.ctx = unit_context(unit, self.spec, self.prec, self.design)

    def limit(self, default: int) -> int:
        return self.cycle_limit if self.cycle_limit else default

    def write_result(self, **res) -> dict:
        out = dict(unit=self.unit, config=self.cfg, **res)
        self.result_path.parent.mkdir(parents=True, exist_ok=True)
        self.result_path.write_text(json.dumps(out, indent=1))
        return out


# ---- raw <-> stream words ---------------------------------------------------------------------------
def to_word(raw, w: int) -> int:
    """Low ``w`` bits of a raw two's-complement code (as an unsigned lane value)."""
    return int(raw) & ((1 << w) - 1)


def from_word(word: int, w: int, signed: bool) -> int:
    v = int(word) & ((1 << w) - 1)
    if signed and v >> (w - 1):
        v -= 1 << w
    return v


def pack(values, w: int, lane: int) -> int:
    """Lanes of ``lane`` bits (value i in lane i, low lanes first) holding ``w``-bit raw codes."""
    word = 0
    for i, v in enumerate(values):
        word |= to_word(v, w) << (i * lane)
    return word


def unpack(word: int, n: int, w: int, lane: int, signed: bool) -> list:
    return [from_word(int(word) >> (i * lane), w, signed) for i in range(n)]


# ---- cocotb plumbing ----------------------------------------------------------------------------------
def pause_gen(rng: random.Random, p: float):
    """Pause pattern for set_pause_generator: bursts of gaps with probability about ``p``."""
    while True:
        if rng.random() < p:
            for _ in range(rng.randint(1, 4)):
                yield True
        else:
            yield False


async def start(dut, env: "Env"):
    """Clock, reset (active low, 10 cycles); returns nothing."""
    import cocotb
    from cocotb.clock import Clock
    from cocotb.triggers import ClockCycles

    cocotb.start_soon(Clock(dut.ap_clk, CLOCK_NS, unit="ns").start())
    dut.ap_rst_n.value = 0
    await ClockCycles(dut.ap_clk, 10)
    dut.ap_rst_n.value = 1
    await ClockCycles(dut.ap_clk, 2)


def stream_source(dut, prefix: str, width: int):
    from cocotbext.axi import AxiStreamBus, AxiStreamSource
    return AxiStreamSource(AxiStreamBus.from_prefix(dut, prefix), dut.ap_clk, dut.ap_rst_n,
                           reset_active_level=False, byte_size=width)


def stream_sink(dut, prefix: str, width: int):
    from cocotbext.axi import AxiStreamBus, AxiStreamSink
    return AxiStreamSink(AxiStreamBus.from_prefix(dut, prefix), dut.ap_clk, dut.ap_rst_n,
                         reset_active_level=False, byte_size=width)


def now_cycles() -> int:
    from cocotb.utils import get_sim_time
    return int(get_sim_time("ns")) // CLOCK_NS


class Watchdog:
    """Fails the test when ``limit`` cycles pass without progress, naming the unit and the last handshake seen
    (beats counted on each stream; checked every ``step`` cycles to keep the bench fast)."""

    def __init__(self, dut, env: Env, limit: int, step: int = 256):
        self.dut, self.env, self.limit, self.step = dut, env, limit, step
        self.counters = {}          # stream name -> callable returning beats transferred so far
        self.last = "none"
        self._seen = {}
        self.t0 = now_cycles()

    def watch(self, name: str, count_fn):
        self.counters[name] = count_fn

    def note(self):
        for name, fn in self.counters.items():
            c = fn()
            if c != self._seen.get(name):
                self._seen[name] = c
                self.last = f"{name} frame #{c} by cycle ~{now_cycles()}"

    async def run(self):
        """A hang is ``limit`` cycles without a handshake on any watched stream (a total-cycle
        bound would have to know each unit's cycles per vector, which differ by orders)."""
        from cocotb.triggers import ClockCycles
        seen, since = None, now_cycles()
        while True:
            await ClockCycles(self.dut.ap_clk, self.step)
            self.note()
            cur = tuple(fn() for fn in self.counters.values())
            if cur != seen:
                seen, since = cur, now_cycles()
            elif now_cycles() - since > self.limit:
                msg = (f"{self.env.unit}: hung: no handshake for {self.limit} cycles (EDGEMOE_CYCLE_LIMIT); "
                       f"last handshake seen: {self.last}")
                self.env.write_result(vectors=0, mismatches=-1, cycles=now_cycles() - self.t0,
                                      items_per_cycle=0.0, throughput_cycles=0, last_handshake=self.last,
                                      error=msg)
                raise AssertionError(msg)


class Counter:
    """Frames queued into a source / taken from a sink, for the watchdog's last-handshake report."""

    def __init__(self, q):
        self.q, self.n = q, 0

    def sent(self):          # frames a source has put (at least partly) on the bus
        return self.n - self.q.queue_occupancy_frames

    def received(self):      # frames a sink has collected
        return self.n + self.q.queue_occupancy_frames


async def stream_phase(dut, env: Env, sources: list, sinks: list, pause: float, collect):
    """Queue every frame of ``sources`` [(source, [frames])] and receive ``sinks`` [(sink, n_frames)];
    with ``pause`` > 0 random source gaps and sink backpressure.  ``collect(i_sink, k, frame)`` checks
    each received frame.  Returns the cycles from the first queued frame to the last received one."""
    from cocotbext.axi import AxiStreamFrame
    for k, (src, _) in enumerate(sources):
        if pause > 0:
            src.set_pause_generator(pause_gen(random.Random(env.seed * 7919 + 17 * k + 1), pause))
        else:
            src.clear_pause_generator()
            src.pause = False           # the generator may have left it set
    for k, (snk, _) in enumerate(sinks):
        if pause > 0:
            snk.set_pause_generator(pause_gen(random.Random(env.seed * 104729 + 31 * k + 2), pause))
        else:
            snk.clear_pause_generator()
            snk.pause = False
    t0 = now_cycles()
    for src, frames in sources:
        for f in frames:
            src.send_nowait(f if isinstance(f, AxiStreamFrame) else AxiStreamFrame(list(f)))
        src.counter.n += len(frames)
    for i, (snk, n) in enumerate(sinks):
        for k in range(n):
            fr = await snk.recv()
            snk.counter.n += 1
            collect(i, k, fr)
    return now_cycles() - t0


def make_stream(dut, prefix: str, width: int, source: bool, wd: "Watchdog" = None):
    s = stream_source(dut, prefix, width) if source else stream_sink(dut, prefix, width)
    s.counter = Counter(s)
    s.log.setLevel(logging.WARNING)     # no per-frame log lines
    if wd is not None:
        wd.watch(prefix, s.counter.sent if source else s.counter.received)
    return s


class Checker:
    """Counts mismatching items of received frames against expected raw codes."""

    def __init__(self, dut, name: str, max_log: int = 10):
        self.dut, self.name, self.max_log = dut, name, max_log
        self.items = 0
        self.mismatches = 0

    def check(self, got: list, want: list, what: str):
        self.items += len(want)
        if len(got) != len(want):
            self.mismatches += max(len(want), 1)
            if self.max_log > 0:
                self.max_log -= 1
                self.dut._log.error(f"{self.name}: {what}: {len(got)} values, expected {len(want)}")
            return
        bad = [i for i, (a, b) in enumerate(zip(got, want)) if int(a) != int(b)]
        self.mismatches += len(bad)
        if bad and self.max_log > 0:
            self.max_log -= 1
            i = bad[0]
            self.dut._log.error(f"{self.name}: {what}: {len(bad)} mismatches, first at {i}: "
                                f"got {got[i]}, expected {want[i]}")


# ---- realistic inputs -----------------------------------------------------------------------------------
def _taps_path(env: Env) -> Path:
    p = os.environ.get("EDGEMOE_TAPS_CACHE")
    if p:
        return Path(p)
    base = Path.cwd().parent.parent if Path.cwd().parent != Path.cwd() else Path.cwd()
    # calibrated types differ by block, a custom spec may share a preset's name: keyed by both objects
    key = hashlib.sha256((env.spec.to_json() + env.prec.to_json()).encode()).hexdigest()[:8]
    return base / f"edgemoe_taps_{env.spec.name}_{env.prec.name}_{key}.npz"


def golden_taps(env: Env) -> dict:
    """Raw codes of real activations of the fixed-point golden model on the configured spec and
    precision (2 weight seeds x 2 images x every task), cached in a .npz beside the build dir:
    gelu_in [N], scores [R, T], ln_x [R, d], ln_gamma/ln_beta [B, d], lin_x [R, d],
    gate_logits [R, E]."""
    path = _taps_path(env)
    if path.is_file():
        with np.load(path) as z:
            return {k: z[k] for k in z.files}
    from edgemoe.golden.fixed_model import FixedM3ViT
    from edgemoe.golden.model import build_model, params_numpy, sample_image
    from edgemoe.golden.units.linear import linear_fixed
    from edgemoe.spec import block_key, mlp_tensor

    spec, prec = env.spec, env.prec
    acc = {k: [] for k in ("gelu_in", "scores", "ln_x", "ln_gamma", "ln_beta", "lin_x", "gate_logits")}
    for wseed in (0, 1):
        params = params_numpy(build_model(spec, wseed))
        fm = FixedM3ViT(spec, prec, params)
        for iseed in (0, 1):
            img = sample_image(spec, iseed)
            for task in range(spec.num_tasks):
                taps = {}
                fm.encode(img, task, taps)
                x = taps["patch_embed"]
                for i in range(spec.depth):
                    k = lambda n, i=i: block_key(i, n)
                    acc["ln_x"] += [x.raw, taps[f"blocks.{i}.res1"].raw]
                    for n in ("norm1", "norm2"):
                        acc["ln_gamma"].append(fm.q[k(n + ".weight")].raw)
                        acc["ln_beta"].append(fm.q[k(n + ".bias")].raw)
                    acc["scores"].append(taps[f"blocks.{i}.scores"].raw.reshape(-1, spec.tokens))
                    ln2 = taps[f"blocks.{i}.ln2"]
                    acc["lin_x"] += [taps[f"blocks.{i}.ln1"].raw, ln2.raw]
                    fc1 = k(mlp_tensor("fc1", spec.is_moe(i)))
                    w1, b1 = fm.q[fc1 + ".weight"], fm.q[fc1 + ".bias"]
                    if spec.is_moe(i):
                        w1, b1 = w1[0], b1[0]
                        acc["gate_logits"].append(taps[f"blocks.{i}.gate_logits"].raw)
                    h = linear_fixed(ln2, w1, b1, prec, prec.t("gelu_in"))
                    acc["gelu_in"].append(h.raw.reshape(-1))
                    x = taps[f"blocks.{i}.out"]
    out = {k: np.concatenate(v) if k in ("gelu_in",) else np.concatenate(v, axis=0) if v else np.zeros((0,))
           for k, v in acc.items()}
    out["ln_gamma"] = np.stack(acc["ln_gamma"])
    out["ln_beta"] = np.stack(acc["ln_beta"])
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp.npz")
    np.savez_compressed(tmp, **out)
    os.replace(tmp, path)
    return out
