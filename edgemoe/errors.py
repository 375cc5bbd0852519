"""The one error type that the command line turns into a one-line message (no traceback)."""


class EdgeMoeError(Exception):
    """A user-facing error: bad input, a missing tool, a mismatch. Its text is the whole message."""


class ToolMissingError(EdgeMoeError):
    """A required external tool (g++, Vitis, Vivado, a simulator, a board) is not available."""
