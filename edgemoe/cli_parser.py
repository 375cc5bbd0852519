"""The ``edgemoe`` command line's parser: one ``_add_<command>`` per subcommand (its options and help),
in the order ``edgemoe --help`` lists them, and the handlers small enough to live beside their options;
the flows themselves are imported only when a command runs (``_lazy``).
"""
from __future__ import annotations

import argparse

from .errors import EdgeMoeError

SATURATE_HELP = ("clamp model parameters that do not fit their fixed-point type to the type's min/max (with a "
                 "warning) instead of failing")
def _precision_help(default: str = "") -> str:
    """--precision's help: the precisions, and w8a8's options as edgemoe/spec.py PRECISION_OPTIONS names them."""
    from .spec import PRECISION_OPTIONS
    opts = "; ".join(f"{base} takes options: " + "; ".join(f"+{o}: {what}" for o, what in known.items())
                     for base, known in PRECISION_OPTIONS.items())
    return ((f"default {default}; " if default else "") + "w16a32 (the reference design's types), w8a8 (calibrated) or "
            f"w16a32-fit (parameter types fitted to the weights); {opts}; e.g. w8a8+wide-attn+per-channel")


MIN_COSINE_HELP = ("error budget: every stage of the fixed model must reach this cosine against the float model on the "
                   "first calibration image (w8a8 keeps the attention at 16 bits when an attention stage misses it; "
                   "otherwise an error names the stage)")
CALIB_HELP = ("w8a8: calibrate on the images of DIR (.npy float (3, H, W) in [0, 1], or .png / .jpg resized to the "
              "model's input; at most 32) instead of the seeded sample images")


def _lazy(module: str, function: str):
    """A subcommand handler that imports its flow only when it runs (``import edgemoe`` and
    ``edgemoe --help`` stay free of torch and the other heavy packages)."""
    def run(args):
        import importlib
        return getattr(importlib.import_module(module), function)(args)
    return run


def _cmd_presets(args) -> int:
    from .spec import PRESETS, preset_table
    print(preset_table())
    if args.verbose:
        for p in PRESETS.values():
            print(f"\n{p.name}: {p.description}\n  {p.summary()}")
    return 0


def _cmd_export_onnx(args) -> int:
    from edgemoe.golden.checkpoint import load_model
    from edgemoe.golden.onnx_io import export_onnx
    from edgemoe.io import atomic_path
    from .spec import get_preset
    get_preset(args.preset)
    model = load_model(args.preset, checkpoint=args.checkpoint, seed=args.seed)
    with atomic_path(args.output) as tmp:
        export_onnx(model, tmp)
    print(f"wrote {args.output}: the {model.spec.name} encoder (inputs image [1,3,H,W], task [1]; output tokens)")
    return 0


def _cmd_generate(args) -> int:
    from edgemoe.codegen.generate import generate
    if args.checkpoint and not args.preset:
        raise EdgeMoeError("--checkpoint needs --preset (the model the checkpoint belongs to)")
    if args.onnx and args.preset:
        raise EdgeMoeError("give either --preset (optionally with --checkpoint) or --onnx, not both")
    if not args.onnx and not args.preset:
        raise EdgeMoeError("give --preset P, --checkpoint PATH --preset P, or --onnx FILE")
    generate(args.output, preset=args.preset, checkpoint=args.checkpoint, onnx=args.onnx, board=args.board,
             precision=args.precision, design=args.design, clock=args.clock, force=args.force, seed=args.seed,
             quiet=False, batch=args.batch, saturate_params=args.saturate, calib=args.calib,
             min_cosine=args.min_cosine)
    return 0


def _cmd_build(args) -> int:
    """``edgemoe build``: boards/build.py runs the tools; codegen writes the project's Vivado / IP export
    scripts when they are missing or stale, and checks the HLS run (vitis-check) before Vivado runs."""
    from edgemoe.boards.build import build_command
    from edgemoe.codegen.vitis_check import check_build_run
    from edgemoe.codegen.vivado_files import write_vivado_files
    return build_command(args, after_hls=check_build_run, write_scripts=write_vivado_files)


