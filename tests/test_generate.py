"""`edgemoe generate`: the project folder, its manifest and packed data, the synthesizability of the
generated kernel, strict compilation of our own C++, and every kind of bad input."""
from __future__ import annotations

import hashlib
import json
import re

import numpy as np
import pytest

from edgemoe.cli import main
from edgemoe.codegen.aptypes import compile_cpp
from edgemoe.codegen.generate import TOP, generate, kernel_sources
from edgemoe.codegen.word_packing import from_tile_order, pack_raw, unpack_raw
from edgemoe.codegen.project import STRICT_CHECK_FLAGS
from edgemoe.codegen.synth_check import check_files, strip_comments
from edgemoe.errors import EdgeMoeError, ToolMissingError
from edgemoe.golden.apfixed import FixedType
from edgemoe.golden.fixed_model import quantize_params
from edgemoe.golden.model import build_model, params_numpy
from edgemoe.kernel_interface import storage_bits
from edgemoe.spec import get_preset


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    return generate(tmp_path_factory.mktemp("gen") / "proj", preset="micro", board="zcu104")


def tile_words_from_ports(words: np.ndarray, matrices: int, ports: int, tile_words: int) -> np.ndarray:
    """[words][per] of one buffer in the port layout (each port's words of a matrix contiguous, step by
    step: port p holds tile word k * ports + p in step k) -> the same words in plain tile order."""
    per = words.shape[-1]
    lw = -(-tile_words // ports)
    m = words.reshape(matrices, ports, -1, lw, per)               # [matrix][port][tile][step]
    tiles = m.transpose(0, 2, 3, 1, 4).reshape(matrices, m.shape[2], lw * ports, per)
    return tiles[:, :, :tile_words].reshape(-1, per)


def tiles_flat(data: bytes, b: dict, axi_bits: int) -> np.ndarray:
    """The raw codes of a manifest buffer in plain tile order, read from its port layout."""
    per = axi_bits // b["storage_bits"]
    assert b["matrix_words"] == b["ports"] * b["port_words"] and b["size"] % (b["matrix_words"] * axi_bits // 8) == 0
    flat = unpack_raw(data[b["byte_offset"]:], FixedType.parse(b["type"]), b["size"] * 8 // b["storage_bits"])
    matrices = b["size"] * 8 // axi_bits // b["matrix_words"]
    return tile_words_from_ports(flat.reshape(-1, per), matrices, b["ports"], b["tile_words"]).reshape(-1)


def test_folder_layout(project):
    root = project.path
    for f in ["src/edgemoe_top.cpp", "src/edgemoe_config.h", "src/edgemoe_layout.h", "src/linear.h",
              "src/attention.h", "src/softmax.h", "src/gelu.h", "src/layernorm.h", "src/moe_route.h",
              "src/patch_embed.h", "src/residual.h", "src/edgemoe_fixed.h", "tb/tb.cpp", "csim/edgemoe_csim.cpp",
              "compat/edgemoe_compat.h", "compat/ap_axi_sdata.h", "data/weights.bin", "data/input.npy",
              "data/input_pixels.bin", "data/manifest.json", "data/golden_fixed_task0.npy",
              "data/golden_fixed_task1.npy", "data/golden_float_task0.npy", "data/golden_out_task1.bin",
              "hls_config.cfg", "run_hls.tcl", "Makefile", "README.md"]:
        assert (root / f).is_file(), f
    assert not list(root.parent.glob(".proj.*")), "temporary folders left behind"


def test_manifest_buffers_match_files(project):
    m = json.loads((project.path / "data" / "manifest.json").read_text())
    for key in ("spec", "precision", "design", "board", "taps", "clock_mhz", "buffers"):
        assert key in m
    assert m["board"]["part"] == "xczu7ev-ffvc1156-2-e" and m["clock_mhz"] == 300.0
    data = (project.path / "data" / "weights.bin").read_bytes()
    wb = m["axi_bits"] // 8
    end = 0
    for b in m["buffers"]:
        assert b["byte_offset"] % wb == 0 and b["size"] % wb == 0
        chunk = data[b["byte_offset"]:b["byte_offset"] + b["size"]]
        assert hashlib.sha256(chunk).hexdigest() == b["sha256"], b["name"]
        assert b["byte_offset"] >= end
        end = b["byte_offset"] + b["size"]
    assert end == len(data)
    for f in m["files"]:
        blob = (project.path / "data" / f["file"]).read_bytes()
        assert hashlib.sha256(blob).hexdigest() == f["sha256"]
    ids = [t["id"] for t in m["taps"]]
    assert ids == sorted(ids) and ids[0] == 0 and len(ids) == 1 + 2 * 9 + 2 * 12


def test_packed_weights_are_the_quantised_params(project):
    """A buffer read back from weights.bin equals quantize_params of the model, code for code."""
    spec = project.spec
    q = quantize_params(spec, project.prec, params_numpy(build_model(spec, seed=0)))
    m = {b["name"]: b for b in project.manifest["buffers"]}
    data = (project.path / "data" / "weights.bin").read_bytes()
    for name, key in (("blocks.0.qkv_w", "backbone.blocks.0.attn.qkv.weight"),
                      ("blocks.1.fc1_w", "backbone.blocks.1.mlp.experts.htoh4.weight"), ("pos", "pos")):
        b = m[name]
        t = FixedType.parse(b["type"])
        if b["order"] == "tiles":   # linear weights: engine tile order, each tile padded to whole words
            got = from_tile_order(tiles_flat(data, b, project.manifest["axi_bits"]), tuple(b["shape"]),
                                  tuple(b["tile"]), project.manifest["axi_bits"] // b["storage_bits"])
        else:
            got = unpack_raw(data[b["byte_offset"]:], t, int(np.prod(b["shape"]))).reshape(b["shape"])
        assert np.array_equal(got, q[key].raw), name
    assert {b["order"] for n, b in m.items()
            if n.endswith(("qkv_w", "proj_w", "fc1_w", "fc2_w", "patch_w", "gate_w"))} == {"tiles"}
    assert {b["order"] for n, b in m.items() if b["region"] == "onetime"} == {"row-major"}
    # the gates run on the engine: per task one [GATE_OUT][embed] matrix in tile order, the expert rows
    # padded with zero weights to whole output tiles
    gate = m["blocks.1.gate_w"]
    t = FixedType.parse(gate["type"])
    eo, ei = gate["tile"]
    tasks, e, d = gate["shape"]
    per = project.manifest["axi_bits"] // gate["storage_bits"]
    assert gate["padded_out"] == -(-e // eo) * eo and gate["size"] == tasks * gate["matrix_words"] * per * \
        gate["storage_bits"] // 8
    lw = -(-gate["tile_words"] // gate["ports"])
    assert gate["port_words"] == (gate["padded_out"] // eo) * (d // ei) * lw
    flat = tiles_flat(data, gate, project.manifest["axi_bits"])
    got = from_tile_order(flat, tuple(gate["shape"]), (eo, ei), per)
    assert np.array_equal(got[1], q["backbone.blocks.1.mlp.gate.1.w_gate"].raw)
    padded = from_tile_order(flat, (tasks, gate["padded_out"], d), (eo, ei), per)
    assert not padded[:, e:].any()


@pytest.mark.parametrize("design,pname", [("edge-moe", "w16a32"), ("small", "w8a8"), ("zcu104", "w8a8")])
def test_tile_order_layout(design, pname):
    """Linear weights in engine tile order: tile (ot, it) holds W[ot*EO.., it*EI..] row-major, padded to
    TILE_WORDS words; experts are contiguous blocks; params_from_weights inverts the packing."""
    from edgemoe.design import get_design
    from edgemoe.codegen.pack import Layout
    from edgemoe.golden.precision import base_precision
    spec, prec, dsg = get_preset("micro"), base_precision(pname), get_design(design)
    lay = Layout(spec, prec, dsg)
    params = params_numpy(build_model(spec, seed=1))
    lay.fill(params)
    blob = b"".join(b.to_bytes(dsg.axi_bits) for b in lay.buffers.values())
    assert len(blob) == lay.weight_words * dsg.axi_bits // 8
    eo, ei = dsg.engine_out, dsg.engine_in
    defines = dict(lay.engine_words())
    moe = next(i for i in range(spec.depth) if spec.is_moe(i))
    b = lay.buffers[f"blocks.{moe}.fc2_w"]
    per = dsg.axi_bits // b.sb
    tw = -(-eo * ei * b.sb // dsg.axi_bits)
    assert b.tile_words(dsg.axi_bits) == defines["TILE_WORDS"] == tw
    e, d, h = b.shape
    ports, lw = dsg.weight_ports, -(-tw // dsg.weight_ports)
    assert b.matrix_words(dsg.axi_bits) == defines["EXPERT_FC2_WORDS"] == ports * (d // eo) * (h // ei) * lw
    # expert e, output tile 1, input tile 1 (when there is one), value (r, c) of the tile
    wb = dsg.axi_bits // 8
    words = np.frombuffer(blob[b.word_offset * wb:(b.word_offset + b.words(dsg.axi_bits)) * wb], dtype=np.uint8)
    flat = unpack_raw(words.tobytes(), b.ftype, b.words(dsg.axi_bits) * per)
    flat = tile_words_from_ports(flat.reshape(-1, per), e, ports, tw).reshape(-1)
    ot, it = min(1, d // eo - 1), min(1, h // ei - 1)
    tile0 = (e - 1) * (d // eo) * (h // ei) + ot * (h // ei) + it
    for r, c in ((0, 0), (eo - 1, ei - 1), (eo // 2, ei // 2)):
        assert flat[tile0 * tw * per + r * ei + c] == b.raw[e - 1, ot * eo + r, it * ei + c]
    # the gate: task k's [GATE_OUT][embed] matrix (zero rows past the experts) at k * GATE_TASK_WORDS
    g = lay.buffers[f"blocks.{moe}.gate_w"]
    tasks, ne, d = g.shape
    assert defines["GATE_OUT"] == g.padded_out == -(-ne // eo) * eo
    assert defines["GATE_TASK_WORDS"] == g.matrix_words(dsg.axi_bits) == ports * (g.padded_out // eo) * (d // ei) * lw
    words = np.frombuffer(blob[g.word_offset * wb:(g.word_offset + g.words(dsg.axi_bits)) * wb], dtype=np.uint8)
    flat = unpack_raw(words.tobytes(), g.ftype, g.words(dsg.axi_bits) * per)
    flat = tile_words_from_ports(flat.reshape(-1, per), tasks, ports, tw).reshape(-1)
    task_vals = (g.padded_out // eo) * (d // ei) * tw * per
    tile1 = min(1, d // ei - 1)            # output tile 0, input tile 1
    for r, c in ((0, 0), (ne - 1, ei - 1), (eo - 1, 0)):
        want = g.raw[tasks - 1, r, tile1 * ei + c] if r < ne else 0
        assert flat[(tasks - 1) * task_vals + tile1 * tw * per + r * ei + c] == want
    # the inverse
    back = lay.params_from_weights(blob)
    lay2 = Layout(spec, prec, dsg)
    lay2.fill(back)
    for name, buf in lay.buffers.items():
        assert np.array_equal(buf.raw, lay2.buffers[name].raw), name


def test_pack_roundtrip():
    rng = np.random.default_rng(0)
    for t in (FixedType(8, 0, False), FixedType(16, 2), FixedType(18, 1, False), FixedType(32, 10)):
        raw = rng.integers(t.min_raw, t.max_raw, 100, endpoint=True)
        data = pack_raw(raw, t, 256)
        assert len(data) % 32 == 0 and len(data) >= 100 * storage_bits(t.W) // 8
        assert np.array_equal(unpack_raw(data, t, 100), raw)


def test_scripts(project):
    root = project.path
    cfg = (root / "hls_config.cfg").read_text()
    assert "part=xczu7ev-ffvc1156-2-e" in cfg and f"syn.top={TOP}" in cfg and "tb.file=tb/tb.cpp" in cfg
    assert re.search(r"clock=3\.33\d*ns", cfg)
    tcl = (root / "run_hls.tcl").read_text()
    assert "set_part xczu7ev-ffvc1156-2-e" in tcl and "csim_design" in tcl and "cosim_design" in tcl
    mk = (root / "Makefile").read_text()
    for target in ("csim:", "synth:", "cosim:", "export:"):
        assert target in mk
    assert "edgemoe csim" in (root / "README.md").read_text()


def test_generated_kernel_is_synthesizable(project):
    violations = check_files(kernel_sources(project.path))
    assert not violations, "\n".join(map(str, violations))


def _top_args_and_pragmas(text: str):
    code = strip_comments(text)
    m = re.search(rf'extern\s+"C"\s+void\s+{TOP}\s*\(([^)]*)\)', text)
    args = [re.findall(r"(\w+)\s*$", a.strip())[0] for a in m.group(1).split(",")]
    pragmas = re.findall(r"#pragma HLS INTERFACE (\w+) port=(\w+)", code)
    return args, pragmas


def test_top_has_interface_pragmas_for_every_argument(project):
    text = (project.path / "src" / f"{TOP}.cpp").read_text()
    args, pragmas = _top_args_and_pragmas(text)
    # the weight ports beyond the first (the design's weight_ports) come last
    extra = [f"weights{p}" for p in range(1, project.design.weight_ports)]
    assert args == ["pixels", "weights", "scratch", "out", "n_images", "task", "reload", "tap_id", "kernel_id"] + extra
    ported = {}
    for mode, port in pragmas:
        ported.setdefault(port, set()).add(mode)
    for a in args:
        assert a in ported, a
    for ptr in ("pixels", "weights", "scratch", "out"):
        assert "m_axi" in ported[ptr]
    # the ID register: an output scalar on the control bundle only (no m_axi), written before anything else
    assert ported["kernel_id"] == {"s_axilite"} and "unsigned int *kernel_id" in text
    body = strip_comments(text)[strip_comments(text).index(f'void {TOP}('):]
    first = body.index("*kernel_id = EDGEMOE_KERNEL_ID;")
    assert first < body.index("if (n_images <= 0) return;") < body.index("load_lw(")
    assert "s_axilite" in ported["return"]
    bundles = dict(re.findall(r"m_axi port=(\w+) offset=slave bundle=(\w+)", text))
    assert bundles["pixels"] == bundles["out"] == "gmem_act"
    assert bundles["scratch"] == "gmem_scratch" and bundles["weights"] == "gmem_w"
    assert all(bundles[a] == f"gmem_w{a[len('weights'):]}" and "m_axi" in ported[a] for a in extra)
    for f in ("linear_engine", "layernorm_unit", "residual_unit"):
        assert f"allocation function instances={f} limit=1" in text


def test_own_cpp_compiles_with_all_warnings_as_errors(project, tmp_path):
    """-Wall -Wextra -Werror on the kernel and the harness (ap_types on -isystem)."""
    src = project.path
    compile_cpp([src / "src" / f"{TOP}.cpp", src / "csim" / "edgemoe_csim.cpp"], tmp_path / "k.so",
                flags=list(STRICT_CHECK_FLAGS), include_dirs=[src / "src", src / "compat"], shared=True)


# ---- bad input -------------------------------------------------------------------------------------
def test_existing_folder_refused_then_forced(tmp_path):
    """A user's folder is never replaced, even with --force; a project edgemoe made is, with --force."""
    out = tmp_path / "p"
    out.mkdir()
    (out / "mine.txt").write_text("keep")
    for force in (False, True):
        with pytest.raises(EdgeMoeError, match="not made by edgemoe"):
            generate(out, preset="micro", board="kv260", force=force)
    assert main(["generate", "--preset", "micro", "--board", "kv260", "-o", str(out), "--force"]) == 2
    assert (out / "mine.txt").read_text() == "keep"
    ours = tmp_path / "q"
    generate(ours, preset="micro", board="kv260")
    with pytest.raises(EdgeMoeError, match="exists.*--force"):
        generate(ours, preset="micro", board="kv260")
    p = generate(ours, preset="micro", board="kv260", force=True, clock=200)
    assert p.manifest["clock_mhz"] == 200.0
    assert p.manifest["board"]["part"] == "xck26-sfvc784-2LV-c"
    assert sorted(x.name for x in tmp_path.iterdir()) == ["p", "q"]


def test_failure_leaves_no_folder(tmp_path, monkeypatch):
    import edgemoe.codegen.generate as g

    def boom(*a, **k):
        raise EdgeMoeError("interrupted")
    monkeypatch.setattr(g, "render_config", boom)
    with pytest.raises(EdgeMoeError, match="interrupted"):
        generate(tmp_path / "p", preset="micro", board="zcu104")
    assert list(tmp_path.iterdir()) == []


def test_unknown_board_and_precision(tmp_path, capsys):
    with pytest.raises(EdgeMoeError, match="known: zcu104, zcu102, kv260"):
        generate(tmp_path / "p", preset="micro", board="zcu999")
    with pytest.raises(EdgeMoeError, match="unknown precision"):
        generate(tmp_path / "p", preset="micro", board="zcu104", precision="fp8")
    assert main(["generate", "--preset", "micro", "--board", "zcu999", "-o", str(tmp_path / "q")]) == 2
    assert "unknown board" in capsys.readouterr().err


def test_size_not_divisible_names_nearest_values(tmp_path):
    spec = get_preset("micro").with_(name="odd", embed=40, heads=2)
    with pytest.raises(EdgeMoeError, match=r"embed = 40 is not a multiple of engine_in = 16.*nearest valid: 32 or 48"):
        generate(tmp_path / "p", model=build_model(spec, seed=0), board="zcu104", design="edge-moe")
    assert not (tmp_path / "p").exists()


def test_unsupported_onnx_operator(tmp_path):
    import onnx
    from onnx import TensorProto, helper
    spec = get_preset("micro")
    node = helper.make_node("FancyGelu", ["x"], ["y"], name="blocks.0.mlp.act")
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    model = helper.make_model(graph)
    e = model.metadata_props.add()
    e.key, e.value = "edgemoe.spec", spec.to_json()
    path = tmp_path / "bad.onnx"
    onnx.save(model, str(path))
    with pytest.raises(EdgeMoeError, match=r"unsupported ONNX operator FancyGelu at node 'blocks.0.mlp.act'"):
        generate(tmp_path / "p", onnx=path, board="zcu104")
    assert main(["generate", "--onnx", str(path), "--board", "zcu104", "-o", str(tmp_path / "q")]) == 2


def test_missing_compiler_and_headers(project, monkeypatch):
    import edgemoe.codegen.aptypes as ap
    monkeypatch.setenv("CXX", "/nonexistent/g++")
    with pytest.raises(ToolMissingError, match="g\\+\\+"):
        project.compile(force=True)
    monkeypatch.delenv("CXX")
    monkeypatch.delenv("XILINX_HLS", raising=False)
    monkeypatch.setattr(ap, "_hls4ml_dirs", lambda: [])
    with pytest.raises(ToolMissingError, match="ap_types headers .* hls4ml"):
        project.compile(force=True)


def test_lazy_export():
    import edgemoe
    assert edgemoe.generate is generate
