"""cocotb bench of edgemoe_linear (the unified compute unit's MAC engine): every output bit-exact
with golden linear_fixed (+ gelu_fixed for fc1, + the MoE scatter's score weighting; + random per-channel
weight scales when the precision has them).

A vector is one input row of a layer call, through every output tile.  Calls are the model's own
layers (qkv with its bias type, proj, fc1 + GELU, fc2, expert fc2 weighted by gate scores) over
real LayerNorm outputs of golden-model runs (and a few saturated rows), with row counts from 1
(a nearly empty expert queue) to the token count; weights are random in the weight type with
saturated codes mixed in.  The call's arguments are written through s_axi_control between calls.
"""
from __future__ import annotations

import cocotb
import numpy as np

from edgemoe.golden.apfixed import Fx
from edgemoe.golden.units.gelu import gelu_fixed
from edgemoe.golden.units.linear import linear_fixed
from edgemoe.units.linear import LIN_BIAS_QKV_BIT, LIN_MODE_ACT, LIN_MODE_GELU, LIN_MODE_QKV, LIN_MODE_SCORE

from ._util import Checker, Env, Watchdog, golden_taps, make_stream, pack, start, stream_phase, unpack


def _layers(spec):
    d = spec.embed
    hid = spec.mlp_hidden if len(spec.moe_blocks) < spec.depth else spec.expert_hidden
    return [("qkv", d, 3 * d, LIN_MODE_QKV, True), ("proj", d, d, LIN_MODE_ACT, False),
            ("fc1", d, hid, LIN_MODE_GELU, False), ("fc2", hid, d, LIN_MODE_ACT, False),
            ("expert_fc1", d, spec.expert_hidden, LIN_MODE_GELU, False),
            ("expert_fc2", spec.expert_hidden, d, LIN_MODE_SCORE, False)]


