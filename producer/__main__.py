"""`python -m producer`: the same as `txmon-producer`."""

import sys

from producer.cli import main

sys.exit(main())
