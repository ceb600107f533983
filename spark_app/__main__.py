"""`python -m spark_app`, the same as `txmon-spark`; also the file spark-submit runs:

    spark-submit --jars "$(txmon-spark --print-jars)" spark_app/__main__.py -b HOST:PORT
"""

import sys
from pathlib import Path

if not __package__:
    # Run as a file (spark-submit spark_app/__main__.py): make the repository root importable.
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from spark_app.cli import main  # noqa: E402

sys.exit(main())
