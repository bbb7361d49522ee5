"""numba's start-up without scipy's BLAS: its check waits for a kernel that needs BLAS.

The first kernel a process loads, even from the cache, makes numba install its
array functions (``numba.np.arraymath``), and that module asks at import
whether BLAS is there by importing ``scipy.linalg.cython_blas``: all of
``scipy.linalg`` and, through scipy's array-API layer, ``numpy.f2py``. That
took about 0.4 s of every command's start-up here, and no kernel of the package
calls BLAS. :func:`defer_blas_check` lets ``numba.np.arraymath`` import with
that check failing, then sets its answer to whether scipy is installed (it is
with the ``ml`` extra): numba reads it only when it compiles an inner product
(``np.correlate``, ``np.convolve``), and imports BLAS itself then, as it does
for ``np.dot``. Compiled code is the same either way. Without scipy there was
nothing to save, and the answer is numba's own: no BLAS.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import sys
from types import ModuleType

__all__ = ["defer_blas_check"]

_ARRAYMATH = "numba.np.arraymath"
_BLAS = "scipy.linalg.cython_blas"


class _WithoutBlas(importlib.abc.Loader):
    """``numba.np.arraymath``'s own loader, run while ``scipy.linalg.cython_blas`` cannot import."""

    def __init__(self, loader: importlib.abc.Loader) -> None:
        self._loader = loader

    def __getattr__(self, name: str) -> object:  # get_source, get_filename, ...: the loader's own
        return getattr(self._loader, name)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self._loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        if _BLAS in sys.modules:  # imported already: nothing to save
            self._loader.exec_module(module)
            return
        sys.modules[_BLAS] = None  # type: ignore[assignment]  # an import of it raises ImportError
        try:
            self._loader.exec_module(module)
        finally:
            del sys.modules[_BLAS]
        # numba's answer had its check been cheap: scipy (the ml extra's, River's) installed
        vars(module)["_HAVE_BLAS"] = importlib.util.find_spec("scipy") is not None
        sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, _Finder)]  # done


class _Finder(importlib.abc.MetaPathFinder):
    """Finds ``numba.np.arraymath`` as the path finder does, loaded by :class:`_WithoutBlas`."""

    def find_spec(
        self, fullname: str, path: object = None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != _ARRAYMATH:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)  # type: ignore[arg-type]
        if spec is None or spec.loader is None:
            return spec
        spec.loader = _WithoutBlas(spec.loader)
        return spec


def defer_blas_check() -> None:
    """Leave scipy's BLAS unimported until a kernel needs it; call before the first kernel loads.

    Does nothing once ``numba.np.arraymath`` is imported, and nothing a second time.
    """
    if _ARRAYMATH in sys.modules or any(isinstance(f, _Finder) for f in sys.meta_path):
        return
    sys.meta_path.insert(0, _Finder())