def _add_presets(sub) -> None:
    p = sub.add_parser("presets", help="list the model presets with their sizes",
                       description="List the built-in model presets with their sizes.")
    p.add_argument("-v", "--verbose", action="store_true", help="also print each preset's description")
    p.set_defaults(func=_cmd_presets)


def _add_golden(sub) -> None:
    from .spec import DEFAULT_PRECISION, DEFAULT_PRESET
    p = sub.add_parser("golden", help="run the float or fixed-point golden model on one image",
                       description="Run the golden M3ViT encoder (float PyTorch, or the bit-accurate "
                       "fixed-point model with --fixed) on one image and write the last block's output.")
    p.add_argument("--preset", help=f"model preset (default {DEFAULT_PRESET}; see `edgemoe presets`)")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--checkpoint", metavar="DIR_OR_PTH", help="M3ViT checkpoint: folder of {rank}.pth or one .pth")
    src.add_argument("--onnx", metavar="FILE", help="an encoder exported by edgemoe (spec read from the file)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random weights when no checkpoint is given")
    p.add_argument("--precision", default=DEFAULT_PRECISION, help=_precision_help(DEFAULT_PRECISION))
    p.add_argument("--fixed", action="store_true", help="output of the fixed-point model instead of the float one")
    p.add_argument("--task", required=True, help="task index or name (e.g. 0 or semseg)")
    p.add_argument("--input", required=True, metavar="X.npy", help="one image, float32, shape (3, H, W), values in [0, 1]")
    p.add_argument("--output", required=True, metavar="Y.npy", help="last block's output, float32, (tokens, embed)")
    p.add_argument("--heads", metavar="OUT_DIR", help="also write the task output (.npy and .png) here")
    p.add_argument("--saturate", action="store_true", help=SATURATE_HELP)
    p.add_argument("--calib", metavar="DIR", help="with --fixed: " + CALIB_HELP)
    p.add_argument("--min-cosine", type=float, metavar="C", help="with --fixed: " + MIN_COSINE_HELP)
    p.add_argument("--stages", action="store_true", help="with --fixed: also print, per stage tap, the fixed model's "
                   "error against the float model on the same image (cosine, max error, max error / range, share "
                   "saturated, share rounded to zero) and name the weakest stage")
    p.set_defaults(func=_lazy("edgemoe.golden.run", "golden_command"))


def _add_export_onnx(sub) -> None:
    from .spec import DEFAULT_PRESET
    p = sub.add_parser("export-onnx", help="export the encoder to ONNX (loads back with --onnx)",
                       description="Export the M3ViT encoder (both tasks: the task is a graph input) to ONNX, "
                       "with the model spec in the metadata so that `--onnx FILE` loads it back.")
    p.add_argument("--preset", default=DEFAULT_PRESET, help=f"model preset (default {DEFAULT_PRESET})")
    p.add_argument("--checkpoint", metavar="DIR_OR_PTH", help="M3ViT checkpoint: folder of {rank}.pth or one .pth")
    p.add_argument("--seed", type=int, default=0, help="seed of the random weights when no checkpoint is given")
    p.add_argument("-o", "--output", required=True, metavar="FILE", help="the .onnx file to write")
    p.set_defaults(func=_cmd_export_onnx)


def _add_demo(sub) -> None:
    from .spec import DEFAULT_PRESET
    p = sub.add_parser("demo", help="run the whole flow that exists on the built-in default model",
                       description="Run the flow end to end on the default preset and a sample image: "
                       "float golden, fixed-point golden, task outputs as pictures and a summary.")
    p.add_argument("--preset", default=DEFAULT_PRESET, help=f"model preset (default {DEFAULT_PRESET})")
    p.add_argument("--out", default="demo_out", help="output folder (default demo_out)")
    p.add_argument("--seed", type=int, default=0, help="weights seed")
    p.set_defaults(func=_lazy("edgemoe.demo", "run_demo"))


