import pytest

from bot.graph.payloads import (
    MessageLimitError,
    buttons_payload,
    list_payload,
    read_receipt_payload,
    readdressed,
    recipient_of,
    template_payload,
    text_payload,
)

TO = "15551231234"
ENVELOPE = {"messaging_product": "whatsapp", "recipient_type": "individual", "to": TO}


# --- text ---------------------------------------------------------------------------------------


def test_text_payload_is_metas_shape() -> None:
    assert text_payload(TO, "Hello") == {
        **ENVELOPE,
        "type": "text",
        "text": {"preview_url": False, "body": "Hello"},
    }


def test_text_payload_preview_url() -> None:
    assert text_payload(TO, "https://example.com", preview_url=True)["text"] == {
        "preview_url": True,
        "body": "https://example.com",
    }


def test_text_body_limit() -> None:
    assert text_payload(TO, "x" * 4096)["text"]["body"] == "x" * 4096
    with pytest.raises(MessageLimitError, match=r"text body is 4097 characters.*4096"):
        text_payload(TO, "x" * 4097)


@pytest.mark.parametrize("body", ["", "   \n"])
def test_text_body_must_not_be_empty(body: str) -> None:
    with pytest.raises(MessageLimitError, match="text body must not be empty"):
        text_payload(TO, body)


@pytest.mark.parametrize("to", ["", "  "])
def test_recipient_is_required(to: str) -> None:
    with pytest.raises(MessageLimitError, match="recipient"):
        text_payload(to, "Hello")


def test_limit_error_is_a_value_error() -> None:
    assert issubclass(MessageLimitError, ValueError)


# --- reply buttons ------------------------------------------------------------------------------


def test_buttons_payload_is_metas_shape() -> None:
    payload = buttons_payload(
        TO,
        "May Acme send you offers on WhatsApp?",
        [("optin:yes", "Yes, all"), ("optin:choose", "Let me choose"), ("optin:no", "No")],
        header="Acme",
        footer="Reply STOP at any time",
    )
    assert payload == {
        **ENVELOPE,
        "type": "interactive",
        "interactive": {
            "type": "button",
            "header": {"type": "text", "text": "Acme"},
            "body": {"text": "May Acme send you offers on WhatsApp?"},
            "footer": {"text": "Reply STOP at any time"},
            "action": {
                "buttons": [
                    {"type": "reply", "reply": {"id": "optin:yes", "title": "Yes, all"}},
                    {"type": "reply", "reply": {"id": "optin:choose", "title": "Let me choose"}},
                    {"type": "reply", "reply": {"id": "optin:no", "title": "No"}},
                ]
            },
        },
    }


def test_buttons_payload_leaves_out_missing_header_and_footer() -> None:
    assert buttons_payload(TO, "Sure?", [("y", "Yes")]) == {
        **ENVELOPE,
        "type": "interactive",
        "interactive": {
            "type": "button",
            "body": {"text": "Sure?"},
            "action": {"buttons": [{"type": "reply", "reply": {"id": "y", "title": "Yes"}}]},
        },
    }


@pytest.mark.parametrize("count", [0, 4])
def test_one_to_three_buttons(count: int) -> None:
    buttons = [(f"id{i}", f"Title {i}") for i in range(count)]
    with pytest.raises(MessageLimitError, match=f"1 to 3 buttons, got {count}"):
        buttons_payload(TO, "Pick", buttons)


def test_button_title_limit() -> None:
    buttons_payload(TO, "Pick", [("a", "t" * 20)])
    with pytest.raises(MessageLimitError, match=r"button title is 21 characters.*20.*'t{21}'"):
        buttons_payload(TO, "Pick", [("a", "t" * 21)])


def test_button_title_must_not_be_empty() -> None:
    with pytest.raises(MessageLimitError, match="button title must not be empty"):
        buttons_payload(TO, "Pick", [("a", "")])


def test_button_id_limit() -> None:
    buttons_payload(TO, "Pick", [("i" * 256, "Yes")])
    with pytest.raises(MessageLimitError, match=r"button id is 257 characters.*256"):
        buttons_payload(TO, "Pick", [("i" * 257, "Yes")])


def test_button_id_without_surrounding_spaces() -> None:
    with pytest.raises(MessageLimitError, match="button id must not start or end with spaces"):
        buttons_payload(TO, "Pick", [(" yes", "Yes")])


def test_button_ids_unique() -> None:
    with pytest.raises(MessageLimitError, match="button ids must be unique: 'a'"):
        buttons_payload(TO, "Pick", [("a", "Yes"), ("a", "No")])


def test_button_titles_unique() -> None:
    with pytest.raises(MessageLimitError, match="button titles must be unique: 'Yes'"):
        buttons_payload(TO, "Pick", [("a", "Yes"), ("b", "Yes")])


