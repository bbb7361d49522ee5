"""The file ``spark-submit`` runs: ``marketpulse spark`` with the submitted arguments.

``spark-submit [spark options] .../marketpulse/spark/submit.py --bootstrap-servers ...
--checkpoint ...`` runs the same command, options and one-line errors as
``marketpulse spark``, in the driver ``spark-submit`` started (its master and
packages; see docs/guides/spark.md).
"""

from __future__ import annotations

import os
import sys

# spark-submit puts this file's folder first on the path, where the modules of this
# package would stand in for top-level ones of the same names: the package's root only
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]


def main() -> None:
    """Run ``marketpulse spark`` with this process's arguments."""
    from marketpulse.cli import main as marketpulse  # noqa: PLC0415 - after the path is set

    sys.argv = ["marketpulse", "spark", *sys.argv[1:]]
    marketpulse()


if __name__ == "__main__":
    main()
