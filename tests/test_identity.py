"""Model identity and the kernel ID: `generate` records identity (model, precision, design, board,
config_hash, weights_sha256); the config header carries EDGEMOE_KERNEL_ID = config_hash[:8], a hash
of the generated headers without that line; the kernel writes it to its read-only kernel_id register;
the register map and the RTL bench's header parser know that register as an output."""
from __future__ import annotations

import hashlib
import json
import re

import pytest

from edgemoe.codegen.config_header import config_hash, kernel_id_of, layout_header, read_kernel_id, render_config
from edgemoe.design import get_design
from edgemoe.codegen.generate import generate
from edgemoe.golden.precision import base_precision
from edgemoe.spec import get_preset

ID_LINE = re.compile(r"^#define EDGEMOE_KERNEL_ID 0x([0-9A-F]{8})u  // config hash ([0-9a-f]{16})$", re.M)


@pytest.fixture(scope="module")
def projects(tmp_path_factory):
    """micro / zcu104 projects: seed 0, seed 1 (other weights, same configuration)."""
    d = tmp_path_factory.mktemp("identity")
    return {seed: generate(d / f"seed{seed}", preset="micro", board="zcu104", seed=seed) for seed in (0, 1)}


def _sha(p) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def test_manifest_identity_and_header_id_agree(projects):
    p = projects[0]
    ident = p.manifest["identity"]
    assert set(ident) == {"model", "precision", "design", "board", "config_hash", "weights_sha256"}
    assert (ident["model"], ident["precision"], ident["design"], ident["board"]) == ("micro", "w16a32", "zcu104", "zcu104")
    assert re.fullmatch(r"[0-9a-f]{16}", ident["config_hash"])
    assert ident["weights_sha256"] == _sha(p.path / "data" / "weights.bin")
    cfg = (p.path / "src" / "edgemoe_config.h").read_text()
    lines = ID_LINE.findall(cfg)
    assert len(lines) == 1, "exactly one EDGEMOE_KERNEL_ID line"
    hex_id, comment_hash = lines[0]
    assert int(hex_id, 16) == int(ident["config_hash"][:8], 16) == read_kernel_id(cfg) == kernel_id_of(ident["config_hash"])
    assert comment_hash == ident["config_hash"]
    # the hash is that of the generated headers (the config header without its ID line, then the layout)
    layout = (p.path / "src" / "edgemoe_layout.h").read_text()
    assert config_hash(cfg, layout) == ident["config_hash"]
    without = "".join(ln for ln in cfg.splitlines(keepends=True) if not ln.startswith("#define EDGEMOE_KERNEL_ID"))
    h = hashlib.sha256(without.encode())
    h.update(b"\0" + layout.encode())
    assert h.hexdigest()[:16] == ident["config_hash"]


def test_id_follows_the_configuration_not_the_weights(projects):
    a, b = projects[0].manifest["identity"], projects[1].manifest["identity"]
    assert a["config_hash"] == b["config_hash"]           # same spec, precision, design: same kernel
    assert a["weights_sha256"] != b["weights_sha256"]     # other weights
    spec, des = get_preset("micro"), get_design("zcu104")

    def kid(spec, prec, des):
        return read_kernel_id(render_config(spec, base_precision(prec), des))
    base = kid(spec, "w16a32", des)
    assert base == int(a["config_hash"][:8], 16)          # render_config alone gives the project's ID
    others = {kid(spec, "w8a8", des), kid(spec, "w16a32", get_design("edge-moe")),
              kid(spec.with_(depth=spec.depth + 1), "w16a32", des), kid(spec, "w16a32", des.with_(batch=2))}
    assert base not in others and len(others) == 4


def test_hash_ignores_only_the_id_line():
    spec, prec, des = get_preset("micro"), base_precision("w16a32"), get_design("zcu104")
    cfg, layout = render_config(spec, prec, des), layout_header(spec, prec, des)
    h = config_hash(cfg, layout)
    assert config_hash(re.sub(r"0x[0-9A-F]{8}u", "0x00000000u", cfg, count=1), layout) == h
    assert config_hash(cfg.replace("#define BATCH 1", "#define BATCH 2"), layout) != h
    assert config_hash(cfg, layout.replace("W_OFF_CLS", "W_OFF_CLS_")) != h


def test_project_kernel_id_from_c_simulation(projects):
    """The C-simulated kernel writes the ID on a call with n_images = 0, and on every other call."""
    p = projects[0]
    want = int(p.manifest["identity"]["config_hash"][:8], 16)
    assert p.kernel_id() == want
    p.predict(p.input_image(), task=1)
    assert p.last_kernel_id == want


def test_register_map_has_the_id_register(projects):
    from edgemoe.kernel_interface import register_map
    from edgemoe.project_files import kernel_interface
    p = projects[0]
    iface = kernel_interface(p.path, "edgemoe_top")
    regs = {r["name"]: r for r in register_map(iface["args"])}
    assert regs["kernel_id"]["kind"] == "output" and regs["kernel_id"]["offset"] == 0x60
    assert regs["kernel_id"]["bundle"] is None and regs["tap_id"]["offset"] == 0x58
    assert regs["weights1"]["kind"] == "pointer" and regs["weights1"]["offset"] == 0x68   # after the ID's two words


def test_driver_header_output_scalar(tmp_path):
    """Vitis writes an output scalar as _DATA plus a _CTRL (ap_vld) word: the RTL bench reads it back
    instead of requiring a value for it."""
    from edgemoe.register_map import parse_register_map
    h = tmp_path / "xedgemoe_top_hw.h"
    h.write_text("\n".join([
        "#define XEDGEMOE_TOP_CONTROL_ADDR_AP_CTRL        0x00",
        "#define XEDGEMOE_TOP_CONTROL_ADDR_TAP_ID_DATA    0x58",
        "#define XEDGEMOE_TOP_CONTROL_BITS_TAP_ID_DATA    32",
        "#define XEDGEMOE_TOP_CONTROL_ADDR_KERNEL_ID_DATA 0x60",
        "#define XEDGEMOE_TOP_CONTROL_BITS_KERNEL_ID_DATA 32",
        "#define XEDGEMOE_TOP_CONTROL_ADDR_KERNEL_ID_CTRL 0x64",
    ]) + "\n")
    rm = parse_register_map(h)
    assert rm.args["kernel_id"] == (0x60, 32) and rm.outputs == frozenset({"kernel_id"})
    assert "tap_id" not in rm.outputs


def test_package_copies_identity_and_manifest_json_unchanged(projects, tmp_path):
    from edgemoe.boards.package import package
    p = projects[1]
    pm = package(p.path, tmp_path / "pkg")
    assert pm["identity"] == p.manifest["identity"]
    assert json.loads((tmp_path / "pkg" / "data" / "manifest.json").read_text())["identity"] == pm["identity"]
