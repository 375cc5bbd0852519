"""Unit tests of ``edgemoe.golden.apfixed`` in pure Python (the C++ comparison is test_apfixed_cpp)."""
from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from edgemoe.golden.apfixed import MAX_WIDTH, OVERFLOW_MODES, QUANT_MODES, FixedType, Fx, add_type, mul_type
from edgemoe.golden.exact_matmul import exact_int_matmul, fx_matmul, int_bits_needed
from edgemoe.golden.raw_codes import shift_right_round, wrap

SETTINGS = settings(max_examples=150, deadline=None)


# ------------------------------------------------------------------------------------------------
# an independent reference on Python ints / Fractions
# ------------------------------------------------------------------------------------------------
def ref_round(v: Fraction, mode: str) -> int:
    """``v`` (in lsb units) to an integer with ap_fixed quantisation ``mode``."""
    fl = v.numerator // v.denominator
    frac = v - fl
    if frac == 0:
        return fl
    half = Fraction(1, 2)
    neg = v < 0
    up = {
        "AP_TRN": False,
        "AP_TRN_ZERO": neg,
        "AP_RND": frac >= half,
        "AP_RND_ZERO": frac > half or (frac == half and neg),
        "AP_RND_MIN_INF": frac > half,
        "AP_RND_INF": frac > half or (frac == half and not neg),
        "AP_RND_CONV": frac > half or (frac == half and fl % 2 == 1),
    }[mode]
    return fl + up


def ref_overflow(q: int, t: FixedType) -> int:
    lo, hi = t.min_raw, t.max_raw
    if t.O == "AP_WRAP":
        q %= 1 << t.W
        return q - (1 << t.W) if t.signed and q > hi else q
    if lo <= q <= hi:
        return -hi if (t.O == "AP_SAT_SYM" and t.signed and q == lo) else q
    if t.O == "AP_SAT_ZERO":
        return 0
    if q > hi:
        return hi
    return -hi if (t.O == "AP_SAT_SYM" and t.signed) else lo


def ref_value_to_raw(v: Fraction, t: FixedType) -> int:
    return ref_overflow(ref_round(v * Fraction(2) ** t.F, t.Q), t)


# ------------------------------------------------------------------------------------------------
# strategies
# ------------------------------------------------------------------------------------------------
@st.composite
def fixed_types(draw, max_w=48, modes=True):
    W = draw(st.integers(1, max_w))
    I = draw(st.integers(-20, W + 20))
    signed = draw(st.booleans())
    if not signed and W == 64:
        W = 63
    Q = draw(st.sampled_from(QUANT_MODES)) if modes else "AP_TRN"
    O = draw(st.sampled_from(OVERFLOW_MODES)) if modes else "AP_WRAP"
    return FixedType(W, I, signed, Q, O)


@st.composite
def raws_of(draw, t: FixedType, n=(1, 40)):
    edge = st.sampled_from([t.min_raw, t.max_raw, 0, min(1, t.max_raw), max(-1, t.min_raw)])
    vals = draw(st.lists(st.one_of(st.integers(t.min_raw, t.max_raw), edge), min_size=n[0],
                         max_size=n[1]))
    return np.array(vals, dtype=np.int64)


# ------------------------------------------------------------------------------------------------
# FixedType: spelling, parsing, validation
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("q", QUANT_MODES)
@pytest.mark.parametrize("o", OVERFLOW_MODES)
@pytest.mark.parametrize("signed", [True, False])
def test_parse_cpp_round_trip(q, o, signed):
    t = FixedType(18, -3, signed, q, o)
    assert FixedType.parse(t.cpp) == t
    assert FixedType.parse(str(t)) == t
    spelled = f"ap_{'' if signed else 'u'}fixed<18,-3,{q},{o}>"
    assert FixedType.parse(spelled) == t


