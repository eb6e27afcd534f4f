"""What the dashboard shows, from the storage counts: one chart per category of daily opt-ins and
opt-outs, why people opted out, what waits in the outbox and why sends failed, and what waits to
reach the business's consent webhook."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from bot.console.charts import Bar, Chart, daily_in_and_out, horizontal_bars
from flows.catalog import Catalog
from flows.keywords import Intent, match_keyword
from flows.policy import META_REFUSAL_OPT_OUT_TEXT, ConsentSource
from storage.dashboard import (
    DECLINED,
    GRANTED,
    WITHDRAWN,
    DecisionCount,
    FailureCount,
    WebhookGroup,
)
from storage.dashboard import WithdrawalWords as Words
from storage.outbox import PRIORITY_ANSWER, Backlog

# Why a consent was withdrawn, told from the ledger row's source and text.
STOP_KEYWORD = "STOP or another stop keyword"
OWN_WORDS = "In their own words"
META_STOP = "Meta's marketing stop"
META_131050 = "Meta refused marketing: 131050"
ELSEWHERE = "Recorded through the API"
REASONS = (STOP_KEYWORD, OWN_WORDS, META_STOP, META_131050, ELSEWHERE)
STOP_INTENTS = (Intent.STOP_ALL, Intent.STOP_CATEGORY)
STATE_WORDS = {"due": "due now", "scheduled": "retrying later", "claimed": "being sent"}
# Consent webhook rows by (failing, state): never tried yet, or failed and retried with backoff.
WEBHOOK_BARS = {
    (False, "due"): "new, due now",
    (False, "claimed"): "new, being sent",
    (False, "scheduled"): "new, due later",
    (True, "due"): "failing, retry due now",
    (True, "scheduled"): "failing, retrying later",
    (True, "claimed"): "failing, being sent",
}


@dataclass(frozen=True, slots=True)
class CategoryFigure:
    category_id: str
    title: str
    chart: Chart
    totals: dict[str, int]  # GRANTED, WITHDRAWN, DECLINED over the period


@dataclass(frozen=True, slots=True)
class WebhookFigure:
    chart: Chart
    waiting: int  # rows not yet answered 2xx
    failing: int  # of them, rows whose last delivery failed
    failed_attempts: int
    oldest_age: timedelta | None  # how long the oldest waiting row has waited
    errors: tuple[tuple[str, int], ...]  # failing rows per last error, most frequent first

    @property
    def oldest_words(self) -> str | None:
        return age_words(self.oldest_age) if self.oldest_age is not None else None


def period_days(now: datetime, days: int) -> list[date]:
    today = now.date()
    return [today - timedelta(days=n) for n in range(days - 1, -1, -1)]


def category_figures(
    decisions: Iterable[DecisionCount], catalog: Catalog, days: list[date]
) -> list[CategoryFigure]:
    counts = Counter({(d.category, d.day, d.kind): d.count for d in decisions})
    language = catalog.company.default_language
    figures = []
    for category in catalog.categories:
        ins = [counts[(category.id, day, GRANTED)] for day in days]
        outs = [counts[(category.id, day, WITHDRAWN)] for day in days]
        title = category.title_in(language)
        totals = {
            kind: sum(counts[(category.id, day, kind)] for day in days)
            for kind in (GRANTED, WITHDRAWN, DECLINED)
        }
        chart = daily_in_and_out(f"{title}: opt-ins and opt-outs per day", days, ins, outs)
        figures.append(CategoryFigure(category.id, title, chart, totals))
    return figures


def reason_of(words: Words, catalog: Catalog) -> str:
    """Meta's two signals carry fixed texts; a customer's own stop is told by its keyword."""
    if words.source == ConsentSource.META:
        return META_131050 if words.text == META_REFUSAL_OPT_OUT_TEXT else META_STOP
    if words.source == ConsentSource.WHATSAPP:
        match = match_keyword(words.text, catalog)
        return STOP_KEYWORD if match and match.intent in STOP_INTENTS else OWN_WORDS
    return ELSEWHERE


def reasons_chart(withdrawals: Iterable[Words], catalog: Catalog) -> Chart:
    counts: Counter[str] = Counter()
    for words in withdrawals:
        counts[reason_of(words, catalog)] += words.count
    bars = [Bar(reason, counts[reason], "out") for reason in REASONS]
    return horizontal_bars("Why people opted out", bars)


def backlog_chart(waiting: Iterable[Backlog]) -> Chart:
    counts: Counter[tuple[str, str]] = Counter()
    for group in waiting:
        who = "answers" if group.priority == PRIORITY_ANSWER else "business sends"
        counts[(who, group.state)] += group.rows
    bars = [
        Bar(f"{who}, {words}", counts[(who, state)], f"state-{state}")
        for who in ("answers", "business sends")
        for state, words in STATE_WORDS.items()
    ]
    return horizontal_bars("What waits in the outbox", bars)


def failures_chart(failures: Iterable[FailureCount]) -> Chart:
    bars = [
        Bar(
            f"{f.code if f.code is not None else 'no code'} {f.title or ''}".strip(), f.count, "out"
        )
        for f in failures
    ]
    return horizontal_bars("Failed sends by Meta error code", bars)


def webhook_figure(groups: Iterable[WebhookGroup], now: datetime) -> WebhookFigure:
    groups = list(groups)
    counts: Counter[tuple[bool, str]] = Counter()
    errors: Counter[str] = Counter()
    for group in groups:
        counts[(group.failing, group.state)] += group.rows
        if group.failing:
            errors[group.error or "unknown error"] += group.rows
    bars = [
        Bar(words, counts[(failing, state)], f"{'failing ' if failing else ''}state-{state}")
        for (failing, state), words in WEBHOOK_BARS.items()
    ]
    oldest = min((g.oldest_at for g in groups), default=None)
    return WebhookFigure(
        chart=horizontal_bars("What waits to reach the consent webhook", bars),
        waiting=sum(g.rows for g in groups),
        failing=sum(g.rows for g in groups if g.failing),
        failed_attempts=sum(g.failed_attempts for g in groups),
        oldest_age=max(timedelta(0), now - oldest) if oldest else None,
        errors=tuple(sorted(errors.items(), key=lambda item: (-item[1], item[0]))),
    )


def age_words(age: timedelta) -> str:
    """A wait as a person reads it: 45 s, 12 min, 3 h 5 min, 2 d 4 h."""
    seconds = int(age.total_seconds())
    if seconds < 60:
        return f"{seconds} s"
    minutes, hours, days = seconds // 60, seconds // 3600, seconds // 86400
    if hours < 1:
        return f"{minutes} min"
    if days < 1:
        return f"{hours} h {minutes % 60} min"
    return f"{days} d {hours % 24} h"
