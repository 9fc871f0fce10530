"""The harness's exception hierarchy.

Domain code raises these; only the CLI turns them into a message and an exit code::

    HarnessError                 base of everything the harness raises on purpose (exit 4)
    ├── ConfigError              a pack or option is wrong: the user must fix input (exit 2)
    ├── TargetError              the target could not be started or reached (exit 3)
    └── AuditInterrupted         Ctrl-C / SIGTERM; partial results were kept (exit 5)

Every message is one sentence a user can act on: the value, why it is wrong, what to do.
"""

from __future__ import annotations


class HarnessError(Exception):
    """Base class for errors the harness raises deliberately."""

    exit_code = 4


class ConfigError(HarnessError):
    """A pack, profile or command-line option is invalid."""

    exit_code = 2


class TargetError(HarnessError):
    """The target failed to start, never became healthy, or is not allowed."""

    exit_code = 3


class AuditInterrupted(HarnessError):
    """The user (or a supervisor) interrupted the audit."""

    exit_code = 5
