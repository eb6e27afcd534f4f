"""The consent rules at their edges: the cases each rule's main tests do not reach, through
step() as the webhook drives it."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from flows.catalog import Catalog
from flows.model import DialogueState, Stage
from flows.render import render_prompt
from flows.signals import DOI_YES
from flows.turn import when

from .conftest import (
    BOTH,
    NOW,
    ChatFactory,
    asked,
    build_catalog,
    choosing,
    purposes,
    stop_asked,
    stopped,
    subscribed,
)

# --- C07: after STOP, silence; but a stop of something granted since is honoured ----------------


def test_c07_a_stop_after_stop_withdraws_what_was_granted_off_whatsapp_since(
    chat: ChatFactory,
) -> None:
    c = stopped(chat)
    c.state = replace(c.state, granted=frozenset({"orders"}))  # recorded through the API since
    result = c.send("STOP")
    assert [(ch.category, ch.granted) for ch in result.changes] == [("orders", False)]
    assert purposes(result) == ["stop"]
    assert c.state.granted == frozenset()


def test_c07_after_stop_a_stop_of_a_category_not_granted_gets_no_second_confirmation(
    chat: ChatFactory,
) -> None:
    c = stopped(chat)
    c.state = replace(c.state, granted=frozenset({"orders"}))
    result = c.send("STOP offers")  # offers is not granted; orders is
    assert result.replies == () and result.changes == ()
    assert c.state.granted == frozenset({"orders"})


# --- C21: the one-tap question and the words that stop -----------------------------------------


def test_c21_the_stop_question_offers_a_category_only_when_there_is_a_choice(
    chat: ChatFactory,
) -> None:
    only_orders = DialogueState(stage=Stage.SUBSCRIBED, granted=frozenset({"orders"}))
    for words in ("too many messages", "you send way too many offers"):
        (question,) = chat(only_orders).send(words).replies
        assert [b.id for b in question.buttons] == ["stopask:all", "stopask:keep"], words
    (question,) = subscribed(chat).send("too many messages").replies
    assert [b.id for b in question.buttons] == [
        "stopask:all",
        "stopask:orders",
        "stopask:offers",
        "stopask:keep",
    ]


def test_c21_a_clear_stop_naming_every_category_stops_everything(chat: ChatFactory) -> None:
    c = subscribed(chat)
    result = c.send("stop sending me offers and order updates")
    assert purposes(result) == ["stop"]  # one confirmation of a full stop, as STOP gets (C07)
    assert {ch.category for ch in result.changes if not ch.granted} == BOTH
    assert c.state.stage is Stage.STOPPED


def test_c21_the_tap_to_stop_one_category_is_read_by_its_id_not_its_title(
    chat: ChatFactory,
) -> None:
    c = subscribed(chat)
    # A list row may come back with a title that is no stop at all.
    result = c.tap("stopask:offers", text="Offers")
    assert [(ch.category, ch.granted) for ch in result.changes] == [("offers", False)]
    assert purposes(result) == ["stop_category"]


def test_c21_a_yes_to_an_earlier_category_question_closes_the_stop_question(
    chat: ChatFactory,
) -> None:
    c = choosing(chat)
    c.tap("cat:offers:yes")
    c.send("too many messages")
    assert (c.state.stage, c.state.pending) == (Stage.STOP_ASKED, ("orders", "offers"))
    result = c.tap("cat:offers:yes")  # the offers question above is still live: a yes
    assert purposes(result) == ["confirmation"]
    assert (c.state.stage, c.state.pending) == (Stage.SUBSCRIBED, ())
    assert c.state.granted == BOTH


def test_c21_a_button_of_the_business_naming_a_category_is_no_stop(chat: ChatFactory) -> None:
    # Only stopask:<category> is the tap that stops one; a template's own payload is not.
    c = subscribed(chat)
    result = c.tap("promo:offers", text="Show me offers")
    assert result.changes == ()
    assert c.state.granted == BOTH


def test_c21_once_the_stop_question_is_answered_nothing_is_left_pending(
    chat: ChatFactory,
) -> None:
    c = stop_asked(chat)
    assert c.state.pending == ("orders", "offers")
    c.tap("stopask:keep")
    assert (c.state.stage, c.state.pending) == (Stage.SUBSCRIBED, ())
    assert c.state.granted == BOTH


# --- C11: the contact's language ---------------------------------------------------------------


def test_c11_a_template_buttons_title_says_nothing_of_the_contacts_language(
    chat: ChatFactory,
) -> None:
    # Written in Arabic before; the double opt-in template's button reads "Confirm" in English.
    awaiting = DialogueState(
        language="ar", granted=frozenset({"offers"}), awaiting_confirmation=frozenset({"offers"})
    )
    c = chat(awaiting)
    (confirmation,) = c.tap(DOI_YES, text="Confirm").replies
    assert confirmation.language == "ar"


def test_c11_a_chosen_language_stays_whatever_they_write_in(chat: ChatFactory) -> None:
    c = asked(chat)
    c.send("ENGLISH")
    assert c.state.language_chosen
    (reply,) = c.send("مرحبا كيف الحال").replies
    assert reply.language == "en"


def test_c11_a_company_with_no_language_we_have_texts_for_is_answered_in_english(
    chat: ChatFactory,
) -> None:
    french = build_catalog(languages=("fr",))
    (prompt,) = chat(catalog=french).send("Bonjour").replies
    assert (prompt.purpose, prompt.language) == ("prompt", "en")
    assert prompt.body == render_prompt(french, "en").body


# --- C02, C04, C19, C23: answers to our questions ----------------------------------------------


def test_c02_yes_to_all_on_the_live_prompt_while_choosing_grants_all_and_ends_the_questions(
    chat: ChatFactory,
) -> None:
    c = choosing(chat)
    result = c.tap("optin:yes")  # the prompt above is still current and within its lifetime
    assert {(ch.category, ch.granted) for ch in result.changes} == {
        ("orders", True),
        ("offers", True),
    }
    assert purposes(result) == ["confirmation"]  # not the offers question
    assert (c.state.stage, c.state.pending) == (Stage.SUBSCRIBED, ())


def test_c04_no_to_all_on_the_earlier_prompt_while_choosing_ends_the_questions(
    chat: ChatFactory,
) -> None:
    c = choosing(chat)  # orders granted, offers still to be asked
    result = c.tap("optin:no")
    assert [(ch.category, ch.granted) for ch in result.changes] == [
        ("orders", False),
        ("offers", False),
    ]
    assert purposes(result) == ["declined"]  # not the offers question
    assert (c.state.stage, c.state.pending) == (Stage.DECLINED, ())


def test_c19_a_no_on_an_outdated_category_question_is_honoured_in_the_persons_words(
    chat: ChatFactory,
) -> None:
    c = choosing(chat)
    result = c.tap("cat:offers:no", text="No thanks", context_text_version="an old wording")
    (change,) = result.changes
    assert (change.category, change.granted, change.text) == ("offers", False, "No thanks")
    assert c.state.stage is Stage.SUBSCRIBED  # orders was granted before


def test_c02_a_typed_yes_stamped_within_metas_rounding_before_the_prompt_answers_it(
    chat: ChatFactory,
) -> None:
    # Meta's timestamps are whole seconds: up to 2 s before the prompt went out is after it.
    sent_at = NOW  # asked() shows the prompt at NOW
    assert len(asked(chat).send("yes", timestamp=sent_at - timedelta(seconds=2)).changes) == 2
    earlier = asked(chat).send("yes", timestamp=sent_at - timedelta(seconds=2, microseconds=1))
    assert earlier.changes == ()  # written before the question: "hi" and "yes" in a burst
    assert purposes(earlier) == ["prompt"]


def test_c23_a_prompt_sent_at_the_very_moment_of_a_withdrawal_is_retired(
    chat: ChatFactory, catalog: Catalog
) -> None:
    c = subscribed(chat)
    c.send("STOP")
    assert c.state.withdrawn_at is not None
    prompt = render_prompt(catalog, "en")
    result = c.tap(
        "optin:yes",
        context_wamid="wamid.SAME.INSTANT",
        context_text_version=prompt.text_version,
        context_sent_at=c.state.withdrawn_at,
    )
    assert result.changes == ()
    assert purposes(result) == ["prompt"]  # the current prompt instead
    later = c.tap(
        "optin:yes",
        context_wamid="wamid.AFTER",
        context_text_version=prompt.text_version,
        context_sent_at=c.state.withdrawn_at + timedelta(microseconds=1),
    )
    assert {ch.category for ch in later.changes if ch.granted} == BOTH


# --- the polite answer to what cannot be read: once per question, each question earns one -------


def test_each_new_question_earns_one_polite_answer_to_a_picture(chat: ChatFactory) -> None:
    c = asked(chat)
    assert purposes(c.media()) == ["unreadable"]
    assert c.media().replies == ()
    c.wait(timedelta(minutes=1))
    c.send("START")  # the prompt again: a new question on screen
    assert purposes(c.media()) == ["unreadable"]
    c.tap("optin:choose")
    assert purposes(c.media()) == ["unreadable"]
    c.tap("cat:orders:yes")  # the next category is asked at the same instant
    assert c.state.pending == ("offers",)
    assert purposes(c.media()) == ["unreadable"]
    assert c.media().replies == ()


def test_a_guarded_transition_takes_the_named_alternative_when_its_guard_fails() -> None:
    seen: list[str] = []

    def then(turn):  # type: ignore[no-untyped-def]
        seen.append("then")
        return "then"

    def otherwise(turn):  # type: ignore[no-untyped-def]
        seen.append("otherwise")
        return "otherwise"

    yes = when(lambda turn: turn == "open", then, otherwise=otherwise)
    assert yes("open") == "then"  # type: ignore[arg-type]
    assert yes("closed") == "otherwise"  # type: ignore[arg-type]
    assert seen == ["then", "otherwise"]
