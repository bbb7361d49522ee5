"""Every code block of the README and the docs site runs as written, or says why it cannot.

The blocks of ``docs/**/*.md`` and ``README.md``, by language:

- ``sql``: through ``marketpulse sql`` on a lake of the Lean day (``lean_lake``).
- ``python``: as a script in a folder whose ``data/lake`` is that lake (where ``make run``
  leaves one).
- ``bash``, ``sh`` and ``console``: a page's blocks run in order, each in a ``bash`` of
  its own, in one working directory per page, as a reader follows the page: the
  repository's files the docs use linked in (:data:`_CHECKOUT`), ``../shared/data``
  beside it, ``trades.csv.gz`` (the Lean day; its first trades for
  :data:`_SHORT_TRADES`), ``rules.yaml`` (the built-in rules and a webhook to a local
  receiver: ``notify`` needs a channel), and for the pages of
  :data:`_FROM_GETTING_STARTED` the lake getting started leaves (the Lean day and a short
  simulator run); ``marketpulse`` is the venv's. A ``bash`` block runs under ``set -eo
  pipefail`` and must exit 0. A command ending ``# error: MESSAGE`` must exit 2 (bad
  usage) printing ``error: MESSAGE`` (up to a ``(...)``). Services started with ``&``
  must still run at the block's end (or have exited 0); they are then stopped with
  SIGTERM and must exit 143 or 130, the documented codes. A block of ``export`` lines
  alone is followed by ``marketpulse config show``, which must accept what they set.
  A ``console`` block runs each ``$`` line exactly as shown: exit code 0, or 2 when its
  output shows an ``error:`` line; each line of the output shown must be a line
  printed, loosely (:func:`_shape`): the same words, numbers free (times, rates and the
  simulator's figures vary by run), and the line shown may stop short of the printed
  one (columns cut).
- ``toml``: accepted by the settings loader (``load_settings``); ``yaml``: by the rules
  loader (``load_rules``) and ``load_notifications``, each ``${NAME}`` set.
- ``text``: output listings (benchmark runs, a log line, the lake's layout): exempt as
  output, not checked here (``bench/`` writes the benchmark and anomaly pages' listings).
  ``mermaid``: the architecture diagram, whose subgraphs must be packages.
- The README's "Five examples" run in order, from the repository's folder.

Stand-ins, so that the commands run on this machine and end: the docs' Kafka address
(``127.0.0.1:9092``, ``localhost:9092``) is the session's broker (``kafka_bootstrap``)
and ``make kafka-up`` does nothing; topic prefixes start with the test's own
(``topic_prefix``; the default one is set as ``MARKETPULSE_KAFKA_TOPIC_PREFIX``), and so
do the consumer groups of ``process``, ``sink`` and ``notify`` (``--group``), as in the
other Kafka tests; a page without Kafka gets an address where nothing listens. The
docs' PostgreSQL and InfluxDB URLs are the test servers'. ``marketpulse run`` and
``produce --feed simulator`` run for 2 s at most (their ``--duration``), ``run``
serving its dashboard on a free port (``--port 0``); ``mkdocs serve`` and ``marketpulse
dashboard`` run on a free port and pass once they say they are serving, then are
stopped (SIGTERM).

A block that cannot run here follows a line ``<!-- not run: REASON -->``; a line
``<!-- file: NAME -->`` before a block saves it as ``NAME`` in its page's working
directory, for the blocks after it. :func:`test_every_block_runs_or_says_why` fails on
any other block, so a new one runs or says why not.
"""

from __future__ import annotations

import gzip
import itertools
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

import pytest

from .conftest import DATA, LEAN_TRADES, ROOT, _load_beside, marketpulse

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

servers = _load_beside("notify_servers")

_SHELL = ("bash", "sh", "console")
_RUN = ("sql", "python", *_SHELL, "toml", "yaml")
_EXEMPT = ("text", "mermaid")
_FENCE = re.compile(r"^(\s*)```(\S*)\s*$")
_MARK = re.compile(r"^\s*<!--\s*(not run|file):\s*(.*?)\s*-->\s*$")


