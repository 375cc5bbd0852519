"""The tests of the LayerNorm unit: golden/units/layernorm.py, hls/include/layernorm.h, hls/rtl/layernorm.v.j2;
edgemoe/units/layernorm.py.

Its golden fixed-point model against the float counterpart (and exact integer maths);
the HLS unit against the golden unit, bit for bit (the ``lib`` fixture of conftest.py: one shared
library per precision; the set-up in hls_unit_lib.py).  The RTL unit's tests are
parametrized by unit name (test_rtl_lint.py, test_rtl_sim.py, test_rtl_w8a8.py, test_unit_tops.py):
``pytest tests -k layernorm`` runs them all.
"""
from __future__ import annotations

import numpy as np
import pytest

from edgemoe.golden.apfixed import Fx
from edgemoe.golden.precision import base_precision
from edgemoe.golden.units import layernorm
from edgemoe.golden.units.layernorm import rsqrt_fixed

from hls_unit_lib import SPEC, _rng, assert_same, _check_layernorm


W16 = base_precision("w16a32")


# ------------------------------------------------------------------------------------------------
# the golden fixed-point model (test_units_fixed.py)
# ------------------------------------------------------------------------------------------------
def test_rsqrt_relative_error_over_wide_range():
    out_t = W16.t("ln_rstd")
    v = 2.0 ** np.linspace(-18, 18, 5000)
    f = 28
    raw = np.round(v * 2 ** f).astype(np.int64)
    r = out_t.to_float(layernorm.rsqrt_to_type(*layernorm.rsqrt_fixed(raw, f), out_t))
    exact = (raw / 2.0 ** f) ** -0.5
    in_range = exact < 2 ** (out_t.I) * 0.99
    rel = np.abs(r - exact)[in_range] / exact[in_range]
    assert (rel < 1e-5 + out_t.lsb / exact[in_range]).all()


@pytest.mark.parametrize("std", [0.01, 0.5, 8.0])
def test_layernorm_close_to_float(std):
    rng = np.random.default_rng(3)
    x = rng.normal(0.2, std, (20, 192))
    g, b = 1 + rng.normal(0, .1, 192), rng.normal(0, .05, 192)
    pt = W16.t("ln_param")
    gq, bq = Fx.from_float(g, pt), Fx.from_float(b, pt)
    xq = Fx.from_float(x, W16.t("act"))
    y = layernorm.layernorm_fixed(xq, gq, bq, W16).to_float()
    ref = layernorm.layernorm_float(xq.to_float(), gq.to_float(), bq.to_float())
    assert np.abs(y - ref).max() < (2e-5 if std >= 0.1 else 5e-5)  # tiny rows: limited by x's own LSB


# ------------------------------------------------------------------------------------------------
# the HLS unit against the golden unit (test_hls_units.py)
# ------------------------------------------------------------------------------------------------
def test_rsqrt_mantissa_exponent(lib):
    sq = lib.prec.t("ln_sq_acc")
    v = np.unique(np.concatenate([np.arange(1, 300), 2 ** np.arange(0, sq.W - 1), 3 * 2 ** np.arange(0, sq.W - 3),
                                  _rng(4).integers(1, 2 ** (sq.W - 2), 3000)])).astype(np.int64)
    y, k = lib.rsqrt(v)
    wy, wk = rsqrt_fixed(v, sq.F)
    assert_same(y, wy, "rsqrt mantissa")
    assert_same(k, wk, "rsqrt exponent")


def test_layernorm(lib):
    _check_layernorm(lib, SPEC)
