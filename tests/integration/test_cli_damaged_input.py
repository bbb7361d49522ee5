"""A damaged replay file: the good rows land, one line names the damage, exit code 1."""

import zlib

import pytest

from .conftest import LEAN_TRADES

pytestmark = pytest.mark.integration


def test_replay_of_a_truncated_gzip(cli, sql, tmp_path):
    cut = LEAN_TRADES.read_bytes()[:300_000]
    path = tmp_path / "cut.csv.gz"
    path.write_bytes(cut)
    inflate = zlib.decompressobj(31)
    text = inflate.decompress(cut)
    assert not inflate.eof  # really truncated
    rows = text[: text.rfind(b"\n") + 1].count(b"\n") - 1  # complete data rows zlib can read
    lake = tmp_path / "lake"
    result = cli("replay", path, "--lake", lake, "--include-suspicious", ok=False)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr + result.stdout
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors == result.stderr.strip().splitlines()[-1:]
    assert str(path) in errors[0] and "300,000" in errors[0] and f"{rows + 1:,}" in errors[0]
    [[stored]] = [list(r.values()) for r in sql(lake, "SELECT count(*) AS n FROM trades")]
    assert stored == rows
    dead = sql(lake, "SELECT reason, line FROM dlq")
    assert dead == [{"reason": "truncated", "line": rows + 2}]
