"""Design points with several weight ports and UltraRAM buffers: the generated top has the extra
m_axi ports and the URAM pragmas, stays bit-exact in C simulation and through the C testbench, and
the board tooling (interface parser, package, emulator, host runtime) takes the extra ports."""
from __future__ import annotations

import json
import re
import subprocess

import pytest

from edgemoe.codegen.aptypes import compile_cpp
from edgemoe.codegen.csim import run_csim
from edgemoe.design import URAM_CANDIDATES, get_design
from edgemoe.project_files import kernel_interface
from edgemoe.codegen.generate import TOP, generate


def design_file(tmp_path, name, **changes):
    d = get_design("edge-moe").with_(name=name, **changes)
    f = tmp_path / f"{name}.json"
    f.write_text(json.dumps(d.to_dict()))
    return f


@pytest.fixture(scope="module")
def wp3(tmp_path_factory):
    d = tmp_path_factory.mktemp("wp3")
    f = design_file(d, "wp3", weight_ports=3, uram_buffers=("g_hid", "g_qkv"))
    p = generate(d / "proj", preset="micro", board="zcu104", design=str(f))
    p.compile()
    return p


def test_top_has_the_extra_ports_and_uram_pragmas(wp3):
    src = (wp3.path / "src" / f"{TOP}.cpp").read_text()
    assert "#define WEIGHT_PORTS 3" in (wp3.path / "src" / "edgemoe_config.h").read_text()
    for p in (1, 2):
        assert f"port=weights{p} offset=slave bundle=gmem_w{p} depth=WEIGHT_WORDS" in src
        assert f"s_axilite port=weights{p} bundle=control" in src
    assert "weights3" not in src and "gmem_w3" not in src
    for b in URAM_CANDIDATES:
        uram = b in ("g_hid", "g_qkv")
        dim = 3 if b == "g_tmp" else 2          # g_tmp: [slot][word][bank][group]
        # a lane-word buffer: its banks apart; in UltraRAM each bank is one reshaped word of lanes
        assert f"ARRAY_PARTITION variable={b} complete dim={dim}\n" in src, b
        assert (f"ARRAY_RESHAPE variable={b} complete dim={dim + 1}" in src) == uram, b
        assert (f"BIND_STORAGE variable={b} type=ram_2p impl=uram" in src) == uram, b
    cfg = (wp3.path / "src" / "edgemoe_config.h").read_text()
    assert "#define HID_GROUP 16" in cfg and "#define HID_BANKS 1" in cfg      # 16 lanes: one UltraRAM word
    assert "#define X_GROUP 1" in cfg and "#define X_BANKS 16" in cfg          # block RAM: a bank per lane
    assert "allocation function instances=layernorm_unit limit=1" in src
    assert "allocation function instances=linear_engine limit=1" in src
    # the signature, as the Vivado scripts read it: the extra ports last, each on its own bundle
    iface = kernel_interface(wp3.path, TOP)
    names = [a["name"] for a in iface["args"]]
    assert names[-2:] == ["weights1", "weights2"] and names[:2] == ["pixels", "weights"]
    assert [a["bundle"] for a in iface["args"][-2:]] == ["gmem_w1", "gmem_w2"]
    assert all(a["pointer"] for a in iface["args"][-2:])


def test_default_design_has_one_weight_port():
    from edgemoe.codegen.generate import kernel_context
    from edgemoe.codegen.render import render_template
    from edgemoe.spec import get_preset
    from edgemoe.golden.precision import base_precision
    des = get_design("edge-moe")
    src = render_template("edgemoe_top.cpp.j2", **kernel_context(get_preset("micro"), base_precision("w16a32"), des,
                                                                  "zcu104"))
    assert "weights1" not in src and "gmem_w1" not in src and "impl=uram" not in src
    assert re.search(r"int reload, int tap_id, unsigned int \*kernel_id\) \{", src)


@pytest.mark.parametrize("task", [0, 1])
def test_three_weight_ports_bit_exact(wp3, task):
    res = run_csim(wp3.path, task=task, taps="all", quiet=True)
    assert res["mismatches"] == 0, [r for r in res["taps"] if r["mismatches"]][:3]
    assert res["taps_compared"] == len(wp3.manifest["taps"]) + 1


def test_c_testbench_passes_every_port(wp3, tmp_path):
    root = wp3.path
    exe = compile_cpp([root / "tb" / "tb.cpp", root / "src" / f"{TOP}.cpp"], tmp_path / "tb",
                      flags=["-Wno-unknown-pragmas", "-O1"], include_dirs=[root / "src", root / "compat"])
    res = subprocess.run([str(exe), str(root / "data")], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0 and "PASS" in res.stdout, res.stdout + res.stderr


def test_small_design_four_ports_bit_exact(tmp_path):
    """8x8 engine, 128-bit AXI: 8 words per tile over 4 ports (2 load steps, fewer than the rows)."""
    d = get_design("small").with_(name="small4", weight_ports=4, uram_buffers=("g_x",))
    f = tmp_path / "small4.json"
    f.write_text(json.dumps(d.to_dict()))
    p = generate(tmp_path / "proj", preset="micro", board="zcu104", design=str(f))
    res = run_csim(p.path, task=1, taps="all", quiet=True)
    assert res["mismatches"] == 0, [r for r in res["taps"] if r["mismatches"]][:3]


def test_host_on_emulator_with_two_weight_ports(tmp_path):
    """`edgemoe package` and `edgemoe emulate` with weight_ports = 2: the runtime points weights1 at
    the weights buffer and the emulated kernel stays bit-exact."""
    from test_host_on_emulator import PYNQ_ENV, host_run, start_emulator, stop
    if not (PYNQ_ENV / "edgemoe-host").exists():
        pytest.skip(".venv-pynq is missing")
    from edgemoe.boards.package import package
    f = design_file(tmp_path, "wp2", weight_ports=2)
    generate(tmp_path / "proj", preset="micro", board="zcu104", design=str(f))
    package(tmp_path / "proj", tmp_path / "pkg")
    pm = json.loads((tmp_path / "pkg" / "package_manifest.json").read_text())
    args = {a["name"]: a for a in pm["kernel"]["args"]}
    assert args["weights1"]["kind"] == "pointer" and "gmem_w1" in pm["kernel"]["bundles"]
    proc, port = start_emulator(tmp_path / "pkg")
    try:
        j = tmp_path / "r.json"
        r = host_run(tmp_path / "pkg", port, "--images", "1", "--json", str(j), "--timeout", "60")
        assert r.returncode == 0, r.stdout + r.stderr
        assert json.loads(j.read_text())["mismatches"] == 0
    finally:
        stop(proc)
