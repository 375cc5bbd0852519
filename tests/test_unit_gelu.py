"""The tests of the GELU unit: golden/units/gelu.py, hls/include/gelu.h, hls/rtl/gelu.v.j2; edgemoe/units/gelu.py.

Its golden fixed-point model against the float counterpart (and exact integer maths);
the HLS unit against the golden unit, bit for bit (the ``lib`` fixture of conftest.py: one shared
library per precision; the set-up in hls_unit_lib.py).  The RTL unit's tests are
parametrized by unit name (test_rtl_lint.py, test_rtl_sim.py, test_rtl_w8a8.py, test_unit_tops.py):
``pytest tests -k gelu`` runs them all.
"""
from __future__ import annotations

import numpy as np

from edgemoe.golden.apfixed import FixedType, Fx
from edgemoe.golden.precision import GELU_RANGE, base_precision
from edgemoe.golden.units import gelu

from hls_unit_lib import _rng, rand_raw, assert_same


W16 = base_precision("w16a32")
W8 = base_precision("w8a8")


# ------------------------------------------------------------------------------------------------
# the golden fixed-point model (test_units_fixed.py)
# ------------------------------------------------------------------------------------------------
def test_gelu_error_over_minus8_to_8():
    x = np.linspace(-8, 8, 200001)
    y = gelu.gelu_fixed(Fx.from_float(x, W16.t("gelu_in")), W16).to_float()
    err = np.abs(y - gelu.gelu_float(x))
    assert err.max() < 2e-4, err.max()
    assert gelu.table_size() == 177  # [0, 5.5] in steps of 1/32


def test_gelu_is_relu_beyond_table_and_exact_on_grid():
    prec = W16
    x = np.array([-9.0, -GELU_RANGE, GELU_RANGE, 7.25, 100.0])
    y = gelu.gelu_fixed(Fx.from_float(x, prec.t("gelu_in")), prec).to_float()
    assert np.array_equal(y, np.maximum(x, 0))
    # on the table's grid the interpolation adds nothing: y = relu(x) - table[i] exactly
    i = np.arange(0, 176)
    grid = i / 32.0
    y = gelu.gelu_fixed(Fx.from_float(grid, prec.t("gelu_in")), prec)
    tab = gelu.gelu_table(prec)
    expect = (Fx.from_float(grid, prec.t("gelu_in")) - Fx(tab[i], prec.t("gelu_tab"))).cast(prec.t("hidden"))
    assert np.array_equal(y.raw, expect.raw)


def test_gelu_w8a8_within_output_lsb():
    out_t = FixedType(8, 3, True, "AP_RND", "AP_SAT")
    x = np.linspace(-4, 3.9, 5001)
    y = gelu.gelu_fixed(Fx.from_float(x, W8.t("gelu_in")), W8, out_t=out_t).to_float()
    assert np.abs(y - gelu.gelu_float(x)).max() <= out_t.lsb


# ------------------------------------------------------------------------------------------------
# the HLS unit against the golden unit (test_hls_units.py)
# ------------------------------------------------------------------------------------------------
def test_gelu(lib):
    prec = lib.prec
    gi = prec.t("gelu_in")
    rng = _rng(1)
    lsb = 2.0 ** -gi.F
    edges = gi.quantize([0.0, GELU_RANGE, -GELU_RANGE, GELU_RANGE - lsb, -GELU_RANGE + lsb, 6.0, -6.0,
                         100.0, -100.0, 1.0 / 32, -1.0 / 32, 0.75])
    grid = gi.quantize(np.arange(-200, 200) / 32.0)
    x = np.concatenate([rand_raw(rng, gi, 4000), rand_raw(rng, gi, 4000, 3.0), grid, edges,
                        [gi.min_raw, gi.max_raw, gi.min_raw + 1, -1, 1]])
    for d in sorted(set(lib.deltas["D_HIDDEN"])):
        out_t = FixedType(prec.types["ln_out"].W, prec.types["ln_out"].I - d, True,
                          prec.types["ln_out"].Q, prec.types["ln_out"].O)
        want = gelu.gelu_fixed(Fx(x, gi), prec, out_t=out_t).raw
        assert_same(lib.gelu(x, d), want, f"gelu d_hidden={d}")
