"""Host and Origin checks, security headers, quiet refusals, and paths kept to ourselves."""

from __future__ import annotations

import base64
import hashlib
import logging
import re

import pytest
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from marketpulse.config import Secret
from marketpulse.serve import LakeData, LakeMarket, ServeSettings, create_app
from marketpulse.serve.refusals import RefusalLog

from .conftest import BASE_URL, WS_URL

HEADERS = ("content-security-policy", "x-content-type-options", "x-frame-options",
           "referrer-policy")  # fmt: skip


@pytest.fixture(scope="module")
def lake(filled_lake):
    lake = LakeData(filled_lake[0])
    yield lake
    lake.close()


@pytest.fixture(scope="module")
def client(lake):
    """The default dashboard: loopback, no token."""
    with TestClient(create_app(ServeSettings(), lake, LakeMarket(lake)), base_url=BASE_URL) as c:
        yield c


@pytest.fixture
def token_client(lake):
    """A dashboard on every address, with a token."""
    settings = ServeSettings(host="0.0.0.0", token=Secret("s3cret"))
    with TestClient(create_app(settings, lake, LakeMarket(lake)), base_url=BASE_URL) as c:
        yield c


def _snapshot(client, url=WS_URL, **headers):
    with client.websocket_connect(url, headers=headers) as ws:
        return ws.receive_json()["type"]


def _refused_socket(client, url=WS_URL, **headers) -> int:
    with pytest.raises(WebSocketDisconnect) as refused:
        with client.websocket_connect(url, headers=headers) as ws:
            ws.receive_json()
    return refused.value.code


@pytest.mark.parametrize("host", ["localhost:8050", "127.0.0.1:8050", "[::1]:8050",
                                  "LOCALHOST", "localhost.:9999", "127.0.0.1"])  # fmt: skip
def test_loopback_names_are_served_on_any_port(client, host):
    assert client.get("/api/timeframes", headers={"Host": host}).status_code == 200


@pytest.mark.parametrize("host", ["evil.example", "evil.example:8050", "localhost.evil.example",
                                  "127.0.0.1.nip.io:8050", "192.168.1.5:8050"])  # fmt: skip
def test_another_host_name_is_refused_without_a_token(client, host):
    """A page re-pointed at 127.0.0.1 by DNS (rebinding) asks for its own name."""
    for path in ["/api/symbols", "/", "/readyz", "/static/common.js"]:
        response = client.get(path, headers={"Host": host})
        assert response.status_code == 421, path
        assert response.json()["detail"].startswith("host:")
    assert _refused_socket(client, f"ws://{host}/ws") == 1008


def test_with_a_token_any_host_name_is_served(token_client):
    bearer = {"Authorization": "Bearer s3cret"}
    for host in ["dashboard.example:443", "192.168.1.5:8050"]:
        assert (
            token_client.get("/api/timeframes", headers={"Host": host, **bearer}).status_code == 200
        )
        assert token_client.get("/api/timeframes", headers={"Host": host}).status_code == 401


@pytest.mark.parametrize(
    "origin",
    ["http://evil.example", "http://localhost:3000", "null",
     "http://127.0.0.1:8050", "file://", "http://localhost:8050.evil.example"],
)  # fmt: skip
def test_a_websocket_from_another_origin_is_refused(client, origin):
    assert _refused_socket(client, Origin=origin) == 1008


def test_a_websocket_from_the_page_itself_or_no_browser_is_served(client):
    assert _snapshot(client, Origin="http://localhost:8050") == "snapshot"
    assert _snapshot(client, Origin="HTTP://LOCALHOST:8050") == "snapshot"
    assert _snapshot(client) == "snapshot"  # no Origin: not a browser
    served_on_80 = "ws://localhost/ws"
    assert _snapshot(client, served_on_80, Origin="http://localhost") == "snapshot"


def test_a_foreign_origin_is_refused_even_with_the_token(token_client):
    """A browser sends the cookie with a WebSocket opened by any page."""
    page = token_client.get("/?token=s3cret")  # the cookie is set
    assert page.status_code == 200
    assert _refused_socket(token_client, Origin="http://evil.example") == 1008
    assert _snapshot(token_client, Origin="http://localhost:8050") == "snapshot"


