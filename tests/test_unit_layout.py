"""Each hardware unit is found in all its forms by one name (issue 13): its module edgemoe/units/<u>.py,
its C++ header, its entries in the C++ unit test harness, its golden model, its RTL and cocotb bench
when it has an RTL unit, and its tests tests/test_unit_<u>.py."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from edgemoe.codegen.unit_harness import UNIT_HEADERS, harness_source
from edgemoe.design import get_design
from edgemoe.golden.precision import base_precision
from edgemoe.spec import get_preset
from edgemoe.templates import INCLUDE_DIR, RTL_DIR
from edgemoe.units import HARNESS_COMMON, HLS_HEADERS, RTL_UNITS, UNITS

REPO = Path(__file__).resolve().parents[1]
# units whose golden reference is part of the fixed model rather than a module of golden/units/
GOLDEN_IN_MODEL = {"residual"}


@pytest.mark.parametrize("name", sorted(UNITS))
def test_unit_found_by_name(name):
    u = UNITS[name]
    assert u.HLS_HEADER == f"{name}.h" and (INCLUDE_DIR / u.HLS_HEADER).is_file()
    assert (REPO / "tests" / f"test_unit_{name}.py").is_file(), f"tests/test_unit_{name}.py"
    if name not in GOLDEN_IN_MODEL:
        assert (REPO / "golden" / "units" / f"{name}.py").is_file()
    if name in RTL_UNITS:
        assert (RTL_DIR / f"{name}.v.j2").is_file() and (REPO / "sim" / "benches" / f"{name}.py").is_file()
        assert callable(u.rtl_context) and callable(u.rtl_cycles)


def test_every_unit_header_has_a_unit():
    headers = {p.name for p in INCLUDE_DIR.glob("*.h") if not p.name.startswith("edgemoe_") and p.name != "pack2.h"}
    assert headers == set(HLS_HEADERS) == set(UNIT_HEADERS)


def _defined_entries(src: str) -> list:
    return re.findall(r"^\w[\w\s\*]*\b(em_\w+)\(", src, re.M)


def test_harness_entries_are_the_units():
    """The rendered harness defines exactly the entries the unit modules name, each once, and the
    ctypes wrapper calls only those."""
    spec, prec = get_preset("micro"), base_precision("w16a32")
    defined = _defined_entries(harness_source(spec, prec, get_design("edge-moe")))
    named = list(HARNESS_COMMON) + [e for u in UNITS.values() for e in u.HARNESS_ENTRIES]
    assert sorted(defined) == sorted(named) and len(set(named)) == len(named)
    called = set(re.findall(r"\.lib\.(em_\w+)\(", (REPO / "codegen" / "unit_lib.py").read_text()))
    assert called <= set(named) and called, sorted(called - set(named))
    uncalled = set(named) - called
    assert not uncalled, f"harness entries no wrapper calls: {sorted(uncalled)}"