@dataclass(frozen=True)
class Block:
    """A fenced block of a page, and what the comment line before it says."""

    page: Path
    line: int  # of the opening fence, from 1
    lang: str
    text: str
    not_run: str = ""  # the reason of a `<!-- not run: REASON -->` line before it
    file: str = ""  # the name of a `<!-- file: NAME -->` line before it

    @property
    def id(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def _page_blocks(page: Path) -> list[Block]:
    lines = page.read_text().splitlines()
    blocks, i = [], 0
    while i < len(lines):
        fence = _FENCE.match(lines[i])
        if not fence:
            i += 1
            continue
        indent, lang = fence.groups()
        end = next(j for j in range(i + 1, len(lines)) if lines[j].strip() == "```")
        text = "".join(line[len(indent) :] + "\n" for line in lines[i + 1 : end])
        before = next((line for line in reversed(lines[:i]) if line.strip()), "")
        kind, value = mark.groups() if (mark := _MARK.match(before)) else ("", "")
        not_run, file = (value, "") if kind == "not run" else ("", value)
        blocks.append(Block(page, i + 1, lang, text, not_run, file))
        i = end + 1
    return blocks


def _readme_examples() -> range:
    """Lines of the README's "Five examples" (test_readme_examples_run_in_order runs them)."""
    lines = (ROOT / "README.md").read_text().splitlines()
    return range(lines.index("## Five examples"), lines.index("## Documentation"))


BLOCKS = [
    block
    for page in [*sorted((ROOT / "docs").rglob("*.md")), ROOT / "README.md"]
    for block in _page_blocks(page)
    if not (page == ROOT / "README.md" and block.line in _readme_examples())
]


def _params(*langs: str) -> list:
    return [pytest.param(b, id=b.id) for b in BLOCKS if b.lang in langs and not b.not_run]


def test_every_block_runs_or_says_why():
    known = _RUN + _EXEMPT
    unknown = [f"{b.id} ```{b.lang}" for b in BLOCKS if not (b.not_run or b.lang in known)]
    assert not unknown, (
        "blocks this test neither runs nor exempts: give each a language it runs "
        f"({', '.join(_RUN)}; text for output) or a `<!-- not run: REASON -->` line: {unknown}"
    )


@pytest.fixture(scope="module")
def lean_lake(tmp_path_factory):
    lake = tmp_path_factory.mktemp("docs") / "lake"
    result = marketpulse("replay", LEAN_TRADES, "--lake", lake, cwd=lake.parent)
    assert result.returncode == 0, result.stderr
    return lake


@pytest.mark.parametrize("block", _params("sql"))
def test_docs_sql_block_runs(lean_lake, block):
    result = marketpulse("sql", block.text, "--lake", lean_lake, "--format", "json")
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("block", _params("python"))
def test_docs_python_block_runs(lean_lake, tmp_path, block):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "lake").symlink_to(lean_lake)
    result = subprocess.run([sys.executable, "-c", block.text], cwd=tmp_path, capture_output=True,
                            text=True, timeout=300)  # fmt: skip
    assert result.returncode == 0, result.stderr


#: A value for each ``${NAME}`` of a rules file, by the last word of its name.
_PLACEHOLDERS = {"URL": "https://hooks.example.com/marketpulse", "HOST": "smtp.example.com",
                 "PORT": "587", "USER": "alerts@example.com"}  # fmt: skip


@pytest.mark.parametrize("block", _params("toml", "yaml"))
def test_docs_config_block_loads(block, tmp_path):
    from marketpulse.alerts.channels import load_notifications
    from marketpulse.alerts.loading import load_rules
    from marketpulse.config import load_settings

    path = tmp_path / (block.file or f"block.{block.lang}")
    path.write_text(block.text)
    if block.lang == "toml":
        load_settings(path, environ={})
        return
    names = re.findall(r"\$\{(\w+)\}|(?:secret|password)_env:\s*(\w+)", block.text)
    environ = {n: _PLACEHOLDERS.get(n.rsplit("_", 1)[-1], "secret") for p in names for n in p if n}
    assert load_rules(path)
    assert bool(load_notifications(path, environ)) == ("notifiers:" in block.text)