def _add_generate(sub) -> None:
    from .spec import DEFAULT_PRECISION
    p = sub.add_parser("generate", help="generate a Vitis HLS project (kernel, testbench, data, scripts)",
                       description="Write a self-contained Vitis HLS project folder: kernel C++ (one header "
                       "per unit and a top kernel), configuration header, C testbench, packed weights, golden "
                       "data with a manifest, hls_config.cfg, run_hls.tcl, Makefile and README.")
    p.add_argument("--preset", help="model preset (see `edgemoe presets`)")
    p.add_argument("--checkpoint", metavar="PATH", help="M3ViT checkpoint for --preset (folder of {rank}.pth or one .pth)")
    p.add_argument("--onnx", metavar="FILE", help="an encoder exported by edgemoe (spec read from the file)")
    p.add_argument("--board", required=True, help="target board: zcu104, zcu102 or kv260")
    p.add_argument("--precision", default=DEFAULT_PRECISION, help=_precision_help(DEFAULT_PRECISION))
    p.add_argument("--design", help="design point (edge-moe, small; default: the board's)")
    p.add_argument("--clock", type=float, metavar="MHZ", help="kernel clock in MHz (default: the board's)")
    p.add_argument("--batch", type=int, metavar="N", help="frames per kernel pass that share every expert's "
                   "weight load (default: the design's)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random weights when no checkpoint is given")
    p.add_argument("-o", "--output", required=True, metavar="DIR", help="project folder to write")
    p.add_argument("--force", action="store_true", help="replace DIR if it exists")
    p.add_argument("--saturate", action="store_true", help=SATURATE_HELP)
    p.add_argument("--calib", metavar="DIR", help=CALIB_HELP + " (recorded in data/manifest.json: \"calib\")")
    p.add_argument("--min-cosine", type=float, metavar="C", help=MIN_COSINE_HELP)
    p.set_defaults(func=_cmd_generate)


def _add_csim(sub) -> None:
    p = sub.add_parser("csim", help="C-simulate a generated project and compare it with the goldens",
                       description="Compile the project's kernel with g++ (ap_types from $XILINX_HLS/include, "
                       "else the hls4ml wheel), run it, compare every tap bit for bit with the fixed-point "
                       "golden and the output with the float golden. Exit 1 on any bit mismatch.")
    p.add_argument("project", metavar="DIR", help="a folder written by `edgemoe generate`")
    p.add_argument("--task", default="0", help="task index or name (default 0)")
    p.add_argument("--input", metavar="X.npy", help="image, float32 (3, H, W) (default: the project's golden input)")
    p.add_argument("--output", metavar="Y.npy", help="write the last block's output, float32 (tokens, embed)")
    p.add_argument("--taps", choices=["all"], help="compare every stage (one kernel run dumping all taps)")
    p.add_argument("--images", type=int, default=1, metavar="N", help="also run N images in one kernel call (the "
                   "input, then noisy copies) and compare each output with its fixed golden: a batched design's "
                   "batches (default 1)")
    p.add_argument("--stages", action="store_true", help="print the fixed golden's error against the float golden "
                   "at every stage tap (cosine, max error, max error / range, share saturated, share rounded to zero; "
                   "--json always holds it under \"stages\"), not only the weakest stage")
    p.add_argument("--calib", metavar="DIR", help="check that the project's w8a8 types were calibrated on the images "
                   "of DIR (the sha256 in its manifest); csim never recalibrates: regenerate with --calib to change them")
    p.add_argument("--json", metavar="J", help="write the results as JSON")
    p.set_defaults(func=_lazy("edgemoe.codegen.csim", "csim_command"))


def _add_hls_check(sub) -> None:
    p = sub.add_parser("hls-check", help="check a generated kernel against the Vitis HLS rules csim cannot show",
                       description="Without Vitis: count the instances of the shared units in the synthesis branch, "
                       "check ALLOCATION / INLINE / DEPENDENCE pragmas, the m_axi accesses of pipelined loops and "
                       "the banks their lanes hit in partitioned memories, and run an instrumented C simulation for "
                       "bank conflicts, ROM ports and bursts; plus the "
                       "synthesizable-subset rules. Exit 1 on any violation.")
    p.add_argument("project", metavar="DIR", help="a folder written by `edgemoe generate`")
    p.add_argument("--json", metavar="J", help="write the results as JSON")
    p.add_argument("--no-probe", action="store_true", help="skip the instrumented C simulation")
    p.set_defaults(func=_lazy("edgemoe.codegen.hls_check", "hls_check_command"))


