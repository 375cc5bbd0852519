"""The tests of the patch embedding: golden/units/patch_embed.py, hls/include/patch_embed.h.

Its golden fixed-point model against the float counterpart (and exact integer maths);
the HLS unit against the golden unit, bit for bit (the ``lib`` fixture of conftest.py: one shared
library per precision; the set-up in hls_unit_lib.py).
``pytest tests -k patch_embed`` runs every test of the unit.
"""
from __future__ import annotations

import numpy as np

from edgemoe.golden.apfixed import Fx
from edgemoe.golden.precision import base_precision
from edgemoe.golden.units import patch_embed

from hls_unit_lib import SPEC, _rng, rand_raw, assert_same


W16 = base_precision("w16a32")


# ------------------------------------------------------------------------------------------------
# the golden fixed-point model (test_units_fixed.py)
# ------------------------------------------------------------------------------------------------
def test_patch_embed_matches_a_convolution():
    rng = np.random.default_rng(7)
    img = rng.random((3, 32, 48))
    w = rng.normal(0, .02, (8, 3, 16, 16))
    b, cls, pos = rng.normal(0, .02, 8), rng.normal(0, .02, 8), rng.normal(0, .02, (7, 8))
    y = patch_embed.patch_embed_float(img, w, b, cls, pos)
    conv = np.einsum("chwij,ocij->ohw", img.reshape(3, 2, 16, 3, 16).transpose(0, 1, 3, 2, 4), w)
    assert np.allclose(y[1:], conv.reshape(8, -1).T + b + pos[1:])
    prec = W16
    fx = patch_embed.patch_embed_fixed(
        Fx.from_float(patch_embed.patchify(img, 16), prec.t("pixel")), Fx.from_float(w.reshape(8, -1), prec.t("patch_w")),
        Fx.from_float(b, prec.t("bias")), Fx.from_float(cls, prec.t("bias")), Fx.from_float(pos, prec.t("bias")), prec)
    assert np.abs(fx.to_float() - y).max() < 2e-3  # 8-bit pixels, 16-bit weights


# ------------------------------------------------------------------------------------------------
# the HLS unit against the golden unit (test_hls_units.py)
# ------------------------------------------------------------------------------------------------
def test_patch_embed(lib):
    prec = lib.prec
    px, pw, bt = prec.t("pixel"), prec.t("patch_w"), prec.t("bias")
    rng = _rng(40)
    P, D = SPEC.num_patches, SPEC.embed
    pix = rand_raw(rng, px, (P, SPEC.patch_dim))
    pix[0] = px.max_raw
    w = rand_raw(rng, pw, (D, SPEC.patch_dim), 0.05)
    w[1] = pw.max_raw                                    # saturating output for patch 0
    b, cls = rand_raw(rng, bt, D, 0.1), rand_raw(rng, bt, D)
    pos = rand_raw(rng, bt, (SPEC.tokens, D))
    got = lib.patch_embed(pix, w, b, cls, pos)
    want = patch_embed.patch_embed_fixed(Fx(pix, px), Fx(w, pw), Fx(b, bt), Fx(cls, bt), Fx(pos, bt), prec).raw
    assert_same(got, want, "patch embed")
