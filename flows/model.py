"""What a dialogue step takes and returns: what came in, where the contact stands, what to do."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from flows.policy import ConsentChange, ConsentSource, Purpose


class InboundKind(StrEnum):
    TEXT = "text"
    BUTTON = "button"  # an interactive button or list reply, or a template's quick-reply button
    MEDIA = "media"  # image, audio, video, document, sticker, location, contacts, order
    REACTION = "reaction"
    UNSUPPORTED = "unsupported"  # anything WhatsApp or we cannot read
    NOTICE = "notice"  # not the customer's words: a deletion, a system notice (C33)
    WELCOME = "welcome"  # the customer opened the chat for the first time (request_welcome)
    FLOW = "flow"  # a WhatsApp Flow's answer: the business's form, not one of our questions


@dataclass(frozen=True, slots=True, kw_only=True)
class Inbound:
    """One customer message, reduced to what the dialogue needs."""

    kind: InboundKind
    wamid: str
    timestamp: datetime
    text: str | None = None  # typed text, or the button's title
    reply_id: str | None = None  # interactive reply id, or a template button's payload
    from_ad: bool = False  # carried a click-to-WhatsApp ad referral: never consent (C03)
    context_wamid: str | None = None  # the message this one answers, as Meta reports it
    # Version of the text of the message answered (context_wamid), when it is one of ours.
    context_text_version: str | None = None
    # When we sent the message answered; set only when the caller found it among the messages
    # we sent to this very contact, so it is also what makes context_wamid evidence (C24).
    context_sent_at: datetime | None = None
    in_group: bool = False  # written in a group chat: may only withdraw, never answered (C31)
    edited: bool = False  # an edit of an earlier message: may only withdraw (C32)
    # A WhatsApp Flow's answer to our preferences form: the form, set only when the caller found
    # it among the forms we sent this very contact (C24), and the categories ticked in the
    # answer (None: the answer is not shaped as our form's).
    form: SentForm | None = None
    form_ticked: frozenset[str] | None = None

    @property
    def verified_context(self) -> str | None:
        """The message this one answers, if we can prove we sent it to this contact (C24)."""
        return self.context_wamid if self.context_sent_at is not None else None

    @property
    def evidence(self) -> dict[str, str]:
        """The ids that prove a decision made by this message (C12, C24)."""
        pairs = (("reply_wamid", self.wamid), ("prompt_wamid", self.verified_context))
        return {key: value for key, value in pairs if value}

    @property
    def own_words(self) -> str:
        """What the person sent, as the ledger text of a decision in their own words."""
        return self.text or self.reply_id or ""


class Stage(StrEnum):
    NEW = "new"
    ASKED = "asked"  # the consent prompt is shown
    CHOOSING = "choosing"  # one category at a time
    SUBSCRIBED = "subscribed"  # granted at least one category
    DECLINED = "declined"  # answered, granted nothing
    STOPPED = "stopped"  # sent STOP: silence until they opt in again (C07)
    STOP_ASKED = "stop_asked"  # asked whether they meant to stop (C21)


@dataclass(frozen=True, slots=True, kw_only=True)
class Sent:
    """A question we sent this contact, as the outbound log records it: what a typed answer
    answers and cites as evidence (C24)."""

    wamid: str | None  # Meta's id for it; None until the dispatcher has sent it
    text_version: str | None
    sent_at: datetime  # when it was queued, on the same clock as DialogueState.withdrawn_at
    message_id: str | None = None  # our id for it in the conversation log


@dataclass(frozen=True, slots=True, kw_only=True)
class SentForm:
    """Our preferences form as the outbound log records it: exactly what the person saw."""

    token: str  # the flow_token it was sent with, which its answer carries back
    text: str  # the message and the form, as shown (Reply.shown_text)
    text_version: str | None
    sent_at: datetime  # when it was queued, on the clock of DialogueState.withdrawn_at
    offered: tuple[str, ...]  # the categories it had a checkbox for, in its order
    wamid: str | None = None  # Meta's id for it; None until the dispatcher has sent it
    message_id: str | None = None  # our id for it in the conversation log


@dataclass(frozen=True, slots=True, kw_only=True)
class DialogueState:
    """A contact's place in the dialogue, stored between messages."""

    stage: Stage = Stage.NEW
    language: str | None = None  # the contact's language, once known
    language_chosen: bool = False  # chosen with ENGLISH / العربية, not guessed from their writing
    pending: tuple[str, ...] = ()  # categories still to ask while CHOOSING, offered in STOP_ASKED
    prompt_version: str | None = None  # version of the last consent prompt shown
    asked_at: datetime | None = None  # when that prompt was shown (expires after 24 h)
    reprompts: int = 0  # consecutive inputs with no transition
    granted: frozenset[str] = frozenset()  # current consent, derived from the ledger
    # Granted off WhatsApp, still awaiting the tap on the double opt-in template (C28).
    awaiting_confirmation: frozenset[str] = frozenset()
    # The question the polite "cannot read that" was given for: once per question, not per message.
    unreadable_for: str | None = None
    # Asked for on the hosted page, granted only by the template's doi:yes tap (C28).
    requested: RequestedOptIn | None = None
    # The source tag of the link or QR code the conversation was opened with.
    entry_point: str | None = None
    # From the outbound log, like granted from the ledger: the last question that went out, and
    # when a withdrawal was last confirmed (it retires every question sent before it, C23).
    last_question: Sent | None = None
    withdrawn_at: datetime | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestedOptIn:
    """A choice made off WhatsApp that nothing has granted yet: the tap grants exactly these
    categories, with the source, the exact text the person saw and its evidence."""

    categories: tuple[str, ...]
    text: str
    source: ConsentSource = ConsentSource.WEB
    evidence: Mapping[str, str] = field(default_factory=dict)  # entry_point, client, ...