def test_button_body_limit_is_1024() -> None:
    buttons_payload(TO, "b" * 1024, [("a", "Yes")])
    with pytest.raises(MessageLimitError, match=r"button message body is 1025 characters.*1024"):
        buttons_payload(TO, "b" * 1025, [("a", "Yes")])


def test_button_header_and_footer_limits() -> None:
    buttons_payload(TO, "Pick", [("a", "Yes")], header="h" * 60, footer="f" * 60)
    with pytest.raises(MessageLimitError, match=r"header is 61 characters.*60"):
        buttons_payload(TO, "Pick", [("a", "Yes")], header="h" * 61)
    with pytest.raises(MessageLimitError, match=r"footer is 61 characters.*60"):
        buttons_payload(TO, "Pick", [("a", "Yes")], footer="f" * 61)


# --- lists --------------------------------------------------------------------------------------


def test_list_payload_is_metas_shape() -> None:
    payload = list_payload(
        TO,
        "Which messages would you like?",
        "Choose topics",
        [
            ("Offers", [("cat:offers", "Offers", "Discounts and sales")]),
            ("Service", [("cat:news", "News", None), ("cat:orders", "Orders", "Delivery updates")]),
        ],
        header="Acme",
        footer="Change this any time",
    )
    assert payload == {
        **ENVELOPE,
        "type": "interactive",
        "interactive": {
            "type": "list",
            "header": {"type": "text", "text": "Acme"},
            "body": {"text": "Which messages would you like?"},
            "footer": {"text": "Change this any time"},
            "action": {
                "button": "Choose topics",
                "sections": [
                    {
                        "title": "Offers",
                        "rows": [
                            {
                                "id": "cat:offers",
                                "title": "Offers",
                                "description": "Discounts and sales",
                            }
                        ],
                    },
                    {
                        "title": "Service",
                        "rows": [
                            {"id": "cat:news", "title": "News"},
                            {
                                "id": "cat:orders",
                                "title": "Orders",
                                "description": "Delivery updates",
                            },
                        ],
                    },
                ],
            },
        },
    }


def test_single_section_needs_no_title() -> None:
    payload = list_payload(TO, "Pick", "Open", [(None, [("a", "A", None)])])
    assert payload["interactive"]["action"] == {
        "button": "Open",
        "sections": [{"rows": [{"id": "a", "title": "A"}]}],
    }


def test_several_sections_need_titles() -> None:
    with pytest.raises(MessageLimitError, match="section 2 needs a title"):
        list_payload(TO, "Pick", "Open", [("One", [("a", "A", None)]), (None, [("b", "B", None)])])


def _rows(count: int, start: int = 0) -> list[tuple[str, str, str | None]]:
    return [(f"row{i}", f"Row {i}", None) for i in range(start, start + count)]


def test_at_most_ten_rows_across_sections() -> None:
    list_payload(TO, "Pick", "Open", [("One", _rows(5)), ("Two", _rows(5, start=5))])
    with pytest.raises(MessageLimitError, match="at most 10 rows across all sections, got 11"):
        list_payload(TO, "Pick", "Open", [("One", _rows(6)), ("Two", _rows(5, start=6))])


def test_at_most_ten_sections() -> None:
    with pytest.raises(MessageLimitError, match="1 to 10 sections, got 11"):
        list_payload(TO, "Pick", "Open", [(f"S{i}", _rows(1, start=i)) for i in range(11)])
    with pytest.raises(MessageLimitError, match="1 to 10 sections, got 0"):
        list_payload(TO, "Pick", "Open", [])


def test_sections_need_rows() -> None:
    with pytest.raises(MessageLimitError, match="section 1 has no rows"):
        list_payload(TO, "Pick", "Open", [("Empty", [])])


def test_row_title_limit_is_24() -> None:
    list_payload(TO, "Pick", "Open", [(None, [("a", "t" * 24, None)])])
    with pytest.raises(MessageLimitError, match=r"row title is 25 characters.*24"):
        list_payload(TO, "Pick", "Open", [(None, [("a", "t" * 25, None)])])


def test_row_description_limit_is_72() -> None:
    list_payload(TO, "Pick", "Open", [(None, [("a", "A", "d" * 72)])])
    with pytest.raises(MessageLimitError, match=r"row description is 73 characters.*72"):
        list_payload(TO, "Pick", "Open", [(None, [("a", "A", "d" * 73)])])


def test_row_id_limit_is_200() -> None:
    list_payload(TO, "Pick", "Open", [(None, [("i" * 200, "A", None)])])
    with pytest.raises(MessageLimitError, match=r"row id is 201 characters.*200"):
        list_payload(TO, "Pick", "Open", [(None, [("i" * 201, "A", None)])])


