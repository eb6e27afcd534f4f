"""Charts as plain geometry, drawn as inline SVG by the dashboard's template.

No script and no front-end build: the server computes every rectangle, the template writes the
<svg>, and the stylesheet colours it by class, so the console's strict Content-Security-Policy
(no inline styles, no scripts) holds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date

WIDTH = 640
DAILY_WIDTH = 960  # a column per day, up to 90 of them
LABEL_WIDTH = 240  # room for a label left of horizontal bars
ROW_HEIGHT = 22
DAILY_HEIGHT = 150
MARGIN = 24


@dataclass(frozen=True, slots=True)
class Rect:
    x: float
    y: float
    width: float
    height: float
    css: str
    tip: str  # shown on hover, and read by screen readers


@dataclass(frozen=True, slots=True)
class Text:
    x: float
    y: float
    text: str
    anchor: str = "start"  # SVG text-anchor
    css: str = "label"


@dataclass(frozen=True, slots=True)
class Line:
    x1: float
    y1: float
    x2: float
    y2: float
    css: str = "axis"


@dataclass(frozen=True, slots=True)
class Chart:
    title: str
    description: str
    width: int
    height: int
    rects: tuple[Rect, ...] = ()
    texts: tuple[Text, ...] = ()
    lines: tuple[Line, ...] = field(default_factory=tuple)


@dataclass(frozen=True, slots=True)
class Bar:
    label: str
    value: int
    css: str = "bar"


def daily_in_and_out(
    title: str, days: Sequence[date], ins: Sequence[int], outs: Sequence[int]
) -> Chart:
    """One column per day: opt-ins rise above the line, opt-outs hang below it."""
    peak = max([*ins, *outs, 1])
    top, bottom = MARGIN, DAILY_HEIGHT - MARGIN
    middle = (top + bottom) / 2
    half = middle - top
    slot = (DAILY_WIDTH - 2 * MARGIN) / max(1, len(days))
    width = max(1.0, slot * 0.7)
    rects: list[Rect] = []
    for index, (day, opted_in, opted_out) in enumerate(zip(days, ins, outs, strict=True)):
        x = MARGIN + index * slot + (slot - width) / 2
        if opted_in:
            height = half * opted_in / peak
            rects.append(Rect(x, middle - height, width, height, "in", f"{day}: {opted_in} in"))
        if opted_out:
            height = half * opted_out / peak
            rects.append(Rect(x, middle, width, height, "out", f"{day}: {opted_out} out"))
    texts = [
        Text(MARGIN - 4, top + 4, str(peak), anchor="end"),
        Text(MARGIN - 4, bottom, str(peak), anchor="end"),
        Text(MARGIN - 4, middle + 4, "0", anchor="end"),
    ]
    if days:
        texts.append(Text(MARGIN, DAILY_HEIGHT - 6, days[0].isoformat()))
        texts.append(
            Text(DAILY_WIDTH - MARGIN, DAILY_HEIGHT - 6, days[-1].isoformat(), anchor="end")
        )
    return Chart(
        title=title,
        description=f"{sum(ins)} opt-ins above the line and {sum(outs)} opt-outs below it, "
        f"per day from {days[0] if days else '-'} to {days[-1] if days else '-'}",
        width=DAILY_WIDTH,
        height=DAILY_HEIGHT,
        rects=tuple(rects),
        texts=tuple(texts),
        lines=(Line(MARGIN, middle, DAILY_WIDTH - MARGIN, middle),),
    )


def horizontal_bars(title: str, bars: Sequence[Bar]) -> Chart:
    """One labelled bar per row, longest for the largest value, the value at its end."""
    peak = max([b.value for b in bars] + [1])
    room = WIDTH - LABEL_WIDTH - 2 * MARGIN - 40  # 40: the value written after the bar
    rects: list[Rect] = []
    texts: list[Text] = []
    for index, bar in enumerate(bars):
        y = MARGIN / 2 + index * ROW_HEIGHT
        length = max(1.0, room * bar.value / peak) if bar.value else 0.0
        texts.append(Text(LABEL_WIDTH, y + 14, _short(bar.label), anchor="end"))
        if length:
            rects.append(
                Rect(
                    LABEL_WIDTH + 8,
                    y + 3,
                    length,
                    ROW_HEIGHT - 6,
                    bar.css,
                    f"{bar.label}: {bar.value}",
                )
            )
        texts.append(Text(LABEL_WIDTH + 14 + length, y + 14, str(bar.value), css="value"))
    height = int(MARGIN + max(1, len(bars)) * ROW_HEIGHT)
    return Chart(
        title=title,
        description="; ".join(f"{b.label}: {b.value}" for b in bars) or "nothing to show",
        width=WIDTH,
        height=height,
        rects=tuple(rects),
        texts=tuple(texts),
        lines=(Line(LABEL_WIDTH + 8, MARGIN / 2, LABEL_WIDTH + 8, height - MARGIN / 2),),
    )


def _short(label: str, limit: int = 32) -> str:
    return label if len(label) <= limit else label[: limit - 1] + "…"
