import json

import pytest
import requests

from bot.graph.errors import (
    GraphError,
    GraphTransportError,
    Outcome,
    Slowdown,
    classify,
    failure_reason,
    slowdown,
)


def make_response(status: int, body: object | str, reason: str = "") -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response.reason = reason
    text = body if isinstance(body, str) else json.dumps(body)
    response._content = text.encode()
    return response


def meta_error(code: int, *, status: int = 400, subcode: int | None = None) -> GraphError:
    error: dict[str, object] = {
        "message": f"(#{code}) something",
        "type": "OAuthException",
        "code": code,
        "fbtrace_id": "AbC123",
    }
    if subcode is not None:
        error["error_subcode"] = subcode
    return GraphError.from_response(make_response(status, {"error": error}))


# --- parsing ------------------------------------------------------------------------------------


def test_from_response_reads_metas_error_object() -> None:
    response = make_response(
        400,
        {
            "error": {
                "message": "(#131047) Re-engagement message",
                "type": "OAuthException",
                "code": 131047,
                "error_subcode": 2494010,
                "error_data": {
                    "messaging_product": "whatsapp",
                    "details": "Message failed to send because more than 24 hours have passed",
                },
                "error_user_title": "Re-engagement message",
                "fbtrace_id": "A7kQ2x",
            }
        },
    )
    error = GraphError.from_response(response)
    assert error.code == 131047
    assert error.subcode == 2494010
    assert error.message == "(#131047) Re-engagement message"
    assert error.title == "Re-engagement message"
    assert error.details == "Message failed to send because more than 24 hours have passed"
    assert error.http_status == 400
    assert error.fbtrace_id == "A7kQ2x"
    assert error.error_type == "OAuthException"
    assert str(error) == (
        "Graph API error 131047/2494010 (HTTP 400): (#131047) Re-engagement message"
        " — Message failed to send because more than 24 hours have passed [fbtrace_id=A7kQ2x]"
    )


def test_from_response_with_a_minimal_error() -> None:
    error = GraphError.from_response(make_response(401, {"error": {"code": "190"}}))
    assert error.code == 190  # a numeric string is still a code
    assert error.subcode is None
    assert error.details is None
    assert error.fbtrace_id is None
    assert error.message == "HTTP 401 without an error message"


def test_from_response_with_an_html_body() -> None:
    html = "<html><body><h1>502 Bad Gateway</h1></body></html>"
    error = GraphError.from_response(make_response(502, html, reason="Bad Gateway"))
    assert error.code is None
    assert error.http_status == 502
    assert error.message == f"HTTP 502 Bad Gateway: {html}"


def test_from_response_with_an_empty_body() -> None:
    error = GraphError.from_response(make_response(503, ""))
    assert error.code is None
    assert error.message == "HTTP 503 no reason given"


def test_from_response_shortens_a_long_body() -> None:
    error = GraphError.from_response(make_response(500, "x" * 10_000, reason="Oops"))
    assert len(error.message) < 300


@pytest.mark.parametrize("body", [[1, 2], {"error": "bad"}, {"errors": []}, "null"])
def test_from_response_with_json_that_is_not_an_error_object(body: object) -> None:
    error = GraphError.from_response(make_response(400, body, reason="Bad Request"))
    assert error.code is None
    assert error.http_status == 400
    assert error.message.startswith("HTTP 400 Bad Request")


def test_transport_error_from_exception() -> None:
    error = GraphTransportError.from_exception(requests.exceptions.ConnectTimeout("slow"))
    assert isinstance(error, GraphError)
    assert error.code is None
    assert error.http_status is None
    assert error.message == "ConnectTimeout: slow"


# --- classification -----------------------------------------------------------------------------


@pytest.mark.parametrize("code", [130429, 131056, 4, 80007, 131000, 131016, 2])
def test_temporary_codes_are_retried(code: int) -> None:
    assert classify(meta_error(code)) is Outcome.RETRY


