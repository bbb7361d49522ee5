"""`marketpulse news` as users run it: headlines from a file into the lake, the databases and
the news topic, scored as they arrive, each stored once; bad uses in one line."""

import json
import sys

import pytest

from marketpulse.bus.topics import Topics, topic_specs

from .conftest import marketpulse
from .db_fixtures import influx_query, primary_key
from .kafka_tools import bus_for, create_topics, read_committed

pytestmark = pytest.mark.integration

HEADLINES = """\
symbol,ts,headline,source,url
AAPL,2013-10-07T13:45:00Z,Apple shares rise on strong iPhone demand,Reuters,https://example.com/1
"AAPL,MSFT",2013-10-07T14:02:10Z,Microsoft and Apple announce record profit,,
MSFT,not a time,Microsoft falls,,
GOOG,2013-10-07T15:00:00Z,,,
GOOG,2013-10-07T15:30:00Z,Google faces lawsuit over privacy failures,,
SPY,2013-10-07T16:00:00Z,Markets open on Tuesday,,
"""


@pytest.fixture
def headlines(tmp_path):
    path = tmp_path / "headlines.csv"
    path.write_text(HEADLINES)
    return path


def _news(sql, lake):
    return sql(lake, "SELECT symbol, id, epoch_ns(ts) AS ts, headline, source, sentiment, dataset"
                     " FROM news ORDER BY ts, symbol")  # fmt: skip


def test_a_file_of_headlines_is_scored_into_the_lake_once(cli, sql, tmp_path, headlines):
    lake = tmp_path / "lake"
    out = cli("news", "--file", headlines, "--lake", lake, "--dataset", "lean")
    assert "news: 5 headlines (3 positive, 1 negative, 1 neutral)" in out.stdout
    assert "0 seen before, 2 unreadable to dlq" in out.stdout
    rows = _news(sql, lake)
    assert [(r["symbol"], r["headline"][:20]) for r in rows] == [
        ("AAPL", "Apple shares rise on"), ("AAPL", "Microsoft and Apple "),
        ("MSFT", "Microsoft and Apple "), ("GOOG", "Google faces lawsuit"),
        ("SPY", "Markets open on Tues"),
    ]  # fmt: skip
    assert rows[1]["id"] == rows[2]["id"]  # one article about two symbols
    assert rows[0]["source"] == "Reuters" and rows[0]["ts"] == 1381153500 * 10**9
    assert {r["dataset"] for r in rows} == {"lean"}
    signs = [(r["sentiment"] > 0.05) - (r["sentiment"] < -0.05) for r in rows]
    assert signs == [1, 1, 1, -1, 0]
    dead = sql(lake, "SELECT reason, source_file, source_line, error FROM dlq ORDER BY source_line")
    assert [(d["source_line"], d["reason"]) for d in dead] == [(4, "schema"), (5, "schema")]
    assert dead[0]["source_file"] == str(headlines) and "field ts" in dead[0]["error"]

    again = cli("news", "--file", headlines, "--lake", lake, "--dataset", "lean")
    assert "news: 0 headlines" in again.stdout
    assert "7 seen before, 0 unreadable to dlq" in again.stdout  # 5 headlines, 2 bad rows
    assert _news(sql, lake) == rows
    assert sql(lake, "SELECT count(*) AS n FROM dlq") == [{"n": 2}]
    # another dataset is another set of keys
    cli("news", "--file", headlines, "--lake", lake)
    assert {r["dataset"] for r in sql(lake, "SELECT DISTINCT dataset FROM news")} == {
        "lean", "headlines"}  # fmt: skip


USER_SCORERS = """
def constant(headlines):
    return [0.25] * len(headlines)

def breaks_on_the_second_batch(headlines):
    if any("second" in h for h in headlines):
        raise RuntimeError("model file missing")
    return [0.0] * len(headlines)
"""


