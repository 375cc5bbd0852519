"""The kernel plan (codegen/kernel_plan.py): the one schedule the top template renders and the cycle
model costs.

``tests/data/kernel_schedules.json`` holds ``estimate.schedule`` of four points as the hand-written
schedule gave it before the plan existed (names, units, cycles, MACs, bytes, blocks, engine slots); the
plan's schedule must give the same layers. Regenerate it (``python tests/test_kernel_plan.py``) only when
a unit's cost changes on purpose.
"""
from __future__ import annotations

import json
import re
from dataclasses import astuple
from pathlib import Path

import pytest

from edgemoe.board_facts import get_board
from edgemoe.codegen.bandwidth import Bandwidth
from edgemoe.codegen.config_header import ENGINE_MODE, render_config
from edgemoe.codegen.estimate import schedule
from edgemoe.codegen.generate import kernel_context
from edgemoe.codegen.kernel_plan import EMBED_TAP, ENGINE_SOURCES, KERNEL_PLAN, sizes, wrap_call
from edgemoe.codegen.pack import BLOCK_STAGES, DENSE_ONLY, MOE_ONLY
from edgemoe.codegen.render import INCLUDE_DIR, render_template
from edgemoe.design import get_design
from edgemoe.golden.precision import base_precision
from edgemoe.spec import get_preset

FIXTURE = Path(__file__).parent / "data" / "kernel_schedules.json"
FIELDS = ("name", "unit", "cycles", "macs", "weight_bytes", "block", "engine_slots")
# the unit calls of the top kernel (the helpers' definitions come before the kernel's body)
UNIT_CALL = re.compile(r"\b(ENGINE\(engine_call|layernorm_unit|attention_unit|residual_unit|moe_route_unit|write_out)"
                       r"\((.*?)\)?\);", re.S)
RENDER_POINTS = (("micro", "w16a32", "edge-moe", 1), ("micro", "w8a8", "zcu104", 2),
                 ("m3vit-tiny-edge", "w16a32", "kv260", 3), ("m3vit-small", "w8a8", "zcu102", 1))


def _schedule(point: dict) -> list:
    spec, prec, board = get_preset(point["preset"]), base_precision(point["precision"]), get_board(point["board"])
    design = get_design(point["design"]).with_(batch=point["batch"])
    bw = Bandwidth.of(design, board, design.clock_mhz)
    return [list(astuple(layer)) for layer in schedule(spec, prec, design, bw, point["routing"])]


def _points() -> list:
    return json.loads(FIXTURE.read_text())["points"]


@pytest.mark.parametrize("point", _points(), ids=lambda p: f"{p['preset']}-{p['precision']}-{p['design']}-b{p['batch']}")
def test_schedule_is_the_one_before_the_plan(point):
    assert json.loads(FIXTURE.read_text())["fields"] == list(FIELDS)
    got, want = _schedule(point), point["layers"]
    diff = [(k, w, g) for k, (w, g) in enumerate(zip(want, got)) if w != g]
    assert len(got) == len(want) and not diff, (len(got), len(want), diff[:3])


def _top(preset, prec, design, batch) -> str:
    ctx = kernel_context(get_preset(preset), base_precision(prec), get_design(design).with_(batch=batch), "zcu104")
    text = render_template("edgemoe_top.cpp.j2", **ctx)
    return text[text.rindex('extern "C" void'):]   # the kernel's body (the header comment names it first)


@pytest.mark.parametrize("point", RENDER_POINTS, ids=lambda p: "-".join(map(str, p)))
def test_rendered_top_calls_are_the_plan_steps(point):
    """The top's unit calls, in source order, are the plan's steps one to one: the same engine modes,
    sources, rows and dims, and the same statements."""
    body = _top(*point)
    calls = [(f, " ".join(a.split())) for f, a in UNIT_CALL.findall(body)]
    steps = KERNEL_PLAN.steps()
    assert len(calls) == len(steps), [f for f, _ in calls]
    for (func, args), s in zip(calls, steps):
        assert func == ("ENGINE(engine_call" if s.is_engine else s.func), (func, s.name)
        assert args.split(", ") == s.cpp_args(), (args, s.name)
    engine = [tuple(a.split(", ")[:5]) for f, a in calls if f.startswith("ENGINE")]
    assert engine == [(s.mode, s.src, s.rows, s.ind, s.outd) for s in steps if s.is_engine]
    assert [m for m, *_ in engine] == ["ENG_POS", "ENG_QKV", "ENG_ACT", "ENG_GATE", "ENG_GELU", "ENG_ACT", "ENG_GELU",
                                       "ENG_SCATTER"]
    # every step's taps are dumped right after it
    for s in steps:
        for tap in s.taps:
            assert f"stage_done(scratch, {'tap_id' if s.kind == 'patch_embed' else 'tp'}, {tap.c_id}, {tap.buf}, " \
                   f"{tap.n})" in body, (s.name, tap)