def test_row_ids_unique_across_sections() -> None:
    with pytest.raises(MessageLimitError, match="row ids must be unique: 'a'"):
        list_payload(TO, "Pick", "Open", [("One", [("a", "A", None)]), ("Two", [("a", "B", None)])])


def test_list_button_label_limit_is_20() -> None:
    list_payload(TO, "Pick", "l" * 20, [(None, _rows(1))])
    with pytest.raises(MessageLimitError, match=r"list button label is 21 characters.*20"):
        list_payload(TO, "Pick", "l" * 21, [(None, _rows(1))])


def test_section_title_limit_is_24() -> None:
    list_payload(TO, "Pick", "Open", [("s" * 24, _rows(1))])
    with pytest.raises(MessageLimitError, match=r"section title is 25 characters.*24"):
        list_payload(TO, "Pick", "Open", [("s" * 25, _rows(1))])


def test_list_body_limit_is_4096() -> None:
    list_payload(TO, "b" * 4096, "Open", [(None, _rows(1))])
    with pytest.raises(MessageLimitError, match=r"list message body is 4097 characters.*4096"):
        list_payload(TO, "b" * 4097, "Open", [(None, _rows(1))])


def test_list_header_and_footer_limits() -> None:
    with pytest.raises(MessageLimitError, match=r"header is 61 characters"):
        list_payload(TO, "Pick", "Open", [(None, _rows(1))], header="h" * 61)
    with pytest.raises(MessageLimitError, match=r"footer is 61 characters"):
        list_payload(TO, "Pick", "Open", [(None, _rows(1))], footer="f" * 61)


# --- templates and read receipts ----------------------------------------------------------------


def test_template_payload_is_metas_shape() -> None:
    components = [
        {"type": "body", "parameters": [{"type": "text", "text": "Acme"}]},
        {
            "type": "button",
            "sub_type": "quick_reply",
            "index": "0",
            "parameters": [{"type": "payload", "payload": "optin:yes"}],
        },
    ]
    assert template_payload(TO, "optin_request", "en_US", components) == {
        **ENVELOPE,
        "type": "template",
        "template": {
            "name": "optin_request",
            "language": {"code": "en_US"},
            "components": components,
        },
    }


def test_template_without_components() -> None:
    assert template_payload(TO, "hello_world", "en_US") == {
        **ENVELOPE,
        "type": "template",
        "template": {"name": "hello_world", "language": {"code": "en_US"}},
    }


def test_template_needs_name_and_language() -> None:
    with pytest.raises(MessageLimitError, match="template name must not be empty"):
        template_payload(TO, "", "en_US")
    with pytest.raises(MessageLimitError, match="template language must not be empty"):
        template_payload(TO, "hello_world", "")


def test_read_receipt_payload_is_metas_shape() -> None:
    assert read_receipt_payload("wamid.HBgL") == {
        "messaging_product": "whatsapp",
        "status": "read",
        "message_id": "wamid.HBgL",
    }


def test_read_receipt_needs_a_message_id() -> None:
    with pytest.raises(MessageLimitError, match="message_id"):
        read_receipt_payload("")


# --- addressing: a number in `to`, a business-scoped user id in `recipient` (C27) -------------

USER_ID = "US.13491208655302741918"


def test_a_user_id_is_addressed_by_recipient_and_never_by_to() -> None:
    for payload in (
        text_payload(USER_ID, "Hello"),
        buttons_payload(USER_ID, "Pick", [("a", "A")]),
        list_payload(USER_ID, "Pick", "Open", [(None, [("a", "A", None)])]),
        template_payload(USER_ID, "order_update", "en"),
    ):
        assert payload["recipient"] == USER_ID
        assert "to" not in payload  # with both, Meta would go by `to`
        assert payload["messaging_product"] == "whatsapp"
        assert recipient_of(payload) == USER_ID


@pytest.mark.parametrize("to", [TO, "+15551231234"])
def test_a_number_is_addressed_by_to(to: str) -> None:
    payload = text_payload(to, "Hello")
    assert payload["to"] == to and "recipient" not in payload
    assert recipient_of(payload) == to


def test_readdressed_moves_a_message_between_number_and_user_id() -> None:
    by_user_id = template_payload(USER_ID, "order_update", "en", [{"type": "body"}])
    by_number = readdressed(by_user_id, TO)
    assert by_number == template_payload(TO, "order_update", "en", [{"type": "body"}])
    assert readdressed(by_number, USER_ID) == by_user_id
    assert list(by_number) == list(template_payload(TO, "x", "en"))  # Meta's key order kept