class Call:
    def __init__(self, env: Env, layer, rows: int, rng):
        L = env.ctx["L"]
        name, ind, outd, mode, qb = layer
        self.name, self.ind, self.outd, self.mode, self.qb, self.rows = name, ind, outd, mode, qb, rows
        xt, wt = L["x_t"], L["w_t"]
        real = golden_taps(env)["lin_x"]
        xs = real[rng.integers(len(real), size=rows)]
        if xs.shape[1] != ind:                      # fc2 inputs (hidden) from the same distribution
            xs = real[rng.integers(len(real), size=(rows, ind // real.shape[1] + 1))].reshape(rows, -1)[:, :ind]
        if rng.random() < 0.1:                      # saturated rows
            xs = xs.copy()
            xs[0] = np.where(rng.random(ind) < 0.5, xt.max_raw, xt.min_raw)
        self.x = np.asarray(xs, dtype=np.int64)
        w = wt.quantize(rng.normal(0, 0.15, (outd, ind)))
        w[rng.random((outd, ind)) < 0.01] = wt.max_raw
        w[rng.random((outd, ind)) < 0.01] = wt.min_raw
        self.w = w
        bt = L["qb_t"] if qb else L["b_t"]
        b = bt.quantize(rng.normal(0, 0.3, outd))
        b[rng.random(outd) < 0.05] = bt.max_raw
        self.b, self.bt = b, bt
        st = L["sc_t"]
        # per-channel weight scales (w8a8+per-channel): a random shift per output row, 0 (most) .. CHANNEL_SHIFT_MAX
        self.sh = (np.where(rng.random(outd) < 0.5, 0, rng.integers(0, L["sh_max"] + 1, outd)).astype(np.int64)
                   if L["per_channel"] else None)
        self.sc = st.quantize(rng.random(rows)) if mode == LIN_MODE_SCORE else np.zeros(rows, np.int64)
        if mode == LIN_MODE_SCORE and rows > 1:
            self.sc[0] = st.max_raw
        self.want = self._golden(env)

    def _golden(self, env: Env) -> np.ndarray:
        L, prec = env.ctx["L"], env.prec
        x, w, b = Fx(self.x, L["x_t"]), Fx(self.w, L["w_t"]), Fx(self.b, self.bt)
        if self.mode == LIN_MODE_QKV:
            return linear_fixed(x, w, b, prec, L["q_t"], wsh=self.sh).raw
        if self.mode == LIN_MODE_ACT:
            return linear_fixed(x, w, b, prec, L["a_t"], wsh=self.sh).raw
        if self.mode == LIN_MODE_GELU:
            return gelu_fixed(linear_fixed(x, w, b, prec, L["gi_t"], wsh=self.sh), prec, out_t=L["h_t"]).raw
        y = linear_fixed(x, w, b, prec, L["a_t"], wsh=self.sh)
        return (Fx(self.sc[:, None], L["sc_t"]) * y).cast(L["a_t"]).raw

    @property
    def mode_word(self) -> int:
        return self.mode | (LIN_BIAS_QKV_BIT if self.qb else 0)

    def frames(self, env: Env):
        L, ei, eo = env.ctx["L"], env.ctx["EI"], env.ctx["EO"]
        n_ot, n_it = self.outd // eo, self.ind // ei
        wbeats, xframes = [], []
        rb, nr = L["w_row_bits"], L["w_rows"]
        for ot in range(n_ot):
            for it in range(n_it):
                # w_beats beats per weight tile, w_rows rows (EI weights + the row's bias) per beat
                rows = [pack(self.w[o, it * ei:(it + 1) * ei], L["ww"], L["wb"]) |
                        (pack([self.b[o]], L["bw"], L["bb"]) << (ei * L["wb"])) |
                        ((int(self.sh[o]) << (ei * L["wb"] + L["bb"])) if self.sh is not None else 0)
                        for o in range(ot * eo, (ot + 1) * eo)]
                wbeats += [sum(r << (k * rb) for k, r in enumerate(rows[j:j + nr])) for j in range(0, eo, nr)]
                xframes.append([pack(self.x[t, it * ei:(it + 1) * ei], L["xw"], L["xb"]) |
                                (int(self.sc[t]) << (ei * L["xb"])) for t in range(self.rows)])
        return [wbeats], xframes, n_ot

    def out_signed_width(self, env: Env):
        L = env.ctx["L"]
        t = {LIN_MODE_QKV: L["q_t"], LIN_MODE_ACT: L["a_t"], LIN_MODE_GELU: L["h_t"], LIN_MODE_SCORE: L["a_t"]}[self.mode]
        return t.W, t.signed


@cocotb.test()
async def linear_bench(dut):
    from cocotbext.axi import AxiLiteBus, AxiLiteMaster
    env = Env("linear")
    L, ei, eo = env.ctx["L"], env.ctx["EI"], env.ctx["EO"]
    spec = env.spec
    n = max(env.vectors, 1)
    rng = env.rng
    layers = _layers(spec)
    calls, rows_total = [], 0
    while rows_total < n:
        r = spec.tokens if rng.random() < 0.7 else int(rng.integers(1, spec.tokens + 1))
        r = min(r, n - rows_total)
        calls.append(Call(env, layers[int(rng.integers(len(layers)))], r, rng))
        rows_total += r
    beats = sum((c.rows + L["w_beats"]) * (c.ind // ei) * (c.outd // eo) for c in calls)
    wd = Watchdog(dut, env, env.limit(2000 + 30 * beats + 200 * len(calls)))
    wsrc = make_stream(dut, "w_r", L["w_bits"], True, wd)
    xsrc = make_stream(dut, "x_r", L["x_bits"], True, wd)
    snk = make_stream(dut, "out_r", L["o_bits"], False, wd)
    ctl = AxiLiteMaster(AxiLiteBus.from_prefix(dut, "s_axi_control"), dut.ap_clk, dut.ap_rst_n,
                        reset_active_level=False)
    await start(dut, env)
    cocotb.start_soon(wd.run())
    chk = Checker(dut, "linear")

    reg = {r["name"]: r["offset"] for r in env.ctx["regs"]}     # s_axi_control (edgemoe.units.linear.LIN_REGS)

    async def run_call(c: Call, pause: float, k: int):
        await ctl.write_dword(reg["n_rows"], c.rows)
        await ctl.write_dword(reg["n_in_tiles"], c.ind // ei)
        await ctl.write_dword(reg["mode"], c.mode_word)
        wfr, xfr, n_ot = c.frames(env)
        ow, osg = c.out_signed_width(env)

        def collect(_i, ot, fr):
            got = [unpack(wd_, eo, ow, L["ob"], osg) for wd_ in fr.tdata]
            want = c.want[:, ot * eo:(ot + 1) * eo]
            chk.check([v for row in got for v in row], [int(v) for v in want.reshape(-1)],
                      f"call {k} ({c.name}, {c.rows} rows) output tile {ot}")
        return await stream_phase(dut, env, [(wsrc, wfr), (xsrc, xfr)], [(snk, n_ot)], pause, collect)

    cycles = 0
    for k, c in enumerate(calls):
        cycles += await run_call(c, 0.3, k)

    # throughput: one long call (many output tiles) of the model's token count, no gaps
    n_ot = max(8, min(64, n // spec.tokens))
    tp = Call(env, ("tp", spec.embed, n_ot * eo, LIN_MODE_ACT, False), spec.tokens, rng)
    tp_cycles = await run_call(tp, 0.0, len(calls))
    macs = tp.rows * tp.ind * tp.outd
    # one row through one weight tile (w_beats beats, then the row): the fill + drain of a call
    lat = Call(env, ("latency", ei, eo, LIN_MODE_ACT, False), 1, rng)
    lat_cycles = await run_call(lat, 0.0, len(calls) + 1)
    workload = dict(rows=tp.rows, in_dim=tp.ind, out_dim=tp.outd, engine_in=ei, engine_out=eo,
                    in_tiles=tp.ind // ei, out_tiles=tp.outd // eo, w_beats_per_tile=L["w_beats"],
                    w_rows_per_beat=L["w_rows"], pipeline_depth=L["depth"], latency_cycles=lat_cycles)
    wd.note()
    env.write_result(vectors=rows_total, items=chk.items, mismatches=chk.mismatches, cycles=cycles,
                     calls=len(calls), bp_items_per_cycle=sum(c.rows * c.ind * c.outd for c in calls) / max(cycles, 1),
                     items_per_cycle=macs / max(tp_cycles, 1), throughput_cycles=tp_cycles,
                     throughput_items=macs, throughput_workload=workload, last_handshake=wd.last)
    assert chk.mismatches == 0, f"linear: {chk.mismatches} mismatching outputs of {chk.items}"