def test_plan_steps_are_well_formed():
    sz = sizes(get_preset("micro"), get_design("edge-moe"))
    linear_h = (INCLUDE_DIR / "linear.h").read_text()
    for s in KERNEL_PLAN.steps():
        for dim in (s.ind, s.outd, s.slots, s.mac_out or s.outd):
            assert dim in sz, (s.name, dim)
        assert s.rows in sz or (s in KERNEL_PLAN.experts and s.rows == "n"), s.name
        if s.is_engine:
            assert s.mode in ENGINE_MODE and s.src in ENGINE_SOURCES and s.weights in ("w", "gate_w", "patch_w"), s
            assert re.search(rf"\b{s.src}\s*=", linear_h), s.src
        else:
            assert s.mode is None and s.src is None and s.weights is None, s.name


def test_taps_follow_the_block_stages():
    """A block's taps, in the plan's order, are codegen/tap_stages.py's stages of that kind of block."""
    assert [t.stage for s in KERNEL_PLAN.frame_in for t in s.taps] == [EMBED_TAP]
    for moe, skip in ((False, MOE_ONLY), (True, DENSE_ONLY)):
        taps = [t.stage for s in KERNEL_PLAN.block_steps(moe) for t in s.taps]
        assert taps == [st for st in BLOCK_STAGES if st not in skip], moe


def test_sizes_are_the_config_header_values():
    for preset in ("micro", "m3vit-tiny-edge"):
        spec, design = get_preset(preset), get_design("edge-moe")
        text = render_config(spec, base_precision("w16a32"), design)
        header = {m.group(1): int(m.group(2)) for m in re.finditer(r"^#define\s+(\w+)\s+\(?(-?\d+)\)?\s", text, re.M)}
        sz = sizes(spec, design)
        for name, v in sz.items():
            if name == "GATE_ROWS":   # moe_route.h: NUM_EXPERTS rounded up to ENGINE_OUT
                assert v % design.engine_out == 0 and spec.num_experts <= v < spec.num_experts + design.engine_out
            elif name != "1":
                assert header[name] == v, name


def test_calls_unroll_the_batch_and_the_expert_chunks():
    spec = get_preset("micro")
    counts = [[spec.tokens, 0, 3, 2], [0, 0, 0, 0]]
    calls = KERNEL_PLAN.calls(spec, 3, counts, get_design("edge-moe"))
    first_moe = spec.moe_blocks[0]
    experts = [(c.expert, c.chunk, c.rows, c.step.name) for c in calls if c.image is None and c.block == first_moe]
    # expert 0: 3 x TOKENS rows in three calls; expert 1: none; 2 and 3: one call each
    assert experts == [(0, k, spec.tokens, n) for k in range(3) for n in ("fc1", "fc2")] + \
        [(2, 0, 9, "fc1"), (2, 0, 9, "fc2"), (3, 0, 6, "fc1"), (3, 0, 6, "fc2")]
    assert not [c for c in calls if c.image is None and c.block == spec.moe_blocks[1]]
    per_image = [c for c in calls if c.image == 1]
    dense = sum(not spec.is_moe(i) for i in range(spec.depth))
    assert len(per_image) == 2 + spec.depth * len(KERNEL_PLAN.front) + dense * len(KERNEL_PLAN.front_dense) + \
        len(spec.moe_blocks) * (len(KERNEL_PLAN.front_moe) + len(KERNEL_PLAN.back))


def test_wrap_call():
    assert wrap_call("f(", ["a", "b"], ");", 4) == "    f(a, b);"
    assert wrap_call("f(", ["aaaa", "bbbb", "cccc"], ");", 0, width=13) == "f(aaaa, bbbb,\n  cccc);"


def _write_fixture() -> None:
    points = []
    for p in _points():
        head = json.dumps({k: v for k, v in p.items() if k != "layers"})[:-1]
        rows = ",\n".join("   " + json.dumps(layer) for layer in _schedule(p))
        points.append(f'  {head}, "layers": [\n{rows}]}}')
    FIXTURE.write_text('{"fields": ' + json.dumps(list(FIELDS)) + ', "points": [\n' + ",\n".join(points) + "]}\n")


if __name__ == "__main__":
    _write_fixture()
