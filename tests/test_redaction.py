"""Credentials never reach a report, a log or JUnit: known secrets and recognisable patterns."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.records import ErrorSample
from harness.redaction import MARK, Redactor

CUSTOMERS = [
    {"index": 0, "id": 1, "api_key": "sk_live_4f8a9b2c1d", "marker": "srmab12c000000"},
    {"index": 1, "id": 2, "api_key": "sk_live_77e1aa90ff", "nested": {"session_token": "sess-123456789"}},
]


@pytest.fixture
def redactor() -> Redactor:
    return Redactor.for_customers(CUSTOMERS)


def test_known_customer_secrets_are_replaced_wherever_they_appear(redactor: Redactor) -> None:
    text = "500 for key sk_live_4f8a9b2c1d; cookie sess-123456789 in body"
    out = redactor.text(text)
    assert "sk_live_4f8a9b2c1d" not in out and "sess-123456789" not in out
    assert out.count(MARK) == 2


def test_non_secret_fields_are_kept(redactor: Redactor) -> None:
    assert redactor.text("marker srmab12c000000 id 1") == "marker srmab12c000000 id 1"


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.abc.def", "eyJhbGciOiJIUzI1NiJ9"),
        ("postgresql://booking:hunter22@db.local:5432/app", "hunter22"),
        ("GET /patients?q=x&api_key=abcdef123456&limit=2", "abcdef123456"),
        ('{"name": "x", "api_key": "zzz-unknown-key-999"}', "zzz-unknown-key-999"),
        ("X-API-Key: 9f9f9f9f9f9f9f9f", "9f9f9f9f9f9f9f9f"),
        ("Set-Cookie: session=abcdefgh123; Path=/", "abcdefgh123"),
        ("headers={'X-API-Key': 'plain-secret-value'}", "plain-secret-value"),
    ],
)
def test_unknown_secrets_are_caught_by_pattern(text: str, secret: str) -> None:
    out = Redactor().text(text)
    assert secret not in out
    assert MARK in out


def test_records_are_redacted_deeply_and_not_mutated(redactor: Redactor) -> None:
    sample = ErrorSample(
        endpoint="GET /x", method="GET", url="/x?token=abcdefgh1", status=500, reason="http-500",
        body_excerpt="bad key sk_live_77e1aa90ff", at=0.0,
    )
    clean = redactor.value({"samples": (sample,)})
    assert "sk_live_77e1aa90ff" not in clean["samples"][0].body_excerpt
    assert "abcdefgh1" not in clean["samples"][0].url
    assert "sk_live_77e1aa90ff" in sample.body_excerpt  # the original is untouched


def test_sweep_rewrites_every_text_file_of_a_run_folder(tmp_path: Path, redactor: Redactor) -> None:
    (tmp_path / "load").mkdir()
    (tmp_path / "target.log").write_text("started with key sk_live_4f8a9b2c1d\n")
    (tmp_path / "load" / "load-result.json").write_text('{"body": "sk_live_77e1aa90ff"}')
    (tmp_path / "clean.md").write_text("nothing secret")
    assert redactor.sweep(tmp_path) == 2
    for path in tmp_path.rglob("*"):
        if path.is_file():
            text = path.read_text()
            assert "sk_live" not in text
    assert not list(tmp_path.rglob(".*.redacting"))