def test_cpp_spelling_omits_defaults():
    assert FixedType(16, 6).cpp == "ap_fixed<16, 6>"
    assert FixedType(16, 6, False).cpp == "ap_ufixed<16, 6>"
    assert FixedType(16, 6, True, "AP_RND").cpp == "ap_fixed<16, 6, AP_RND>"
    assert FixedType(16, 6, True, "AP_TRN", "AP_SAT").cpp == "ap_fixed<16, 6, AP_TRN, AP_SAT>"
    assert FixedType.parse("  ap_fixed < 16 , 6 , AP_RND_CONV >") == FixedType(16, 6, True, "AP_RND_CONV")
    assert FixedType.parse("ap_ufixed<8,0>") == FixedType(8, 0, False)


@pytest.mark.parametrize("text", ["ap_int<8>", "ap_fixed<8>", "fixed<8,3>", "ap_fixed<8,3,AP_RND,AP_SAT,3>",
                                  "ap_fixed<,3>", "ap_fixed<-8,3>", ""])
def test_parse_rejects_non_types(text):
    with pytest.raises(ValueError):
        FixedType.parse(text)


@pytest.mark.parametrize("text", ["ap_fixed<8,3,AP_ROUND>", "ap_fixed<8,3,AP_RND,AP_SATURATE>",
                                  "ap_fixed<8,3,AP_RND,AP_WRAP_SM>", "ap_fixed<0,0>", "ap_fixed<65,3>"])
def test_parse_rejects_bad_modes_and_widths(text):
    with pytest.raises(ValueError):
        FixedType.parse(text)


def test_constructor_validates():
    for kw in ({"W": 0, "I": 0}, {"W": MAX_WIDTH + 1, "I": 0}, {"W": 8, "I": 3, "Q": "AP_SAT"},
               {"W": 8, "I": 3, "O": "AP_RND"}, {"W": 8, "I": 3, "O": "AP_WRAP_SM"}):
        with pytest.raises(ValueError):
            FixedType(**kw)
    FixedType(MAX_WIDTH, 0)  # the limit itself is fine


def test_properties():
    t = FixedType(16, 6)
    assert (t.F, t.min_raw, t.max_raw, t.lsb) == (10, -32768, 32767, 2.0 ** -10)
    u = FixedType(16, -2, False)
    assert (u.F, u.min_raw, u.max_raw) == (18, 0, 65535)
    assert t.with_modes(Q="AP_RND") == FixedType(16, 6, True, "AP_RND", "AP_WRAP")
    assert t.with_modes(O="AP_SAT").with_modes(Q="AP_RND_CONV") == \
        FixedType(16, 6, True, "AP_RND_CONV", "AP_SAT")


# ------------------------------------------------------------------------------------------------
# hand-computed rounding, wrapping and saturation
# ------------------------------------------------------------------------------------------------
TIES = [2.5, -2.5, 3.5, -3.5, 2.25, -2.25, 2.75, -2.75, 0.5, -0.5, 3.0, -3.0]
EXPECTED = {
    "AP_TRN":         [2, -3, 3, -4, 2, -3, 2, -3, 0, -1, 3, -3],
    "AP_TRN_ZERO":    [2, -2, 3, -3, 2, -2, 2, -2, 0, 0, 3, -3],
    "AP_RND":         [3, -2, 4, -3, 2, -2, 3, -3, 1, 0, 3, -3],
    "AP_RND_ZERO":    [2, -2, 3, -3, 2, -2, 3, -3, 0, 0, 3, -3],
    "AP_RND_MIN_INF": [2, -3, 3, -4, 2, -2, 3, -3, 0, -1, 3, -3],
    "AP_RND_INF":     [3, -3, 4, -4, 2, -2, 3, -3, 1, -1, 3, -3],
    "AP_RND_CONV":    [2, -2, 4, -4, 2, -2, 3, -3, 0, 0, 3, -3],
}


@pytest.mark.parametrize("q", QUANT_MODES)
def test_rounding_modes_on_ties(q):
    t = FixedType(8, 8, True, q)  # integers
    assert t.quantize(TIES).tolist() == EXPECTED[q]
    # the same through a cast from a finer type and through shift_right_round
    src = FixedType(16, 8)
    raw = src.quantize(TIES)
    assert t.cast_raw(raw, src).tolist() == EXPECTED[q]
    assert shift_right_round(raw, 8, q).tolist() == EXPECTED[q]
    # at a finer scale: ap_fixed<8,4> has lsb 1/16, so the ties are x/16 + 1/32
    f = FixedType(8, 4, True, q)
    assert f.quantize(np.array(TIES) / 16).tolist() == EXPECTED[q]


