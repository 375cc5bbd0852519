"""The board's power draw from its PMBus rails (``pynq.get_rails()``), for the energy of a kernel call."""
from __future__ import annotations

BOARD_INPUT_RAILS = ("12V", "VCC12", "VIN", "12V_IN", "VCC_12V", "PSU")


class BoardPower:
    """The rails to sum (the board's input rail when PMBus shows one, else every rail with power) and
    ``note``: why there are none (None when there are)."""

    def __init__(self, pynq):
        get_rails = getattr(pynq, "get_rails", None)
        rails, note = {}, None
        if get_rails is None:
            note = "energy: pynq.get_rails is not available here (remote device or no PMBus support)"
        else:
            try:
                rails = {k: r for k, r in (get_rails() or {}).items() if getattr(r, "power", None) is not None}
            except Exception as e:  # noqa: BLE001 -- no sensors is not an error
                note = f"energy: pynq.get_rails() failed ({type(e).__name__}: {e})"
            if not rails and note is None:
                note = "energy: pynq.get_rails() found no power rails on this board"
        pick = {k: r for k, r in rails.items() if k.upper() in BOARD_INPUT_RAILS}
        self.rails = pick or rails
        self.note = note

    def watts(self):
        """The rails' power now (W), or None without rails or a reading."""
        if not self.rails:
            return None
        try:
            return float(sum(float(r.power.value) for r in self.rails.values()))
        except Exception:  # noqa: BLE001
            return None


__all__ = ["BoardPower", "BOARD_INPUT_RAILS"]
