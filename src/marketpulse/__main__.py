"""``python -m marketpulse``."""

from marketpulse.cli import main

main()
