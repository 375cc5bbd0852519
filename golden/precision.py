"""Precision spec: the fixed-point type of every tensor role, shared by the golden model and the C++.

A role names a kind of tensor (``act`` for the residual stream, ``w`` for linear weights, ...).
Per-tensor overrides (``"blocks.3.ln_out"``) hold types found by calibration (w8a8) or fitting (w16a32-fit:
golden/fit_types.py); :meth:`Precision.t` looks a role up for a given block and falls back to the role's base type.

Storage types of parameters (weights, biases, LayerNorm parameters, pixels) carry ``AP_RND`` /
``AP_SAT``: they are only used to quantise floats once, in Python, when weights are packed; the
kernel declares them without modes because it never casts into them.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field

from edgemoe.spec import (DEFAULT_PRECISION, DERIVED_PRECISIONS, PRECISION_NAMES, PRECISION_OPTIONS, precision_name,
                          split_precision)

from .apfixed import FixedType

T = FixedType.parse
RND_SAT = dict(Q="AP_RND", O="AP_SAT")

# Roles and what they hold, in the order of the data flow.
ROLES = {
    "pixel": "input pixels (image in [0, 1))",
    "patch_w": "patch-embedding weights",
    "patch_acc": "patch-embedding accumulator (pixel x patch_w products, exact)",
    "bias": "patch-embedding bias, CLS token and position embedding",
    "act": "residual stream (block inputs and outputs)",
    "ln_param": "LayerNorm gamma and beta",
    "ln_sum": "LayerNorm sum of a row (exact)",
    "ln_diff": "LayerNorm x - mean, narrowed for squaring",
    "ln_sq_acc": "LayerNorm sum of squared differences (exact)",
    "ln_rstd": "LayerNorm 1/sqrt(var + eps) (a tap; the unit keeps it as mantissa and exponent)",
    "ln_norm": "LayerNorm (x - mean) / std before gamma and beta",
    "ln_out": "LayerNorm output = linear-engine input",
    "w": "linear weights (qkv, proj, fc1, fc2, experts)",
    "qkv_b": "qkv bias (the reference design's attention bias)",
    "b": "other linear biases (proj, fc1, fc2, experts)",
    "acc": "linear-engine accumulator (ln_out x w products, exact)",
    "qkv": "Q, K, V (attention operands)",
    "qk_acc": "Q.K^T accumulator (exact)",
    "qk": "q.k before the scale (the accumulator's sum rounded; wide enough for peaked attention)",
    "scale": "attention scale head_dim^-0.5",
    "score": "attention logits after scaling",
    "exp_arg": "softmax: (s - m) * log2(e)",
    "exp2_tab": "softmax: 2^f table on [0, 1]",
    "exp": "softmax: exp(s - m)",
    "sm_sum": "softmax: running sum S",
    "recip": "softmax: 1 / S",
    "prob": "attention probabilities",
    "av_acc": "A.V accumulator (prob x v products, exact)",
    "attn_out": "attention output (heads concatenated) = proj input",
    "gelu_in": "fc1 output entering GELU",
    "gelu_tab": "GELU table d(a) = a * Phi(-a) on [0, 5.5]",
    "hidden": "fc1 output after GELU = fc2 input",
    "gate_w": "MoE gate weights",
    "gate_acc": "MoE gate accumulator (exact)",
    "gate_logit": "MoE gate logits",
    "gate_score": "MoE gate probability (the weight of an expert's output)",
}

# Sizes of the approximation tables (part of the spec: C++ and Python both read them from here).
GELU_RANGE = 5.5         # |x| >= this: GELU(x) = ReLU(x)
GELU_STEPS_LOG2 = 5      # table step 1/32 -> 177 entries over [0, 5.5]
EXP2_SEG_LOG2 = 8        # 2^f on [0, 1]: 256 segments, 257 entries, linear interpolation (error ~1e-6)
RSQRT_IDX_BITS = 5       # rsqrt seed table: mantissa in [1, 4) indexed by its top bits (96 entries)
RSQRT_MANT_F = 30        # fraction bits of the normalised mantissa and of the Newton steps
RSQRT_NEWTON_STEPS = 2   # seed error 1/128 -> 9e-5 after one step -> 1e-8 after two


@dataclass(frozen=True)
class Precision:
    name: str
    types: dict
    overrides: dict = field(default_factory=dict)
    description: str = ""
    # the "smooth" option's exponents: {"backbone.blocks.i.normN": [k per channel]} (golden/smoothing.py)
    smooth: dict = field(default_factory=dict)

    @property
    def base(self) -> str:
        """The precision without its options ("w8a8" of "w8a8+smooth"; a name of one's own: itself)."""
        return self._split()[0]

    @property
    def options(self) -> tuple:
        """The switched-on options (edgemoe/spec.py PRECISION_OPTIONS), e.g. ("smooth", "wide-attn")."""
        return self._split()[1]

    def _split(self) -> tuple:
        from edgemoe.errors import EdgeMoeError
        try:
            return split_precision(self.name)
        except EdgeMoeError:
            return self.name, ()

    def t(self, role: str, block: int | None = None, tensor: str | None = None) -> FixedType:
        """Type of ``role``, with the most specific calibrated override first."""
        for key in ([f"{tensor}.{role}"] if tensor else []) + ([f"blocks.{block}.{role}"] if block is not None else []):
            if key in self.overrides:
                return self.overrides[key]
        try:
            return self.types[role]
        except KeyError:
            raise KeyError(f"precision {self.name!r} has no type for role {role!r}") from None

    def acc_for(self, role: str, a: FixedType, b: FixedType) -> FixedType:
        """The exact (product-holding) wrapping accumulator for ``a x b``: the width is the role's,
        the fraction bits are the product's, so no product is ever rounded before it is added."""
        width = self.types[role].W
        return FixedType(width, width - (a.F + b.F), True)

    def to_dict(self) -> dict:
        d = {"name": self.name, "description": self.description,
             "types": {k: _type_str(v) for k, v in self.types.items()},
             "overrides": {k: _type_str(v) for k, v in self.overrides.items()}}
        if self.smooth:
            d["smooth"] = {k: list(v) for k, v in self.smooth.items()}
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1, sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict) -> "Precision":
        types = {k: _parse_type(v) for k, v in d["types"].items()}
        if "qk" not in types and "score" in types:
            types["qk"] = types["score"]     # written before the qk role: q.k was cast to the score type
        return cls(d["name"], types,
                   {k: _parse_type(v) for k, v in d.get("overrides", {}).items()},
                   d.get("description", ""), {k: [int(x) for x in v] for k, v in d.get("smooth", {}).items()})

    def with_overrides(self, overrides: dict) -> "Precision":
        return Precision(self.name, dict(self.types), {**self.overrides, **overrides}, self.description, self.smooth)