def _add_sim(sub) -> None:
    from .spec import DEFAULT_PRECISION
    p = sub.add_parser("sim", help="simulate the RTL units with cocotb (Verilator, Icarus) against the goldens",
                       description="Build and run each RTL unit's cocotb bench on every installed simulator "
                       "(or --simulator), compare with the fixed-point golden and measure items per cycle. "
                       "Exit 1 on any mismatch.")
    p.add_argument("--unit", default="all", metavar="NAME|all", help="one unit (gelu, softmax, layernorm, "
                   "linear, moe_route) or all (default)")
    p.add_argument("--simulator", choices=["verilator", "icarus"], help="default: every installed one")
    p.add_argument("--vectors", type=int, default=10000, metavar="N", help="test vectors per unit (default 10000)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random vectors")
    p.add_argument("--rtl-dir", metavar="DIR", help="Verilog of the unit tops from Vitis instead of ours")
    p.add_argument("--project", metavar="DIR", help="a generated project: its spec, design and precision (w8a8 / "
                   "w16a32-fit: the types calibrated on / fitted to its model, from data/manifest.json) instead of the "
                   "default preset's")
    p.add_argument("--precision", help=_precision_help(DEFAULT_PRECISION))
    p.add_argument("--block", metavar="N|nominal", help="w8a8, w16a32-fit: the block whose per-block types the RTL is built "
                   "with (default 0; nominal with --rtl-dir)")
    p.add_argument("--json", metavar="J", help="write the results as JSON")
    p.set_defaults(func=_lazy("edgemoe.sim.cli_sim", "sim_command"))


def _add_synth_estimate(sub) -> None:
    p = sub.add_parser("synth-estimate", help="resource estimate of the RTL units with Yosys (synth_xilinx)",
                       description="Synthesise the RTL units with Yosys (synth_xilinx -family xcup) and "
                       "tabulate LUT, FF, DSP48E2, BRAM and CARRY8 counts.")
    p.add_argument("--unit", default="all", help="unit name or all (default)")
    p.add_argument("--json", metavar="J", help="also write {\"units\": {name: {lut, ff, dsp, bram, carry}}} here")
    p.add_argument("--preset", help="model preset (default: the sim default, micro)")
    p.add_argument("--precision", help=_precision_help("w16a32"))
    p.add_argument("--design", help="design point (default edge-moe)")
    p.set_defaults(func=_lazy("edgemoe.sim.synth_estimate", "synth_estimate_command"))


def _add_estimate(sub) -> None:
    from .spec import DEFAULT_PRECISION
    p = sub.add_parser("estimate", help="latency and resources of the generated kernel, from the spec",
                       description="Model the generated kernel's cycles per layer and unit (trip counts, initiation "
                       "intervals, pipeline depths, weight streams overlapped with the MACs, DDR and PS-port bandwidth "
                       "at 75% of peak as the block design maps the bundles) and its DSP / BRAM / URAM / LUT / FF use "
                       "(m_axi FIFOs and ROM copies included); print latency per frame, GOPS, the compute and DDR "
                       "floors and what limits the point. With a project DIR that holds a Vitis run, compare with its "
                       "csynth.xml. Warn above the utilisation caps; exit 2 when the design does not fit the board.")
    p.add_argument("project", nargs="?", metavar="DIR", help="a folder written by `edgemoe generate`")
    p.add_argument("--preset", help="model preset (instead of DIR)")
    p.add_argument("--board", help="target board (instead of DIR): zcu104, zcu102, kv260")
    p.add_argument("--precision", help=_precision_help(DEFAULT_PRECISION))
    p.add_argument("--design", help="design point name or a design .json from `edgemoe explore` (default: the board's)")
    p.add_argument("--clock", type=float, metavar="MHZ", help="kernel clock (default: the design's)")
    p.add_argument("--batch", type=int, metavar="N", help="frames per kernel pass that share every expert's "
                   "weight load (default: the design's)")
    p.add_argument("--csynth", metavar="XML", help="a Vitis <top>_csynth.xml to compare with")
    p.add_argument("--calib", metavar="DIR", help="w8a8: estimate with the types calibrated on the images of DIR "
                   "and the preset's seed-0 model (widths, hence cycles, do not change; recorded in --json); with a "
                   "project DIR: check them against its manifest's calibration set")
    p.add_argument("--json", metavar="J", help="write the estimate as JSON")
    p.set_defaults(func=_lazy("edgemoe.codegen.perf_commands", "estimate_command"))


