"""What a worker on another host receives and what is checked when it joins (no Locust here).

The pack's version is a hash of its folder, so two hosts agree exactly when their copies do;
the plan that travels names no file of the master's; a loopback target is refused when other
hosts share the load; the ledger is shipped in whole lines only.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import ConfigError
from harness.integrity.ledger import LEDGER_DIR_ENV
from harness.load.joining import (
    LedgerTail,
    check_remote_target,
    local_plan,
    pack_version,
    portable_plan,
)
from harness.load.plan import LoadPlan, PhasePlan


def _pack(folder: Path, locustfile: str = "class Visitor: pass\n") -> Path:
    folder.mkdir(parents=True)
    (folder / "locustfile.py").write_text(locustfile, encoding="utf-8")
    (folder / "data").mkdir()
    (folder / "data" / "names.txt").write_text("ada\ngrace\n", encoding="utf-8")
    return folder


def test_two_copies_of_a_pack_have_one_version_and_an_edit_changes_it(tmp_path: Path) -> None:
    a, b = _pack(tmp_path / "a"), _pack(tmp_path / "b")
    assert pack_version(a) == pack_version(b)
    (b / "data" / "names.txt").write_text("ada\ngrace\nedsger\n", encoding="utf-8")
    assert pack_version(a) != pack_version(b)


def test_caches_and_run_folders_do_not_change_the_version(tmp_path: Path) -> None:
    pack = _pack(tmp_path / "pack")
    before = pack_version(pack)
    (pack / "__pycache__").mkdir()
    (pack / "__pycache__" / "locustfile.cpython-311.pyc").write_bytes(b"\0compiled")
    (pack / "reports").mkdir()
    (pack / "reports" / "scorecard.json").write_text("{}", encoding="utf-8")
    assert pack_version(pack) == before


def test_a_missing_pack_folder_is_one_sentence(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist; give the same pack folder"):
        pack_version(tmp_path / "nowhere")


def _plan(pack: Path, out: Path, customers: Path) -> LoadPlan:
    return LoadPlan(
        locustfile=str(pack / "locustfile.py"), host="http://10.0.0.9:8080", output_dir=str(out),
        phases=(PhasePlan("steady", "steady", 10, 1.0),), customers_file=str(customers),
        env={"TENANT": "t1", LEDGER_DIR_ENV: str(out / "ledger")}, pack_dir=str(pack),
        remote_workers=1, master_bind="10.0.0.5", master_port=5557,
    )  # fmt: skip


def test_the_plan_travels_without_a_path_of_the_master(tmp_path: Path) -> None:
    pack, out, customers = _pack(tmp_path / "master" / "pack"), tmp_path / "master" / "out", tmp_path / "c.jsonl"
    customers.write_text('{"id": 1}\n', encoding="utf-8")
    travelled = portable_plan(_plan(pack, out, customers))
    assert str(tmp_path) not in repr(travelled)
    assert travelled["locustfile"] == "locustfile.py"
    assert travelled["env"] == {"TENANT": "t1"}


def test_on_the_worker_the_plan_points_into_its_own_copy_and_scratch(tmp_path: Path) -> None:
    pack, out, customers = _pack(tmp_path / "master" / "pack"), tmp_path / "master" / "out", tmp_path / "c.jsonl"
    customers.write_text('{"id": 1}\n', encoding="utf-8")
    copy, scratch = _pack(tmp_path / "worker" / "pack"), tmp_path / "worker" / "scratch"
    here = local_plan(portable_plan(_plan(pack, out, customers)), copy, scratch, customers.read_text(), True)
    assert Path(here.locustfile) == (copy / "locustfile.py").resolve()
    assert here.customers_file is not None and Path(here.customers_file).read_text() == '{"id": 1}\n'
    assert Path(here.customers_file).parent == scratch
    assert here.env[LEDGER_DIR_ENV] == str(scratch / "ledger") and here.env["TENANT"] == "t1"
    assert str(tmp_path / "master") not in repr(here.to_dict())


def test_a_locustfile_outside_the_pack_is_refused(tmp_path: Path) -> None:
    pack, elsewhere = _pack(tmp_path / "pack"), _pack(tmp_path / "elsewhere")
    plan = _plan(pack, tmp_path / "out", tmp_path / "c.jsonl")
    moved = LoadPlan.from_dict({**plan.to_dict(), "locustfile": str(elsewhere / "locustfile.py")})
    with pytest.raises(ConfigError, match="outside the pack folder"):
        portable_plan(moved)


@pytest.mark.parametrize("url", ["http://127.0.0.1:8000", "http://localhost:8000", "http://[::1]:8000"])
def test_a_loopback_target_is_refused_when_other_hosts_send_load(url: str) -> None:
    with pytest.raises(ConfigError, match="would send to their own loopback"):
        check_remote_target(url, 1)
    check_remote_target(url, 0)  # local workers share this host's loopback
    check_remote_target("http://10.0.0.9:8000", 2)


def test_the_ledger_is_shipped_in_whole_lines_once(tmp_path: Path) -> None:
    folder = tmp_path / "ledger"
    folder.mkdir()
    tail = LedgerTail(folder)
    path = folder / "ledger-1.jsonl"
    path.write_text('{"op": 1}\n{"op": 2', encoding="utf-8")  # the second line is still being written
    assert tail.new_text() == '{"op": 1}\n'
    with path.open("a", encoding="utf-8") as f:
        f.write('}\n{"op": 3}\n')
    assert tail.new_text() == '{"op": 2}\n{"op": 3}\n'
    assert tail.new_text() == ""


@pytest.mark.parametrize(("args", "said"), [
    (["--expect-workers", "1", "--bind", "10.0.0.5:5557"], "the target the harness starts listens on loopback"),
    (["--expect-workers", "1", "--bind", "10.0.0.5:5557", "--target", "http://127.0.0.1:8000"],
     "would send to their own loopback"),
    (["--expect-workers", "1", "--bind", "10.0.0.5", "--target", "http://127.0.0.1:8000"],
     "write HOST:PORT with a fixed port"),
])  # fmt: skip
def test_remote_workers_without_an_address_they_reach_are_a_usage_error(args: list[str], said: str,
                                                                         tmp_path: Path) -> None:  # fmt: skip
    from click.testing import CliRunner

    from harness.cli import main

    result = CliRunner().invoke(main, ["audit", "--reports", str(tmp_path), *args])
    assert result.exit_code == 2, result.output
    assert said in " ".join(result.output.split()) and "Traceback" not in result.output
