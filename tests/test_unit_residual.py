"""The tests of the residual add (and the MoE slots' combination): hls/include/residual.h.

The HLS unit against the golden unit, bit for bit (the ``lib`` fixture of conftest.py: one shared
library per precision; the set-up in hls_unit_lib.py).
``pytest tests -k residual`` runs every test of the unit.
"""
from __future__ import annotations

import numpy as np

from edgemoe.golden.apfixed import Fx

from hls_unit_lib import _rng, rand_raw, assert_same, _check_residual


# ------------------------------------------------------------------------------------------------
# the HLS unit against the golden unit (test_hls_units.py)
# ------------------------------------------------------------------------------------------------
def test_residual(lib):
    _check_residual(lib)


def test_residual_combines_the_moe_slots_in_expert_order(lib):
    """x += act(...act(slot 0 + slot 1)...): the golden model's out = act(out + contribution) over a
    token's experts in expert order, at saturating / wrapping edges too; slot 0 gets the sum back."""
    prec = lib.prec
    act = prec.t("act")
    rng = _rng(51)
    n = lib.sizes["tokens"] * lib.sizes["embed"]
    k = lib.sizes["slots"]
    x = rand_raw(rng, act, n)
    ys = rand_raw(rng, act, (k, n))
    ys[:, :3] = [[act.max_raw] * 3] * k
    ys[0, 3] = act.min_raw
    x2, comb = lib.residual_slots(x, ys)
    out = Fx(np.zeros(n, np.int64), act)
    for s in range(k):
        out = (out + Fx(ys[s], act)).cast(act)
    assert_same(comb, out.raw, "combined slots")
    assert_same(x2, (Fx(x, act) + out).cast(act).raw, "residual of the combination")
