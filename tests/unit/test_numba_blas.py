"""numba's BLAS check deferred: a kernel loads without scipy.linalg, and BLAS still works."""

from __future__ import annotations

import subprocess
import sys

#: Loads one of the package's kernels (the PostgreSQL encoder's), then says which
#: modules are imported and what numba believes of BLAS; then compiles kernels that need
#: it (np.dot, and np.correlate, which reads the belief) and checks their results.
PROGRAM = """
import sys
import numpy as np
import numba
from marketpulse.sinks import pgcopy
assert pgcopy._put_null(np.zeros(8, np.uint8), 2) == 6
import numba.np.arraymath as arraymath
print("loaded", "scipy.linalg" in sys.modules, "numpy.f2py" in sys.modules, arraymath._HAVE_BLAS)

@numba.njit
def dot(a, b):
    return np.dot(a, b)

@numba.njit
def correlate(a, b):
    return np.correlate(a, b)

print("dot", dot(np.arange(3.0), np.arange(3.0)), "scipy.linalg" in sys.modules)
print("correlate", correlate(np.arange(3.0), np.ones(2)).tolist())
"""


def _run(program: str) -> list[str]:
    result = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True,
                            timeout=300)  # fmt: skip
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


def test_a_kernel_loads_without_scipy_linalg_and_blas_is_there_when_a_kernel_needs_it():
    loaded, dot, correlate = _run(PROGRAM)
    # loaded, with numba's array functions installed, and neither scipy.linalg nor
    # numpy.f2py (which scipy's array-API layer imports) came with them
    assert loaded == "loaded False False True"
    # np.dot compiled: numba imported BLAS then, and the product is right
    assert dot == "dot 5.0 True"
    # np.correlate compiled on numba's BLAS path (it read the belief set back): the
    # "valid" correlation of [0, 1, 2] with [1, 1]
    assert correlate == "correlate [1.0, 3.0]"


def test_the_deferral_does_nothing_once_numbas_array_functions_are_imported():
    program = """
import sys
import numba.np.arraymath
from marketpulse.numba_blas import defer_blas_check
defer_blas_check()
defer_blas_check()
print(sum(type(f).__name__ == "_Finder" for f in sys.meta_path), "scipy.linalg" in sys.modules)
"""
    # imported before the deferral, scipy.linalg came with it, and no finder was left
    assert _run(program) == ["0 True"]