def test_a_users_scorer_replaces_vader_and_a_failing_one_stops_after_storing(
    cli, sql, tmp_path, headlines
):
    (tmp_path / "my_scorers.py").write_text(USER_SCORERS)
    lake = tmp_path / "lake"
    cli("news", "--file", headlines, "--lake", lake, "--scorer", "my_scorers:constant")
    assert {r["sentiment"] for r in _news(sql, lake)} == {0.25}
    sys.modules.pop("my_scorers", None)

    # 10,000 rows a batch: the first batch is stored before the scorer fails on the second
    many = tmp_path / "many.csv"
    rows = [f"AAPL,{1381153500 + i},first batch headline {i}" for i in range(10_000)]
    rows += [f"AAPL,{1381163500 + i},second batch headline {i}" for i in range(10)]
    many.write_text("symbol,ts,headline\n" + "\n".join(rows) + "\n")
    out = cli("news", "--file", many, "--lake", lake, "--dataset", "many",
              "--scorer", "my_scorers:breaks_on_the_second_batch", ok=False)  # fmt: skip
    sys.modules.pop("my_scorers", None)
    assert out.returncode == 1, out.stderr
    error = out.stderr.strip().splitlines()[-1]
    assert error == "error: news: scorer failed: RuntimeError: model file missing"
    assert "Traceback" not in out.stderr
    stored = sql(lake, "SELECT count(*) AS n, max(headline) AS last FROM news"
                       " WHERE dataset = 'many'")  # fmt: skip
    assert stored == [{"n": 10_000, "last": "first batch headline 9999"}]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "news: give one source, --feed finnhub|polygon|alpaca or --file FILE"),
        (("--feed", "finnhub", "--file", "{file}"), "give one source"),
        (("--file", "{file}", "--since", "2013-10-07"),
         "news: --since applies to --feed, not --file"),
        (("--file", "{file}", "--tickers", "AAPL", "--every", "5"),
         "news: --tickers, --every apply to --feed, not --file"),
        (("--file", "{missing}"), "news file {missing}: no such file"),
        (("--file", "{file}", "--scorer", "nowhere:score"),
         "scorer 'nowhere:score': no module named 'nowhere'"),
        (("--feed", "finnhub"), "news: --feed finnhub needs --tickers (AAPL,MSFT) or --watchlist"),
        (("--feed", "alpaca", "--tickers", "AAPL", "--every", "5"),
         "--every applies to the polled vendors (finnhub, polygon), not alpaca's stream"),
        (("--feed", "polygon", "--tickers", "AAPL", "--since", "yesterday"),
         "--since: expected a date YYYY-MM-DD, got 'yesterday'"),
        (("--feed", "reuters", "--tickers", "AAPL"),
         "expected one of finnhub, polygon, alpaca, got 'reuters'"),
        (("--file", "{file}", "--kafka", "--sink", "lake"), "give one or the other"),
        (("--file", "{file}", "--dataset", "no spaces"), "--dataset: 'no spaces' is not a dataset"),
        (("--feed", "finnhub", "--tickers", "AAPL"), "MARKETPULSE_FINNHUB_KEY"),
    ],
)  # fmt: skip
def test_a_bad_use_is_one_line_and_exit_2(cli, tmp_path, headlines, args, message):
    missing = tmp_path / "missing.csv"
    values = [a.format(file=headlines, missing=missing) for a in args]
    out = cli("news", *values, "--lake", tmp_path / "lake", ok=False)
    assert out.returncode == 2, out.stdout + out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), out.stderr
    assert message.format(missing=missing) in lines[0]
    assert not (tmp_path / "lake" / "news").exists()