def _type_str(t: FixedType) -> str:
    base = "ap_fixed" if t.signed else "ap_ufixed"
    return f"{base}<{t.W},{t.I},{t.Q},{t.O}>"


def _parse_type(s: str) -> FixedType:
    return FixedType.parse(s)


def _w16a32() -> Precision:
    types = {
        "pixel": T("ap_ufixed<8,0>").with_modes(**RND_SAT),
        "patch_w": T("ap_fixed<16,0>").with_modes(**RND_SAT),
        "patch_acc": T("ap_fixed<40,16>"),
        "bias": T("ap_fixed<16,5>").with_modes(**RND_SAT),
        "act": T("ap_fixed<32,10>"),
        "ln_param": T("ap_fixed<16,5>").with_modes(**RND_SAT),
        "ln_sum": T("ap_fixed<48,26>"),
        "ln_diff": T("ap_fixed<32,10>"),
        "ln_sq_acc": T("ap_fixed<64,30>"),
        "ln_rstd": T("ap_ufixed<32,11,AP_TRN,AP_SAT>"),
        "ln_norm": T("ap_fixed<32,8>"),
        "ln_out": T("ap_fixed<32,10>"),
        "w": T("ap_fixed<16,2>").with_modes(**RND_SAT),
        "qkv_b": T("ap_fixed<16,7>").with_modes(**RND_SAT),
        "b": T("ap_fixed<16,5>").with_modes(**RND_SAT),
        "acc": T("ap_fixed<60,24>"),
        "qkv": T("ap_fixed<32,10>"),
        "qk_acc": T("ap_fixed<64,20>"),
        "qk": T("ap_fixed<32,10>"),
        "scale": T("ap_ufixed<16,0>").with_modes(**RND_SAT),
        "score": T("ap_fixed<32,10>"),
        "exp_arg": T("ap_fixed<32,12>"),
        "exp2_tab": T("ap_ufixed<24,2>").with_modes(**RND_SAT),
        "exp": T("ap_ufixed<24,1>"),
        "sm_sum": T("ap_ufixed<32,12>"),
        "recip": T("ap_ufixed<18,1>"),
        "prob": T("ap_ufixed<18,1,AP_RND>"),
        "av_acc": T("ap_fixed<64,25>"),
        "attn_out": T("ap_fixed<32,10>"),
        "gelu_in": T("ap_fixed<32,10>"),
        "gelu_tab": T("ap_ufixed<16,0>").with_modes(**RND_SAT),
        "hidden": T("ap_fixed<32,10>"),
        "gate_w": T("ap_fixed<16,2>").with_modes(**RND_SAT),
        "gate_acc": T("ap_fixed<60,24>"),
        "gate_logit": T("ap_fixed<32,10>"),
        "gate_score": T("ap_ufixed<18,1>"),
    }
    return Precision("w16a32", types, description="the reference design's types: 16-bit weights, "
                     "32-bit activations (ap_fixed<32,10>), exact wide accumulators")


