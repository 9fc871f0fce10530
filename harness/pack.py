"""A pack: the folder that teaches the harness one target.

    scenarios/NAME/
      scenario.toml    target, customers, tiers, SLOs, profiles (harness.config)
      provision.py     async create_customer(client, index, rng, marker) -> dict
      locustfile.py    plain Locust personas built on harness.load.kit.CustomerUser
      tests/           pytest regression suite (run against the target)
      properties/      Hypothesis properties (run against the target)
      invariants.py    integrity invariants (optional)

Loading checks that every file the configuration names exists, so a missing file is reported
before anything starts, and imports pack modules with errors turned into one clear sentence.
"""

from __future__ import annotations

import importlib.util
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from harness.config import ScenarioConfig, load_scenario, suggest
from harness.errors import ConfigError

SCENARIO_FILE = "scenario.toml"


@dataclass(frozen=True)
class Pack:
    root: Path
    config: ScenarioConfig

    @property
    def name(self) -> str:
        return self.config.pack.name

    @property
    def scenario_file(self) -> Path:
        return self.root / SCENARIO_FILE

    @property
    def locustfile(self) -> Path:
        return self.root / self.config.customers.locustfile

    @property
    def provision_file(self) -> Path:
        return self.root / self.config.customers.provision

    def suite_dir(self, which: str) -> Path | None:
        rel = getattr(self.config.suite, which)
        return self.root / rel if rel else None

    @property
    def invariants_file(self) -> Path | None:
        rel = self.config.suite.invariants
        path = self.root / rel if rel else None
        return path if path and path.exists() else None

    @property
    def openapi_file(self) -> Path | None:
        """The pack's OpenAPI document when ``suite.openapi`` names a file (not a path on the target
        or a URL)."""
        source = self.config.suite.openapi
        if source is None or source.startswith("/") or "://" in source:
            return None
        return self.root / source

    @property
    def target_cwd(self) -> Path:
        return (self.root / self.config.target.cwd).resolve()


def default_scenarios_dir() -> Path:
    """`scenarios/` of the current directory, else the one beside the installed package."""
    here = Path.cwd() / "scenarios"
    if here.is_dir():
        return here
    return Path(__file__).resolve().parent.parent / "scenarios"


def resolve_pack_path(spec: str | Path) -> Path:
    """A pack given as a path, or as a name under scenarios/ ("booking")."""
    path = Path(spec)
    if path.is_dir():
        return path.resolve()
    if path.name == SCENARIO_FILE and path.is_file():
        return path.parent.resolve()
    scenarios = default_scenarios_dir()
    candidate = scenarios / str(spec)
    if candidate.is_dir():
        return candidate.resolve()
    known = sorted(p.name for p in scenarios.glob("*") if (p / SCENARIO_FILE).is_file())
    raise ConfigError(
        f"pack '{spec}' not found: no such folder{suggest(path.name, known)}; "
        f"known packs: {', '.join(known) or 'none'} (in {scenarios})"
    )


def load_pack(spec: str | Path) -> Pack:
    root = resolve_pack_path(spec)
    config = load_scenario(root / SCENARIO_FILE)
    pack = Pack(root=root, config=config)
    _check_files(pack)
    return pack


def _check_files(pack: Pack) -> None:
    where = pack.scenario_file
    required = {
        "customers.locustfile": pack.locustfile,
        "customers.provision": pack.provision_file,
    }
    for which in ("regression", "properties"):
        folder = pack.suite_dir(which)
        if folder is not None:
            required[f"suite.{which}"] = folder
    if pack.openapi_file is not None:
        required["suite.openapi"] = pack.openapi_file
    for key, path in required.items():
        if not path.exists():
            siblings = [p.name for p in path.parent.glob("*")] if path.parent.is_dir() else []
            raise ConfigError(
                f"{where}: {key} = '{path.name}': no such file or folder in {path.parent}"
                f"{suggest(path.name, siblings)}; create it or fix the key"
            )
    if not pack.target_cwd.is_dir():
        raise ConfigError(f"{where}: target.cwd = '{pack.config.target.cwd}': not a folder")
    personas = pack.config.customers.personas
    if personas:
        text = pack.locustfile.read_text(encoding="utf-8")
        for name in personas:
            if f"class {name}" not in text:
                raise ConfigError(
                    f"{where}: customers.personas.{name}: no class {name} in {pack.locustfile.name}; "
                    "persona names are the Locust user class names"
                )


def import_pack_module(pack: Pack, path: Path) -> ModuleType:
    """Import a pack module by path; an exception on import becomes one ConfigError sentence."""
    return import_module_file(path, f"scaleready_pack_{pack.root.name}_{path.stem}", pack.root)


def import_module_file(path: Path, module_name: str, search_dir: Path) -> ModuleType:
    """Import ``path`` as ``module_name`` with ``search_dir`` importable meanwhile (the pack's own
    modules import each other); an exception on import becomes one ConfigError sentence."""
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ConfigError(f"{path}: cannot be imported as a Python module")
    module = importlib.util.module_from_spec(spec)
    folder = str(search_dir.resolve())
    added = folder not in sys.path
    if added:
        sys.path.insert(0, folder)
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # noqa: BLE001 - any error in user code is a pack problem, not ours
        frame = traceback.extract_tb(exc.__traceback__)[-1]
        raise ConfigError(
            f"{path}: raised {type(exc).__name__} on import at line {frame.lineno}: {exc}; "
            "fix the module (run it with python to see the full traceback)"
        ) from None
    finally:
        if added:
            sys.path.remove(folder)
    return module


def provision_hook(pack: Pack):  # noqa: ANN201 - returns the pack's coroutine function
    module = import_pack_module(pack, pack.provision_file)
    hook = getattr(module, "create_customer", None)
    if hook is None or not callable(hook):
        raise ConfigError(
            f"{pack.provision_file}: no function create_customer(client, index, rng, marker); "
            "define it (see docs/PACKS.md)"
        )
    return hook
