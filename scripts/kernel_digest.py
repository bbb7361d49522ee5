"""Print a digest of the source numba's compiled kernels depend on, to key their cache by.

numba's cache checks only the file that defines a kernel (by its time stamp,
which a fresh clone changes anyway), not the files whose functions or
constants the kernel took in at compile time. CI keeps the compiled kernels
between runs under this digest (``NUMBA_CACHE_DIR``): the modules that import
numba, and the package modules they import, by content. A change elsewhere
(the command line, the dashboard, a docstring of the runtime) keeps the
kernels compiled; a change to a kernel's file or to what it imports compiles
them again.

Usage: ``python3 scripts/kernel_digest.py [SRC]`` (default ``src``), printing
16 hexadecimal digits. Standard library only: it runs before the virtual
environment exists.
"""

from __future__ import annotations

import ast
import hashlib
import sys
from pathlib import Path

PACKAGE = "marketpulse"


def _imports(tree: ast.Module) -> set[str]:
    """Every module name an ``import`` or ``from ... import`` of ``tree`` names."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def _module_file(src: Path, name: str) -> Path | None:
    """The file of package module ``name`` under ``src`` (``None``: not one of the package)."""
    if name != PACKAGE and not name.startswith(PACKAGE + "."):
        return None
    base = src.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def kernel_sources(src: Path) -> list[Path]:
    """The modules that import numba and the package modules they import, sorted."""
    found: set[Path] = set()
    for path in sorted((src / PACKAGE).rglob("*.py")):
        text = path.read_text()
        if "numba" not in text:
            continue
        names = _imports(ast.parse(text, str(path)))
        if any(n == "numba" or n.startswith("numba.") for n in names):
            found.add(path)
            found.update(f for n in names if (f := _module_file(src, n)) is not None)
    return sorted(found)


def digest(src: Path) -> str:
    """16 hexadecimal digits over the paths and contents of :func:`kernel_sources`."""
    sha = hashlib.sha1()
    for path in kernel_sources(src):
        sha.update(path.relative_to(src).as_posix().encode() + b"\0")
        sha.update(path.read_bytes() + b"\0")
    return sha.hexdigest()[:16]


def main(argv: list[str]) -> int:
    """Print the digest of ``argv[1]`` (default ``src``); 2 when it holds no package."""
    src = Path(argv[1]) if len(argv) > 1 else Path("src")
    if not (src / PACKAGE).is_dir():
        print(f"kernel_digest: no {PACKAGE} package under {src}", file=sys.stderr)
        return 2
    print(digest(src))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