def _add_explore(sub) -> None:
    from .spec import DEFAULT_PRECISION, DEFAULT_PRESET
    p = sub.add_parser("explore", help="search design points for the fastest that fits a board",
                       description="Search engine width (weight tiling), attention rows and lanes, element-wise "
                       "lanes, weight ports and UltraRAM binding for the lowest estimated latency that fits the "
                       "board; print the Pareto front (latency vs DSP and BRAM36), plot it, and with --json write "
                       "the best point (usable as `edgemoe generate --design J`).")
    p.add_argument("--preset", default=DEFAULT_PRESET, help=f"model preset (default {DEFAULT_PRESET})")
    p.add_argument("--board", required=True, help="zcu104, zcu102 or kv260")
    p.add_argument("--precision", default=DEFAULT_PRECISION, help=_precision_help(DEFAULT_PRECISION))
    p.add_argument("--clock", type=float, metavar="MHZ", help="kernel clock (default: the board's)")
    p.add_argument("--batch", type=int, metavar="N", help="search only this batch (frames per kernel pass "
                   "sharing expert weight loads; default: 1, 2 and 4; 1 for the lowest single-frame latency)")
    p.add_argument("--json", metavar="J", help="write the best design point with its estimate and the front")
    p.add_argument("--plot", metavar="PNG", help="where to write the plot (default: next to --json)")
    p.add_argument("--top", type=int, default=15, help="Pareto points to print (default 15)")
    p.add_argument("--max-util", metavar="SPEC", help="utilisation caps that a point must keep to: one fraction for "
                   "all, or dsp=0.85,lut=0.75,... (keys dsp, bram36, uram, lut, ff; default dsp, bram36 and uram 0.8, "
                   "lut and ff 0.7: designs fuller than that rarely close timing at 300 MHz)")
    p.set_defaults(func=_lazy("edgemoe.codegen.perf_commands", "explore_command"))


def _add_report(sub) -> None:
    p = sub.add_parser("report", help="one HTML (and markdown) report on a generated project",
                       description="Write DIR/report/report.html and report.md: the spec, resources against the "
                       "board, the estimated latency per layer, the accuracy ladder float / fixed / csim / RTL / "
                       "board with error histograms, and the Vitis reports when a run exists.")
    p.add_argument("project", metavar="DIR", help="a folder written by `edgemoe generate`")
    p.add_argument("--output", metavar="OUT", help="report folder (default DIR/report)")
    p.add_argument("--force", action="store_true", help="replace an existing --output folder that edgemoe wrote")
    p.add_argument("--no-csim", action="store_true", help="do not run the C simulation rung")
    p.add_argument("--sim-json", metavar="J", help="results of `edgemoe sim --json J` (the RTL rung)")
    p.add_argument("--board-json", metavar="J", help="results of `edgemoe-host run PKG --json J` (the board rung)")
    p.add_argument("--csim-json", nargs="+", metavar="J", help="results of `edgemoe csim DIR --json J` (one per task) "
                   "as the C-simulation rung, instead of running it")
    p.set_defaults(func=_lazy("edgemoe.codegen.report", "report_command"))


def _add_build(sub) -> None:
    p = sub.add_parser("build", help="run Vitis HLS and Vivado on a generated project (bitstream + hwh)",
                       description="Export the kernel as a Vivado IP with Vitis HLS (v++, or vitis_hls before "
                       "2023.2), then build the block design (PS, kernel, smartconnects to the HP ports, control "
                       "from HPM0), bitstream and .hwh with Vivado, into DIR/build/. Without the tools: exit 2 "
                       "and print the exact commands to run on a machine that has them.")
    p.add_argument("project", metavar="DIR", help="a folder written by `edgemoe generate`")
    p.add_argument("--until", choices=["hls", "bitstream"], default="bitstream",
                   help="last step to run (default bitstream)")
    p.set_defaults(func=_cmd_build)