def test_near_ties_in_minus_one_to_zero():
    """v = -0.5 +- tiny in lsb units: 1 + v rounds in double arithmetic; the result must not."""
    t_min_inf = FixedType(16, 5, True, "AP_RND_MIN_INF")
    t_inf = FixedType(16, 5, True, "AP_RND_INF")
    lsb = t_inf.lsb
    above = (-0.5 + 2.0 ** -54) * lsb  # -0.49999999999999994 lsb: nearest is 0
    below = (-0.5 - 2.0 ** -53) * lsb  # nearest is -1
    assert t_min_inf.quantize([above, below, -0.5 * lsb]).tolist() == [0, -1, -1]
    assert t_inf.quantize([above, below, -0.5 * lsb]).tolist() == [0, -1, -1]


def test_wrap_of_negative_and_large_values():
    assert FixedType(8, 8).quantize([130, -129, -128, 127, 256, -256, -1]).tolist() == \
        [-126, 127, -128, 127, 0, 0, -1]
    assert FixedType(8, 8, False).quantize([-1, -128, 256, 300]).tolist() == [255, 128, 0, 44]
    assert wrap(np.array([-1, 255, 256, -129]), 8, False).tolist() == [255, 255, 0, 127]
    assert wrap(np.array([-1, 255, 128, -129]), 8, True).tolist() == [-1, -1, -128, 127]
    # huge doubles keep only their low bits: 2**70 and 3 * 2**80 are 0 modulo 2**16
    assert FixedType(16, 16).quantize([2.0 ** 70, -3 * 2.0 ** 80, 1e300, 2.0 ** 70 + 2.0 ** 18]).tolist() == \
        [0, 0, 0, 0]
    # casts: signed -> narrower signed wraps, negative -> unsigned wraps
    src = FixedType(16, 16)
    assert FixedType(8, 8).cast_raw([300, -300, -129], src).tolist() == [44, -44, 127]
    assert FixedType(8, 8, False).cast_raw([-1, -300], src).tolist() == [255, 212]


@pytest.mark.parametrize("signed", [True, False])
def test_saturation_modes(signed):
    base = FixedType(8, 8, signed)
    lo, hi = base.min_raw, base.max_raw
    vals = [1000, -1000, hi, lo, hi + 1, lo - 1, 5, -5]
    sat = base.with_modes(O="AP_SAT").quantize(vals).tolist()
    zero = base.with_modes(O="AP_SAT_ZERO").quantize(vals).tolist()
    sym = base.with_modes(O="AP_SAT_SYM").quantize(vals).tolist()
    if signed:
        assert sat == [127, -128, 127, -128, 127, -128, 5, -5]
        assert zero == [0, 0, 127, -128, 0, 0, 5, -5]
        assert sym == [127, -127, 127, -127, 127, -127, 5, -5]
    else:
        assert sat == [255, 0, 255, 0, 255, 0, 5, 0]
        assert zero == [0, 0, 255, 0, 0, 0, 5, 0]
        assert sym == [255, 0, 255, 0, 255, 0, 5, 0]


def test_rounding_carry_into_overflow():
    # 7.97 rounds to 8.0, which ap_fixed<8,4> cannot hold: wraps to -8 or saturates to 7.9375
    assert FixedType(8, 4, True, "AP_RND").quantize(7.97) == -128
    assert FixedType(8, 4, True, "AP_RND", "AP_SAT").quantize(7.97) == 127
    assert FixedType(8, 4, True, "AP_RND", "AP_SAT_ZERO").quantize(7.97) == 0
    assert FixedType(8, 4, True, "AP_TRN", "AP_SAT").quantize(7.97) == 127


def test_quantize_rejects_nan_and_inf():
    for bad in (np.nan, np.inf, -np.inf):
        with pytest.raises(ValueError):
            FixedType(16, 6).quantize([0.0, bad])


