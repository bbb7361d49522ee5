"""Check that the image's numba kernels load from its cache instead of compiling.

Run inside the marketpulse image as its own user by ``stack_smoke.sh``: warms up
a processor (the same call every command makes before its first batch), then
counts, over every numba function of the package, the signatures loaded from
``NUMBA_CACHE_DIR`` (hits) and those compiled (misses). Exit status 0 when there
were hits and no misses, 1 otherwise (a cache the runtime user cannot use, or
one the build did not fill), with one line of counts either way.
"""

from __future__ import annotations

import os
import sys

from numba.core.registry import CPUDispatcher

from marketpulse.cli.common import processor_settings, rules_from
from marketpulse.config import load_settings
from marketpulse.stream import Processor


def main() -> int:
    """Warm a processor up, then count cache hits and misses."""
    settings = load_settings()
    Processor(processor_settings(settings), rules_from(settings)).warm_up()
    hits = misses = 0
    missed = []
    for name, module in list(sys.modules.items()):
        if not name.startswith("marketpulse"):
            continue
        for value in vars(module).values():
            if isinstance(value, CPUDispatcher) and value.__module__ == name:
                stats = value.stats
                hits += sum(stats.cache_hits.values())
                misses += sum(stats.cache_misses.values())
                if stats.cache_misses:
                    missed.append(f"{name}.{value.__name__}")
    cache = os.environ.get("NUMBA_CACHE_DIR", "(unset)")
    print(f"numba cache {cache}: {hits} loaded, {misses} compiled {' '.join(missed)}".rstrip())
    return 0 if hits and not misses else 1


if __name__ == "__main__":
    sys.exit(main())
