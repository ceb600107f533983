"""`python -m txmon_tui`: the same as `txmon-tui`."""

import sys

from txmon_tui.cli import main

sys.exit(main())