def test_docs_diagram_subgraphs_are_packages():
    subgraphs = [(b.id, name) for b in BLOCKS if b.lang == "mermaid"
                 for name in re.findall(r'subgraph \w+\["(\w+)/', b.text)]  # fmt: skip
    assert subgraphs
    missing = [s for s in subgraphs if not (ROOT / "src" / "marketpulse" / s[1]).is_dir()]
    assert not missing, missing


# --- bash, sh and console blocks --------------------------------------------------------

#: Entries of the repository a page's working directory links to (what the docs use).
_CHECKOUT = (".venv", "Makefile", "pyproject.toml", "mkdocs.yml", "docs", "scripts", "src",
             "examples")  # fmt: skip
#: Pages that start where getting started ends: its lake (the Lean day, the simulator's).
_FROM_GETTING_STARTED = ("docs/guides/sql.md",)
_SHORT = 2.0  # seconds: the longest a `run` or the simulator's `produce` runs here
_DOCS_POSTGRES = "postgresql://app:secret@db:5432/market"
_DOCS_INFLUX = "http://influx:8086/market"
_NOWHERE = "127.0.0.1:1"  # a Kafka address where nothing listens
#: Servers that run until stopped, and the option that puts them on a free port.
_SERVERS = {r"\S*mkdocs serve": "--dev-addr 127.0.0.1:{}", "marketpulse dashboard": "--port {}"}
_KAFKA = re.compile(r"\bmarketpulse (?:topics|process|sink|produce|notify)\b|--kafka\b|:9092\b")
_WEBHOOK_RULES = """notifiers:
  hook: {{type: webhook, url: "{url}/hook"}}
routes: {{info: [hook], warning: [hook], critical: [hook]}}
"""

# `set -x` with times: a failure's output shows which command ran when
_PRELUDE = r"""set -eo pipefail
PS4='+ $(date +%T.%N) '
set -x
_services=()
_fails() {  # _fails MESSAGE COMMAND...: COMMAND must exit 2, printing `error: MESSAGE`
    local message=$1 code=0 err
    shift
    err=$("$@" 2>&1 >/dev/null) || code=$?
    printf '%s\n' "$err" >&2
    [[ $code == 2 ]] || { echo "exit code $code, not 2: $*" >&2; return 1; }
    [[ $err == *"error: $message"* ]] || { echo "no 'error: $message': $*" >&2; return 1; }
}
_serves() {  # _serves COMMAND...: a server: passes once it says it serves, then stops it
    local log pid _
    log=$(mktemp ../serve-XXXXXX.log)
    "$@" >"$log" 2>&1 &
    pid=$!
    for _ in $(seq 1200); do
        if grep -qiE "serving (on|at) http" "$log"; then kill $pid; wait $pid || true; return 0; fi
        if ! kill -0 $pid 2>/dev/null; then cat "$log" >&2; echo "stopped: $*" >&2; return 1; fi
        sleep 0.1
    done
    kill $pid; cat "$log" >&2; echo "not serving after 120 s: $*" >&2; return 1
}
"""

_EPILOGUE = r"""
for pid in "${_services[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
for pid in "${_services[@]}"; do
    code=0
    wait "$pid" || code=$?
    case $code in 0|130|143) ;; *) echo "a service (pid $pid) exited $code" >&2; exit 1 ;; esac
done
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _without_comments(text: str) -> str:
    return re.sub(r"(?:^|\s)#.*", "", text)


def _short(match: re.Match) -> str:
    """``marketpulse run`` or the simulator's ``produce``, for :data:`_SHORT` seconds at most."""
    head, rest = match.groups()
    if "--duration" in rest:
        rest = re.sub(r"--duration (\S+)", lambda m: f"--duration {min(float(m[1]), _SHORT):g}",
                      rest)  # fmt: skip
    else:
        head += f" --duration {_SHORT:g}"
    if head.split()[1] == "run" and "--no-dashboard" not in rest:
        head += " --port 0"
    return head + rest


def _expect_error(match: re.Match) -> str:
    message = match["message"].split(" (...)")[0]
    return f"{match['indent']}_fails {shlex.quote(message)} {match['command']}"


