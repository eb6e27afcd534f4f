import json
import logging
from collections.abc import Iterator

import pytest
import requests
import responses
from responses import matchers

from bot.graph import payloads
from bot.graph.client import (
    DEFAULT_BASE_URL,
    DEFAULT_TIMEOUT,
    GraphClient,
    Transport,
    pooled_session,
)
from bot.graph.errors import GraphError, GraphTransportError, Outcome, classify

BASE = "https://graph.facebook.com/v23.0"
PHONE_ID = "106540352242922"
URL = f"{BASE}/{PHONE_ID}/messages"
TOKEN = "EAAG-secret-token"
TO = "15551231234"
WAMID = "wamid.HBgLMTU1NTEyMzEyMzQVAgARGBI5QTNDQTVCM0Q0Q0Q2RTY3RTcA"


@pytest.fixture
def mocked() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=True) as rsps:
        yield rsps


@pytest.fixture
def session() -> Iterator[requests.Session]:
    with requests.Session() as s:
        yield s


@pytest.fixture
def client(session: requests.Session) -> GraphClient:
    return GraphClient(session, access_token=TOKEN, base_url=BASE)


def accepted(wamid: str = WAMID) -> dict[str, object]:
    return {
        "messaging_product": "whatsapp",
        "contacts": [{"input": TO, "wa_id": TO}],
        "messages": [{"id": wamid, "message_status": "accepted"}],
    }


def meta_error(code: int, message: str = "error") -> dict[str, object]:
    return {
        "error": {
            "message": f"(#{code}) {message}",
            "type": "OAuthException",
            "code": code,
            "error_data": {"messaging_product": "whatsapp", "details": message},
            "fbtrace_id": "Az1",
        }
    }


def sent_request(mocked: responses.RequestsMock, index: int = 0) -> requests.PreparedRequest:
    return mocked.calls[index].request


# --- sending ------------------------------------------------------------------------------------


def test_send_text_posts_metas_body_and_returns_the_wamid(
    client: GraphClient, mocked: responses.RequestsMock
) -> None:
    mocked.post(
        URL,
        json=accepted(),
        match=[matchers.header_matcher({"Authorization": f"Bearer {TOKEN}"})],
    )
    wamid = client.send(PHONE_ID, payloads.text_payload(TO, "Hello 👋 ä"))

    assert wamid == WAMID
    request = sent_request(mocked)
    assert request.method == "POST"
    assert request.url == URL
    assert request.headers["Content-Type"] == "application/json"
    assert json.loads(request.body) == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": TO,
        "type": "text",
        "text": {"preview_url": False, "body": "Hello 👋 ä"},
    }


def test_send_buttons_posts_the_whole_interactive_body(
    client: GraphClient, mocked: responses.RequestsMock
) -> None:
    mocked.post(URL, json=accepted())
    client.send(PHONE_ID, payloads.buttons_payload(TO, "Offers?", [("y", "Yes"), ("n", "No")]))
    assert json.loads(sent_request(mocked).body) == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": TO,
        "type": "interactive",
        "interactive": {
            "type": "button",
            "body": {"text": "Offers?"},
            "action": {
                "buttons": [
                    {"type": "reply", "reply": {"id": "y", "title": "Yes"}},
                    {"type": "reply", "reply": {"id": "n", "title": "No"}},
                ]
            },
        },
    }


def test_send_template(client: GraphClient, mocked: responses.RequestsMock) -> None:
    mocked.post(URL, json=accepted("wamid.T"))
    assert client.send(PHONE_ID, payloads.template_payload(TO, "hello_world", "en_US")) == "wamid.T"
    assert json.loads(sent_request(mocked).body) == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": TO,
        "type": "template",
        "template": {"name": "hello_world", "language": {"code": "en_US"}},
    }


@pytest.mark.parametrize(
    "base_url", [BASE, BASE + "/", " " + BASE + "// "], ids=["plain", "slash", "padded"]
)
def test_base_url_is_normalised(
    session: requests.Session, mocked: responses.RequestsMock, base_url: str
) -> None:
    mocked.post(URL, json=accepted())
    GraphClient(session, access_token=TOKEN, base_url=base_url).send(
        PHONE_ID, payloads.text_payload(TO, "Hi")
    )
    assert sent_request(mocked).url == URL


