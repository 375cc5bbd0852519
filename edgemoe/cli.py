"""The ``edgemoe`` command line: one program, a subcommand per flow, ``--help`` on each.

Every user-facing failure is an :class:`EdgeMoeError` and ends as one line on stderr with a
non-zero exit code; tracebacks are for bugs only (set EDGEMOE_DEBUG=1 to see them for errors too).
"""
from __future__ import annotations

import argparse
import os
import sys

from .errors import EdgeMoeError

EXIT_ERROR = 2


def _cmd_presets(args) -> int:
    from .spec import PRESETS, preset_table
    print(preset_table())
    if args.verbose:
        for p in PRESETS.values():
            print(f"\n{p.name}: {p.description}\n  {p.summary()}")
    return 0


def _cmd_golden(args) -> int:
    from edgemoe.golden.run import golden_command
    return golden_command(args)


def _cmd_demo(args) -> int:
    from .demo import run_demo
    return run_demo(args)


def build_parser() -> argparse.ArgumentParser:
    from .spec import DEFAULT_PRESET
    ap = argparse.ArgumentParser(prog="edgemoe", description="FPGA accelerators for multi-task "
                                 "Mixture-of-Experts vision transformers (Edge-MoE / M3ViT).")
    ap.add_argument("--version", action="version", version=f"edgemoe {__import__('edgemoe').__version__}")
    sub = ap.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser("presets", help="list the model presets with their sizes",
                       description="List the built-in model presets with their sizes.")
    p.add_argument("-v", "--verbose", action="store_true", help="also print each preset's description")
    p.set_defaults(func=_cmd_presets)

    p = sub.add_parser("golden", help="run the float or fixed-point golden model on one image",
                       description="Run the golden M3ViT encoder (float PyTorch, or the bit-accurate "
                       "fixed-point model with --fixed) on one image and write the last block's output.")
    p.add_argument("--preset", default=DEFAULT_PRESET, help=f"model preset (default {DEFAULT_PRESET}; see `edgemoe presets`)")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--checkpoint", metavar="DIR_OR_PTH", help="M3ViT checkpoint: folder of {rank}.pth or one .pth")
    src.add_argument("--onnx", metavar="FILE", help="an encoder exported by edgemoe (spec read from the file)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random weights when no checkpoint is given")
    p.add_argument("--precision", default="w16a32", help="w16a32 (default) or w8a8 (calibrated)")
    p.add_argument("--fixed", action="store_true", help="output of the fixed-point model instead of the float one")
    p.add_argument("--task", required=True, help="task index or name (e.g. 0 or semseg)")
    p.add_argument("--input", required=True, metavar="X.npy", help="one image, float32, shape (3, H, W), values in [0, 1]")
    p.add_argument("--output", required=True, metavar="Y.npy", help="last block's output, float32, (tokens, embed)")
    p.add_argument("--heads", metavar="OUT_DIR", help="also write the task output (.npy and .png) here")
    p.set_defaults(func=_cmd_golden)

    p = sub.add_parser("demo", help="run the whole flow that exists on the built-in default model",
                       description="Run the flow end to end on the default preset and a sample image: "
                       "float golden, fixed-point golden, task outputs as pictures and a summary.")
    p.add_argument("--preset", default=DEFAULT_PRESET, help=f"model preset (default {DEFAULT_PRESET})")
    p.add_argument("--out", default="demo_out", help="output folder (default demo_out)")
    p.add_argument("--seed", type=int, default=0, help="weights seed")
    p.set_defaults(func=_cmd_demo)
    return ap


def main(argv=None) -> int:
    ap = build_parser()
    args = ap.parse_args(argv)
    try:
        return args.func(args) or 0
    except EdgeMoeError as e:
        if os.environ.get("EDGEMOE_DEBUG"):
            raise
        print(f"edgemoe: error: {e}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("edgemoe: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
