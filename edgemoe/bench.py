"""``make bench``: timings as ratios against the PyTorch float golden measured in the same run.

Absolute seconds on a shared 2-core machine are noisy; the ratio to the float golden (same
machine, same moment) is the figure to compare between runs.
"""
from __future__ import annotations

import argparse
import time

import numpy as np


def _best_of(fn, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def bench_golden(presets=("micro", "m3vit-tiny-edge"), repeat: int = 3) -> list:
    from edgemoe.golden.calibrate import precision_for
    from edgemoe.golden.fixed_model import FixedM3ViT
    from edgemoe.golden.model import build_model, params_numpy, run_golden, sample_image
    from edgemoe.spec import get_preset
    rows = []
    for name in presets:
        spec = get_preset(name)
        model = build_model(spec, seed=0)
        params = params_numpy(model)
        image = sample_image(spec, seed=0)
        t_float = _best_of(lambda: run_golden(model, image, 0), repeat)
        for prec_name in ("w16a32", "w8a8"):
            fixed = FixedM3ViT(spec, precision_for(prec_name, spec, model, params), params)
            t_fixed = _best_of(lambda: fixed.encode(image, 0), repeat)
            rows.append((name, prec_name, t_float, t_fixed, t_fixed / t_float))
            print(f"  {name:16s} {prec_name:7s} float {t_float * 1e3:9.1f} ms  fixed {t_fixed * 1e3:9.1f} ms  "
                  f"ratio {t_fixed / t_float:6.1f}x", flush=True)
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m edgemoe.bench", description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--presets", nargs="+", default=["micro", "m3vit-tiny-edge"])
    args = ap.parse_args(argv)
    np.random.seed(0)
    print("golden models, one frame (best of %d): fixed-point numpy vs PyTorch float" % args.repeat)
    bench_golden(args.presets, args.repeat)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
