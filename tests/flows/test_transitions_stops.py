"""Stops in the customer's own words and the one-tap question (C21), first words (C22), prompts
retired by a withdrawal (C23), verified evidence (C24), and answers made friendlier to give."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from flows.catalog import Catalog, Category
from flows.model import Stage
from flows.policy import ConsentSource
from flows.render import LIST_ROW_TITLE_MAX, render_prompt

from .conftest import BOTH, NOW, ChatFactory, asked, choosing, purposes, subscribed

# --- C21: a clear stop in their own words ---------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "language"),
    [
        ("stop please", "en"),
        ("please stop!!", "en"),
        ("STOP IT", "en"),
        ("unsubscribe me", "en"),
        ("remove me", "en"),
        ("stop messaging me", "en"),
        ("بطل", "ar"),
        ("لا تراسلني", "ar"),
        ("الغي الاشتراك", "ar"),
        ("اوقفوا الرسائل", "ar"),
        ("ستوب", "ar"),
    ],
)
def test_c21_a_clear_stop_in_own_words_withdraws_everything_like_stop(
    typed: str, language: str, chat: ChatFactory
) -> None:
    c = subscribed(chat)
    result = c.send(typed)
    assert [(ch.category, ch.granted) for ch in result.changes] == [
        ("orders", False),
        ("offers", False),
    ]
    assert all(ch.text == typed and ch.source is ConsentSource.WHATSAPP for ch in result.changes)
    (reply,) = result.replies
    assert (reply.purpose, reply.language) == ("stop", language)
    assert c.state.stage is Stage.STOPPED
    assert c.send("hello?").replies == ()  # then silence, as after STOP (C07)


@pytest.mark.parametrize(
    ("typed", "category", "kept"),
    [
        ("no more offers please", "offers", "orders"),
        ("stop sending me promotions", "offers", "orders"),
        ("ما بدي عروض", "offers", "orders"),
        ("stop sending me order updates", "orders", "offers"),
    ],
)
def test_c21_a_clear_stop_naming_a_category_withdraws_only_it(
    typed: str, category: str, kept: str, chat: ChatFactory
) -> None:
    c = subscribed(chat)
    result = c.send(typed)
    assert [(ch.category, ch.granted) for ch in result.changes] == [(category, False)]
    assert purposes(result) == ["stop_category"]
    assert c.state.granted == frozenset({kept})


@pytest.mark.parametrize(
    "typed",
    [
        "don't stop my orders",
        "can you stop by tomorrow?",
        "cancel my order",
        "we must stop this",
        "لا توقف طلبي",
        "الغي الطلب",
    ],
)
def test_c21_a_sentence_about_stopping_something_else_changes_nothing(
    typed: str, chat: ChatFactory
) -> None:
    c = subscribed(chat)
    result = c.send(typed)
    assert result.changes == ()
    assert purposes(result) == ["fallback"]
    assert (c.state.stage, c.state.granted) == (Stage.SUBSCRIBED, BOTH)


# --- C21: words that may be asking to stop -------------------------------------------------------


def test_c21_words_that_may_be_asking_get_a_one_tap_question_never_silence(
    chat: ChatFactory,
) -> None:
    c = subscribed(chat)
    c.send("thanks")  # the one pointer to HELP a settled contact gets...
    result = c.send("too many messages")  # ...does not silence a possible stop
    assert result.changes == ()
    (question,) = result.replies
    assert question.purpose == "stop_question"
    assert "Nimbus Bakery" in question.body and "YES" in question.body
    # Both categories are granted and none was named: stop all, either one, or nothing.
    ids = [b.id for b in question.buttons]
    assert ids == ["stopask:all", "stopask:orders", "stopask:offers", "stopask:keep"]
    # Four choices are more than WhatsApp's three buttons: they are the rows of a list.
    assert question.menu == "Choose"
    assert all(len(b.title) <= LIST_ROW_TITLE_MAX for b in question.buttons)
    assert c.state.stage is Stage.STOP_ASKED
    assert c.state.pending == ("orders", "offers")


def test_c21_a_category_named_is_the_one_offered_on_three_buttons(chat: ChatFactory) -> None:
    c = subscribed(chat)
    (question,) = c.send("you send way too many offers").replies
    assert [b.id for b in question.buttons] == ["stopask:all", "stopask:offers", "stopask:keep"]
    assert [b.title for b in question.buttons] == [
        "Stop everything",
        "Stop Offers",
        "Change nothing",
    ]
    assert question.menu is None


def test_c21_the_question_in_arabic_fits_metas_button_titles(chat: ChatFactory) -> None:
    c = subscribed(chat)
    (question,) = c.send("زهقتوني من الطلبات").replies
    assert question.language == "ar"
    assert [b.id for b in question.buttons] == ["stopask:all", "stopask:orders", "stopask:keep"]
    # "إيقاف تحديثات الطلبات" is 21 characters: cut to WhatsApp's 20, the body says it all.
    assert all(len(b.title) <= 20 for b in question.buttons)
    assert question.buttons[1].title.startswith("إيقاف تحديثات")


def test_c21_stopask_all_withdraws_like_stop_and_cites_the_question(chat: ChatFactory) -> None:
    c = subscribed(chat)
    c.send("too many messages")
    question_wamid, _ = c.message_with_button("stopask:all")
    result = c.tap("stopask:all")
    assert {(ch.category, ch.granted) for ch in result.changes} == {
        ("orders", False),
        ("offers", False),
    }
    assert c.last_in is not None
    assert result.changes[0].evidence == {
        "reply_wamid": c.last_in.wamid,
        "prompt_wamid": question_wamid,
    }
    assert purposes(result) == ["stop"]
    assert c.state.stage is Stage.STOPPED


def test_c21_stopask_category_withdraws_only_that_category(chat: ChatFactory) -> None:
    c = subscribed(chat)
    c.send("too many messages")
    result = c.tap("stopask:offers")
    assert [(ch.category, ch.granted) for ch in result.changes] == [("offers", False)]
    assert purposes(result) == ["stop_category"]
    assert (c.state.stage, c.state.granted, c.state.pending) == (
        Stage.SUBSCRIBED,
        frozenset({"orders"}),
        (),
    )


def test_c21_stopask_keep_changes_nothing_and_says_so(chat: ChatFactory) -> None:
    c = subscribed(chat)
    c.send("too many messages")
    result = c.tap("stopask:keep")
    assert result.changes == ()
    (reply,) = result.replies
    assert reply.purpose == "kept"
    assert reply.body.startswith("Nothing has changed")
    assert "Order updates" in reply.body and "Offers" in reply.body
    assert (c.state.stage, c.state.granted) == (Stage.SUBSCRIBED, BOTH)


@pytest.mark.parametrize(("typed", "stops"), [("yes", True), ("ok", True), ("no", False)])
def test_c21_a_typed_answer_to_the_question_stops_everything_or_keeps_it(
    typed: str, stops: bool, chat: ChatFactory
) -> None:
    c = subscribed(chat)
    c.send("why do you keep messaging me?")
    question_wamid, _ = c.message_with_button("stopask:keep")
    result = c.send(typed)
    if stops:
        assert purposes(result) == ["stop"] and c.state.stage is Stage.STOPPED
        # The typed answer cites the question it answered (C24).
        assert result.changes[0].evidence["prompt_wamid"] == question_wamid
    else:
        assert purposes(result) == ["kept"] and result.changes == ()
        assert c.state.stage is Stage.SUBSCRIBED


def test_c21_an_answer_not_understood_at_the_question_gets_the_hint(chat: ChatFactory) -> None:
    c = subscribed(chat)
    c.send("too many messages")
    assert purposes(c.send("hmm what")) == ["hint"]
    assert c.state.stage is Stage.STOP_ASKED
    assert purposes(c.tap("stopask:keep")) == ["kept"]


def test_c21_a_stopask_tap_is_honoured_on_an_old_question_as_stop_is(chat: ChatFactory) -> None:
    c = subscribed(chat)
    c.send("too many messages")
    c.tap("stopask:keep")
    c.wait(timedelta(days=3))
    result = c.tap("stopask:offers")
    assert [(ch.category, ch.granted) for ch in result.changes] == [("offers", False)]


@pytest.mark.parametrize("where", [{"edited": True}, {"in_group": True}])
def test_c21_own_words_from_an_edit_or_a_group_withdraw_and_a_maybe_asks_nothing(
    where: dict[str, bool], chat: ChatFactory
) -> None:
    # An edit into a stop, or a stop said in a group, still withdraws (C31, C32)...
    c = subscribed(chat)
    result = c.send("unsubscribe me", **where)
    assert {(ch.category, ch.granted) for ch in result.changes} == {
        ("orders", False),
        ("offers", False),
    }
    # ...but a message that may be asking gets no question there: nothing is asked in a group,
    # and an edit never starts a dialogue.
    c = subscribed(chat)
    result = c.send("too many messages", **where)
    assert result.replies == () and result.changes == ()
    assert c.state.stage is Stage.SUBSCRIBED


def test_c21_a_maybe_stop_while_stopped_gets_nothing(chat: ChatFactory) -> None:
    c = subscribed(chat)
    c.send("STOP")
    assert c.send("too many messages").replies == ()
    assert c.tap("stopask:keep", context_wamid="wamid.old").replies == ()


def test_c21_the_question_offers_no_more_than_a_list_holds(
    chat: ChatFactory, catalog: Catalog
) -> None:
    extra = tuple(
        Category(
            id=f"kind{n}",
            marketing=True,
            title={"en": f"Kind {n}", "ar": f"نوع {n}"},
            description={},
        )
        for n in range(12)
    )
    wide = replace(catalog, categories=(*catalog.categories, *extra))
    c = chat(catalog=wide)
    c.state = replace(c.state, stage=Stage.SUBSCRIBED, granted=frozenset(wide.category_ids))
    (question,) = c.send("too many messages").replies
    assert len(question.buttons) == 10  # all, eight categories, keep
    assert question.buttons[-1].id == "stopask:keep"


# --- C22: first words that ask to stop -----------------------------------------------------------


@pytest.mark.parametrize("typed", ["STOP", "stop please", "لا تراسلني", "unsubscribe me"])
def test_c22_first_words_that_stop_are_confirmed_never_prompted(
    typed: str, chat: ChatFactory
) -> None:
    c = chat()
    result = c.send(typed)
    assert result.changes == ()  # nothing was granted, nothing to withdraw
    assert purposes(result) == ["stop"]
    assert c.state.stage is Stage.STOPPED
    assert c.send("hello?").replies == ()


def test_c22_first_words_that_may_be_asking_get_the_question_not_the_prompt(
    chat: ChatFactory,
) -> None:
    c = chat()
    (question,) = c.send("how do I unsubscribe?").replies
    assert question.purpose == "stop_question"
    assert [b.id for b in question.buttons] == ["stopask:all", "stopask:keep"]
    (kept,) = c.tap("stopask:keep").replies
    assert kept.purpose == "kept" and "START" in kept.body
    assert c.state.stage is Stage.DECLINED  # not asked to opt in; START would ask


# --- C23: a withdrawal retires every prompt shown before it ---------------------------------------


def test_c23_stop_category_retires_the_open_prompt(chat: ChatFactory) -> None:
    c = asked(chat)
    c.send("stop offers")
    typed = c.send("yes")  # to the prompt shown before the withdrawal
    assert typed.changes == ()
    assert purposes(typed) == ["prompt"]  # the current one, shown now
    assert c.tap("optin:yes", context_wamid=c.sent[0][0], context_sent_at=NOW).changes == ()
    assert {ch.category for ch in c.tap("optin:yes").changes} == BOTH


def test_c23_a_withdrawal_while_choosing_retires_the_category_question(
    chat: ChatFactory,
) -> None:
    c = choosing(chat)  # orders granted, offers being asked
    c.send("stop orders")
    result = c.send("yes")
    assert result.changes == ()
    assert [b.id for b in result.replies[0].buttons] == ["cat:offers:yes", "cat:offers:no"]
    assert [(ch.category, ch.granted) for ch in c.send("yes").changes] == [("offers", True)]


def test_c23_stopask_all_retires_the_prompts_before_it_too(chat: ChatFactory) -> None:
    c = asked(chat)
    c.send("too many messages")
    c.tap("stopask:all")
    result = c.tap("optin:yes")  # on the prompt shown before
    assert result.changes == ()
    assert purposes(result) == ["prompt"]


# --- C24: evidence is verified -------------------------------------------------------------------


def test_c24_a_tap_on_a_message_we_cannot_show_we_sent_grants_nothing(
    chat: ChatFactory, catalog: Catalog
) -> None:
    c = asked(chat)
    version = render_prompt(catalog, "en").text_version
    # Meta reports a context with the current prompt's wording, but it is not among the
    # messages we sent this contact: no context_sent_at.
    result = c.tap(
        "optin:yes",
        context_wamid="wamid.NOT-OURS",
        context_text_version=version,
        context_sent_at=None,
    )
    assert result.changes == ()
    assert purposes(result) == ["prompt"]


def test_c24_a_stop_quoting_a_message_we_did_not_send_cites_only_itself(
    chat: ChatFactory,
) -> None:
    c = subscribed(chat)
    result = c.send("STOP", context_wamid="wamid.NOT-OURS")
    assert c.last_in is not None
    assert all(ch.evidence == {"reply_wamid": c.last_in.wamid} for ch in result.changes)


def test_c24_a_typed_answer_before_the_prompt_went_out_cites_it_by_our_own_id(
    chat: ChatFactory,
) -> None:
    c = asked(chat)
    assert c.state.last_question is not None
    queued = replace(c.state.last_question, wamid=None, message_id="msg-1")
    c.state = replace(c.state, last_question=queued)
    result = c.send("yes")
    assert c.last_in is not None
    assert result.changes[0].evidence == {
        "reply_wamid": c.last_in.wamid,
        "prompt_message_id": "msg-1",
    }


def test_c24_a_typed_answer_when_no_question_went_out_is_not_consent(chat: ChatFactory) -> None:
    c = asked(chat)
    c.state = replace(c.state, last_question=None)
    assert c.send("yes").changes == ()


# --- friendlier answers --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "language"),
    [
        ("yes please", "en"),
        ("Sure!", "en"),
        ("ok", "en"),
        ("موافق", "ar"),
        ("أيوه", "ar"),
        ("اكيد", "ar"),
    ],
)
def test_clear_typed_agreement_is_a_yes_to_the_live_prompt(
    typed: str, language: str, chat: ChatFactory
) -> None:
    c = asked(chat, language)
    result = c.send(typed)
    assert {(ch.category, ch.granted) for ch in result.changes} == {
        ("orders", True),
        ("offers", True),
    }
    assert purposes(result) == ["confirmation"]


@pytest.mark.parametrize("typed", ["STOP", "HELP", "ok", "start"])
def test_c11_an_arabic_writer_typing_a_latin_keyword_stays_in_arabic(
    typed: str, chat: ChatFactory
) -> None:
    c = chat()
    c.send("مرحبا")  # guessed Arabic from their writing
    result = c.send(typed)
    assert {r.language for r in result.replies} == {"ar"}
    assert c.state.language == "ar"
    # A sentence in Latin letters is their writing, and the default answers it (C11).
    c2 = chat()
    c2.send("مرحبا")
    assert c2.send("hmm, in English please").replies[0].language == "en"


def test_start_when_subscribed_says_what_they_receive_and_how_to_change_it(
    chat: ChatFactory,
) -> None:
    c = subscribed(chat)
    (reply,) = c.send("START").replies
    assert reply.purpose == "already_subscribed"
    assert "Order updates" in reply.body and "Offers" in reply.body and "STOP" in reply.body
    assert [b.id for b in reply.buttons] == ["optin:choose"]
    assert purposes(c.tap("optin:choose")) == ["category_prompt"]


def test_help_mid_dialogue_shows_the_pending_question_again(chat: ChatFactory) -> None:
    c = choosing(chat)
    help_reply, question = c.send("HELP").replies
    assert help_reply.purpose == "help"
    assert [b.id for b in question.buttons] == ["cat:offers:yes", "cat:offers:no"]
    assert [(ch.category, ch.granted) for ch in c.tap("cat:offers:yes").changes] == [
        ("offers", True)
    ]


def test_a_hint_turns_into_the_question_when_they_now_write_another_language(
    chat: ChatFactory,
) -> None:
    c = chat()
    c.send("مرحبا")
    (again,) = c.send("sorry, what is this?").replies
    assert (again.purpose, again.language) == ("prompt", "en")
    assert purposes(c.send("hmm")) == ["hint"]