def test_far_shifts():
    """Casts whose scales differ by more than 63 bits (right) or 64 bits (left)."""
    tiny = FixedType(48, -30)  # lsb 2**-78
    big = FixedType(8, 12, True, "AP_RND")  # lsb 2**4
    raw = np.array([tiny.min_raw, -1, 0, 1, tiny.max_raw])
    assert big.cast_raw(raw, tiny).tolist() == [0, 0, 0, 0, 0]
    assert big.with_modes(Q="AP_TRN").cast_raw(raw, tiny).tolist() == [-1, -1, 0, 0, 0]
    assert shift_right_round(np.array([np.iinfo(np.int64).min, -1, 5]), 64, "AP_RND").tolist() == [0, 0, 0]
    assert shift_right_round(np.array([np.iinfo(np.int64).min]), 64, "AP_RND_MIN_INF").tolist() == [-1]
    # left shifts beyond int64: wrap gives 0, saturation still sees the overflow
    coarse = FixedType(48, 56)  # lsb 2**8
    fine = FixedType(64, 10, True, "AP_TRN", "AP_SAT")  # lsb 2**-54
    raw = np.array([-(1 << 40), -2, -1, 0, 1, 1 << 40])  # +-256 fits (raw +-2**62), +-2**48 does not
    assert fine.cast_raw(raw, coarse).tolist() == [fine.min_raw, fine.min_raw, -(1 << 62), 0, 1 << 62,
                                                   fine.max_raw]
    assert fine.with_modes(O="AP_WRAP").cast_raw(raw, coarse).tolist() == [0, -(1 << 63), -(1 << 62), 0,
                                                                            1 << 62, 0]
    # -2 * 2**8 == -512 is the minimum of ap_fixed<64,10> (raw -2**63): in range, kept
    assert fine.with_modes(O="AP_SAT_ZERO").cast_raw(raw, coarse).tolist() == [0, -(1 << 63), -(1 << 62), 0,
                                                                               1 << 62, 0]
    assert fine.with_modes(O="AP_SAT_SYM").cast_raw(raw, coarse).tolist() == [-fine.max_raw, -fine.max_raw,
                                                                              -(1 << 62), 0, 1 << 62,
                                                                              fine.max_raw]


# ------------------------------------------------------------------------------------------------
# properties against the reference
# ------------------------------------------------------------------------------------------------
@SETTINGS
@given(st.data())
def test_cast_matches_reference(data):
    src = data.draw(fixed_types(modes=False))
    dst = data.draw(fixed_types(max_w=64))
    raw = data.draw(raws_of(src))
    want = [ref_value_to_raw(Fraction(int(r)) / Fraction(2) ** src.F, dst) for r in raw]
    assert dst.cast_raw(raw, src).tolist() == want


finite_doubles = st.floats(allow_nan=False, allow_infinity=False)


@SETTINGS
@given(fixed_types(max_w=64), st.lists(st.one_of(finite_doubles, st.floats(-300, 300),
                                                 st.integers(-(2 ** 20), 2 ** 20).map(lambda k: k / 2)),
                                       min_size=1, max_size=30))
def test_quantize_matches_reference(t, xs):
    # values on t's half-lsb grid (ties) as well as arbitrary doubles
    xs = xs + [x * t.lsb for x in xs if abs(x) < 2.0 ** 40]
    want = [ref_value_to_raw(Fraction(x), t) for x in xs]
    assert t.quantize(np.array(xs)).tolist() == want


@SETTINGS
@given(st.integers(-(2 ** 63), 2 ** 63 - 1), st.integers(0, 80), st.sampled_from(QUANT_MODES))
def test_shift_right_round_matches_reference(raw, n, q):
    got = int(shift_right_round(np.array([raw], dtype=np.int64), n, q)[0])
    assert got == ref_round(Fraction(raw, 1 << n), q)