@pytest.mark.parametrize("code", [131047, 131026, 131048, 130403, 100, 132000, 132001])
def test_final_codes_fail(code: int) -> None:
    assert classify(meta_error(code)) is Outcome.FAIL


def test_c27_a_message_a_user_id_cannot_receive_fails_with_our_reason() -> None:
    """131062: some messages (authentication templates) need the phone number; never retried."""
    error = meta_error(131062)
    assert classify(error) is Outcome.FAIL
    reason = failure_reason(error)
    assert reason.startswith("131062") and "user id" in reason and "phone number" in reason


def test_failure_reason_is_metas_title_otherwise() -> None:
    assert failure_reason(GraphError("boom", code=131026, title="Message undeliverable")) == (
        "Message undeliverable"
    )
    assert failure_reason(GraphError("boom")) == "boom"


def test_marketing_limit_holds_for_a_day() -> None:
    assert classify(meta_error(131049)) is Outcome.FAIL_HOLD_24H


def test_marketing_opt_out() -> None:
    assert classify(meta_error(131050)) is Outcome.OPTED_OUT


def test_expired_token_pauses_dispatching() -> None:
    assert classify(meta_error(190, status=401, subcode=463)) is Outcome.PAUSE


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_http_5xx_without_a_code_is_retried(status: int) -> None:
    error = GraphError.from_response(make_response(status, "<html>oops</html>"))
    assert classify(error) is Outcome.RETRY


def test_http_429_without_a_code_is_retried() -> None:
    assert classify(GraphError("slow down", http_status=429)) is Outcome.RETRY


@pytest.mark.parametrize("status", [400, 403, 404])
def test_unknown_code_with_4xx_fails(status: int) -> None:
    assert classify(meta_error(999_999, status=status)) is Outcome.FAIL


def test_known_code_wins_over_http_status() -> None:
    # A temporary code served with a 4xx is still temporary, and a final one with a 5xx is final.
    assert classify(meta_error(131000, status=400)) is Outcome.RETRY
    assert classify(meta_error(100, status=500)) is Outcome.FAIL


def test_error_without_code_or_status_fails() -> None:
    assert classify(GraphError("no message id in the answer")) is Outcome.FAIL


@pytest.mark.parametrize(
    "exc",
    [
        requests.exceptions.ConnectTimeout("connect"),
        requests.exceptions.ReadTimeout("read"),
        requests.exceptions.ConnectionError("refused"),
    ],
)
def test_transport_errors_are_retried(exc: Exception) -> None:
    assert classify(GraphTransportError.from_exception(exc)) is Outcome.RETRY


def test_outcome_values_are_stable_strings() -> None:
    # Callers may store or log these values, so they must not change.
    assert [o.value for o in Outcome] == [
        "retry",
        "fail",
        "fail_hold_24h",
        "opted_out",
        "pause",
    ]


# --- slowing down -------------------------------------------------------------------------------


def test_pair_rate_limit_slows_that_recipient_only() -> None:
    assert slowdown(meta_error(131056)) == Slowdown.RECIPIENT


@pytest.mark.parametrize("code", [130429, 80007, 4])
def test_throughput_limits_slow_everyone(code: int) -> None:
    assert slowdown(meta_error(code)) == Slowdown.EVERYONE


def test_http_429_slows_everyone_whatever_the_code() -> None:
    assert slowdown(GraphError("slow down", http_status=429)) == Slowdown.EVERYONE
    assert slowdown(meta_error(131056, status=429)) == Slowdown.RECIPIENT | Slowdown.EVERYONE


@pytest.mark.parametrize("code", [131000, 131016, 2, 131047, 131049, 131050, 190])
def test_other_errors_slow_nothing_else(code: int) -> None:
    assert slowdown(meta_error(code)) == Slowdown.NONE


def test_transport_errors_slow_nothing_else() -> None:
    error = GraphTransportError.from_exception(requests.exceptions.ReadTimeout("read"))
    assert slowdown(error) == Slowdown.NONE