def _w8a8_base() -> Precision:
    """8-bit operands at every MAC; the integer bits of each 8-bit tensor come from calibration."""
    s8 = dict(Q="AP_RND", O="AP_SAT")
    base = _w16a32().types.copy()
    base.update({
        "patch_w": FixedType(8, 0, True, **s8),
        "patch_acc": FixedType(32, 32 - 8 - 8, True),
        "act": T("ap_fixed<16,8,AP_RND,AP_SAT>"),  # residual stream keeps 16 bits (int8 residuals lose too much)
        "ln_out": FixedType(8, 3, True, **s8),
        "w": FixedType(8, 1, True, **s8),
        "acc": FixedType(32, 32 - 5 - 7, True),
        "qkv": FixedType(8, 4, True, **s8),
        "qk_acc": FixedType(32, 32 - 8, True),
        # q.k before the scale: trained models with peaked attention reach |q.k| ~150 at head_dim 64 (scores
        # ~18 x sqrt(64)), which the 16-bit score type (+-32) would clip; 10 integer bits hold +-512 (3x
        # headroom); 14 fraction bits keep q.k exact for per-block q/k types up to 3 fraction bits finer than
        # the nominal qkv (8 + 2 * D_QKV <= 14) and are >= score's 10 (scale <= 1); 24 x 16 bits: one DSP48E2
        "qk": T("ap_fixed<24,10,AP_RND,AP_SAT>"),
        "score": T("ap_fixed<16,6,AP_RND,AP_SAT>"),
        "prob": T("ap_ufixed<8,0,AP_RND,AP_SAT>"),
        "av_acc": FixedType(32, 32 - 8 - 4, True),
        "attn_out": FixedType(8, 4, True, **s8),
        "gelu_in": T("ap_fixed<16,6,AP_RND,AP_SAT>"),
        "hidden": FixedType(8, 3, True, **s8),
        "gate_w": FixedType(8, 1, True, **s8),
        "gate_acc": FixedType(32, 32 - 5 - 7, True),
        "gate_logit": T("ap_fixed<16,6,AP_RND,AP_SAT>"),
        "gate_score": T("ap_ufixed<8,0,AP_RND,AP_SAT>"),
        "ln_diff": T("ap_fixed<24,12>"),
        "ln_sq_acc": T("ap_fixed<56,32>"),
        "ln_sum": T("ap_fixed<32,19>"),
    })
    return Precision("w8a8", base, description="8-bit weights and activations at every MAC with "
                     "power-of-two scales from calibration, 32-bit accumulators, 16-bit residual stream")


