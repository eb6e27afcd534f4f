import io
import logging
import threading

import pytest

from bot.graph import payloads
from bot.graph.client import Transport
from bot.graph.console import WAMID_PREFIX, ConsoleTransport, render

PHONE_ID = "106540352242922"
TO = "15551231234"


@pytest.fixture
def out() -> io.StringIO:
    return io.StringIO()


@pytest.fixture
def console(out: io.StringIO) -> ConsoleTransport:
    return ConsoleTransport(out)


def test_text_is_printed_with_a_masked_recipient(
    console: ConsoleTransport, out: io.StringIO
) -> None:
    wamid = console.send(PHONE_ID, payloads.text_payload(TO, "Thanks, you're all set."))
    assert out.getvalue() == (
        f"── WhatsApp to •••••••1234 from {PHONE_ID} ({wamid}) ──\nThanks, you're all set.\n"
    )
    assert TO not in out.getvalue()


def test_buttons_are_printed_as_numbered_choices(
    console: ConsoleTransport, out: io.StringIO
) -> None:
    console.send(
        PHONE_ID,
        payloads.buttons_payload(
            TO,
            "May Acme send you offers on WhatsApp?",
            [("optin:yes", "Yes, all"), ("optin:choose", "Let me choose"), ("optin:no", "No")],
            header="Acme",
            footer="Reply STOP at any time",
        ),
    )
    lines = out.getvalue().splitlines()
    assert lines[1:] == [
        "*Acme*",
        "May Acme send you offers on WhatsApp?",
        "_Reply STOP at any time_",
        "  1) Yes, all [optin:yes]",
        "  2) Let me choose [optin:choose]",
        "  3) No [optin:no]",
    ]


def test_list_rows_are_numbered_across_sections() -> None:
    payload = payloads.list_payload(
        TO,
        "Which messages would you like?",
        "Choose topics",
        [
            ("Offers", [("cat:offers", "Offers", "Discounts and sales")]),
            ("Service", [("cat:news", "News", None)]),
        ],
    )
    assert render(payload) == [
        "Which messages would you like?",
        "  ☰ Choose topics",
        "  Offers:",
        "  1) Offers — Discounts and sales [cat:offers]",
        "  Service:",
        "  2) News [cat:news]",
    ]


def test_template_is_printed_by_name_and_language() -> None:
    payload = payloads.template_payload(
        TO,
        "optin_request",
        "en_US",
        [
            {"type": "body", "parameters": [{"type": "text", "text": "Acme"}]},
            {
                "type": "button",
                "sub_type": "quick_reply",
                "index": "0",
                "parameters": [{"type": "payload", "payload": "optin:yes"}],
            },
        ],
    )
    assert render(payload) == [
        "[template optin_request (en_US)]",
        "  body: Acme",
        "  button/quick_reply#0: optin:yes",
    ]


def test_other_types_are_shown_raw() -> None:
    payload = {"type": "image", "to": TO, "image": {"link": "https://example.com/a.png"}}
    assert render(payload) == ['(image message) {"link": "https://example.com/a.png"}']


def test_sent_messages_are_recorded_with_unique_wamids(console: ConsoleTransport) -> None:
    first = payloads.text_payload(TO, "One")
    second = payloads.text_payload(TO, "Two")
    wamids = [console.send(PHONE_ID, first), console.send(PHONE_ID, second)]

    assert wamids[0] != wamids[1]
    assert all(w.startswith(WAMID_PREFIX) and len(w) == len(WAMID_PREFIX) + 32 for w in wamids)
    assert console.sent == [(PHONE_ID, first, wamids[0]), (PHONE_ID, second, wamids[1])]


def test_mark_read_is_recorded_not_printed(console: ConsoleTransport, out: io.StringIO) -> None:
    assert console.mark_read(PHONE_ID, "wamid.IN") is None
    assert console.read == [(PHONE_ID, "wamid.IN")]
    assert out.getvalue() == ""


def test_default_stream_is_stdout_at_send_time(capsys: pytest.CaptureFixture[str]) -> None:
    ConsoleTransport().send(PHONE_ID, payloads.text_payload(TO, "Hello"))
    assert "Hello" in capsys.readouterr().out


def test_log_line_masks_the_recipient(
    console: ConsoleTransport, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="bot.graph.console")
    wamid = console.send(PHONE_ID, payloads.text_payload(TO, "Hello"))
    assert wamid in caplog.text
    assert "•••••••1234" in caplog.text
    assert TO not in caplog.text


def test_concurrent_sends_keep_messages_whole(console: ConsoleTransport, out: io.StringIO) -> None:
    payload = payloads.buttons_payload(TO, "Pick", [("a", "A"), ("b", "B"), ("c", "C")])
    threads = [
        threading.Thread(target=lambda: [console.send(PHONE_ID, payload) for _ in range(20)])
        for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len({wamid for _, _, wamid in console.sent}) == 80
    blocks = out.getvalue().split("── WhatsApp")[1:]
    assert len(blocks) == 80
    assert all(block.endswith("Pick\n  1) A [a]\n  2) B [b]\n  3) C [c]\n") for block in blocks)


def test_console_transport_is_a_transport(console: ConsoleTransport) -> None:
    assert isinstance(console, Transport)
