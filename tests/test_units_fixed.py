"""What the units' fixed-point models share: the calibrated types (pow2_type).  Each unit's model is tested
against its float counterpart in test_unit_<unit>.py (``pytest tests -k <unit>``)."""
from edgemoe.golden.precision import pow2_type


def test_pow2_type_holds_the_calibrated_maximum():
    for m in (0.01, 0.9, 1.0, 3.0, 100.0):
        t = pow2_type(m, 8)
        assert t.to_float(t.max_raw) >= m * 0.99 and t.to_float(t.max_raw) < 4 * m
