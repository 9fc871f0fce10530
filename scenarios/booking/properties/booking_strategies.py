"""Hypothesis strategies for the booking API: valid values, odd-but-valid values, and garbage.

"Odd but valid" is where services crash as they grow: names with accents, CJK or emoji, names
longer than a column someone sized at 64, leap days and year ends, the first and last dates a
date type can hold.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from hypothesis import strategies as st

# --- text ---------------------------------------------------------------------------------

EDGE_STRINGS = [
    "", " ", "  padded  ", "\t", "\n", "\x00", "%", "_", "%_%", "\\", "'", '"', "' OR 1=1 --",
    "Robert'); DROP TABLE patients;--", "<script>alert(1)</script>", "Zoë", "Ñúñez", "山田太郎",
    "Ωμέγα", "עברית", "\u202eevil", "🙂", "👩‍⚕️ Dr", "ß", "İstanbul", "ǅ", "x" * 64, "x" * 65,
    "é" * 65, "y" * 200, "z" * 201, "名" * 200, "a" * 5000,
]  # fmt: skip

#: Any string at all: short, long, ASCII or not (Hypothesis draws from all of Unicode).
any_text = st.one_of(
    st.text(max_size=40),
    st.text(min_size=60, max_size=260),
    st.sampled_from(EDGE_STRINGS),
)


def _is_sensible_name(name: str) -> bool:
    # A name with something visible in it; control characters and lone whitespace may be
    # rejected with a 4xx by a careful service, and that is not a bug.
    return bool(name.strip()) and name.isprintable()


#: Names the API must accept (1..200 characters), biased to the odd: non-ASCII, long.
valid_names = st.one_of(
    st.text(min_size=1, max_size=40),
    st.text(st.characters(min_codepoint=0x80), min_size=1, max_size=200),
    st.text(min_size=65, max_size=200),
    st.sampled_from([s for s in EDGE_STRINGS if 1 <= len(s) <= 200]),
).filter(_is_sensible_name)

# --- dates --------------------------------------------------------------------------------

#: Valid dates a date parser may trip on.
BOUNDARY_DATES = [
    "2024-02-29", "2028-02-29", "2000-02-29", "1900-02-28", "2026-12-31", "2027-12-31",
    "2030-01-01", "9999-12-31", "0001-01-01", "1970-01-01",
]  # fmt: skip
#: Strings that look like dates and are not (or are in another format).
BAD_DATES = [
    "2023-02-29", "1900-02-29", "2030-13-01", "2030-00-10", "2030-01-32", "0000-01-01",
    "10000-01-01", "2030-1-1", "01/02/2030", "2030-01-01T09:00", "", "today", "-2030-01-01",
]  # fmt: skip

valid_dates = st.one_of(st.dates().map(str), st.sampled_from(BOUNDARY_DATES))
date_strings = st.one_of(valid_dates, st.sampled_from(BAD_DATES), st.text(max_size=12))

#: Times of day around the default opening hours (09:00–17:00, 30-minute slots).
TIMES = [
    "09:00", "09:30", "12:00", "16:30", "17:00", "08:30", "08:59", "09:01", "09:15", "00:00",
    "23:59", "24:00", "9:00", "09:00:00", "09:00Z", "",
]  # fmt: skip


def future_boundary_days(today: date | None = None) -> list[str]:
    """Leap days and year ends in the next few years, plus a plain Monday: valid booking days."""
    today = today or date.today()
    days = []
    for year in range(today.year + 1, today.year + 5):
        days.append(f"{year}-12-31")
        try:
            days.append(str(date(year, 2, 29)))
        except ValueError:
            days.append(f"{year}-02-28")
    monday = today + timedelta(days=21 - today.weekday())
    return [*days, str(monday)]


def slot_starts(days: list[str]) -> st.SearchStrategy[str]:
    """Booking start strings: mostly well-formed, some not, on the given days or odd ones."""
    day = st.one_of(st.sampled_from(days), valid_dates, st.sampled_from(BAD_DATES))
    return st.one_of(
        st.builds(lambda d, t: f"{d}T{t}", day, st.sampled_from(TIMES)),
        st.builds(lambda d, t: f"{d} {t}", day, st.sampled_from(TIMES)),
        any_text,
    )


# --- JSON shapes --------------------------------------------------------------------------

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    any_text,
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=6,
)


def ids(known: list[int]) -> st.SearchStrategy[Any]:
    """An id field: a known id, an unknown or absurd integer, or a wrong type."""
    return st.one_of(
        st.sampled_from(known),
        st.integers(min_value=-(2**63), max_value=2**63),
        st.sampled_from([0, -1, 2**31, 2**63, 2**64, 10**30]),
        json_values,
    )


def field(valid: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """A JSON field's value: usually plausible, sometimes any JSON value at all."""
    return st.one_of(valid, valid, json_values)


def bodies(
    required: dict[str, st.SearchStrategy[Any]], optional: dict[str, st.SearchStrategy[Any]]
) -> st.SearchStrategy[Any]:
    """JSON bodies: mostly the right shape with some fields missing or wrong; sometimes not an
    object at all."""
    all_fields = {**required, **optional}
    shaped = st.one_of(
        st.fixed_dictionaries(required, optional=optional),
        st.fixed_dictionaries({}, optional=all_fields),
    )
    return st.one_of(shaped, shaped, shaped, json_values)
