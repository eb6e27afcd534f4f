"""What the hosted opt-in page says, in every language it is offered in, and the page's text as
the ledger keeps it: the same strings the template shows, so the record is what was read."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from flows.catalog import Catalog
from flows.versioning import text_version

WORDS: Mapping[str, Mapping[str, str]] = MappingProxyType(
    {
        "en": MappingProxyType(
            {
                "heading": "Get messages from {company} on WhatsApp",
                "intro": "Choose the messages you would like {company} to send you on "
                "WhatsApp. Nothing is ticked for you.",
                "legend": "Messages",
                "phone_label": "Your WhatsApp number",
                "phone_hint": "With your country code, for example +971 50 123 4567",
                "notice": "We will send a message to this number on WhatsApp. You start "
                "receiving the messages you chose only when you tap “Yes” in it. You can stop "
                "at any time by sending STOP.",
                "privacy": "How we handle your data: {privacy_url}",
                "support": "Questions: {support}",
                "submit": "Send me the confirmation on WhatsApp",
                "sent_title": "Confirm on WhatsApp",
                "sent_body": "If this number is on WhatsApp, {company} has sent you a message "
                "there. Tap “Yes” in it to confirm your choice. Until you do, you will receive "
                "nothing.",
                "error_title": "Please check the form",
                "no_category": "Tick at least one kind of message.",
                "bad_phone": "This does not look like a phone number. Enter it with your "
                "country code, for example +971 50 123 4567.",
                "expired": "This page had expired. Please check your choices and send them again.",
                "changed": "This page was updated while it was open. Please check your choices "
                "again.",
                "too_many": "Too many attempts. Please try again later.",
                "unavailable": "The confirmation cannot be sent right now. Please try again later.",
                "closed": "This page is not available.",
                "language_name": "English",
            }
        ),
        "ar": MappingProxyType(
            {
                "heading": "استلم رسائل {company} على واتساب",
                "intro": "اختر الرسائل التي تودّ أن تُرسلها إليك {company} على واتساب. "
                "لم نحدّد أي خيار نيابةً عنك.",
                "legend": "الرسائل",
                "phone_label": "رقم واتساب الخاص بك",
                "phone_hint": "مع رمز الدولة، مثلًا \u2066+971 50 123 4567\u2069",
                "notice": "سنرسل رسالة إلى هذا الرقم على واتساب. لن تبدأ بتلقّي الرسائل التي "
                "اخترتها إلا بعد أن تضغط «نعم» فيها. يمكنك الإيقاف في أي وقت بإرسال «توقف».",
                "privacy": "لمعرفة كيف نتعامل مع بياناتك: {privacy_url}",
                "support": "للاستفسارات: {support}",
                "submit": "أرسلوا لي التأكيد على واتساب",
                "sent_title": "أكّد على واتساب",
                "sent_body": "إذا كان هذا الرقم مسجّلًا على واتساب، فقد أرسلت إليك {company} "
                "رسالة هناك. اضغط «نعم» فيها لتأكيد اختيارك. لن يصلك أي شيء قبل ذلك.",
                "error_title": "يُرجى مراجعة النموذج",
                "no_category": "اختر نوعًا واحدًا من الرسائل على الأقل.",
                "bad_phone": "لا يبدو هذا رقم هاتف. أدخله مع رمز الدولة، مثلًا "
                "\u2066+971 50 123 4567\u2069.",
                "expired": "انتهت صلاحية هذه الصفحة. يُرجى مراجعة اختياراتك وإرسالها مجددًا.",
                "changed": "تم تحديث هذه الصفحة أثناء فتحها. يُرجى مراجعة اختياراتك من جديد.",
                "too_many": "محاولات كثيرة. يُرجى المحاولة لاحقًا.",
                "unavailable": "لا يمكن إرسال التأكيد الآن. يُرجى المحاولة لاحقًا.",
                "closed": "هذه الصفحة غير متاحة.",
                "language_name": "العربية",
            }
        ),
    }
)
RTL = frozenset({"ar"})


@dataclass(frozen=True, slots=True, kw_only=True)
class Choice:
    id: str
    title: str
    description: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Page:
    """The page in one language: what the template renders and the ledger quotes."""

    language: str
    company: str
    heading: str
    intro: str
    legend: str
    choices: tuple[Choice, ...]
    phone_label: str
    phone_hint: str
    notice: str
    privacy: str
    privacy_url: str | None  # linked where the privacy line names it
    submit: str

    @property
    def direction(self) -> str:
        return "rtl" if self.language in RTL else "ltr"

    @property
    def text(self) -> str:
        """The page's consent wording exactly as shown, every category with its box."""
        lines = [self.heading, "", self.intro, "", f"{self.legend}:"]
        lines += [f"[ ] {c.title}: {c.description}" for c in self.choices]
        lines += ["", f"{self.phone_label} ({self.phone_hint})", "", self.notice, self.privacy]
        lines += ["", f"[{self.submit}]"]
        return "\n".join(lines)

    @property
    def version(self) -> str:
        return text_version(self.text)


def words(language: str) -> Mapping[str, str]:
    return WORDS.get(language) or WORDS["en"]


def page(catalog: Catalog, language: str) -> Page:
    company = catalog.company
    said = words(language)
    privacy = (
        said["privacy"].format(privacy_url=company.privacy_url)
        if company.privacy_url
        else said["support"].format(support=company.support)
    )
    return Page(
        language=language,
        company=company.name,
        heading=said["heading"].format(company=company.name),
        intro=said["intro"].format(company=company.name),
        legend=said["legend"],
        choices=tuple(
            Choice(id=c.id, title=c.title_in(language), description=c.description_in(language))
            for c in catalog.categories
        ),
        phone_label=said["phone_label"],
        phone_hint=said["phone_hint"],
        notice=said["notice"],
        privacy=privacy,
        privacy_url=company.privacy_url,
        submit=said["submit"],
    )


def page_languages(catalog: Catalog) -> tuple[str, ...]:
    """The company's languages the page has words for, the default first."""
    offered = tuple(lang for lang in catalog.company.languages if lang in WORDS)
    return offered or ("en",)
