"""How the rules write numbers and sentences, so every finding says them the same way."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime

__all__ = ["about", "last_line", "lower_first", "ms", "names", "pct", "sentence", "utc"]


def ms(value: float) -> str:
    """Milliseconds: one decimal under 10, whole above."""
    return f"{value:.1f}" if value < 10 else f"{value:.0f}"


def about(value: float) -> str:
    """Two significant digits: 11342 -> "11000"; a prediction is not more precise than that."""
    if value <= 0 or not math.isfinite(value):
        return f"{value:.0f}"
    digits = 1 - int(math.floor(math.log10(value)))
    return f"{round(value, digits):.0f}" if digits <= 0 else f"{round(value, digits):g}"


def pct(rate: float) -> str:
    return f"{rate * 100:.2g}%" if rate < 0.1 else f"{rate * 100:.0f}%"


def names(items: Sequence[str], limit: int = 5) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def sentence(text: str) -> str:
    """A capitalised sentence with one final full stop."""
    text = text.strip().rstrip(".")
    return (text[:1].upper() + text[1:] + ".") if text else ""


def lower_first(text: str) -> str:
    """Lower-case a sentence's first letter to embed it, but never an acronym ("GET /slots")."""
    if len(text) > 1 and text[0].isupper() and not text[1].isupper():
        return text[0].lower() + text[1:]
    return text


def last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:200] if lines else ""


def utc(at: float) -> str:
    """A wall-clock time for a finding: ``2026-11-23 10:15:02 UTC``."""
    return datetime.fromtimestamp(at, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
