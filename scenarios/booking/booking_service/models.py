"""The API's request and response bodies (pydantic), with the validation the spec asks for.

Every malformed input must become a 422, never a 500: strings are bounded, ids fit in a signed
64-bit column, dates and times are checked here rather than deep in a query.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from booking_service import scheduling

MAX_ID = 2**63 - 1
Id = Annotated[int, Field(ge=1, le=MAX_ID)]


def _storable(text: str) -> str:
    # A lone surrogate (JSON "\ud800") cannot be encoded as UTF-8 by any database driver.
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode text (no lone surrogates)") from None
    return text


def _text(min_length: int, max_length: int) -> object:
    return Annotated[
        str,
        StringConstraints(min_length=min_length, max_length=max_length),
        AfterValidator(_storable),
    ]


Name = _text(1, 200)
ShortText = _text(0, 200)
Note = _text(0, 2000)


def _check_date(text: str) -> str:
    scheduling.parse_date(text)
    return text


def _check_start(text: str) -> str:
    scheduling.parse_start(text)
    return text


def _check_timezone(text: str) -> str:
    if text not in _timezones():
        raise ValueError(f"unknown time zone {text[:60]!r}; use an IANA name such as Europe/London")
    return text


_TZ_CACHE: set[str] = set()


def _timezones() -> set[str]:
    if not _TZ_CACHE:
        import zoneinfo

        _TZ_CACHE.update(zoneinfo.available_timezones() | {"UTC"})
    return _TZ_CACHE


DateText = Annotated[str, StringConstraints(max_length=10), AfterValidator(_check_date)]
StartText = Annotated[str, StringConstraints(max_length=16), AfterValidator(_check_start)]
Timezone = Annotated[str, StringConstraints(max_length=64), AfterValidator(_check_timezone)]


class _In(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=False)


class OpeningHours(BaseModel):
    model_config = ConfigDict(extra="forbid")
    mon: list[str] | None = None
    tue: list[str] | None = None
    wed: list[str] | None = None
    thu: list[str] | None = None
    fri: list[str] | None = None
    sat: list[str] | None = None
    sun: list[str] | None = None

    @model_validator(mode="after")
    def _spans(self) -> OpeningHours:
        for day in scheduling.WEEKDAYS:
            span = getattr(self, day)
            if span is None:
                continue
            if len(span) != 2 or not all(scheduling.is_time(t) for t in span):
                raise ValueError(f'{day}: expected ["HH:MM", "HH:MM"] or null')
            if scheduling.minutes(span[0]) >= scheduling.minutes(span[1]):
                raise ValueError(f"{day}: opening time {span[0]} must be before closing {span[1]}")
        return self

    def as_dict(self) -> dict[str, list[str] | None]:
        return {day: getattr(self, day) for day in scheduling.WEEKDAYS}


class ClinicIn(_In):
    name: Name  # type: ignore[valid-type]
    timezone: Timezone = "Europe/London"
    opening_hours: OpeningHours | None = None
    marker: ShortText | None = None  # type: ignore[valid-type]


class ClinicView(BaseModel):
    id: int
    name: str
    timezone: str
    opening_hours: dict[str, list[str] | None]
    marker: str | None


class ClinicOut(ClinicView):
    api_key: str


class UsageOut(BaseModel):
    """The clinic's metered usage: what its invoice counts."""

    bookings_made: int
    clinic_marker: str | None


class PractitionerIn(_In):
    name: Name  # type: ignore[valid-type]
    specialty: ShortText | None = None  # type: ignore[valid-type]
    slot_minutes: int = 30

    @field_validator("slot_minutes")
    @classmethod
    def _divides_the_day(cls, value: int) -> int:
        if value not in scheduling.SLOT_MINUTES:
            raise ValueError(
                f"{value} minutes: a slot must last 10 to 120 minutes and divide the day "
                f"({', '.join(map(str, scheduling.SLOT_MINUTES))})"
            )
        return value


class PractitionerOut(BaseModel):
    id: int
    name: str
    specialty: str | None
    slot_minutes: int
    clinic_marker: str | None


class PatientIn(_In):
    name: Name  # type: ignore[valid-type]
    email: ShortText | None = None  # type: ignore[valid-type]
    phone: ShortText | None = None  # type: ignore[valid-type]
    birth_date: DateText | None = None


class PatientOut(BaseModel):
    id: int
    name: str
    email: str | None
    phone: str | None
    birth_date: str | None
    clinic_marker: str | None


class PatientImportIn(_In):
    patients: list[PatientIn] = Field(min_length=1, max_length=500)


class PatientImportOut(BaseModel):
    created: int
    ids: list[int]


class BookingIn(_In):
    practitioner_id: Id
    patient_id: Id
    start: StartText
    note: Note | None = None  # type: ignore[valid-type]


class BookingOut(BaseModel):
    id: int
    practitioner_id: int
    patient_id: int
    start: str
    end: str
    status: str
    note: str | None
    clinic_marker: str | None


class Slot(BaseModel):
    start: str
    end: str


class SlotsOut(BaseModel):
    date: str
    practitioner_id: int
    slots: list[Slot]


class PractitionerDay(BaseModel):
    practitioner_id: int
    name: str
    bookings: int
    utilisation: float


class DailyReport(BaseModel):
    date: str
    bookings: int
    cancelled: int
    patients_seen: int = 0  # distinct patients with an active booking that day
    by_practitioner: list[PractitionerDay]
    clinic_marker: str | None


class Problem(BaseModel):
    """An error: a sentence from the service, or the framework's list of what was wrong."""

    detail: str | list[dict[str, object]]


class Health(BaseModel):
    status: str


class Stats(BaseModel):
    requests: int
    rss_bytes: int
    uptime_s: float