def test_every_response_carries_the_security_headers(client, token_client):
    responses = [
        client.get("/"),
        client.get("/symbol"),
        client.get("/api/symbols"),
        client.get("/static/common.js"),
        client.get("/assets/plotly.min.js"),
        client.get("/openapi.json"),
        client.get("/docs"),
        client.get("/nowhere"),
        client.get("/api/bars", params={"symbol": "A B"}),
        client.get("/api/symbols", headers={"Host": "evil.example"}),
        token_client.get("/api/symbols"),
    ]
    assert [r.status_code for r in responses] == [200] * 7 + [404, 422, 421, 401]
    for response in responses:
        for header in HEADERS:
            assert header in response.headers, (response.url, header)
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["referrer-policy"] == "no-referrer"
        policy = _policy(response)
        assert policy["object-src"] == ["'none'"] and policy["frame-ancestors"] == ["'none'"]
        assert "'unsafe-inline'" not in policy["script-src"]
        assert "'unsafe-eval'" not in policy["script-src"]
    page = _policy(responses[0])
    assert page["script-src"] == ["'self'"]
    assert "ws://localhost:8050" in page["connect-src"]


def test_the_docs_page_allows_exactly_its_own_inline_script(client):
    docs = client.get("/docs")
    inline = re.findall(r"<script>(.*?)</script>", docs.text, re.S)
    assert inline  # the page starts Swagger UI inline
    allowed = _policy(docs)["script-src"]
    for script in inline:
        digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
        assert f"'sha256-{digest}'" in allowed
    assert len(allowed) == 1 + len(inline)


def test_readiness_shows_no_path(lake, tmp_path, token_client):
    missing = LakeData(tmp_path / "nowhere")
    with TestClient(
        create_app(ServeSettings(), missing, LakeMarket(missing)), base_url=BASE_URL
    ) as c:
        response = c.get("/readyz")
    assert response.status_code == 503 and response.json()["status"] == "not ready"
    assert str(tmp_path) not in response.text and "nowhere" not in response.text
    ready = token_client.get("/readyz")  # open without the token
    assert ready.status_code == 200
    assert str(lake.root) not in ready.text


@pytest.mark.parametrize(
    ("url", "parameter"),
    [
        ("/api/bars?symbol=AAPL&start=" + "9" * 40, "start"),
        ("/api/bars?symbol=AAPL&end=-" + "9" * 40, "end"),
        ("/api/indicators?symbol=AAPL&start=9223372036854775808", "start"),
        ("/api/alerts?start=" + "1" * 5000, "start"),
        ("/api/alerts?end=9999-12-31", "end"),
        ("/api/bars?symbol=AAPL&start=0001-01-01T00:00:00Z", "start"),
    ],
)
def test_times_beyond_nanoseconds_get_422_naming_the_parameter(client, url, parameter):
    response = client.get(url)
    assert response.status_code == 422
    detail = response.json()["detail"][0]
    assert detail["loc"][-1] == parameter and detail["msg"].startswith(parameter + ":")


def test_the_widest_times_nanoseconds_hold_are_accepted(client):
    params = {"symbol": "AAPL", "start": str(-(2**63)), "end": str(2**63 - 1)}
    assert client.get("/api/bars", params=params).status_code == 200
    assert (
        client.get("/api/alerts", params={"start": "0000000000000000000000001"}).status_code == 200
    )


def test_a_refusal_is_reported_once_a_minute_per_client_and_reason():
    now = [0.0]
    log = RefusalLog(window_s=60, clock=lambda: now[0])
    reported = [log.refused("10.0.0.1", "host", "http /") for _ in range(100)]
    assert reported == [True] + [False] * 99
    assert log.refused("10.0.0.2", "host", "http /")  # another client
    assert log.refused("10.0.0.1", "origin", "websocket /ws")  # another reason
    now[0] = 59.9
    assert not log.refused("10.0.0.1", "host", "http /")
    now[0] = 60.0
    assert log.refused("10.0.0.1", "host", "http /")


def test_a_flood_of_refused_requests_writes_one_warning(lake, caplog):
    settings = ServeSettings(host="0.0.0.0", token=Secret("s3cret"))
    app = create_app(settings, lake, LakeMarket(lake))
    with TestClient(app, base_url=BASE_URL) as c, caplog.at_level(logging.DEBUG):
        statuses = {c.get("/api/symbols").status_code for _ in range(50)}
        for _ in range(20):
            _refused_socket(c, Origin="http://evil.example")
    assert statuses == {401}
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 2  # one per reason: the token, the origin
    assert len([r for r in caplog.records if r.levelno == logging.DEBUG
                and r.name == "marketpulse.serve.refusals"]) == 68  # fmt: skip


def _policy(response) -> dict[str, list[str]]:
    directives = response.headers["content-security-policy"].split(";")
    return {d.split()[0]: d.split()[1:] for d in (d.strip() for d in directives) if d}