def test_defaults(session: requests.Session) -> None:
    client = GraphClient(session, access_token=TOKEN)
    assert client.base_url == DEFAULT_BASE_URL == BASE
    assert client.timeout == DEFAULT_TIMEOUT == (3.05, 10.0)


def test_timeout_is_passed_to_requests() -> None:
    seen: dict[str, object] = {}

    class Recording(requests.Session):
        def post(self, url: str, **kwargs: object) -> requests.Response:  # type: ignore[override]
            seen.update(kwargs)
            response = requests.Response()
            response.status_code = 200
            response._content = json.dumps(accepted()).encode()
            return response

    GraphClient(Recording(), access_token=TOKEN, timeout=(1.0, 2.0)).send(
        PHONE_ID, payloads.text_payload(TO, "Hi")
    )
    assert seen["timeout"] == (1.0, 2.0)


def test_phone_number_id_cannot_change_the_path(
    client: GraphClient, mocked: responses.RequestsMock
) -> None:
    mocked.post(f"{BASE}/..%2Fme/messages", json=accepted())
    client.send("../me", payloads.text_payload(TO, "Hi"))


def test_empty_phone_number_id_is_refused(client: GraphClient) -> None:
    with pytest.raises(ValueError, match="phone_number_id"):
        client.send("", payloads.text_payload(TO, "Hi"))


def test_access_token_is_required(session: requests.Session) -> None:
    with pytest.raises(ValueError, match="access token"):
        GraphClient(session, access_token="  ")


def test_the_token_never_shows_in_repr_or_logs(
    client: GraphClient, mocked: responses.RequestsMock, caplog: pytest.LogCaptureFixture
) -> None:
    mocked.post(URL, json=meta_error(100, "Invalid parameter"), status=400)
    caplog.set_level(logging.DEBUG)
    with pytest.raises(GraphError) as raised:
        client.send(PHONE_ID, payloads.text_payload(TO, "Hi"))
    assert TOKEN not in repr(client)
    assert TOKEN not in str(raised.value)
    assert TOKEN not in caplog.text


def test_logs_mask_the_recipient(
    client: GraphClient, mocked: responses.RequestsMock, caplog: pytest.LogCaptureFixture
) -> None:
    mocked.post(URL, json=accepted())
    caplog.set_level(logging.DEBUG, logger="bot.graph.client")
    client.send(PHONE_ID, payloads.text_payload(TO, "Hi"))
    assert "•••••••1234" in caplog.text
    assert TO not in caplog.text


# --- read receipts ------------------------------------------------------------------------------


def test_mark_read(client: GraphClient, mocked: responses.RequestsMock) -> None:
    mocked.post(
        URL,
        json={"success": True},
        match=[matchers.header_matcher({"Authorization": f"Bearer {TOKEN}"})],
    )
    assert client.mark_read(PHONE_ID, "wamid.IN") is None
    assert json.loads(sent_request(mocked).body) == {
        "messaging_product": "whatsapp",
        "status": "read",
        "message_id": "wamid.IN",
    }


def test_mark_read_not_confirmed(client: GraphClient, mocked: responses.RequestsMock) -> None:
    mocked.post(URL, json={"success": False})
    with pytest.raises(GraphError, match="read receipt"):
        client.mark_read(PHONE_ID, "wamid.IN")


# --- failures -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "outcome"),
    [
        (130429, Outcome.RETRY),
        (131047, Outcome.FAIL),
        (131049, Outcome.FAIL_HOLD_24H),
        (131050, Outcome.OPTED_OUT),
        (190, Outcome.PAUSE),
    ],
)
def test_meta_errors_raise_graph_error(
    client: GraphClient, mocked: responses.RequestsMock, code: int, outcome: Outcome
) -> None:
    mocked.post(URL, json=meta_error(code, "refused"), status=401 if code == 190 else 400)
    with pytest.raises(GraphError) as raised:
        client.send(PHONE_ID, payloads.text_payload(TO, "Hi"))
    error = raised.value
    assert not isinstance(error, GraphTransportError)
    assert error.code == code
    assert error.details == "refused"
    assert error.fbtrace_id == "Az1"
    assert classify(error) is outcome


