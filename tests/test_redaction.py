"""Credentials never reach a report, a log or JUnit: known secrets and recognisable patterns."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.records import ErrorSample
from harness.redaction import MARK, Redactor, start_secrets

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


# --- secrets that have a recognisable shape or context --------------------------------------

PLANTED_SHAPES = {
    "json header": ('{"headers": {"Authorization": "Token tok9f8e7d6c5b4a"}}', "tok9f8e7d6c5b4a"),
    "escaped json header": (r'{"body": "{\"X-Api-Key\": \"esc-key-55aa66bb\"}"}', "esc-key-55aa66bb"),
    "aws access key in json": ('{"access_key": "AKIAIOSFODNN7EXAMPLE"}', "AKIAIOSFODNN7EXAMPLE"),
    "aws secret in json": (
        '{"aws_secret_access_key": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"}',
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    ),
    "bare aws key id": ("uploading with ASIAY34FZKBOKMUTVV7A to s3", "ASIAY34FZKBOKMUTVV7A"),
    "google api key": ("maps key AIzaSyA1bC2dE3fG4hI5jK6lM7nO8pQ9rS0tUvW", "AIzaSyA1bC2dE3fG4hI5jK6lM7nO8pQ9rS0tUvW"),
    "github token": ("GH=ghp_0123456789abcdefghijABCDEFGHIJ012345 ok", "ghp_0123456789abcdefghijABCDEFGHIJ012345"),
    "gitlab token": ("token glpat-AbCdEfGhIjKlMnOpQrSt ok", "glpat-AbCdEfGhIjKlMnOpQrSt"),
    "slack token": ("notify xoxb-123456789012-abcdefABCDEF", "xoxb-123456789012-abcdefABCDEF"),
    "stripe key": ("charge with sk_live_51Habcdefghijklmn", "sk_live_51Habcdefghijklmn"),
    "openai key": ("llm sk-proj-abcdefghijklmnopqrstuvwx", "sk-proj-abcdefghijklmnopqrstuvwx"),
    "jwt": (
        "cookie eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
        "dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
    ),
    "azure connection string": ("DefaultEndpointsProtocol=https;AccountKey=Zm9vYmFyYmF6cXV4==;", "Zm9vYmFyYmF6cXV4"),
    "private key": (
        "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA7V\n-----END RSA PRIVATE KEY-----",
        "MIIEpAIBAAKCAQEA7V",
    ),
    "command-line option": ("serve --port 1 --api-key cli-9911zz --db x", "cli-9911zz"),
    "command-line option with =": ("serve --db-password=pw-7733yy", "pw-7733yy"),
    "environment assignment": ("env API_KEY=env-4422xx python serve.py", "env-4422xx"),
}


@pytest.mark.parametrize("case", sorted(PLANTED_SHAPES))
def test_every_secret_shape_is_caught_without_knowing_it(case: str) -> None:
    text, secret = PLANTED_SHAPES[case]
    out = Redactor().text(text)
    assert secret not in out, out
    assert MARK in out


def test_json_stays_json_after_redaction() -> None:
    import json

    document = json.dumps({"headers": {"Authorization": "Token abcdefgh123"}, "note": 'say "AKIAIOSFODNN7EXAMPLE"',
                           "command": "svc --api-key k-123456 API_KEY=v-123456", "nested": '{"token": "t-1234567"}'})  # fmt: skip
    out = Redactor().text(document)
    assert json.loads(out)["command"] == f"svc --api-key {MARK} API_KEY={MARK}"
    assert "abcdefgh123" not in out and "t-1234567" not in out and "AKIA" not in out


@pytest.mark.parametrize(
    "text",
    [
        '{"author": "Ada", "key": "GET /slots", "monkey": "banana-split"}',
        "--port 8000 --workers 4 --max-tokens 100",
        "PWD=/work/main HOME=/root",
        "the token bucket refills; session ends",
    ],
)
def test_ordinary_text_is_left_alone(text: str) -> None:
    assert Redactor().text(text) == text


# --- the start command and its environment -------------------------------------------------


def test_values_of_secret_looking_options_and_variables_are_known_exactly() -> None:
    command = "env API_KEY=inline-1234 DEBUG=1 python -m svc --port 80 --api-key opt-5678 --token=tok-9012 --db /x"
    env = {"DB_PASSWORD": "envpw-3456", "LOG_LEVEL": "debug"}
    found = start_secrets(command, env, inherited={})
    assert sorted(found) == ["envpw-3456", "inline-1234", "opt-5678", "tok-9012"]


def test_options_and_variables_the_pack_names_are_secrets_too() -> None:
    command = "python -m svc --port 80 --license lic-445566 --db /x"
    env = {"PAYMENT_PROVIDER": "pp-778899"}
    inherited = {"VENDOR_CODE": "vc-112233", "HOME": "/root"}
    found = start_secrets(command, env, ["--license", "PAYMENT_PROVIDER", "VENDOR_CODE"], inherited)
    assert sorted(found) == ["lic-445566", "pp-778899", "vc-112233"]


# --- end to end: a tiny audit of a pack whose target is careless with credentials ------------

# A wrapper around the demo that takes credentials the way real services do and prints every
# one of them, with the shapes of keys it might hold, into its log before serving.
CARELESS_START = '''\
import os
import sys

args = sys.argv[1:]


def take(flag):
    i = args.index(flag)
    value = args[i + 1]
    del args[i : i + 2]
    return value


print("api key", take("--api-key"), "licence", take("--license"))
print("env", os.environ["API_KEY"], os.environ["PAYMENT_PROVIDER"], os.environ["VENDOR_CODE"])
print(os.environ["PLANTED_SHAPES"], flush=True)
if os.environ.get("FAIL_AT_START"):
    sys.exit(1)
from booking_service.__main__ import main

sys.exit(main(args))
'''

KNOWN = {
    "cli option": "opt-value-4471aa",
    "inline env": "inline-env-3319ee",
    "named option": "named-opt-7731dd",
    "named env": "named-env-5521cc",
    "named inherited env": "inherited-8812bb",
}


def _careless_pack(root: Path, fail: bool) -> Path:
    from packs import small_booking_pack

    pack = small_booking_pack(root, extra_files={"careless_start.py": CARELESS_START})
    scenario = pack / "scenario.toml"
    text = scenario.read_text(encoding="utf-8")
    start = 'start = "{python} -m booking_service --port {port} --db {state_dir}/booking.sqlite3"'
    assert start in text
    shapes = " ".join(text for text, _ in PLANTED_SHAPES.values()).replace("\n", " ")
    careless = (
        f"start = \"env API_KEY={KNOWN['inline env']} {{python}} careless_start.py --port {{port}} "
        f"--db {{state_dir}}/booking.sqlite3 --api-key {KNOWN['cli option']} --license {KNOWN['named option']}\"\n"
        f"secrets = [\"--license\", \"PAYMENT_PROVIDER\", \"VENDOR_CODE\"]\n"
        f"env = {{ PAYMENT_PROVIDER = \"{KNOWN['named env']}\", PLANTED_SHAPES = {json.dumps(shapes)}"
        + (', FAIL_AT_START = "1"' if fail else "") + " }"
    )
    scenario.write_text(text.replace(start, careless), encoding="utf-8")
    return pack


def _leaks(run_dir: Path, console: str) -> list[str]:
    secrets = [*KNOWN.values(), *(secret for _, secret in PLANTED_SHAPES.values())]
    places = {"console": console}
    for path in run_dir.rglob("*"):
        if path.is_file():
            places[str(path.relative_to(run_dir))] = path.read_bytes().decode("utf-8", errors="replace")
    return [f"{secret} in {where}" for where, text in places.items() for secret in secrets if secret in text]


@pytest.mark.slow
def test_no_planted_secret_reaches_the_run_folder_or_the_console(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from packs import run_audit_cli

    monkeypatch.setenv("VENDOR_CODE", KNOWN["named inherited env"])
    pack = _careless_pack(tmp_path, fail=False)
    run = run_audit_cli(pack, tmp_path / "reports", "--profile", "tiny", "--tiers", "5", "--only", "tiers")
    assert run.run_dir is not None, run.output
    log = (run.run_dir / "target.log").read_text(encoding="utf-8")
    assert log.count(MARK) >= len(KNOWN) + len(PLANTED_SHAPES) - 1, log  # the target did print them
    assert _leaks(run.run_dir, run.output) == []
    assert f"--api-key {MARK}" in run.scorecard["target"]["command"]


def test_a_target_that_fails_to_start_leaks_no_secret_in_its_message_or_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from packs import run_audit_cli

    monkeypatch.setenv("VENDOR_CODE", KNOWN["named inherited env"])
    pack = _careless_pack(tmp_path, fail=True)
    run = run_audit_cli(pack, tmp_path / "reports", "--profile", "tiny", "--tiers", "5", "--only", "tiers")
    assert run.exit_code == 3, run.output
    assert "exited before it became healthy" in run.output and f"--api-key {MARK}" in run.output
    folders = list((tmp_path / "reports").glob("*"))
    assert [f for f in folders if (f / "target.log").exists()], "the target's log is kept for the user"
    for folder in folders:
        assert _leaks(folder, run.output) == []