def _as_run_here(text: str, stand_ins: dict[str, str], prefix: str) -> str:
    """A bash block as it runs here: the module docstring's stand-ins and checks."""
    for docs, here in stand_ins.items():
        text = text.replace(docs, here)
    text = re.sub(r"^([ \t]*marketpulse (process|sink \w+|notify))\b(?![^#\n]*--group)",
                  lambda m: f"{m[1]} --group {prefix}{m[2].replace(' ', '-')}", text,
                  flags=re.M)  # fmt: skip
    text = re.sub(r"^([ \t]*)make kafka-up\b", r"\1:", text, flags=re.M)  # the session's broker
    text = re.sub(r"^([ \t]*marketpulse (?:run|produce --feed simulator))\b([^#\n]*)", _short,
                  text, flags=re.M)  # fmt: skip
    for server, option in _SERVERS.items():
        on_a_free_port = option.format(_free_port())
        text = re.sub(rf"^([ \t]*)({server})\b", rf"\1_serves \2 {on_a_free_port}", text,
                      flags=re.M)  # fmt: skip
    text = re.sub(r"^(?P<indent>[ \t]*)(?P<command>[^#\n]*?)[ \t]*# error: (?P<message>.*)$",
                  _expect_error, text, flags=re.M)  # fmt: skip
    text = re.sub(r"^([^#\n]*\S)[ \t]*&(?=[ \t]*(?:#.*)?$)", r"\1 & _services+=($!)", text,
                  flags=re.M)  # fmt: skip
    commands = [line for line in _without_comments(text).splitlines() if line.strip()]
    if commands and all(line.startswith("export ") for line in commands):
        text += "marketpulse config show >/dev/null\n"
    return _PRELUDE + text + _EPILOGUE


