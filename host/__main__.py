"""``python -m edgemoe.host run PKG ...`` (what run.sh uses when edgemoe-host is not installed)."""
import sys

from .cli import main

sys.exit(main())
