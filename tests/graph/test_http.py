"""The dispatcher's HTTP client: the same answers and errors GraphClient gets from requests, on a
real server (the fake Graph API on loopback), and the environment read once."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
import requests

from bot.graph import payloads
from bot.graph.client import GraphClient
from bot.graph.errors import GraphError, GraphTransportError, Outcome, classify
from bot.graph.http import PooledHTTP
from tests.fake_graph import FakeGraph

TOKEN = "test"
PHONE_ID = "106540352242922"
TO = "4915550000001"


@pytest.fixture
def fake() -> Iterator[FakeGraph]:
    with FakeGraph(tokens={TOKEN}) as server:
        yield server


def client(fake: FakeGraph, timeout: tuple[float, float] = (3.05, 30.0)) -> GraphClient:
    http = PooledHTTP(fake.base_url, pool_size=4)
    return GraphClient(http, access_token=TOKEN, base_url=fake.base_url, timeout=timeout)


def test_a_send_posts_the_json_body_with_the_token_and_returns_the_wamid(fake: FakeGraph) -> None:
    wamid = client(fake).send(PHONE_ID, payloads.text_payload(TO, "Grüße ✓"))

    [received] = fake.snapshot()
    assert received.wamid == wamid and wamid.startswith("wamid.")
    assert received.token == TOKEN and received.phone_number_id == PHONE_ID
    assert received.payload == payloads.text_payload(TO, "Grüße ✓")


def test_connections_are_kept_for_the_next_sends(fake: FakeGraph) -> None:
    http = PooledHTTP(fake.base_url, pool_size=4)
    graph = GraphClient(http, access_token=TOKEN, base_url=fake.base_url)
    for n in range(5):
        graph.send(PHONE_ID, payloads.text_payload(TO, f"m{n}"))
    [pool] = http._pools.pools._container.values()  # type: ignore[attr-defined]
    assert pool.num_connections == 1  # one thread, one connection, reused
    assert len(fake.deliveries()) == 5


def test_metas_refusal_is_read_as_from_requests(fake: FakeGraph) -> None:
    fake.force(TO, 131056)
    with pytest.raises(GraphError) as refused:
        client(fake).send(PHONE_ID, payloads.text_payload(TO, "hi"))
    assert refused.value.code == 131056 and refused.value.http_status == 400
    assert classify(refused.value) is Outcome.RETRY


def test_a_rejected_token_pauses(fake: FakeGraph) -> None:
    fake.expire_token(TOKEN)
    with pytest.raises(GraphError) as refused:
        client(fake).send(PHONE_ID, payloads.text_payload(TO, "hi"))
    assert refused.value.http_status == 401 and classify(refused.value) is Outcome.PAUSE


def test_no_answer_within_the_read_timeout_is_a_transport_error(fake: FakeGraph) -> None:
    fake.hang(TO)
    with pytest.raises(GraphTransportError, match="ReadTimeout"):
        client(fake, timeout=(3.05, 0.2)).send(PHONE_ID, payloads.text_payload(TO, "hi"))
    assert fake.deliveries() == []


def test_a_refused_connection_is_a_transport_error() -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]  # closed again before the send: nothing listens
    base = f"http://127.0.0.1:{port}/v23.0"
    graph = GraphClient(PooledHTTP(base, pool_size=1), access_token=TOKEN, base_url=base)
    with pytest.raises(GraphTransportError, match="ConnectionError"):
        graph.send(PHONE_ID, payloads.text_payload(TO, "hi"))


def test_a_malformed_url_is_a_configuration_fault_not_a_transport_one() -> None:
    http = PooledHTTP("http://127.0.0.1:1/v23.0", pool_size=1)
    graph = GraphClient(http, access_token=TOKEN, base_url="http://[not-a-host/v23.0")
    with pytest.raises(GraphError) as refused:
        graph.send(PHONE_ID, payloads.text_payload(TO, "hi"))
    assert not isinstance(refused.value, GraphTransportError)  # never retried
    assert isinstance(refused.value.__cause__, requests.exceptions.InvalidURL)


def test_the_proxy_and_ca_bundle_are_taken_from_the_environment_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://user:p%40ss@proxy.internal:3128")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/company/ca.pem")

    http = PooledHTTP("https://graph.facebook.com/v23.0", pool_size=8)
    monkeypatch.setenv("HTTPS_PROXY", "http://changed.internal:3128")

    assert http.proxy == "http://user:p%40ss@proxy.internal:3128"
    pools = http._pools
    assert (pools.proxy.host, pools.proxy.port) == ("proxy.internal", 3128)  # type: ignore[attr-defined]
    assert pools.proxy_headers["proxy-authorization"].startswith("Basic ")  # type: ignore[attr-defined]
    assert pools.connection_pool_kw["ca_certs"] == "/etc/company/ca.pem"
    assert pools.connection_pool_kw["cert_reqs"] == "CERT_REQUIRED"
    assert pools.connection_pool_kw["maxsize"] == 8


def test_a_host_in_no_proxy_is_reached_directly_and_verified_with_certifi(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import certifi

    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    monkeypatch.setenv("NO_PROXY", "graph.facebook.com")
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)

    http = PooledHTTP("https://graph.facebook.com/v23.0", pool_size=8)

    assert http.proxy is None
    assert getattr(http._pools, "proxy", None) is None
    assert http._pools.connection_pool_kw["ca_certs"] == certifi.where()


def test_a_proxy_of_another_kind_is_refused_at_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "socks5://proxy.internal:1080")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    with pytest.raises(ValueError, match="socks5"):
        PooledHTTP("https://graph.facebook.com/v23.0", pool_size=8)
