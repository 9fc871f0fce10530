"""The pack's locustfile in the engine: its paced user classes, their weights, their environment.

The locustfile is plain Locust: its user classes derive from ``harness.load.kit.CustomerUser``,
which the engine can pace (a plain Locust user sleeps between tasks on its own clock, so it could
not follow an arrival rate). The pack's persona weights (``SCALEREADY_PERSONA_WEIGHTS``) override
the classes' own ``weight``.

Imported by the engine child only (Locust).
"""

from __future__ import annotations

import importlib.util
import inspect
import os
import sys
from pathlib import Path

from locust.user.users import User

from harness.errors import ConfigError
from harness.load.kit import CUSTOMERS_ENV, CustomerUser
from harness.load.plan import PERSONA_WEIGHTS_ENV, LoadPlan
from harness.load.popularity import POPULARITY_ENV, to_env_value

__all__ = ["load_user_classes", "persona_weights", "prepare_process", "user_weights"]


def load_user_classes(plan: LoadPlan) -> list[type[User]]:
    """Import the plan's locustfile and return its paced user classes."""
    path = Path(plan.locustfile).resolve()
    if not path.is_file():
        raise ConfigError(f"locustfile {path} does not exist; check the pack's `locustfile` setting")
    sys.path.insert(0, str(path.parent))
    spec = importlib.util.spec_from_file_location(f"scaleready_locustfile_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    classes = [
        obj for obj in vars(module).values()
        if inspect.isclass(obj) and issubclass(obj, User) and not obj.__dict__.get("abstract", False)
        and getattr(obj, "tasks", None)
    ]
    if plan.user_classes:
        classes = [c for c in classes if c.__name__ in plan.user_classes]
    plain = [c.__name__ for c in classes if not issubclass(c, CustomerUser)]
    if plain:
        raise ConfigError(
            f"{path}: user classes {plain} are not harness.load.kit.CustomerUser subclasses, so the "
            "harness cannot pace them; derive them from CustomerUser"
        )
    if not classes:
        raise ConfigError(f"{path}: no non-abstract CustomerUser classes with tasks found")
    for cls in classes:
        cls.host = plan.host
        cls.network_timeout = plan.request_timeout_s  # type: ignore[attr-defined]
        cls.connection_timeout = plan.request_timeout_s  # type: ignore[attr-defined]
    return classes


def prepare_process(plan: LoadPlan) -> None:
    """Set the environment the locustfile reads (the plan's ``env``, the customers file)."""
    for key, value in plan.env.items():
        os.environ[key] = value
    if plan.customers_file:
        os.environ[CUSTOMERS_ENV] = plan.customers_file
    os.environ[POPULARITY_ENV] = to_env_value(plan.popularity)


def user_weights(user_classes: list[type[User]]) -> list[float]:
    """Each class's share of the arrivals: the pack's persona weight, else the class's ``weight``."""
    overrides = persona_weights(os.environ.get(PERSONA_WEIGHTS_ENV, ""))
    return [max(0, overrides.get(c.__name__, getattr(c, "weight", 1))) for c in user_classes]


def persona_weights(text: str) -> dict[str, float]:
    """``"ClinicAdmin=1,Receptionist=5"`` (the pack's persona weights) as a dict."""
    weights: dict[str, float] = {}
    for item in text.split(","):
        name, sep, value = item.partition("=")
        if sep and name.strip():
            weights[name.strip()] = float(value)
    return weights