def _add_vitis_check(sub) -> None:
    p = sub.add_parser("vitis-check", help="check a Vitis HLS run: bursts, II, one engine, resources vs estimate",
                       description="Read the Vitis HLS log and csynth reports of a run of a generated project "
                       "(edgemoe build's, or your own anywhere under DIR) and report, naming the port, loop or "
                       "module and the source line: burst inference failures (214-2xx), pipelined loops above "
                       "their target II (200-1470, 200-880/885/448, the csynth loop table), more than one "
                       "instance of the linear engine or another shared unit, and resources more than 10% "
                       "above `edgemoe estimate`. Exit 1 on any failure.")
    p.add_argument("project", metavar="DIR", help="a folder written by `edgemoe generate`")
    p.add_argument("--run", metavar="RUN", help="the Vitis run to check: a v++ work dir, a vitis_hls "
                   "project or solution folder, or DIR/build/hls (default: the newest run under DIR)")
    p.add_argument("--json", metavar="J", help="write the findings as JSON")
    p.set_defaults(func=_lazy("edgemoe.codegen.vitis_check", "vitis_check_command"))


def _add_package(sub) -> None:
    p = sub.add_parser("package", help="make the folder and tarball to copy to the board",
                       description="Write PKG/ and PKG.tar.gz: bitstream and hwh when built, packed weights, "
                       "golden inputs and outputs, the host runtime, run.sh and a manifest with the sha256 of "
                       "every file.")
    p.add_argument("project", metavar="DIR", help="a folder written by `edgemoe generate`")
    p.add_argument("-o", "--output", required=True, metavar="PKG", help="package folder to write (and PKG.tar.gz)")
    p.add_argument("--force", action="store_true", help="replace PKG and PKG.tar.gz when edgemoe made them "
                   "(a folder or file of yours is never replaced)")
    p.set_defaults(func=_lazy("edgemoe.boards.package", "package_command"))


def _add_emulate(sub) -> None:
    p = sub.add_parser("emulate", help="a board stand-in for pynq: PYNQ.remote on 127.0.0.1, kernel in C simulation",
                       description="Serve PYNQ.remote's gRPC services (pynq 4.0) on 127.0.0.1 for a package made "
                       "by `edgemoe package`: emulated DDR for pynq.allocate, the kernel's AXI-Lite registers at "
                       "its base address, and ap_start running the generated kernel in C simulation on the "
                       "buffers the registers point to. Drive it with the real pynq client "
                       "(PYNQ_REMOTE_DEVICES=127.0.0.1). Runs until interrupted.")
    p.add_argument("--package", required=True, metavar="PKG", help="a folder written by `edgemoe package`")
    p.add_argument("--port", type=int, default=7967, help="TCP port (default 7967, pynq's; 0: any free port)")
    p.add_argument("--latency", type=float, default=0.0, metavar="S",
                   help="minimum seconds a kernel run stays busy (to exercise host timeouts; default 0)")
    p.add_argument("--ddr-mb", type=int, default=1024, metavar="MB", help="room for allocations (default 1024)")
    p.add_argument("--workdir", metavar="DIR", help="where to render and compile the kernel when the packaged "
                   "project is gone (default: a temporary folder)")
    p.set_defaults(func=_lazy("edgemoe.sim.emulator", "emulate_command"))


COMMANDS = (_add_presets, _add_golden, _add_export_onnx, _add_demo, _add_generate, _add_csim, _add_hls_check,
            _add_sim, _add_synth_estimate, _add_estimate, _add_explore, _add_report, _add_build, _add_vitis_check,
            _add_package, _add_emulate)


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="edgemoe", description="FPGA accelerators for multi-task "
                                 "Mixture-of-Experts vision transformers (Edge-MoE / M3ViT).")
    ap.add_argument("--version", action="version", version=f"edgemoe {__import__('edgemoe').__version__}")
    sub = ap.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for add in COMMANDS:   # in the order `edgemoe --help` lists them
        add(sub)
    return ap


__all__ = ["build_parser", "COMMANDS"]
