"""C16: a row of `consent import` is checked as POST /api/v1/consents checks the same body: the
same request when it passes, the same first problem named when it does not, however often a
category list or a text repeats."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.api.errors import ApiError
from bot.api.validation import TEXT_MAX, consent_request
from bot.import_check import RowCheck
from bot.wiring.services import services
from flows.policy import ConsentSource

WHEN = (datetime.now(UTC) - timedelta(days=2)).isoformat()
NUMBERS = ["+971 50 123 4567", "0044 7700 900123", "12", "", "US.1234567", "US.ENT.99", "+1 555"]
CATEGORIES = ["orders", " orders ; offers ", "offers;orders;offers", ";;", "", "cakes", "orders;x"]
TIMES = [
    WHEN,
    f" {WHEN} ",
    WHEN.replace("T", "t").replace("+00:00", "z"),
    "2025-01-31T09:30:00.5+04:00",
    "2025-01-31T09:30:00",
    "2025-02-30T09:30:00Z",
    (datetime.now(UTC) + timedelta(days=1)).isoformat(),
    "0001-01-01T00:30:00+01:00",
    "yesterday",
]
TEXTS = ["Yes to offers", " ", "\u00a0\u3000", "x" * (TEXT_MAX + 1), "x" * TEXT_MAX, "", "نعم"]


def api_answer(body: dict, catalog) -> object:  # type: ignore[no-untyped-def]
    try:
        return consent_request(body, catalog, known=lambda _: False)
    except ApiError as exc:
        return exc.message


def import_answer(check: RowCheck, line: int, cells: tuple[str, str, str, str]) -> object:
    try:
        return check.request(check.check(line, *cells))
    except ApiError as exc:
        return exc.message


def test_c16_an_imported_row_is_checked_as_the_api_checks_its_body(app):
    catalog = services(app).catalog
    check = RowCheck(catalog, ConsentSource.PAPER, "forms.csv", lambda _: False)
    line = 1
    answers = set()
    for _ in range(2):  # the second time, from what the check remembered
        for number in NUMBERS:
            for categories in CATEGORIES:
                for when in TIMES:
                    for text in TEXTS:
                        line += 1
                        body = {
                            "wa_id": number,
                            "categories": [c.strip() for c in categories.split(";") if c.strip()],
                            "granted": True,
                            "source": "paper",
                            "collected_at": when.strip(),
                            "text": text,
                            "evidence": {"import_file": "forms.csv", "line": line},
                        }
                        cells = (number, categories, when, text)
                        expected = api_answer(body, catalog)
                        assert import_answer(check, line, cells) == expected, cells
                        answers.add(expected if isinstance(expected, str) else "recorded")
    assert "recorded" in answers and len(answers) > 10  # passes and many different refusals
