"""docs/PACKS.md, the pack reference, documents exactly what the code accepts.

A key, profile value or pack API name added to the code without a line in the reference fails
here, and so does a documented one the code no longer has.
"""

from __future__ import annotations

import re
import typing
from pathlib import Path

from pydantic import BaseModel

import harness.pack_api as pack_api
from harness.config import Profile, ScenarioConfig, resolve_profile

REFERENCE = Path(__file__).resolve().parents[1] / "docs" / "PACKS.md"
PROFILES = ("standard", "quick", "nightly", "audit")
# Tables whose keys are the pack's own names (persona classes, profile names), not schema keys.
FREE_TABLES = ("customers.personas", "profiles")


def _text() -> str:
    return REFERENCE.read_text(encoding="utf-8")


def _model_of(annotation: object) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        model = _model_of(arg)
        if model is not None:
            return model
    return None


def schema_keys(model: type[BaseModel] = ScenarioConfig, section: str = "") -> set[str]:
    """Every key `scenario.toml` accepts, as "section.key" ("key" at the top)."""
    keys: set[str] = set()
    for name, field in model.model_fields.items():
        sub = _model_of(field.annotation)
        if sub is not None and name not in ("profiles",):
            keys |= schema_keys(sub, f"{section}{name}.")
        else:
            keys.add(f"{section}{name}")
    return keys


def documented_keys(text: str) -> set[str]:
    """The keys the reference's scenario.toml block writes, commented-out examples included."""
    block = text.split("## `scenario.toml`", 1)[1].split("```toml", 1)[1].split("```", 1)[0]
    keys: set[str] = set()
    section = ""
    for line in block.splitlines():
        header = re.match(r'^\s*\[([\w.]+)', line)
        if header:
            section = header.group(1).rstrip(".")
            keys |= {t for t in FREE_TABLES if section == t or section.startswith(t + ".")}
            continue
        key = re.match(r"^\s*#?\s*(\w+)\s*=", line)
        if key and not any(section == t or section.startswith(t + ".") for t in FREE_TABLES):
            keys.add(f"{section}.{key.group(1)}" if section else key.group(1))
    return keys


def _value(v: object) -> str:
    if v is None:
        return "pack's `tiers`"
    return f"{v:g}" if isinstance(v, float) else str(v)


def profile_table() -> str:
    """The reference's table of built-in profile values, as the code has them."""
    fields = [f for f in Profile.model_fields if f not in ("parent", "description")]
    rows = ["| field | " + " | ".join(f"`{p}`" for p in PROFILES) + " |", "|---|" + "---:|" * len(PROFILES)]
    for f in fields:
        rows.append(f"| `{f}` | " + " | ".join(_value(getattr(resolve_profile(p, {}), f)) for p in PROFILES) + " |")
    return "\n".join(rows)


def test_every_scenario_key_is_documented_and_every_documented_key_exists() -> None:
    code, doc = schema_keys(), documented_keys(_text())
    assert code - doc == set(), f"keys the code accepts but docs/PACKS.md does not document: {sorted(code - doc)}"
    assert doc - code == set(), f"keys docs/PACKS.md documents but the code rejects: {sorted(doc - code)}"


def test_the_profile_table_holds_the_built_in_values() -> None:
    assert profile_table() in _text(), "docs/PACKS.md's profile table is out of date; it should read:\n" + profile_table()


def test_every_profile_field_is_explained() -> None:
    text = _text().split("### Profiles", 1)[1]
    missing = [f for f in Profile.model_fields if f not in ("parent", "description") and f"- `{f}`" not in text
               and not re.search(rf"^- [^\n]*`{f}`", text, re.M)]  # fmt: skip
    assert missing == []


def test_every_pack_api_name_is_documented_and_nothing_else_is_offered() -> None:
    section = _text().split("## The pack API", 1)[1]
    table = [line for line in section.splitlines() if line.startswith("| `")]
    offered = {name for line in table for name in re.findall(r"`(\w+)`", line.split("|")[1])}
    assert offered == set(pack_api.__all__)


def test_the_marker_format_it_documents_is_the_one_provisioning_writes(tmp_path: Path) -> None:
    from harness.integrity.markers import marker_prefix
    from harness.provisioning import CustomerStore

    example = re.search(r"e\.g\. `(srm\w+)` \((\d+) characters\)", _text())
    assert example is not None
    marker = CustomerStore(tmp_path / "customers.jsonl", run_token="ab12c3").marker(42)
    assert marker == example.group(1) and len(marker) == int(example.group(2))
    assert marker_prefix(marker) == "srmab12c3"


def test_the_readme_links_the_reference() -> None:
    readme = (REFERENCE.parents[1] / "README.md").read_text(encoding="utf-8")
    assert "docs/PACKS.md" in readme


def test_the_credential_hook_and_its_record_key_are_documented() -> None:
    from harness.credentials import EXPIRES_AT_KEY, HOOK_NAME, REFRESH_AHEAD_S

    text = _text()
    assert f"def {HOOK_NAME}(client: httpx.Client, customer: dict) -> dict:" in text
    assert f"`{EXPIRES_AT_KEY}`" in text
    assert f"Less than {REFRESH_AHEAD_S:g} s before then" in text
