"""`python -m spark_app`: the same as `txmon-spark`."""

import sys

from spark_app.cli import main

sys.exit(main())