def _bash(script: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    """Run ``script`` (output and errors in one log, kept beside ``cwd``), then what it left."""
    fd, log = tempfile.mkstemp(suffix=".log", dir=cwd.parent)
    with os.fdopen(fd, "w") as out:
        proc = subprocess.Popen(["bash", "-c", script], cwd=cwd, env=env, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
        try:
            proc.wait(timeout=300)
        finally:  # a failed block leaves its services running: end its process group
            with suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return subprocess.CompletedProcess(script, proc.returncode, Path(log).read_text())


_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")


def _shape(line: str) -> list[str]:
    """The words of an output line, each number as ``#``, each rule of dashes as ``-``."""
    return ["-" if set(word) == {"-"} else word for word in _NUMBER.sub("#", line).split()]


def _starts(words: list[str], prefix: list[str]) -> bool:
    return words[: len(prefix)] == prefix


def _console_commands(text: str) -> list[tuple[str, list[str]]]:
    """The ``$`` lines of a console block, each with the output shown after it."""
    commands: list[tuple[str, list[str]]] = []
    for line in text.splitlines():
        if line.startswith("$ "):
            commands.append((line[2:], []))
        elif line.strip():
            commands[-1][1].append(line)
    return commands


def _run_console(block: Block, cwd: Path, env: dict[str, str]) -> None:
    for command, shown in _console_commands(block.text):
        result = _bash(command, cwd, env)
        said = f"{block.id}: $ {command}\n{result.stdout[-4000:]}"
        expected = 2 if any(line.startswith("error:") for line in shown) else 0
        assert result.returncode == expected, said
        printed = [_shape(line) for line in result.stdout.splitlines()]
        unseen = [line for line in shown if not any(_starts(p, _shape(line)) for p in printed)]
        assert not unseen, f"not printed: {unseen}\n{said}"


#: Pages whose ``trades.csv.gz`` is the Lean day's first N trades (and the header), not the
#: whole day: the Spark page's job read the day in two micro-batches, 150 s of a busy CI
#: machine's two cores, where the page's commands show the same with the pre-market.
_SHORT_TRADES = {"docs/guides/spark.md": 40_000}


def _working_directory(tmp_path: Path, page: Path, lean_lake: Path, webhook: str) -> Path:
    """The page's folder: the checkout's files, ``../shared/data`` and the files named."""
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared" / "data").symlink_to(DATA)
    home = tmp_path / "marketpulse"
    home.mkdir()
    for name in _CHECKOUT:
        (home / name).symlink_to(ROOT / name)
    trades = home / "trades.csv.gz"
    if str(page.relative_to(ROOT)) in _SHORT_TRADES:
        with gzip.open(LEAN_TRADES, "rt") as day, gzip.open(trades, "wt") as short:
            short.writelines(itertools.islice(day, _SHORT_TRADES[str(page.relative_to(ROOT))] + 1))
    else:
        trades.symlink_to(LEAN_TRADES)
    rules = ROOT / "src" / "marketpulse" / "alerts" / "default_rules.yaml"
    (home / "rules.yaml").write_text(rules.read_text() + _WEBHOOK_RULES.format(url=webhook))
    if str(page.relative_to(ROOT)) in _FROM_GETTING_STARTED:
        shutil.copytree(lean_lake, home / "data" / "lake")
        made = marketpulse("run", "--duration", "1", "--no-dashboard", cwd=home)
        assert made.returncode == 0, made.stderr
    return home


_SHELL_PAGES = sorted({b.page for b in BLOCKS if b.lang in _SHELL and not b.not_run})


@pytest.mark.parametrize("page", _SHELL_PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_docs_shell_blocks_run(page, request, tmp_path, lean_lake, topic_prefix):
    blocks = [b for b in BLOCKS
              if b.page == page and not b.not_run and (b.lang in _SHELL or b.file)]  # fmt: skip
    commands = _without_comments("".join(b.text for b in blocks if b.lang in ("bash", "sh")))
    kafka = request.getfixturevalue("kafka_bootstrap") if _KAFKA.search(commands) else _NOWHERE
    stand_ins = {"127.0.0.1:9092": kafka, "localhost:9092": kafka,
                 "--topic-prefix ": f"--topic-prefix {topic_prefix}"}  # fmt: skip
    if _DOCS_POSTGRES in commands:
        stand_ins[_DOCS_POSTGRES] = request.getfixturevalue("postgres_url")
    if _DOCS_INFLUX in commands:
        stand_ins[_DOCS_INFLUX] = request.getfixturevalue("influx_url")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MARKETPULSE_")}
    env.update(PATH=f"{ROOT / '.venv' / 'bin'}{os.pathsep}{env['PATH']}", PYTHONUNBUFFERED="1",
               MARKETPULSE_KAFKA_BOOTSTRAP=kafka,
               MARKETPULSE_KAFKA_TOPIC_PREFIX=f"{topic_prefix}marketpulse.")  # fmt: skip
    receiver = servers.HttpReceiver()
    web = servers.start_http(receiver)
    try:
        home = _working_directory(tmp_path, page, lean_lake, receiver.url)
        for block in blocks:
            if block.file:
                (home / block.file).write_text(block.text)
            if block.lang == "console":
                _run_console(block, home, env)
            elif block.lang in ("bash", "sh"):
                script = _as_run_here(block.text, stand_ins, topic_prefix)
                result = _bash(script, home, env)
                # the error lines of the whole output first: a service that stopped early said
                # why long before the tail
                said = "\n".join(line for line in result.stdout.splitlines()
                                 if not line.startswith("+")  # the trace of the commands
                                 and ("error:" in line or " ERROR " in line))  # fmt: skip
                assert result.returncode == 0, (
                    f"{block.id}:\n{script}\nerrors:\n{said}\n...\n{result.stdout[-6000:]}"
                )
    finally:
        web.shutdown()


# --- the README's five examples ----------------------------------------------------------


def _readme_example_commands() -> list[list[str]]:
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## Five examples") : text.index("## Documentation")]
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", section, re.S):
        lines = [line.strip() for line in block.splitlines()]
        commands += [shlex.split(line) for line in " ".join(lines).split("marketpulse ")[1:]]
    return commands


def test_readme_examples_run_in_order(tmp_path):
    commands = _readme_example_commands()
    assert len(commands) >= 5
    env = {
        "MARKETPULSE_LAKE": str(tmp_path / "lake"),
        "MARKETPULSE_ALERTS_FILE": str(tmp_path / "alerts.jsonl"),
    }
    # `make run` first, as the README says: the lake then holds the simulator's dataset too
    first = marketpulse("run", "--duration", "2", "--no-dashboard", cwd=ROOT, env=env)
    assert first.returncode == 0, first.stderr
    for args in commands:
        result = marketpulse(*args, cwd=ROOT, env=env)
        assert result.returncode == 0, f"marketpulse {shlex.join(args)}: {result.stderr}"
