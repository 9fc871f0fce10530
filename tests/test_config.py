"""scenario.toml validation: every mistake names the file, the key, what was expected."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.config import load_scenario, resolve_profile
from harness.errors import ConfigError

VALID = """
tiers = [50, 500, 5000]

[pack]
name = "shop"

[target]
start = "{python} -m shop --port {port}"

[customers]
peak_rps_per_customer = 0.1

[slo]
p95_ms = 100
p99_ms = 250
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "scenario.toml"
    path.write_text(text, encoding="utf-8")
    return path


def error_for(tmp_path: Path, text: str) -> str:
    with pytest.raises(ConfigError) as info:
        load_scenario(write(tmp_path, text))
    return str(info.value)


def test_a_valid_scenario_loads_with_defaults(tmp_path: Path) -> None:
    config = load_scenario(write(tmp_path, VALID))
    assert config.tiers == [50, 500, 5000]
    assert config.customers.goal == 5000
    assert config.slo.error_rate == 0.01
    assert config.target.health_path == "/health"


def test_toml_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    message = error_for(tmp_path, VALID + "\n[slo\n")
    assert "scenario.toml" in message
    assert "TOML syntax error" in message
    assert "line" in message


def test_unknown_key_suggests_the_right_one(tmp_path: Path) -> None:
    message = error_for(tmp_path, VALID.replace("p95_ms = 100", "p95ms = 100"))
    assert "unknown key 'slo.p95ms'" in message
    assert "did you mean 'p95_ms'" in message
    assert "line " in message


def test_wrong_type_says_what_was_expected_and_what_was_given(tmp_path: Path) -> None:
    message = error_for(tmp_path, VALID.replace("peak_rps_per_customer = 0.1", 'peak_rps_per_customer = "fast"'))
    assert "customers.peak_rps_per_customer" in message
    assert "number" in message
    assert "'fast'" in message


def test_tiers_must_increase_and_the_fix_is_offered(tmp_path: Path) -> None:
    message = error_for(tmp_path, VALID.replace("[50, 500, 5000]", "[50, 5000, 500]"))
    assert "tiers must increase" in message
    assert "write [50, 500, 5000]" in message


def test_missing_required_section_is_named(tmp_path: Path) -> None:
    message = error_for(tmp_path, VALID.replace("[customers]\npeak_rps_per_customer = 0.1\n", ""))
    assert "missing required key 'customers'" in message


def test_start_command_needs_the_port_placeholder(tmp_path: Path) -> None:
    message = error_for(tmp_path, VALID.replace("--port {port}", "--port 8000"))
    assert "{port}" in message


def test_p99_below_p95_is_refused(tmp_path: Path) -> None:
    text = VALID + '\n[slo.endpoints."GET /x"]\np95_ms = 50\np99_ms = 10\n'
    message = error_for(tmp_path, text)
    assert "p99_ms (10.0) must be at least p95_ms (50.0)" in message


def test_missing_file_says_what_a_pack_is(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found; a pack is a folder with a scenario.toml"):
        load_scenario(tmp_path / "scenario.toml")


def test_profiles_inherit_from_their_parent() -> None:
    quick = resolve_profile("quick", {})
    assert quick.steady_s < resolve_profile("standard", {}).steady_s
    assert quick.window_s == resolve_profile("standard", {}).window_s  # inherited


def test_a_pack_overrides_a_builtin_profile_field_by_field() -> None:
    quick = resolve_profile("quick", {"quick": {"steady_s": 7.0}})
    assert quick.steady_s == 7.0
    assert quick.warmup_s == resolve_profile("quick", {}).warmup_s


def test_a_pack_can_add_a_profile_with_a_parent() -> None:
    smoke = resolve_profile("smoke", {"smoke": {"parent": "quick", "tiers": [5, 10]}})
    assert smoke.tiers == [5, 10]
    assert smoke.hypothesis_examples == resolve_profile("quick", {}).hypothesis_examples


def test_unknown_profile_suggests_a_name() -> None:
    with pytest.raises(ConfigError, match="did you mean 'quick'"):
        resolve_profile("quik", {})


def test_unknown_profile_key_is_refused_with_a_suggestion(tmp_path: Path) -> None:
    message = error_for(tmp_path, VALID + "\n[profiles.quick]\nstedy_s = 3\n")
    assert "profiles.quick: unknown key 'stedy_s'" in message
    assert "did you mean 'steady_s'" in message


def test_profile_loop_is_reported() -> None:
    with pytest.raises(ConfigError, match="loops back"):
        resolve_profile("a", {"a": {"parent": "b"}, "b": {"parent": "a"}})


def test_suite_openapi_accepts_a_path_on_the_target_a_file_or_a_loopback_url(tmp_path: Path) -> None:
    for value in ("/openapi.json", "openapi.yaml", "http://127.0.0.1:8000/openapi.json"):
        config = load_scenario(write(tmp_path, VALID + f'\n[suite]\nopenapi = "{value}"\n'))
        assert config.suite.openapi == value
    assert load_scenario(write(tmp_path, VALID)).suite.openapi is None


def test_suite_openapi_on_another_host_needs_allowed_hosts(tmp_path: Path) -> None:
    text = VALID + '\n[suite]\nopenapi = "http://api.example.com/openapi.json"\n'
    message = error_for(tmp_path, text)
    assert "suite.openapi = 'http://api.example.com/openapi.json'" in message
    assert "not on loopback" in message and "target.allowed_hosts" in message
    allowed = text.replace("[target]\n", '[target]\nallowed_hosts = ["api.example.com"]\n')
    assert load_scenario(write(tmp_path, allowed)).suite.openapi == "http://api.example.com/openapi.json"


def test_suite_openapi_refuses_an_empty_value_and_other_schemes(tmp_path: Path) -> None:
    assert "leave the key out" in error_for(tmp_path, VALID + '\n[suite]\nopenapi = ""\n')
    assert "only http(s) URLs" in error_for(tmp_path, VALID + '\n[suite]\nopenapi = "ftp://h/o.json"\n')


def test_a_pack_naming_an_openapi_file_that_is_not_there_is_refused(tmp_path: Path) -> None:
    from harness.pack import load_pack

    for name in ("provision.py", "locustfile.py"):
        (tmp_path / name).write_text("", encoding="utf-8")
    write(tmp_path, VALID + '\n[suite]\nregression = ""\nproperties = ""\nopenapi = "openapi.json"\n')
    with pytest.raises(ConfigError, match=r"suite.openapi = 'openapi.json': no such file"):
        load_pack(tmp_path)
    (tmp_path / "openapi.json").write_text("{}", encoding="utf-8")
    assert load_pack(tmp_path).openapi_file == tmp_path.resolve() / "openapi.json"
    write(tmp_path, VALID + '\n[suite]\nregression = ""\nproperties = ""\nopenapi = "/openapi.json"\n')
    assert load_pack(tmp_path).openapi_file is None  # a path on the target, read once it runs