@SETTINGS
@given(st.data())
def test_cast_to_wider_and_back_is_identity(data):
    t = data.draw(fixed_types(max_w=40))
    extra_i = data.draw(st.integers(0, 64 - t.W - 1))
    extra_f = data.draw(st.integers(0, 64 - t.W - extra_i - 1))
    # a wider type holds every value exactly (an unsigned one needs a sign bit in a signed type)
    signed = data.draw(st.booleans()) or t.signed
    # (with the same integer bits, a signed AP_SAT_SYM type rejects t's minimum code)
    o_modes = [o for o in OVERFLOW_MODES if extra_i or not t.signed or o != "AP_SAT_SYM"]
    wide = FixedType(t.W + extra_i + extra_f + (signed and not t.signed), t.I + extra_i +
                     (signed and not t.signed), signed, data.draw(st.sampled_from(QUANT_MODES)),
                     data.draw(st.sampled_from(o_modes)))
    raw = data.draw(raws_of(t))
    there = wide.cast_raw(raw, t)
    assert np.array_equal(wide.to_float(there), t.to_float(raw))
    back = t.with_modes("AP_RND", "AP_SAT").cast_raw(there, wide)
    assert back.tolist() == raw.tolist()
    assert t.with_modes(O="AP_WRAP").cast_raw(there, wide).tolist() == raw.tolist()


@SETTINGS
@given(st.data())
def test_sat_sym_never_gives_min_code(data):
    dst = data.draw(fixed_types(max_w=64)).with_modes(O="AP_SAT_SYM")
    src = data.draw(fixed_types(modes=False))
    raw = data.draw(raws_of(src))
    out = dst.cast_raw(raw, src)
    if dst.signed:
        assert not np.any(out == dst.min_raw)
        assert np.all(np.abs(out) <= dst.max_raw)
    xs = np.concatenate([src.to_float(raw), [-1e30, dst.min_raw * dst.lsb]])
    q = dst.quantize(xs)
    if dst.signed:
        assert not np.any(q == dst.min_raw)


@SETTINGS
@given(fixed_types(max_w=48, modes=False), st.lists(finite_doubles, min_size=1, max_size=20))
def test_from_float_to_float_round_trip(t, xs):
    fx = Fx.from_float(xs, t)
    assert np.all((fx.raw >= t.min_raw) & (fx.raw <= t.max_raw))
    again = Fx.from_float(fx.to_float(), t)  # representable values convert exactly
    assert again.raw.tolist() == fx.raw.tolist()


# ------------------------------------------------------------------------------------------------
# Fx arithmetic and types
# ------------------------------------------------------------------------------------------------
def test_result_types():
    a, u = FixedType(8, 3), FixedType(6, 2, False)
    assert mul_type(a, u) == FixedType(14, 5, True)
    assert mul_type(u, u) == FixedType(12, 4, False)
    assert add_type(a, u) == FixedType(9, 4, True)  # the unsigned operand needs a sign bit
    assert add_type(u, u) == FixedType(7, 3, False)
    assert add_type(FixedType(16, -4), FixedType(8, 8)) == FixedType(29, 9, True)
    assert (Fx([1], u) - Fx([2], u)).t == FixedType(7, 3, True)  # differences are signed
    assert (-Fx([1], a)).t == FixedType(9, 4, True)
    with pytest.raises(OverflowError):
        mul_type(FixedType(40, 8), FixedType(30, 2))
    with pytest.raises(OverflowError):
        add_type(FixedType(64, 8), FixedType(8, 8))
    with pytest.raises(OverflowError):
        -Fx([1], FixedType(64, 8))


@SETTINGS
@given(st.data())
def test_fx_ops_are_exact(data):
    ta = data.draw(fixed_types(max_w=30, modes=False))
    tb = data.draw(fixed_types(max_w=30, modes=False))
    try:
        add_type(ta, tb)
    except OverflowError:
        assume(False)  # scales too far apart for a 64-bit sum
    a = data.draw(raws_of(ta, n=(8, 8)))
    b = data.draw(raws_of(tb, n=(8, 8)))
    fa, fb = Fx(a, ta), Fx(b, tb)
    va = [Fraction(int(r)) / Fraction(2) ** ta.F for r in a]
    vb = [Fraction(int(r)) / Fraction(2) ** tb.F for r in b]
    for r, want in ((fa * fb, [x * y for x, y in zip(va, vb)]),
                    (fa + fb, [x + y for x, y in zip(va, vb)]),
                    (fa - fb, [x - y for x, y in zip(va, vb)]),
                    (-fa, [-x for x in va])):
        got = [Fraction(int(v)) / Fraction(2) ** r.t.F for v in r.raw]
        assert got == want
        assert np.all((r.raw >= r.t.min_raw) & (r.raw <= r.t.max_raw))
    assert (fa < fb).tolist() == [x < y for x, y in zip(va, vb)]
    assert (fa > fb).tolist() == [x > y for x, y in zip(va, vb)]