def _w16a32_fit_base() -> Precision:
    """w16a32's types before fitting: golden/fit_types.py fits the integer bits of the parameter types
    (weights per block, biases, LayerNorm parameters) to a model's values, widths kept."""
    return Precision("w16a32-fit", dict(_w16a32().types), description="w16a32 with the weight, bias and "
                     "LayerNorm-parameter types' integer bits fitted to the model's values (widths kept; "
                     "weights per block)")


def _wide_attn(prec: Precision) -> Precision:
    """The ``wide-attn`` option: the attention unit's operands at 16 bits.  A peaked attention row (scores
    of 10-20) turns a 1/16 error of an 8-bit q or k into a score error of several units and rounds its
    small probabilities to zero; at 16 bits (q, k, v per block calibrated, probabilities on the fixed
    range [0, 1) with 16 fraction bits) both stay below 1e-3.  The engine's operands stay 8-bit.  q.k
    (up to 20 fraction bits) is rounded into ``qk``'s 14 before the scale: 6e-5, far below the score's step."""
    s16 = dict(Q="AP_RND", O="AP_SAT")
    types = dict(prec.types)
    types.update({
        "qkv": FixedType(16, 6, True, **s16),
        "qk_acc": FixedType(48, 48 - 20, True),      # 16 x 16-bit products of head_dim terms
        "prob": FixedType(16, 0, False, **s16),
        "av_acc": FixedType(48, 48 - 16 - 10, True),
    })
    return Precision(prec.name, types, dict(prec.overrides), prec.description + "; " + PRECISION_OPTIONS["w8a8"]["wide-attn"],
                     prec.smooth)


PRECISIONS = {"w16a32": _w16a32, "w8a8": _w8a8_base, "w16a32-fit": _w16a32_fit_base}
# the options that change types (smooth changes parameters: golden/calibrate.py)
OPTION_TYPES = {"wide-attn": _wide_attn}
assert tuple(PRECISIONS) == PRECISION_NAMES and DEFAULT_PRECISION in PRECISIONS and set(DERIVED_PRECISIONS) <= set(PRECISIONS), \
    "edgemoe/spec.py names them"
# Roles whose 8-bit types are calibrated per tensor in w8a8 (the accumulators follow from them).
CALIBRATED_ROLES = ("ln_out", "qkv", "attn_out", "hidden", "w", "gate_w")


def base_precision(name: str) -> Precision:
    """The uncalibrated precision ``name`` (options included: "w8a8+wide-attn"); an unknown name or
    option is an EdgeMoeError."""
    base, options = split_precision(name)
    prec = PRECISIONS[base]()
    prec = Precision(precision_name(base, options), prec.types, prec.overrides, prec.description)
    for o in options:
        if o in OPTION_TYPES:
            prec = OPTION_TYPES[o](prec)
        else:
            prec = Precision(prec.name, prec.types, prec.overrides, prec.description + "; " + PRECISION_OPTIONS[base][o],
                             prec.smooth)
    return prec


def pow2_type(max_abs: float, width: int, signed: bool = True, headroom: float = 1.0,
              Q: str = "AP_RND", O: str = "AP_SAT") -> FixedType:
    """Smallest power-of-two range of ``width`` bits that holds ``max_abs * headroom``."""
    import math
    m = max(float(max_abs) * headroom, 2.0 ** -(width - 2))
    i = math.ceil(math.log2(m)) + (1 if signed else 0)
    # the top code is 2^(i-1) - lsb: go one bit higher when max_abs sits exactly on the top
    if m >= 2.0 ** (i - (1 if signed else 0)) - 2.0 ** (i - width):
        i += 1
    return FixedType(width, i, signed, Q, O)