def test_headlines_into_postgres_and_influx_keyed_once(tmp_path, headlines, postgres_url,
                                                       influx_url, influx_base_url):  # fmt: skip
    import psycopg

    for _ in range(2):  # a rerun upserts the same keys
        out = marketpulse("news", "--file", headlines, "--sink", "postgres", "--sink", "influx",
                          "--postgres-url", postgres_url, "--influx-url", influx_url,
                          "--dataset", "lean", cwd=tmp_path)  # fmt: skip
        assert out.returncode == 0, out.stderr
    with psycopg.connect(postgres_url) as conn:
        key = primary_key(conn, "news")
        got = conn.execute("SELECT symbol, (extract(epoch FROM ts))::bigint, headline, dataset,"
                           " sentiment > 0 FROM news ORDER BY ts, symbol").fetchall()  # fmt: skip
    assert key == "symbol,ts,id,dataset"
    assert [row[:2] for row in got] == [("AAPL", 1381153500), ("AAPL", 1381154530),
                                        ("MSFT", 1381154530), ("GOOG", 1381159800),
                                        ("SPY", 1381161600)]  # fmt: skip
    assert [row[4] for row in got] == [True, True, True, False, False]
    database = influx_url.rsplit("/", 1)[1]
    points = [
        dict(zip(series["columns"], values, strict=True)) | series["tags"]
        for series in influx_query(influx_base_url, database, "SELECT * FROM news GROUP BY *")
        for values in series["values"]
    ]
    assert sorted((p["symbol"], p["headline"]) for p in points) == sorted(
        (row[0], row[2]) for row in got)  # fmt: skip
    assert {p["dataset"] for p in points} == {"lean"}


def test_headlines_on_kafka_are_stored_by_the_lake_sink(kafka_bootstrap, topic_prefix, tmp_path,
                                                        headlines, sql):  # fmt: skip
    create_topics(kafka_bootstrap, topic_prefix, partitions=3)
    common = ("--bootstrap-servers", kafka_bootstrap, "--topic-prefix", topic_prefix)
    out = marketpulse("news", "--file", headlines, "--kafka", *common, "--dataset", "lean",
                      cwd=tmp_path)  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "news: 5 headlines" in out.stdout
    records = [r for part in read_committed(kafka_bootstrap, f"{topic_prefix}news").values()
               for r in part]  # fmt: skip
    assert sorted(key.decode() for key, _, _ in records) == ["AAPL", "AAPL", "GOOG", "MSFT", "SPY"]
    values = [json.loads(value) for _, value, _ in records]
    assert {v["dataset"] for v in values} == {"lean"}
    assert all(-1 <= v["sentiment"] <= 1 for v in values)
    dead = [r for part in read_committed(kafka_bootstrap, f"{topic_prefix}dlq").values()
            for r in part]  # fmt: skip
    assert len(dead) == 2
    lake = tmp_path / "lake"
    sink = marketpulse("sink", "lake", *common, "--lake", lake, "--exit-when-idle", "3",
                       cwd=tmp_path)  # fmt: skip
    assert sink.returncode == 0, sink.stderr
    stored = sql(lake, "SELECT symbol, headline, sentiment, dataset FROM news ORDER BY ts, symbol")
    assert [(r["symbol"], r["dataset"]) for r in stored] == [
        ("AAPL", "lean"),
        ("AAPL", "lean"),
        ("MSFT", "lean"),
        ("GOOG", "lean"),
        ("SPY", "lean"),
    ]
    assert sorted(r["sentiment"] for r in stored) == sorted(v["sentiment"] for v in values)


