"""The ``edgemoe`` command line: one program, a subcommand per flow, ``--help`` on each.

Every user-facing failure is an :class:`EdgeMoeError` and ends as one line on stderr with a
non-zero exit code; tracebacks are for bugs only (set EDGEMOE_DEBUG=1 to see them for errors too).
"""
from __future__ import annotations

import os
import sys

from .cli_parser import build_parser
from .errors import EdgeMoeError

EXIT_ERROR = 2


FILE_OUTPUTS = {"json": "--json", "plot": "--plot"}
OUTPUT_IS_FILE = ("golden", "export-onnx", "csim")   # their --output / -o names a file (elsewhere a folder)


def _check_file_outputs(args) -> None:
    """Every file output is checked before the command computes anything (never after minutes of work)."""
    from .io import check_output_file
    for dest, option in FILE_OUTPUTS.items():
        if getattr(args, dest, None):
            check_output_file(getattr(args, dest), option)
    if args.command in OUTPUT_IS_FILE and getattr(args, "output", None):
        check_output_file(args.output, "--output")


def main(argv=None) -> int:
    ap = build_parser()
    args = ap.parse_args(argv)
    try:
        from .options import check_args
        check_args(args)   # every numeric option against its one range, before any work
        _check_file_outputs(args)
        return args.func(args) or 0
    except EdgeMoeError as e:
        if os.environ.get("EDGEMOE_DEBUG"):
            raise
        print(f"edgemoe: error: {e}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("edgemoe: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # the reader (`| head`) went away: stop quietly, as a Unix filter does
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except OSError as e:
        # a file-system failure no command foresaw (read-only, full, permission): still one line
        if os.environ.get("EDGEMOE_DEBUG"):
            raise
        where = f"{e.filename}: " if e.filename else ""
        print(f"edgemoe: error: {where}{e.strerror or e}", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
