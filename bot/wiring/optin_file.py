"""Reads and validates the OPTIN_CONFIG file; a bad file stops start-up with file, line, problem."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import phonenumbers

from flows.catalog import Catalog, Category, Company, DoubleOptIn, PreferencesFlow, WebOptIn

CATEGORY_ID = re.compile(r"[a-z0-9_]{1,32}")
ORIGIN = re.compile(r"https?://[A-Za-z0-9.-]+(?::[0-9]{1,5})?")
FLOW_ID = re.compile(r"[0-9]{1,32}")  # Meta's Flow ids are numbers, sent as strings
HEADER = re.compile(r"^\s*\[\[?\s*([A-Za-z0-9_.]+)\s*\]\]?")


class OptinConfigError(ValueError):
    def __init__(self, path: Path, line: int | None, problem: str) -> None:
        self.path, self.line, self.problem = path, line, problem
        where = f"{path}:{line}" if line else str(path)
        super().__init__(f"{where}: {problem}")


def load_catalog(path: Path) -> Catalog:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise OptinConfigError(path, None, "file not found (set OPTIN_CONFIG)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise OptinConfigError(path, None, f"cannot be read: {exc}") from None
    return parse_catalog(text, path)


def parse_catalog(text: str, path: Path) -> Catalog:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        line = getattr(exc, "lineno", None) or _line_from_message(str(exc))
        problem = getattr(exc, "msg", None) or str(exc)
        raise OptinConfigError(path, line, f"not valid TOML: {problem}") from None
    return _Validator(text, path).catalog(data)


def _line_from_message(message: str) -> int | None:
    found = re.search(r"line (\d+)", message)
    return int(found.group(1)) if found else None


def _locate(lines: list[str], table: str | None, index: int, key: str | None) -> int | None:
    """Line of `key` inside the index-th `[table]`/`[[table]]` (or of the table header)."""
    start, seen = None, -1
    if table is None:
        start = 0
    else:
        for number, line in enumerate(lines):
            header = HEADER.match(line)
            if header and header.group(1) == table:
                seen += 1
                if seen == index:
                    start = number
                    break
    if start is None:
        return None
    if key is None:
        return start + 1
    key_line = re.compile(rf"^\s*{re.escape(key)}\s*=")
    for number in range(start + (table is not None), len(lines)):
        if table is not None and HEADER.match(lines[number]):
            break
        if key_line.match(lines[number]):
            return number + 1
    return start + 1 if table is not None else None


class _Validator:
    """Turns parsed TOML into a Catalog, pointing each problem at the line it comes from."""

    def __init__(self, text: str, path: Path) -> None:
        self.lines = text.splitlines()
        self.path = path

    def fail(self, problem: str, table: str | None = None, index: int = 0, key: str | None = None):
        raise OptinConfigError(self.path, _locate(self.lines, table, index, key), problem)

    def catalog(self, data: dict[str, Any]) -> Catalog:
        company_data = data.get("company")
        if not isinstance(company_data, dict):
            self.fail("missing [company] table")
        company = self.company(company_data)
        raw_categories = data.get("categories")
        if not isinstance(raw_categories, list) or not raw_categories:
            self.fail("at least one [[categories]] table is required")
        categories = tuple(
            self.category(entry, index, company.languages)
            for index, entry in enumerate(raw_categories)
        )
        ids = [c.id for c in categories]
        for index, category_id in enumerate(ids):
            if category_id in ids[:index]:
                self.fail(f"category id {category_id!r} is used twice", "categories", index, "id")
        double_opt_in = self.double_opt_in(data.get("double_opt_in"), company.languages)
        return Catalog(
            company=company,
            categories=categories,
            double_opt_in=double_opt_in,
            web_optin=self.web_optin(data.get("web_optin"), double_opt_in),
            preferences_flow=_preferences_flow(self, data.get("preferences_flow")),
        )

    def company(self, data: dict[str, Any]) -> Company:
        name = data.get("name")
        if not isinstance(name, str) or not name.strip():
            self.fail("company.name must be a non-empty string", "company", 0, "name")
        support = data.get("support")
        if not isinstance(support, str) or not support.strip():
            self.fail("company.support must be a non-empty string", "company", 0, "support")
        privacy_url = data.get("privacy_url")
        if privacy_url is not None and not isinstance(privacy_url, str):
            self.fail("company.privacy_url must be a string", "company", 0, "privacy_url")
        languages = data.get("languages", ["en"])
        if (
            not isinstance(languages, list)
            or not languages
            or not all(isinstance(x, str) and re.fullmatch(r"[a-z]{2}", x) for x in languages)
        ):
            self.fail(
                "company.languages must be a non-empty list of two-letter codes",
                "company",
                0,
                "languages",
            )
        unsupported = [x for x in languages if x not in ("en", "ar")]
        if unsupported:
            self.fail(
                f"company.languages: no texts for {', '.join(unsupported)} (supported: en, ar)",
                "company",
                0,
                "languages",
            )
        return Company(
            name=name.strip(),
            support=support.strip(),
            privacy_url=privacy_url,
            languages=tuple(languages),
            whatsapp_number=self.whatsapp_number(data.get("whatsapp_number")),
        )

    def whatsapp_number(self, value: Any) -> str | None:
        """E.164 digits of the number customers write to; wa.me links need the country code."""
        if value is None:
            return None
        problem = "company.whatsapp_number must be a phone number with its country code, "
        if not isinstance(value, str) or not value.strip():
            self.fail(problem + 'e.g. "+15550783881"', "company", 0, "whatsapp_number")
        try:
            number = phonenumbers.parse("+" + value.strip().lstrip("+"), None)
        except phonenumbers.NumberParseException:
            number = None
        if number is None or not phonenumbers.is_possible_number(number):
            self.fail(problem + f"not {value!r}", "company", 0, "whatsapp_number")
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)[1:]

    def category(self, data: Any, index: int, languages: tuple[str, ...]) -> Category:
        where = ("categories", index)
        if not isinstance(data, dict):
            self.fail(f"categories[{index}] must be a table", *where)
        category_id = data.get("id")
        if not isinstance(category_id, str) or not CATEGORY_ID.fullmatch(category_id):
            self.fail(
                f"categories[{index}].id must match [a-z0-9_]{{1,32}}, got {category_id!r}",
                *where,
                "id",
            )
        marketing = data.get("marketing", False)
        if not isinstance(marketing, bool):
            self.fail(
                f"category {category_id!r}: marketing must be true or false", *where, "marketing"
            )
        texts: dict[str, dict[str, str]] = {}
        for key in ("title", "description"):
            value = data.get(key)
            if key == "description" and value is None:
                value = {}
            if not isinstance(value, dict):
                self.fail(
                    f"category {category_id!r}: {key} must be a table of language = text",
                    *where,
                    key,
                )
            for language in languages:
                if key == "title" and not (
                    isinstance(value.get(language), str) and value[language].strip()
                ):
                    self.fail(f"category {category_id!r}: no {key} in {language!r}", *where, key)
            texts[key] = {k: v for k, v in value.items() if isinstance(v, str)}
            if key == "title" and any(len(v) > 20 for v in texts[key].values()):
                self.fail(
                    f"category {category_id!r}: titles are shown on buttons and must be "
                    "at most 20 characters",
                    *where,
                    key,
                )
        keywords = data.get("keywords", [])
        if not isinstance(keywords, list) or not all(isinstance(k, str) for k in keywords):
            self.fail(
                f"category {category_id!r}: keywords must be a list of strings", *where, "keywords"
            )
        return Category(
            id=category_id,
            marketing=marketing,
            title=texts["title"],
            description=texts["description"],
            keywords=tuple(keywords),
        )

    def double_opt_in(self, data: Any, languages: tuple[str, ...]) -> DoubleOptIn:
        if data is None:
            return DoubleOptIn()
        if not isinstance(data, dict):
            self.fail("[double_opt_in] must be a table", "double_opt_in")
        enabled = data.get("enabled", False)
        if not isinstance(enabled, bool):
            self.fail("double_opt_in.enabled must be true or false", "double_opt_in", 0, "enabled")
        template = data.get("template")
        language = data.get("language", languages[0])
        if enabled and not (isinstance(template, str) and template):
            self.fail(
                "double_opt_in.template (an approved utility template's name) is required "
                "when enabled",
                "double_opt_in",
                0,
                "template",
            )
        return DoubleOptIn(enabled=enabled, template=template, language=language)

    def web_optin(self, data: Any, double_opt_in: DoubleOptIn) -> WebOptIn:
        if data is None:
            return WebOptIn()
        if not isinstance(data, dict):
            self.fail("[web_optin] must be a table", "web_optin")
        enabled = data.get("enabled", False)
        if not isinstance(enabled, bool):
            self.fail("web_optin.enabled must be true or false", "web_optin", 0, "enabled")
        if enabled and not double_opt_in.template:
            # The page's choice becomes consent only through the template's doi:yes tap (C28).
            self.fail(
                "web_optin.enabled needs [double_opt_in] template (an approved utility "
                "template with the doi:yes and doi:no quick replies): nothing typed on a web "
                "page is consent until the person confirms on WhatsApp",
                "web_optin",
                0,
                "enabled",
            )
        origins = data.get("embed_origins", [])
        if not isinstance(origins, list) or not all(
            isinstance(o, str) and ORIGIN.fullmatch(o) for o in origins
        ):
            self.fail(
                'web_optin.embed_origins must be a list of origins, e.g. ["https://shop.example"]',
                "web_optin",
                0,
                "embed_origins",
            )
        return WebOptIn(enabled=enabled, embed_origins=tuple(origins))


def _preferences_flow(v: _Validator, data: Any) -> PreferencesFlow:
    """[preferences_flow]: PREFERENCES opens the published WhatsApp Flow instead of buttons."""
    if data is None:
        return PreferencesFlow()
    if not isinstance(data, dict):
        v.fail("[preferences_flow] must be a table", "preferences_flow")
    flow_id = data.get("flow_id")
    if not (isinstance(flow_id, str) and FLOW_ID.fullmatch(flow_id)):
        v.fail(
            "preferences_flow.flow_id must be the id WhatsApp Manager shows for the "
            f'published Flow, in quotes (e.g. "1234567890123456"), not {flow_id!r}',
            "preferences_flow",
            0,
            "flow_id" if "flow_id" in data else None,
        )
    return PreferencesFlow(flow_id=flow_id)
