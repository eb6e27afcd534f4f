"""The dialogue's table: every entry a signal of it, each stage's case when none applies, and
the rules that hold across it (C03, C05, C07, C13, C28)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flows.catalog import Catalog, Category
from flows.confirmations import confirm_double_opt_in, decline_double_opt_in
from flows.dialogue import ANY, NO_TRANSITION, TRANSITIONS, marketing_preference, step, transition
from flows.evidence import prompt_is_live, question_is_live
from flows.keywords import Intent, match_keyword
from flows.model import DialogueState, Inbound, InboundKind, Sent, Stage, StepResult
from flows.policy import META_OPT_OUT_TEXT, ConsentSource
from flows.render import render_prompt
from flows.signals import DOI_YES, Signal
from flows.transitions import (
    accept_all,
    accept_category,
    show_prompt,
    silence,
)
from flows.turn import Guarded
from flows.versioning import text_version
from flows.withdrawals import stop_promotions

from .conftest import (
    BOTH,
    NOW,
    STAGE_SETUPS,
    Chat,
    ChatFactory,
    asked,
    purposes,
    stopped,
    subscribed,
)

# --- the table -----------------------------------------------------------------------------------


def test_every_signal_but_other_has_a_declared_transition() -> None:
    declared = {signal for _, signal in TRANSITIONS}
    # OTHER has no transition anywhere: it always takes the stage's explicit no-transition case.
    assert declared == set(Signal) - {Signal.OTHER}


def test_every_grant_answering_our_questions_is_behind_a_liveness_guard() -> None:
    guards = {accept_all: prompt_is_live, accept_category: question_is_live}
    for key, handler in TRANSITIONS.items():
        assert handler not in guards, f"{key} grants without checking the question is live"
        if isinstance(handler, Guarded) and handler.then in guards:
            assert handler.guard is guards[handler.then], key


def test_lookup_takes_the_stages_row_then_the_any_row_then_the_stages_case() -> None:
    assert transition(Stage.STOPPED, Signal.ALL_NO) is silence
    assert transition(Stage.ASKED, Signal.ALL_NO) is TRANSITIONS[(ANY, Signal.ALL_NO)]
    for stage in Stage:
        assert transition(stage, Signal.OTHER) is NO_TRANSITION[stage]


def test_c03_c13_c28_ads_stop_promotions_and_double_opt_in_are_rows_of_the_table() -> None:
    assert transition(Stage.SUBSCRIBED, Signal.STOP_PROMOTIONS) is stop_promotions
    assert transition(Stage.STOPPED, Signal.STOP_PROMOTIONS) is stop_promotions
    assert transition(Stage.NEW, Signal.DOI_YES) is confirm_double_opt_in
    assert transition(Stage.STOPPED, Signal.DOI_NO) is decline_double_opt_in
    for stage in Stage:
        expected = silence if stage is Stage.STOPPED else show_prompt
        assert transition(stage, Signal.FROM_AD) is expected, stage


# --- C03: a click-to-WhatsApp ad is never consent ------------------------------------------------


@pytest.mark.parametrize("typed", ["yes", "Yes, subscribe me to offers", "نعم", "Hi!"])
def test_c03_message_from_an_ad_is_never_consent(typed: str, chat: ChatFactory) -> None:
    c = asked(chat)  # even with a live prompt on screen
    result = c.send(typed, from_ad=True)
    assert result.changes == ()
    assert purposes(result) == ["prompt"]
    assert c.state.stage is Stage.ASKED


def test_c03_button_from_an_ad_is_never_consent(chat: ChatFactory) -> None:
    c = asked(chat)
    result = c.tap("optin:yes", from_ad=True)
    assert result.changes == ()
    assert purposes(result) == ["prompt"]


def test_c03_first_contact_from_an_ad_gets_the_prompt(chat: ChatFactory) -> None:
    c = chat()
    result = c.send("I saw your ad, tell me more", from_ad=True)
    assert purposes(result) == ["prompt"]
    assert c.state.stage is Stage.ASKED


def test_c03_stop_from_an_ad_is_honoured(chat: ChatFactory) -> None:
    c = subscribed(chat)
    result = c.send("STOP", from_ad=True)
    assert {ch.category for ch in result.changes} == BOTH
    assert c.state.stage is Stage.STOPPED


def test_c03_c07_ad_message_after_stop_gets_nothing(chat: ChatFactory) -> None:
    c = stopped(chat)
    result = c.send("Hello from the ad", from_ad=True)
    assert result.replies == () and result.changes == ()


AD_PHOTO = Inbound(kind=InboundKind.MEDIA, wamid="wamid.ad", timestamp=NOW, from_ad=True)


@pytest.mark.parametrize("stage", list(Stage))
@pytest.mark.parametrize(
    "message",
    [
        lambda c: c.send("yes", from_ad=True),
        lambda c: c.send("Hi!", from_ad=True),
        lambda c: c.tap("optin:yes", from_ad=True),
        lambda c: c.tap("cat:offers:yes", from_ad=True),
        lambda c: c.tap(DOI_YES, from_ad=True),
        lambda c: c.deliver(AD_PHOTO),
    ],
)
def test_c03_from_an_ad_anything_but_a_keyword_is_a_first_contact_in_every_stage(
    stage: Stage, message: Callable[[Chat], StepResult], chat: ChatFactory
) -> None:
    c = STAGE_SETUPS[stage](chat)
    c.state = replace(c.state, awaiting_confirmation=frozenset({"offers"}))
    granted = c.state.granted
    result = message(c)
    assert result.changes == ()
    assert c.state.granted == granted
    if stage is Stage.STOPPED:
        assert result.replies == ()  # C07: silence until they opt in again
    else:
        assert purposes(result) == ["prompt"]
        assert c.state.stage is Stage.ASKED


# --- C05: keywords from every stage --------------------------------------------------------------


STOP_FORMS = [
    " stop ",
    "Stop!",
    "Ｓｔｏｐ",
    "إِلْغَاء",
    "ـإلغـاء",
    "\u200fالغاء\u200f",
    "الغاء الاشتراك",
    "OPT-OUT",
]


@pytest.mark.parametrize("stage", list(Stage))
@pytest.mark.parametrize("typed", STOP_FORMS)
def test_c05_c07_stop_works_from_every_stage(stage: Stage, typed: str, chat: ChatFactory) -> None:
    c = STAGE_SETUPS[stage](chat)
    granted_before = c.state.granted
    result = c.send(typed)
    if stage is Stage.STOPPED:
        # Already stopped, nothing granted: the first STOP's one confirmation stands (C07).
        assert result.replies == () and result.changes == ()
        assert (c.state.stage, c.state.granted) == (Stage.STOPPED, frozenset())
        return
    assert {ch.category for ch in result.changes} == granted_before
    assert all(not ch.granted for ch in result.changes)
    assert purposes(result) == ["stop"]
    assert c.state.stage is Stage.STOPPED
    assert c.state.granted == frozenset()


# The question each stage has open; HELP shows it again under the help.
OPEN_QUESTION = {
    Stage.ASKED: "prompt",
    Stage.CHOOSING: "category_prompt",
    Stage.STOP_ASKED: "stop_question",
}


@pytest.mark.parametrize("stage", list(Stage))
@pytest.mark.parametrize("typed", ["HELP", "info", "مساعدة", "المساعدة؟"])
def test_c05_c10_help_works_from_every_stage_and_changes_nothing(
    stage: Stage, typed: str, chat: ChatFactory
) -> None:
    c = STAGE_SETUPS[stage](chat)
    before = c.state
    result = c.send(typed)
    question = [OPEN_QUESTION[stage]] if stage in OPEN_QUESTION else []
    assert purposes(result) == ["help", *question]
    assert result.changes == ()
    assert c.state.stage is before.stage
    assert c.state.granted == before.granted
    assert c.state.pending == before.pending


@pytest.mark.parametrize("stage", list(Stage))
@pytest.mark.parametrize("typed", ["START", "ابدأ", "subscribe"])
def test_c05_c09_start_shows_the_prompt_from_every_stage_and_grants_nothing(
    stage: Stage, typed: str, chat: ChatFactory
) -> None:
    c = STAGE_SETUPS[stage](chat)
    before = c.state.granted
    result = c.send(typed)
    assert result.changes == ()
    assert c.state.granted == before
    if stage is Stage.SUBSCRIBED:
        # Already subscribed: what they receive and how to change it, not the prompt again.
        assert purposes(result) == ["already_subscribed"]
        assert c.state.stage is Stage.SUBSCRIBED
        return
    assert purposes(result) == ["prompt"]
    assert c.state.stage is Stage.ASKED


@pytest.mark.parametrize("stage", list(Stage))
@pytest.mark.parametrize("typed", ["PREFERENCES", "settings", "الإعدادات", "تفضيلات"])
def test_c05_preferences_works_from_every_stage(
    stage: Stage, typed: str, chat: ChatFactory
) -> None:
    c = STAGE_SETUPS[stage](chat)
    before = c.state
    result = c.send(typed)
    assert purposes(result) == ["preferences"]
    assert result.changes == ()
    assert (c.state.stage, c.state.granted) == (before.stage, before.granted)


# --- C07: silence after STOP ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "message",
    [
        lambda c: c.send("hello?"),
        lambda c: c.send("yes"),
        lambda c: c.send("stop offers"),
        lambda c: c.tap("optin:no"),
        lambda c: c.tap("cat:offers:no"),
        lambda c: c.tap("some:other:button"),
        lambda c: c.media(),
        lambda c: c.media(InboundKind.REACTION),
        lambda c: c.media(InboundKind.UNSUPPORTED),
    ],
)
def test_c07_after_stop_nothing_is_sent(
    message: Callable[[Chat], StepResult], chat: ChatFactory
) -> None:
    c = stopped(chat)
    result = message(c)
    assert result.replies == ()
    assert result.changes == ()
    assert c.state.stage is Stage.STOPPED


def test_c07_many_messages_after_stop_stay_silent(chat: ChatFactory) -> None:
    c = stopped(chat)
    for _ in range(5):
        assert c.send("why?").replies == ()


# --- C13: Meta's marketing opt-out ---------------------------------------------------------------


def test_c13_meta_stop_withdraws_every_granted_marketing_category(catalog: Catalog) -> None:
    state = DialogueState(stage=Stage.SUBSCRIBED, granted=BOTH)
    evidence = {"webhook": "user_preferences"}
    result = marketing_preference(state, "stop", catalog, NOW, evidence)
    (change,) = result.changes
    assert (change.category, change.granted, change.source) == ("offers", False, ConsentSource.META)
    assert change.text == META_OPT_OUT_TEXT
    assert change.text_version == text_version(META_OPT_OUT_TEXT)
    assert change.occurred_at == NOW
    assert change.evidence == evidence
    assert result.state.granted == frozenset({"orders"})
    assert result.state.stage is Stage.SUBSCRIBED
    assert result.replies == ()


def test_c13_meta_stop_covers_every_marketing_category(catalog: Catalog) -> None:
    extra = Category(id="events", marketing=True, title={"en": "Events"}, description={})
    wide = replace(catalog, categories=(*catalog.categories, extra))
    state = DialogueState(stage=Stage.SUBSCRIBED, granted=frozenset({"offers", "events"}))
    result = marketing_preference(state, "stop", wide, NOW, {})
    assert {ch.category for ch in result.changes} == {"offers", "events"}
    assert result.state.stage is Stage.DECLINED


def test_c13_meta_stop_without_marketing_consent_records_nothing(catalog: Catalog) -> None:
    state = DialogueState(stage=Stage.SUBSCRIBED, granted=frozenset({"orders"}))
    result = marketing_preference(state, "stop", catalog, NOW, {})
    assert result.changes == ()
    assert result.state == state


def test_c13_the_stop_promotions_button_is_metas_opt_out_not_a_keyword(chat: ChatFactory) -> None:
    c = subscribed(chat)
    # Tapped on a marketing template we sent this contact.
    result = c.tap(
        "Stop promotions",
        text="Stop promotions",
        context_wamid="wamid.TEMPLATE",
        context_sent_at=NOW,
    )
    (change,) = result.changes
    assert (change.category, change.granted, change.source) == ("offers", False, ConsentSource.META)
    assert change.evidence == {"reply_wamid": c.last_in.wamid, "prompt_wamid": "wamid.TEMPLATE"}
    assert result.replies == ()
    # Typed, the same words are the customer's own STOP for that category.
    typed = subscribed(chat).send("Stop promotions")
    assert [ch.source for ch in typed.changes] == [ConsentSource.WHATSAPP]


def test_c13_meta_resume_is_not_consent(catalog: Catalog) -> None:
    state = DialogueState(stage=Stage.DECLINED)
    result = marketing_preference(state, "resume", catalog, NOW, {})
    assert result == StepResult(state=state)


@pytest.mark.parametrize("stage", list(Stage))
def test_c13_the_stop_promotions_button_works_from_every_stage(
    stage: Stage, chat: ChatFactory
) -> None:
    c = STAGE_SETUPS[stage](chat)
    before = c.state
    result = c.tap("Stop promotions", text="Stop promotions")
    expected = [("offers", False, ConsentSource.META)] if "offers" in before.granted else []
    assert [(ch.category, ch.granted, ch.source) for ch in result.changes] == expected
    assert all(ch.text == META_OPT_OUT_TEXT for ch in result.changes)
    assert result.replies == ()
    assert c.state.granted == before.granted - {"offers"}
    assert (c.state.stage, c.state.pending) == (before.stage, before.pending)


def test_c13_stop_promotions_withdrawing_the_last_category_leaves_the_contact_declined(
    chat: ChatFactory,
) -> None:
    c = subscribed(chat)
    c.send("stop orders")
    c.tap("Stop promotions", text="Stop promotions")
    assert c.state.granted == frozenset()
    assert c.state.stage is Stage.DECLINED


def test_c03_c13_stop_promotions_from_an_ad_is_honoured(chat: ChatFactory) -> None:
    c = subscribed(chat)
    result = c.tap("Stop promotions", text="Stop promotions", from_ad=True)
    assert [(ch.category, ch.source) for ch in result.changes] == [("offers", ConsentSource.META)]


# --- properties ----------------------------------------------------------------------------------


_settings = settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=200)


@_settings
@given(text=st.text(max_size=40), stage=st.sampled_from(list(Stage)))
def test_c02_no_typed_message_but_a_yes_ever_grants(
    text: str, stage: Stage, catalog: Catalog
) -> None:
    version = render_prompt(catalog, "en").text_version
    state = DialogueState(
        stage=stage,
        pending=("offers",) if stage is Stage.CHOOSING else (),
        prompt_version=version,
        asked_at=NOW,
        # The prompt went out: a typed yes would be consent, so anything else being none is news.
        last_question=Sent(wamid="wamid.prompt", text_version=version, sent_at=NOW),
    )
    event = Inbound(kind=InboundKind.TEXT, wamid="w", timestamp=NOW, text=text)
    result = step(state, event, catalog, NOW)
    match = match_keyword(text, catalog)
    if match is None or match.intent is not Intent.YES:
        assert not any(ch.granted for ch in result.changes)
    # One reply per message; HELP during a question also shows that question again under it.
    help_mid_question = match is not None and match.intent is Intent.HELP and stage in OPEN_QUESTION
    assert len(result.replies) <= (2 if help_mid_question else 1)


@_settings
@given(
    text=st.one_of(st.none(), st.text(max_size=20)),
    reply_id=st.one_of(
        st.none(), st.sampled_from(["optin:yes", "cat:orders:yes", "cat:offers:yes"])
    ),
    stage=st.sampled_from(list(Stage)),
)
def test_c03_nothing_from_an_ad_ever_grants(
    text: str | None, reply_id: str | None, stage: Stage, catalog: Catalog
) -> None:
    prompt = render_prompt(catalog, "en")
    state = DialogueState(stage=stage, prompt_version=prompt.text_version, asked_at=NOW)
    event = Inbound(
        kind=InboundKind.BUTTON if reply_id else InboundKind.TEXT,
        wamid="w",
        timestamp=NOW,
        text=text,
        reply_id=reply_id,
        from_ad=True,
        context_text_version=prompt.text_version,
    )
    result = step(state, event, catalog, NOW)
    assert not any(ch.granted for ch in result.changes)
