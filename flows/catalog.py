"""The business's company details and message categories, as read from the OPTIN_CONFIG file."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True, kw_only=True)
class Company:
    name: str
    support: str
    privacy_url: str | None = None
    languages: tuple[str, ...] = ("en",)
    # The number customers write to, E.164 digits without "+": wa.me links and QR codes use it.
    whatsapp_number: str | None = None

    @property
    def default_language(self) -> str:
        return self.languages[0]


@dataclass(frozen=True, slots=True, kw_only=True)
class Category:
    id: str
    marketing: bool
    title: Mapping[str, str]
    description: Mapping[str, str]
    keywords: tuple[str, ...] = ()

    def title_in(self, language: str) -> str:
        return self.title.get(language) or next(iter(self.title.values()))

    def description_in(self, language: str) -> str:
        return self.description.get(language) or self.title_in(language)


@dataclass(frozen=True, slots=True, kw_only=True)
class DoubleOptIn:
    """Consent captured off WhatsApp is confirmed by an approved utility template's buttons."""

    enabled: bool = False
    template: str | None = None
    language: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class WebOptIn:
    """The hosted opt-in page (GET/POST /optin); it needs the double opt-in template."""

    enabled: bool = False
    # Sites allowed to show the page in a frame (CSP frame-ancestors), e.g. "https://shop.example".
    embed_origins: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class PreferencesFlow:
    """PREFERENCES as a WhatsApp Flow: a native form with a checkbox per category, once the
    business has published the Flow JSON (`flask flows export`) and named it here."""

    flow_id: str | None = None  # the published Flow's id in WhatsApp Manager; None: buttons

    @property
    def enabled(self) -> bool:
        return self.flow_id is not None


@dataclass(frozen=True, slots=True, kw_only=True)
class Catalog:
    company: Company
    categories: tuple[Category, ...]
    double_opt_in: DoubleOptIn = field(default_factory=DoubleOptIn)
    web_optin: WebOptIn = field(default_factory=WebOptIn)
    preferences_flow: PreferencesFlow = field(default_factory=PreferencesFlow)

    def category(self, category_id: str) -> Category | None:
        return next((c for c in self.categories if c.id == category_id), None)

    def in_order(self, ids: frozenset[str]) -> tuple[str, ...]:
        """These ids in the order the categories are configured; unknown ones last, sorted."""
        known = tuple(c.id for c in self.categories if c.id in ids)
        return known + tuple(sorted(ids - set(known)))

    @property
    def category_ids(self) -> tuple[str, ...]:
        return tuple(c.id for c in self.categories)

    @property
    def marketing_ids(self) -> tuple[str, ...]:
        return tuple(c.id for c in self.categories if c.marketing)
