"""The package layering, read from the source: which package may import which.

Every module under ``src/marketpulse`` is parsed (not imported) and each of
its imports collected, those inside functions and under ``TYPE_CHECKING``
included: a lazy import is still a dependency.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

import marketpulse

SRC = Path(marketpulse.__file__).resolve().parent

#: The engine: the lowest packages (and modules), which every runner builds on.
ENGINE = ("models", "config", "calendars", "indicators", "stream", "bus", "alerts")
#: What the engine must not import: the packages built on top of it.
ABOVE_ENGINE = ("sinks", "feeds", "analytics", "runtime", "serve", "cli")


def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imported(source: str, name: str, is_package: bool = False) -> set[str]:
    """The modules that the source of module ``name`` imports, relative imports resolved."""
    package = name if is_package else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(source, name)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            found.add(module)
            # `from marketpulse import feeds` imports the subpackage
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


@cache
def _imports() -> dict[str, set[str]]:
    """Module name -> the ``marketpulse`` modules it imports, for every source file."""
    found = {}
    for path in sorted(SRC.rglob("*.py")):
        name = _module_name(path)
        imported = _imported(path.read_text(), name, path.name == "__init__.py")
        found[name] = {m for m in imported if m.split(".")[0] == "marketpulse"}
    return found


def _in(module: str, package: str) -> bool:
    """Whether ``module`` is ``marketpulse.<package>`` or inside it."""
    full = f"marketpulse.{package}"
    return module == full or module.startswith(full + ".")


def _violations(importers: tuple[str, ...], forbidden: tuple[str, ...]) -> list[str]:
    return sorted(
        f"{module} imports {target}"
        for module, targets in _imports().items()
        if any(_in(module, p) for p in importers)
        for target in targets
        if any(_in(target, p) for p in forbidden)
    )


def test_the_scan_sees_the_imports_of_every_module():
    imports = _imports()
    assert "marketpulse.stream.processor" in imports
    assert "marketpulse.stream.partition" in imports["marketpulse.stream.processor"]
    assert "marketpulse.models" in imports["marketpulse.stream.output"]
    # a lazy import inside a function counts too
    assert any(_in(t, "feeds") for t in imports["marketpulse.cli.feed_options"])
    assert _violations(("cli",), ("stream",))  # the check finds what is there


def test_relative_imports_are_resolved():
    source = "from .partition import PartitionState\nfrom ..feeds import hours\n"
    assert _imported(source, "marketpulse.stream.emit") == {
        "marketpulse.stream.partition",
        "marketpulse.stream.partition.PartitionState",
        "marketpulse.feeds",
        "marketpulse.feeds.hours",
    }
    assert "marketpulse.stream.windows" in _imported(
        "from . import windows", "marketpulse.stream", is_package=True
    )


def test_stream_does_not_import_the_feeds():
    assert _violations(("stream",), ("feeds",)) == []


def test_only_the_cli_imports_the_cli():
    outside = [
        v for v in _violations(tuple(p.name for p in SRC.iterdir()), ("cli",))
        if not _in(v.split()[0], "cli") and v.split()[0] != "marketpulse.__main__"
    ]  # fmt: skip
    assert outside == []


#: The runtime's API (its ``__init__``): the figures, the live view and the glue that
#: fills them, which ``serve`` may read; the rest is the runner's internals.
RUNTIME_API = ("runtime.metrics", "runtime.view", "runtime.outputs")


def _runtime_internals(targets: set[str]) -> list[str]:
    modules = {p.stem for p in (SRC / "runtime").glob("*.py") if p.stem != "__init__"}
    return sorted(
        t for t in targets
        if t.startswith("marketpulse.runtime.") and t.split(".")[2] in modules
        and not any(_in(t, api) for api in RUNTIME_API)
    )  # fmt: skip


def test_serve_imports_the_runtime_api_only():
    # serve shows what a runner observes, whichever runner runs: never the runner itself
    imports = _imports()
    serve = {m: t for m, t in imports.items() if _in(m, "serve")}
    assert any("marketpulse.runtime" in t for t in serve.values())  # it does read the API
    assert {m: _runtime_internals(t) for m, t in serve.items() if _runtime_internals(t)} == {}


def test_the_runtime_api_imports_nothing_built_on_it():
    # the runner and serve build on the API: it stays beside the engine
    api = {m: t for m, t in _imports().items() if any(_in(m, a) for a in RUNTIME_API)}
    assert len(api) == len(RUNTIME_API)
    above = ("sinks", "feeds", "analytics", "serve", "cli")
    assert _violations(RUNTIME_API, above) == []
    assert {m: _runtime_internals(t) for m, t in api.items() if _runtime_internals(t)} == {}


def test_the_engine_imports_nothing_built_on_it():
    assert _violations(ENGINE, ABOVE_ENGINE) == []


def test_the_stream_package_has_no_import_circle():
    stream = {m: t for m, t in _imports().items() if _in(m, "stream")}
    graph = {m: {t for t in targets if t in stream and t != m} for m, targets in stream.items()}
    done: set[str] = set()

    def visit(module: str, path: tuple[str, ...]) -> None:
        if module in path:
            raise AssertionError(" -> ".join([*path[path.index(module) :], module]))
        if module in done:
            return
        for target in sorted(graph[module]):
            visit(target, (*path, module))
        done.add(module)

    for module in sorted(graph):
        visit(module, ())