def test_http_500_with_html_is_retried(client: GraphClient, mocked: responses.RequestsMock) -> None:
    mocked.post(
        URL,
        body="<html><body>Internal Server Error</body></html>",
        status=500,
        content_type="text/html",
    )
    with pytest.raises(GraphError) as raised:
        client.send(PHONE_ID, payloads.text_payload(TO, "Hi"))
    assert raised.value.http_status == 500
    assert raised.value.code is None
    assert classify(raised.value) is Outcome.RETRY


@pytest.mark.parametrize(
    "exc",
    [
        requests.exceptions.ConnectTimeout("connect timed out"),
        requests.exceptions.ReadTimeout("read timed out"),
        requests.exceptions.ConnectionError("connection refused"),
        requests.exceptions.ChunkedEncodingError("connection broken"),
    ],
)
def test_transport_failures_raise_transport_error(
    client: GraphClient, mocked: responses.RequestsMock, exc: Exception
) -> None:
    mocked.post(URL, body=exc)
    with pytest.raises(GraphTransportError) as raised:
        client.send(PHONE_ID, payloads.text_payload(TO, "Hi"))
    assert raised.value.__cause__ is exc
    assert classify(raised.value) is Outcome.RETRY


def test_mark_read_timeout(client: GraphClient, mocked: responses.RequestsMock) -> None:
    mocked.post(URL, body=requests.exceptions.ReadTimeout("read timed out"))
    with pytest.raises(GraphTransportError):
        client.mark_read(PHONE_ID, "wamid.IN")


def test_other_request_failures_are_final(
    client: GraphClient, mocked: responses.RequestsMock
) -> None:
    mocked.post(URL, body=requests.exceptions.InvalidHeader("bad header"))
    with pytest.raises(GraphError) as raised:
        client.send(PHONE_ID, payloads.text_payload(TO, "Hi"))
    assert not isinstance(raised.value, GraphTransportError)
    assert classify(raised.value) is Outcome.FAIL


@pytest.mark.parametrize(
    "body",
    [
        {"messages": []},
        {"messages": [{}]},
        {"contacts": [{"input": TO, "wa_id": TO}]},
        {"messages": [{"id": ""}]},
    ],
)
def test_answer_without_a_wamid_is_an_error_not_retried(
    client: GraphClient, mocked: responses.RequestsMock, body: dict[str, object]
) -> None:
    # Meta took the request; sending again could deliver the message twice.
    mocked.post(URL, json=body)
    with pytest.raises(GraphError, match="no message id") as raised:
        client.send(PHONE_ID, payloads.text_payload(TO, "Hi"))
    assert classify(raised.value) is Outcome.FAIL
    assert TO not in str(raised.value)


def test_success_status_with_a_non_json_body(
    client: GraphClient, mocked: responses.RequestsMock
) -> None:
    mocked.post(URL, body="OK", status=200)
    with pytest.raises(GraphError, match="without a JSON object") as raised:
        client.send(PHONE_ID, payloads.text_payload(TO, "Hi"))
    assert classify(raised.value) is Outcome.FAIL


def test_graph_client_is_a_transport(client: GraphClient) -> None:
    assert isinstance(client, Transport)


# --- the app's pooled session: the environment read once ----------------------------------------


def test_pooled_session_takes_the_proxy_and_ca_bundle_from_the_environment_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/company/ca.pem")

    session = pooled_session(BASE, pool_size=8)
    monkeypatch.setenv("HTTPS_PROXY", "http://changed.internal:3128")

    assert session.trust_env is False  # not looked up again on every send
    assert session.proxies.get("https") == "http://proxy.internal:3128"
    assert session.verify == "/etc/company/ca.pem"


def test_pooled_session_skips_the_proxy_for_a_host_in_no_proxy(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    monkeypatch.setenv("NO_PROXY", "graph.facebook.com")
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)

    session = pooled_session(BASE, pool_size=8)

    assert session.proxies == {}
    assert session.verify is True


def test_pooled_session_keeps_one_connection_per_thread(mocked: responses.RequestsMock) -> None:
    session = pooled_session(BASE, pool_size=24)
    adapter = session.get_adapter(URL)
    assert adapter._pool_maxsize == 24  # type: ignore[attr-defined]
    mocked.post(URL, json=accepted())
    assert (
        GraphClient(session, access_token=TOKEN, base_url=BASE).send(
            PHONE_ID, payloads.text_payload(TO, "hello")
        )
        == WAMID
    )
