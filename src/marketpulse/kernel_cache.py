"""A numba cache locator that keys the package's compiled kernels by package path.

numba's own locator for ``NUMBA_CACHE_DIR`` names each source folder's cache
after the folder's absolute path, so a second checkout of the same sources (a
fresh clone, a CI run in another folder) compiles every kernel again though
the sources are byte for byte the same. numba already checks a source file by
the hash of its content; this locator names the folder by its path inside the
package instead (``marketpulse/stream`` -> ``marketpulse.stream``), so kernels
compiled from equal sources are found wherever the checkout is.

Enable it with ``NUMBA_CACHE_LOCATOR_CLASSES`` beside ``NUMBA_CACHE_DIR``::

    export NUMBA_CACHE_DIR=~/.cache/marketpulse/numba/KEY
    locator=marketpulse.kernel_cache.PackageCacheLocator
    export NUMBA_CACHE_LOCATOR_CLASSES=$locator,UserProvidedCacheLocator

A kernel's callees and constants in other files are not part of numba's check,
by either locator: key ``NUMBA_CACHE_DIR`` by those sources too (CI keys it by
``scripts/kernel_digest.py``). Files outside the package are left to the next
locator in the list.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from numba.core.caching import UserProvidedCacheLocator

#: The package's folder: the kernels' source folders are named relative to its parent.
_PACKAGE = Path(__file__).resolve().parent


class PackageCacheLocator(UserProvidedCacheLocator):
    """``NUMBA_CACHE_DIR``'s locator for the package's files, by their path in the package."""

    @classmethod
    def get_suitable_cache_subpath(cls, py_file: str) -> str:
        """``marketpulse.stream`` for ``.../marketpulse/stream/windows.py``."""
        folder = Path(py_file).resolve().parent.relative_to(_PACKAGE.parent)
        return ".".join(folder.parts)

    @classmethod
    def from_function(cls, py_func: Any, py_file: str) -> PackageCacheLocator | None:
        """This locator for a file of the package; ``None`` (the next locator) otherwise."""
        if not Path(py_file).resolve().is_relative_to(_PACKAGE):
            return None
        locator: PackageCacheLocator | None = super().from_function(py_func, py_file)
        return locator
