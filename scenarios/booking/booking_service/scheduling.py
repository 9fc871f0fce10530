"""Opening hours, slots and the date formats of the API. Pure functions, no I/O."""

from __future__ import annotations

import re
from datetime import date, datetime

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DEFAULT_OPENING_HOURS: dict[str, list[str] | None] = {
    day: (["09:00", "17:00"] if day not in ("sat", "sun") else None) for day in WEEKDAYS
}
#: slot lengths (minutes) from 10 to 120 that divide the day into whole slots
SLOT_MINUTES = tuple(m for m in range(10, 121) if 1440 % m == 0)

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_TIME = re.compile(r"([01]\d|2[0-3]):[0-5]\d")
_START = re.compile(r"\d{4}-\d{2}-\d{2}T([01]\d|2[0-3]):[0-5]\d")


def parse_date(text: str) -> date:
    """``"2030-01-07"`` -> date; ValueError on anything else (``date.fromisoformat`` alone
    would also take ``20300107`` and ``2030-W02-1``)."""
    if not _DATE.fullmatch(text):
        raise ValueError("expected a date as YYYY-MM-DD")
    return date.fromisoformat(text)


def parse_start(text: str) -> datetime:
    """``"2030-01-07T09:30"`` -> naive datetime (clinic local time)."""
    if not _START.fullmatch(text):
        raise ValueError("expected a start time as YYYY-MM-DDTHH:MM")
    return datetime.strptime(text, "%Y-%m-%dT%H:%M")


def is_time(text: str) -> bool:
    return bool(_TIME.fullmatch(text))


def minutes(hhmm: str) -> int:
    return int(hhmm[:2]) * 60 + int(hhmm[3:])


def format_start(day: date, minute_of_day: int) -> str:
    return f"{day.isoformat()}T{minute_of_day // 60:02d}:{minute_of_day % 60:02d}"


def day_slots(
    hours: dict[str, list[str] | None], slot_minutes: int, day: date
) -> list[tuple[str, str]]:
    """Every slot (start, end) of a day the clinic opens, aligned on the opening time."""
    span = hours.get(WEEKDAYS[day.weekday()])
    if not span:
        return []
    first, close = minutes(span[0]), minutes(span[1])
    return [
        (format_start(day, m), format_start(day, m + slot_minutes))
        for m in range(first, close - slot_minutes + 1, slot_minutes)
    ]


def name_key(name: str) -> str:
    """The form names are searched in: case-folded, so "ÉLODIE" finds "élodie"."""
    return name.casefold()