def test_fx_plumbing():
    t = FixedType(8, 4)
    x = Fx(np.arange(6).reshape(2, 3), t)
    assert x.shape == (2, 3) and len(x) == 2
    assert x.T.shape == (3, 2) and x.reshape(3, 2).raw.tolist() == [[0, 1], [2, 3], [4, 5]]
    assert x[1].raw.tolist() == [3, 4, 5] and x[1].t == t
    assert Fx.zeros((2, 2), t).raw.tolist() == [[0, 0], [0, 0]]
    assert x.cast(FixedType(8, 6)).raw.tolist() == [[0, 0, 0], [0, 1, 1]]
    assert "ap_fixed<8, 4>" in repr(x)


# ------------------------------------------------------------------------------------------------
# matmul
# ------------------------------------------------------------------------------------------------
def _obj_matmul(a, b):
    return np.asarray(a, dtype=object) @ np.asarray(b, dtype=object)


@SETTINGS
@given(st.integers(1, 40), st.integers(1, 40), st.integers(1, 200), st.integers(0, 2 ** 32))
def test_exact_int_matmul_matches_python_ints(a_bits, b_bits, k, seed):
    rng = np.random.default_rng(seed)
    a = rng.integers(-(1 << (a_bits - 1)), 1 << (a_bits - 1), size=(3, k), dtype=np.int64)
    b = rng.integers(-(1 << (b_bits - 1)), 1 << (b_bits - 1), size=(k, 2), dtype=np.int64)
    a[0] = -(1 << (a_bits - 1))
    b[:, 0] = -(1 << (b_bits - 1))
    s = _obj_matmul(a, b)
    want = [[((int(v) + 2 ** 63) % 2 ** 64) - 2 ** 63 for v in row] for row in s]
    assert exact_int_matmul(a, b).tolist() == want
    assert exact_int_matmul(a, b, a_bits, b_bits).tolist() == want


def test_int_bits_needed():
    assert int_bits_needed([]) == 1
    assert int_bits_needed([0]) == 1
    assert int_bits_needed([-1]) == 1
    assert int_bits_needed([1]) == 2
    assert int_bits_needed([-128, 127]) == 8
    assert int_bits_needed([128]) == 9
    assert int_bits_needed([-129]) == 9
    assert int_bits_needed([-128, -3]) == 8
    assert int_bits_needed(np.array([[-(1 << 62)], [(1 << 62) - 1]])) == 63


def test_fx_matmul_wraps_and_checks_accumulator():
    a_t, b_t = FixedType(16, 4), FixedType(16, 2)
    acc = FixedType(34, 8)  # F = 12 + 14 = 26
    a = np.full((1, 8), a_t.min_raw, dtype=np.int64)
    b = np.full((8, 1), b_t.min_raw, dtype=np.int64)
    total = 8 * (1 << 30)  # 2**33 wraps in 34 signed bits to -2**33
    assert fx_matmul(Fx(a, a_t), Fx(b, b_t), acc).raw.tolist() == [[wrap(np.int64(total), 34).item()]]
    assert fx_matmul(Fx(a, a_t), Fx(b, b_t), acc).raw.tolist() == [[-(1 << 33)]]
    with pytest.raises(ValueError):
        fx_matmul(Fx(a, a_t), Fx(b, b_t), FixedType(34, 7))
    with pytest.raises(ValueError):
        fx_matmul(Fx(a, a_t), Fx(b, b_t), acc.with_modes(O="AP_SAT"))
