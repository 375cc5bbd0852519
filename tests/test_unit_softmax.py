"""The tests of the softmax unit: golden/units/softmax.py, hls/include/softmax.h, hls/rtl/softmax.v.j2; edgemoe/units/softmax.py.

Its golden fixed-point model against the float counterpart (and exact integer maths);
the HLS unit against the golden unit, bit for bit (the ``lib`` fixture of conftest.py: one shared
library per precision; the set-up in hls_unit_lib.py).  The RTL unit's tests are
parametrized by unit name (test_rtl_lint.py, test_rtl_sim.py, test_rtl_w8a8.py, test_unit_tops.py):
``pytest tests -k softmax`` runs them all.
"""
from __future__ import annotations

import numpy as np
import pytest

from edgemoe.golden.apfixed import FixedType, Fx
from edgemoe.golden.precision import base_precision
from edgemoe.golden.units import attention, softmax

from hls_unit_lib import _rng, rand_raw, assert_same


W16 = base_precision("w16a32")


# ------------------------------------------------------------------------------------------------
# the golden fixed-point model (test_units_fixed.py)
# ------------------------------------------------------------------------------------------------
def test_exp_neg_relative_error():
    d = -np.linspace(0, 20, 40001)
    t = FixedType(33, 11)
    e = softmax.exp_neg_fixed(Fx.from_float(d, t), W16) * W16.t("exp").lsb
    exact = np.exp(Fx.from_float(d, t).to_float())
    assert np.abs(e - exact).max() < 2e-6  # 256-segment interpolation of 2^f
    assert e[0] == 1.0  # exp(0) is exactly one


@pytest.mark.parametrize("scale", [0.5, 2.0, 6.0])
def test_softmax_close_to_exact_for_attention_logits(scale):
    rng = np.random.default_rng(1)
    s = rng.normal(0, scale, (3, 129, 129))  # heads x rows x keys
    p = softmax.softmax_fixed(Fx.from_float(s, W16.t("score")), W16,
                              start=attention.row_start(129, 4)).to_float()
    exact = softmax.softmax_float(Fx.from_float(s, W16.t("score")).to_float())
    assert np.abs(p - exact).max() < 1e-4
    assert np.abs(p.sum(-1) - 1).max() < 1e-3


def test_softmax_running_max_is_the_row_max_and_order_matters_only_in_rounding():
    rng = np.random.default_rng(2)
    s = Fx.from_float(rng.normal(0, 3, (16, 50)), W16.t("score"))
    m0, r0, _ = softmax.online_softmax_fixed(s, W16, start=np.zeros(16, int))
    m1, r1, _ = softmax.online_softmax_fixed(s, W16, start=np.arange(16) % 4)
    assert np.array_equal(m0.raw, s.raw.max(-1)) and np.array_equal(m1.raw, s.raw.max(-1))
    assert np.abs(r0.astype(np.int64) - r1).max() <= 8  # a few LSBs from the visiting order


def test_softmax_single_element_row_is_one():
    s = Fx.from_float(np.array([[3.0]]), W16.t("score"))
    p = softmax.softmax_fixed(s, W16)
    assert p.to_float()[0, 0] == 1.0


# ------------------------------------------------------------------------------------------------
# the HLS unit against the golden unit (test_hls_units.py)
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("gate", [False, True])
def test_softmax_rows(lib, gate):
    prec = lib.prec
    st = prec.t("gate_logit") if gate else prec.t("score")
    out_t = prec.t("gate_score") if gate else prec.t("prob")
    rng = _rng(2 + gate)
    nmax = lib.sizes["sm_max_len"]
    cases = []
    for n in sorted({1, 2, 3, 4, nmax}):
        rows = rand_raw(rng, st, (6, n), 2.0)
        rows[1] = rand_raw(rng, st, n)                 # whole range: huge differences, exp -> 0
        rows[2] = rows[2, 0]                           # all equal
        rows[3, :] = st.max_raw
        rows[3, n // 2] = st.min_raw                   # saturated extremes
        rows[4] = np.sort(rows[4])                     # increasing: the max moves at every step
        starts = np.arange(6) % n
        cases.append((rows, starts))
    for rows, starts in cases:
        got = lib.softmax(rows, starts, gate=gate)
        want = softmax.softmax_fixed(Fx(rows, st), prec, start=starts, out_t=out_t).raw
        assert_same(got, want, f"softmax n={rows.shape[1]}")
    one = lib.softmax(np.array([[st.quantize(1.5)]]), [0], gate=gate)
    assert one[0, 0] == min(1 << out_t.F, out_t.max_raw)  # a row of one element: p = 1 (saturated)