@dataclass(frozen=True, slots=True, kw_only=True)
class Button:
    id: str
    title: str  # at most 20 characters (Meta's limit)


@dataclass(frozen=True, slots=True, kw_only=True)
class FormChoice:
    id: str  # the category
    title: str
    description: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Form:
    """A WhatsApp Flow form we fill in: a checkbox per category, the ones granted ticked."""

    cta: str  # the button that opens it: at most 20 characters (Meta's limit)
    heading: str
    intro: str
    label: str  # above the checkboxes
    submit: str
    choices: tuple[FormChoice, ...]
    ticked: tuple[str, ...] = ()

    @property
    def shown_text(self) -> str:
        """The form's wording. Which boxes are ticked is the person's state, not the wording:
        leaving it out keeps one version per wording, as for the prompt (C19)."""
        boxes = [f"☐ {c.title}: {c.description}" for c in self.choices]
        return "\n".join([self.heading, self.intro, "", self.label, *boxes, f"[{self.submit}]"])


@dataclass(frozen=True, slots=True, kw_only=True)
class Reply:
    """A message to send back. Buttons make it an interactive reply-button message, a form a
    WhatsApp Flow message."""

    body: str
    buttons: tuple[Button, ...] = ()
    menu: str | None = None  # set: the buttons are sent as the rows of a list, behind this label
    form: Form | None = None
    purpose: Purpose = Purpose.INFO
    language: str = "en"

    @property
    def text_version(self) -> str:
        from flows.versioning import text_version

        return text_version(self.shown_text)

    @property
    def shown_text(self) -> str:
        """Exactly what the person sees: the body and the button titles, or the form."""
        if self.form is not None:
            return f"{self.body}\n[{self.form.cta}]\n\n{self.form.shown_text}"
        if not self.buttons:
            return self.body
        return self.body + "\n" + "\n".join(f"[{b.title}]" for b in self.buttons)


@dataclass(frozen=True, slots=True, kw_only=True)
class StepResult:
    state: DialogueState
    changes: tuple[ConsentChange, ...] = ()
    replies: tuple[Reply, ...] = ()