def test_the_news_topic_passes_by_the_process_service(kafka_bootstrap, topic_prefix, tmp_path,
                                                      headlines):  # fmt: skip
    """Headlines change no bar: the process service neither reads nor writes the news topic, so
    a news topic with fewer partitions than ticks (outputs must have as many) does not stop it."""
    bus, topics = bus_for(kafka_bootstrap), Topics(topic_prefix)
    for spec in topic_specs(topics):
        partitions = 1 if spec.name == topics.name("news") else 2
        bus.create_topics([spec.name], partitions, 1, {spec.name: spec.config})
    common = ("--bootstrap-servers", kafka_bootstrap, "--topic-prefix", topic_prefix)
    assert marketpulse("news", "--file", headlines, "--kafka", *common,
                       cwd=tmp_path).returncode == 0  # fmt: skip
    out = marketpulse("process", *common, "--exit-when-idle", "2", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert sum(len(p) for p in read_committed(kafka_bootstrap, topics.name("news")).values()) == 5


def test_help_names_the_sources_and_the_scorer():
    out = marketpulse("news", "--help")
    assert out.returncode == 0, out.stderr
    for text in ("--feed", "--file", "--scorer", "--kafka", "--since", "vader"):
        assert text in out.stdout


class FinnhubNews:
    """Finnhub's company-news endpoint on 127.0.0.1: two articles about AAPL, one of them
    about MSFT too, one unreadable, and a 429 on the first request (the feed waits it out)."""

    def __init__(self):
        self.requests = []

    def __enter__(self):
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
        from urllib.parse import parse_qs, urlsplit

        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's name
                url = urlsplit(self.path)
                query = {k: v[0] for k, v in parse_qs(url.query).items()}
                server.requests.append((url.path, query, self.headers.get("X-Finnhub-Token")))
                if len(server.requests) == 1:
                    self._send(429, b"{}", {"Retry-After": "1"})
                    return
                symbol = query.get("symbol")
                items = [
                    {
                        "id": 1,
                        "datetime": 1381153500,
                        "headline": "Apple shares rise",
                        "related": "AAPL",
                        "source": "Wire",
                        "url": "https://example.com/1",
                    },
                    {
                        "id": 2,
                        "datetime": 1381154530,
                        "headline": "Apple and Microsoft announce record profit",
                        "related": "AAPL,MSFT",
                        "source": "Wire",
                    },
                    {"id": 3, "datetime": "soon", "headline": "Unreadable", "related": symbol},
                ]
                body = json.dumps([i for i in items if symbol in str(i["related"])]).encode()
                self._send(200, body, {"Content-Type": "application/json"})

            def _send(self, status, body, headers):
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self._http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._http.server_address[1]}"
        threading.Thread(target=self._http.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self._http.shutdown()
        self._http.server_close()


def test_a_vendors_news_through_the_command(tmp_path, sql):
    key = "k3y-never-printed"
    lake = tmp_path / "lake"
    with FinnhubNews() as vendor:
        out = marketpulse("news", "--feed", "finnhub", "--url", vendor.url, "--tickers",
                          "AAPL,MSFT", "--since", "2013-10-07", "--duration", "6", "--lake", lake,
                          cwd=tmp_path, env={"MARKETPULSE_FINNHUB_KEY": key})  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "rate limit hit" in out.stderr  # the 429 happened, and was waited out
    assert {q["symbol"] for path, q, _ in vendor.requests[1:]} == {"AAPL", "MSFT"}
    assert {path for path, _, _ in vendor.requests} == {"/company-news"}
    assert {token for _, _, token in vendor.requests} == {key}
    assert key not in out.stdout + out.stderr
    rows = sql(lake, "SELECT id, symbol, epoch_ns(ts) AS ts, headline, dataset, sentiment"
                     " FROM news ORDER BY ts, symbol")  # fmt: skip
    assert [(r["id"], r["symbol"], r["ts"]) for r in rows] == [
        ("finnhub:1", "AAPL", 1381153500 * 10**9),
        ("finnhub:2", "AAPL", 1381154530 * 10**9),
        ("finnhub:2", "MSFT", 1381154530 * 10**9),
    ]
    assert {r["dataset"] for r in rows} == {"finnhub"}
    assert rows[1]["sentiment"] > 0.05
    dead = sql(lake, "SELECT reason, error FROM dlq")
    assert len(dead) == 2 and all("finnhub" in d["error"] for d in dead)  # once a symbol
