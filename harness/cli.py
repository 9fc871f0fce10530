"""The `scaleready` command line. The only place that prints a verdict and exits.

Exit codes (stable, documented in the README):
  0  READY (and AT RISK unless --strict)       1  NOT READY (and AT RISK with --strict)
  2  usage or configuration error              3  target unreachable or failed to start
  4  internal error (a bug: please report it)  5  INCONCLUSIVE, or interrupted (partial report)
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.live import Live
from rich.text import Text

from harness.errors import ConfigError, HarnessError
from harness.progress import LoadProgress, Provisioning, TierEvent
from harness.records import severity_rank

EXIT_READY, EXIT_NOT_READY, EXIT_USAGE, EXIT_TARGET, EXIT_INTERNAL, EXIT_INCONCLUSIVE = range(6)
VERDICT_EXIT = {"READY": EXIT_READY, "AT RISK": EXIT_READY, "NOT READY": EXIT_NOT_READY,
                "INCONCLUSIVE": EXIT_INCONCLUSIVE}  # fmt: skip
VERDICT_STYLE = {"READY": "bold green", "AT RISK": "bold yellow", "NOT READY": "bold red",
                 "INCONCLUSIVE": "bold magenta"}  # fmt: skip


def exit_code_for(verdict: str, *, strict: bool, interrupted: bool) -> int:
    if interrupted:
        return EXIT_INCONCLUSIVE
    if verdict == "AT RISK" and strict:
        return EXIT_NOT_READY
    return VERDICT_EXIT[verdict]


class _LiveObserver:
    """Draws the audit's progress: stage, tier, elapsed, current req/s, errors."""

    def __init__(self, console: Console, live: Live | None) -> None:
        self.console = console
        self.live = live
        self.started = time.monotonic()
        self.stage_name = ""
        self.detail = ""
        self.load: LoadProgress | None = None
        self._last_plain = 0.0

    def _line(self) -> Text:
        elapsed = time.monotonic() - self.started
        text = Text(f"[{elapsed:6.1f}s] ", style="dim")
        text.append(self.stage_name, style="bold cyan")
        if self.detail:
            text.append(f"  {self.detail}")
        if self.load is not None:
            d = self.load
            text.append(
                f"  | {d.phase} {d.elapsed:.0f}/{d.duration:.0f}s  {d.rps:.0f} req/s  errors {d.errors}"
                f"  users {d.users}  dropped {d.dropped}"
            )
        return text

    def _refresh(self, force_plain: bool = False) -> None:
        if self.live is not None:
            self.live.update(self._line())
        elif force_plain or time.monotonic() - self._last_plain > 10:
            self._last_plain = time.monotonic()
            self.console.print(self._line())

    def stage(self, name: str, detail: str = "") -> None:
        self.stage_name, self.detail, self.load = name, detail, None
        if self.live is not None:
            self.console.print(self._line())
        self._refresh(force_plain=True)

    def progress(self, event: TierEvent) -> None:
        if isinstance(event, LoadProgress):
            self.load = event
        elif isinstance(event, Provisioning):
            self.detail = f"provisioning {event.done}/{event.total}"
        else:
            self.load = None
            self.detail = {"replay": "replaying server errors", "overlap": "sending overlapping writes"}.get(
                event.step, "checking integrity")  # fmt: skip
        self._refresh()

    def note(self, message: str) -> None:
        self.console.print(Text("  " + message, style="dim"))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="scaleready")
def main() -> None:
    """scaleready: can this web service grow from 50 to 5000 customers?

    Runs a pack's regression suite, Hypothesis properties and open-model Locust load tiers
    against a target, checks integrity under load, models capacity, and writes a scorecard.

    \b
    Exit codes: 0 READY (or AT RISK), 1 NOT READY (or AT RISK with --strict),
    2 usage/config error, 3 target failed to start or unreachable,
    4 internal error, 5 INCONCLUSIVE or interrupted.
    """


@main.command()
@click.argument("pack", default="scenarios/booking", metavar="[PACK]")
@click.option("--target", "target_url", metavar="URL",
              help="Audit an already-running service at URL (nothing is started or stopped). "
                   "Non-loopback hosts must be listed in the pack's target.allowed_hosts.")
@click.option("--profile", default="standard", show_default=True,
              help="Named profile: quick (~3 min), standard, nightly, audit, or one the pack defines.")
@click.option("--workers", type=click.IntRange(0, 64), default=0, show_default=True,
              help="Run Locust's distributed mode with N local worker processes (0 = one process).")
@click.option("--bind", "bind_text", metavar="HOST:PORT",
              help="Where each tier's Locust master listens, for workers on other hosts "
                   "(default: loopback, a free port). Not the target: its host is still checked.")
@click.option("--expect-workers", type=click.IntRange(0, 256), default=0, show_default=True,
              help="Also wait for N workers that other hosts start with "
                   "`scaleready worker --master HOST:PORT PACK` (needs --bind and --target).")
@click.option("--join-timeout", "join_timeout_text", metavar="DURATION", default="120s", show_default=True,
              help="How long each tier's master waits for every worker to join.")
@click.option("--flaw", metavar="NAME", help="Start the pack's service with a named flaw (see the pack).")
@click.option("--only", multiple=True, metavar="STAGE",
              help="Run only: gate, properties, tiers, or tier:N (repeatable).")
@click.option("--tiers", "tiers_text", metavar="N,N,...",
              help="Override the tiers, e.g. 5,20,50 (must increase).")
@click.option("--seed", type=int, help="Seed for provisioning data, arrivals and Hypothesis (recorded in the report).")
@click.option("--reports", "reports_dir", type=click.Path(path_type=Path), default=Path("reports"),
              show_default=True, help="Folder that receives the run folder and the history.")
@click.option("--strict", is_flag=True, help="Exit 1 on AT RISK as well as on NOT READY.")
@click.option("--deadline", "deadline_text", metavar="DURATION",
              help="Stop after this long (e.g. 90s, 40m, 1.5h) and write what was measured, as Ctrl-C does (exit 5).")
@click.option("--pdf", is_flag=True, help="Also print report.html to report.pdf (A4, needs headless Chromium).")
@click.option("--label", metavar="TEXT", help="A name for this run in the history (e.g. 'after the index').")
@click.option("--commit", metavar="SHA",
              help="The target's commit, for the history (default: $GITHUB_SHA; the branch from $GITHUB_REF_NAME).")
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
def audit(pack: str, target_url: str | None, profile: str, workers: int, bind_text: str | None,
          expect_workers: int, join_timeout_text: str, flaw: str | None,
          only: tuple[str, ...], tiers_text: str | None, seed: int | None, reports_dir: Path,
          strict: bool, deadline_text: str | None, pdf: bool, label: str | None, commit: str | None,
          debug: bool) -> None:  # fmt: skip
    """Audit PACK (a folder or a name under scenarios/; default scenarios/booking).

    Starts the pack's service (unless --target), runs the regression gate, the properties,
    the noise-floor calibration and each tier (provision, warm up, steady window, stress steps,
    integrity), then writes reports/<run-id>/ with scorecard.json, scorecard.md, report.html
    and junit.xml (and report.pdf with --pdf), and prints the verdict.
    """
    console = Console(stderr=True)
    distribution = _Distribution(workers, bind_text, expect_workers, join_timeout_text)
    _exit_with(console, debug, lambda: _audit(console, pack, target_url, profile, distribution, flaw, only,
                                              tiers_text, seed, reports_dir, strict, deadline_text, pdf,
                                              label, commit))  # fmt: skip


def _exit_with(console: Console, debug: bool, command: Callable[[], int]) -> None:
    """Run a command and exit with its code: a user's error is one red sentence (traceback only
    with --debug), a bug in the harness keeps its traceback and exits 4."""
    try:
        code = command()
    except HarnessError as exc:
        if debug:
            traceback.print_exc()
        console.print(Text(f"scaleready: {exc}", style="red"))
        code = exc.exit_code
    except Exception:  # noqa: BLE001 - a bug: say so, keep the traceback
        console.print(Text("scaleready: internal error (a bug in the harness):", style="bold red"))
        traceback.print_exc()
        code = EXIT_INTERNAL
    sys.exit(code)


@dataclass(frozen=True)
class _Distribution:
    """The load-generation options as given: --workers, --bind, --expect-workers, --join-timeout."""

    workers: int
    bind: str | None
    expect_workers: int
    join_timeout: str

    def bind_address(self) -> tuple[str, int] | None:
        if self.bind is None:
            return None
        host, _, port = self.bind.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ConfigError(f"--bind {self.bind}: write HOST:PORT with a fixed port, e.g. 10.0.0.5:5557")
        return host.strip("[]"), int(port)


def _audit(console: Console, pack_spec: str, target_url: str | None, profile: str, distribution: _Distribution,
           flaw: str | None, only: tuple[str, ...], tiers_text: str | None, seed: int | None,
           reports_dir: Path, strict: bool, deadline_text: str | None = None, pdf: bool = False,
           label: str | None = None, commit: str | None = None) -> int:  # fmt: skip
    from harness.audit import AuditOptions, run_audit
    from harness.config import check_tiers
    from harness.history.rows import ci_commit
    from harness.pack import load_pack
    from harness.report.pdf import find_chromium

    chromium = find_chromium() if pdf else None  # before the audit, not after an hour of it
    loaded = load_pack(pack_spec)
    tiers = _parse_tiers(tiers_text, check_tiers) if tiers_text else None
    deadline_s = parse_duration(deadline_text, "--deadline") if deadline_text else None
    options = AuditOptions(pack=loaded, profile_name=profile, reports_dir=reports_dir,
                           target_url=target_url, workers=distribution.workers,
                           bind=distribution.bind_address(), expect_workers=distribution.expect_workers,
                           join_timeout_s=parse_duration(distribution.join_timeout, "--join-timeout"),
                           flaw=flaw, seed=seed, only=only, tiers=tiers, strict=strict, deadline_s=deadline_s,
                           label=label, commit=commit or ci_commit()[0], branch=ci_commit()[1])  # fmt: skip
    cancel = threading.Event()
    with _signals(cancel, console):
        live = Live(console=console, refresh_per_second=4, transient=True) if console.is_terminal else None
        observer = _LiveObserver(console, live)
        if live is not None:
            live.start()
        try:
            outcome = run_audit(options, observer, cancel)
        finally:
            if live is not None:
                live.stop()
    record = outcome.record
    out = Console()
    line = Text("Verdict: ")
    line.append(record.verdict, style=VERDICT_STYLE[record.verdict])
    if record.ready_up_to:
        line.append(f"  (ready up to {record.ready_up_to} customers)")
    if record.partial:
        line.append("  [partial]", style="yellow")
    out.print(line)
    for finding in sorted(record.findings, key=lambda f: severity_rank(f.severity))[:8]:
        out.print(f"  - [{finding.category}] {finding.title}")
    out.print(f"Report: {outcome.paths.report_html}")
    if chromium is not None:
        from harness.report.pdf import PdfError

        try:
            out.print(f"PDF: {_print_pdf(outcome.paths.report_html, chromium)}")
        except PdfError as exc:  # the audit's verdict stands; only the print is missing
            redo = f"scaleready report {record.run_id} --reports {reports_dir} --pdf"
            console.print(Text(f"scaleready: {exc}; print it again with `{redo}`", style="red"))
    out.print(f"Scorecard: {outcome.paths.scorecard_md}")
    _job_summary(console, outcome.paths.scorecard_json, reports_dir)
    return exit_code_for(record.verdict, strict=strict, interrupted=outcome.interrupted)


def _job_summary(console: Console, scorecard: Path, reports_dir: Path) -> None:
    """In a CI job ($GITHUB_STEP_SUMMARY set), append the run's summary to the job's page."""
    from harness.report.job_summary import SUMMARY_ENV, write_job_summary
    from harness.report.writer import read_scorecard

    if not os.environ.get(SUMMARY_ENV):
        return
    try:
        card = read_scorecard(scorecard.parent)
        baseline = None
        if card.get("baseline"):
            with contextlib.suppress(ConfigError):  # a baseline folder cleaned away: every finding is new
                baseline = read_scorecard(reports_dir / card["baseline"]["baseline_run_id"])
        write_job_summary(card, baseline, report=str(scorecard.parent / "report.html"))
    except (OSError, ConfigError) as exc:  # the audit's verdict stands; only the job page misses it
        console.print(Text(f"scaleready: could not write the job summary to ${SUMMARY_ENV}: {exc}", style="red"))


def _print_pdf(html: Path, chromium: str | None = None) -> Path:
    from harness.report.pdf import print_pdf

    return print_pdf(html, html.with_name("report.pdf"), chromium=chromium)


def parse_duration(text: str, option: str) -> float:
    """Seconds from "90", "90s", "40m" or "1.5h"; a ConfigError naming ``option`` otherwise."""
    units = {"s": 1.0, "m": 60.0, "h": 3600.0}
    raw = text.strip().lower()
    number, unit = (raw[:-1], raw[-1]) if raw[-1:] in units else (raw, "s")
    try:
        seconds = float(number) * units[unit]
    except ValueError:
        seconds = -1.0
    if not (seconds > 0 and seconds < float("inf")):
        raise ConfigError(f"{option} {text}: write a positive duration such as 90s, 40m or 1.5h")
    return seconds


def _parse_tiers(text: str, check: Any) -> tuple[int, ...]:
    try:
        values = [int(v) for v in text.replace(" ", "").split(",") if v]
    except ValueError:
        raise ConfigError(f"--tiers {text}: write whole numbers separated by commas, e.g. 50,500,5000") from None
    try:
        return tuple(check(values))
    except ValueError as exc:
        raise ConfigError(f"--tiers {text}: {exc}") from None


class _signals:
    """First Ctrl-C or SIGTERM: stop the current stage and write a partial report. Second: abort."""

    def __init__(self, cancel: threading.Event, console: Console, partial: bool = True) -> None:
        self.cancel = cancel
        self.console = console
        self.partial = partial  # the command writes a partial report (the audit); else it only stops
        self.previous: dict[int, Any] = {}

    def _handle(self, signum: int, frame: Any) -> None:
        if self.cancel.is_set():
            raise KeyboardInterrupt
        self.cancel.set()
        doing = "writing a partial report" if self.partial else "stopping the service"
        self.console.print(Text(f"\nInterrupted: stopping the current stage and {doing} "
                                "(press Ctrl-C again to abort at once)", style="yellow"))  # fmt: skip

    def __enter__(self) -> _signals:
        for sig in (signal.SIGINT, signal.SIGTERM):
            self.previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)


@main.command()
@click.argument("pack", default="scenarios/booking", metavar="[PACK]")
@click.option("--target", "target_url", metavar="URL",
              help="Check against an already-running service at URL (nothing is started or stopped).")
@click.option("--keep-target", is_flag=True,
              help="Leave the started service running with its two customers, and say how to stop it.")
@click.option("--seed", type=int, help="Seed for the customers' data and Hypothesis.")
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
def check(pack: str, target_url: str | None, keep_target: bool, seed: int | None, debug: bool) -> None:
    """Check PACK in about a minute: every file imports, every test, property and persona runs once.

    Validates scenario.toml, imports provision.py, invariants.py and the locustfile, starts the
    service (unless --target), runs the regression tests and the properties (one example each),
    creates two customers, runs each persona's tasks once and the invariants on what they wrote.
    Prints what held and what is wrong (the file, what, what to do). Exit 0 when nothing is
    wrong, 2 when something in the pack is, 3 when the service does not start, 5 on Ctrl-C.
    """
    console = Console(stderr=True)
    _exit_with(console, debug, lambda: _check(console, pack, target_url, keep_target, seed))


def _check(console: Console, pack_spec: str, target_url: str | None, keep_target: bool, seed: int | None) -> int:
    from harness.check import run_check
    from harness.pack import load_pack

    loaded = load_pack(pack_spec)
    cancel = threading.Event()
    with _signals(cancel, console, partial=False):
        outcome = run_check(loaded, target_url=target_url, keep_target=keep_target,
                            observer=_LiveObserver(console, None), cancel=cancel, seed=seed)  # fmt: skip
    out = Console(highlight=False, soft_wrap=True)
    for line in outcome.verified:
        out.print(Text.assemble(Text("  ok  ", style="green"), line))
    for problem in outcome.problems:
        out.print(Text.assemble(Text("  !!  ", style="bold red"), Text(problem.file, style="bold"), f": {problem.what}"))
        out.print(Text(f"        -> {problem.fix}", style="dim"))
    if outcome.interrupted:
        out.print(Text(f"Check interrupted after {outcome.duration_s:.0f} s; the service was stopped.", style="yellow"))
        return EXIT_INCONCLUSIVE
    verdict = ("Pack OK" if outcome.ok else
               f"{len(outcome.problems)} problem{'s' if len(outcome.problems) != 1 else ''} in the pack")  # fmt: skip
    out.print(Text(f"{verdict} ({outcome.duration_s:.0f} s)", style="bold green" if outcome.ok else "bold red"))
    if outcome.kept is not None:
        kept = outcome.kept
        out.print(f"The service is still running at {kept.base_url} (process group {kept.pid}) with "
                  f"{', '.join(kept.customers)}; their records, credentials included: {kept.customers_file}")
        out.print(f"Stop it with: {kept.stop_command}")
    return EXIT_READY if outcome.ok else EXIT_USAGE


@main.command()
@click.argument("pack_dir", metavar="PACKDIR", type=click.Path(path_type=Path))
@click.option("--openapi", "source", required=True, metavar="URL|FILE",
              help="The service's OpenAPI 3.0/3.1 document: a file (JSON or YAML) or a loopback URL.")
@click.option("--start", metavar="COMMAND",
              help="How the harness starts the service ({port}, {python}, {state_dir}); "
                   "without it the pack audits the service at the document's URL or --target.")
@click.option("--cwd", metavar="DIR", help="Where --start runs (written relative to the pack).")
@click.option("--health", "health_path", metavar="PATH", help="The service's health path (default: found in the spec).")
@click.option("--flaws", "flaws_text", metavar="A,B", help="Flaw names the service accepts (for self-tests).")
@click.option("--flaw-env", metavar="VAR", help="The variable that carries --flaw to the service.")
@click.option("--allow-host", "allowed_hosts", multiple=True, metavar="HOST",
              help="Read the document from this non-loopback host too.")
@click.option("--force", is_flag=True, help="Replace PACKDIR if it exists.")
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
def init(pack_dir: Path, source: str, start: str | None, cwd: str | None, health_path: str | None,
         flaws_text: str | None, flaw_env: str | None, allowed_hosts: tuple[str, ...], force: bool,
         debug: bool) -> None:  # fmt: skip
    """Write a pack in PACKDIR from a service's OpenAPI document.

    scenario.toml (target, tiers, an SLO per operation, the auth scheme), provision.py (a
    customer through the sign-up and the top-level creates), locustfile.py (a persona per tag
    or resource, a task per operation), invariants.py (read-back and isolation checks from the
    resources found), tests/ (a smoke test per operation) and properties/. Nothing is written
    when the document is bad (exit 2). Then: scaleready check PACKDIR.
    """
    console = Console(stderr=True)
    _exit_with(console, debug, lambda: _init(console, pack_dir, source, start, cwd, health_path, flaws_text,
                                             flaw_env, allowed_hosts, force))  # fmt: skip


def _init(console: Console, pack_dir: Path, source: str, start: str | None, cwd: str | None,
          health_path: str | None, flaws_text: str | None, flaw_env: str | None,
          allowed_hosts: tuple[str, ...], force: bool) -> int:  # fmt: skip
    from harness.openapi.generate import InitOptions, describe, write_pack
    from harness.openapi.spec import load_spec

    if pack_dir.exists() and not force:  # before reading the document: nothing to do either way
        raise ConfigError(f"{pack_dir}: already exists; choose another folder, or pass --force to replace it")
    spec = load_spec(source, allowed_hosts=allowed_hosts)
    flaws = tuple(f.strip() for f in (flaws_text or "").split(",") if f.strip())
    result = write_pack(spec, pack_dir, InitOptions(source, start, cwd, health_path, flaws, flaw_env, force))
    for line in describe(result):
        console.print(line, highlight=False, soft_wrap=True)
    return EXIT_READY


@main.command()
@click.argument("pack", default="scenarios/booking", metavar="[PACK]")
@click.option("--flaws", "flaws_text", metavar="A,B",
              help="Audit only these flaws (default: every flaw the pack names).")
@click.option("--no-healthy", is_flag=True, help="Skip the audit of the service without a flaw.")
@click.option("--profile", default="selftest", show_default=True,
              help="Profile of every audit (the pack's scaled-down 'selftest' by default).")
@click.option("--tiers", "tiers_text", metavar="N,N,...", help="Override the profile's tiers.")
@click.option("--seed", type=int, help="Seed for every audit (recorded in each report).")
@click.option("--reports", "reports_dir", type=click.Path(path_type=Path), default=Path("reports"),
              show_default=True, help="Writes REPORTS/selftest/<run-id>/matrix.json and matrix.md.")
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
def selftest(pack: str, flaws_text: str | None, no_healthy: bool, profile: str,
             tiers_text: str | None, seed: int | None, reports_dir: Path, debug: bool) -> None:  # fmt: skip
    """Prove the harness: audit PACK's service healthy and with each named flaw, in turn.

    Each flaw must be found with its expected finding category and the healthy service must be
    READY; exit 0 when all are, 1 when a flaw is missed or healthy is not READY.
    """
    console = Console(stderr=True)
    _exit_with(console, debug,
               lambda: _selftest(console, pack, flaws_text, no_healthy, profile, tiers_text, seed, reports_dir))


def _selftest(console: Console, pack_spec: str, flaws_text: str | None, no_healthy: bool,
              profile: str, tiers_text: str | None, seed: int | None, reports_dir: Path) -> int:  # fmt: skip
    from harness.config import check_tiers
    from harness.pack import load_pack
    from harness.selftest import MatrixRow, run_selftest

    loaded = load_pack(pack_spec)
    tiers = _parse_tiers(tiers_text, check_tiers) if tiers_text else None
    flaws = [f.strip() for f in flaws_text.split(",") if f.strip()] if flaws_text else None
    out = Console()

    def on_row(row: MatrixRow) -> None:
        mark = Text("ok  ", style="green") if row.detected else Text("MISS", style="bold red")
        line = Text.assemble(mark, f" {row.flaw:24} {row.verdict:13} {row.wall_s:6.0f} s  ")
        line.append(", ".join(row.categories) or "-", style="dim")
        out.print(line)

    cancel = threading.Event()
    with _signals(cancel, console):
        result = run_selftest(
            loaded, profile=profile, flaws=flaws, healthy=not no_healthy, tiers=tiers,
            reports_dir=reports_dir, seed=seed, observer=_LiveObserver(console, None),
            on_row=on_row, cancel=cancel,
        )  # fmt: skip
    out.print(f"Matrix: {result.run_dir / 'matrix.md'}")
    if cancel.is_set():
        return EXIT_INCONCLUSIVE
    return EXIT_READY if result.passed else EXIT_NOT_READY


@main.command()
@click.argument("run", metavar="RUN")
@click.option("--reports", "reports_dir", type=click.Path(path_type=Path), default=Path("reports"),
              show_default=True, help="Folder that holds the run folders.")
@click.option("--pdf", is_flag=True, help="Also print it to report.pdf (A4, needs headless Chromium).")
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
def report(run: str, reports_dir: Path, pdf: bool, debug: bool) -> None:
    """Redraw a run's report.html from its scorecard.json (report.pdf too with --pdf).

    RUN is a run id in --reports (e.g. 20261207-010627-9f49), "latest", or a run
    folder. The report is drawn by this version of the harness, so an older run
    gets the current report's layout.
    """
    console = Console(stderr=True)
    _exit_with(console, debug, lambda: _report(run, reports_dir, pdf))


def _report(run: str, reports_dir: Path, pdf: bool) -> int:
    from harness.history import latest_run_id
    from harness.report.pdf import find_chromium
    from harness.report.writer import rewrite_html

    chromium = find_chromium() if pdf else None
    run_dir = _run_folder(run, reports_dir, latest_run_id)
    out = Console()
    html = rewrite_html(run_dir)
    out.print(f"Report: {html}")
    if chromium is not None:
        out.print(f"PDF: {_print_pdf(html, chromium)}")
    return EXIT_READY


def _run_folder(run: str, reports_dir: Path, latest: Callable[[Path], str | None]) -> Path:
    """RUN as a run folder: a folder holding scorecard.json, a run id in ``reports_dir``, or "latest"."""
    as_path = Path(run)
    if (as_path / "scorecard.json").is_file():
        return as_path
    run_id = latest(reports_dir) if run == "latest" else run
    if run_id is not None and (reports_dir / run_id).is_dir():
        return reports_dir / run_id
    if run == "latest":
        raise ConfigError(f"no audit has finished in {reports_dir} yet; run one, or pass --reports DIR")
    raise ConfigError(f"no run {run} in {reports_dir}: give a run id from {reports_dir} (e.g. "
                      f"{latest(reports_dir) or 'from an audit run there'}), \"latest\", or a run folder")  # fmt: skip


@main.command()
@click.option("--reports", "reports_dir", type=click.Path(path_type=Path), default=Path("reports"),
              show_default=True, help="Folder that holds the history database.")
@click.option("--pack", metavar="NAME", help="Runs of this pack (default: the newest run's pack).")
@click.option("--profile", metavar="NAME", help="Runs of this profile only.")
@click.option("--metric", default="p95", show_default=True,
              help="capacity, headroom, p50, p95, p99, service_p50, service_p95, error_rate, throughput, requests.")
@click.option("--tier", type=int, metavar="N", help="The tier (customers) of the metric (default: the largest).")
@click.option("--endpoint", default="*", show_default=True, help="An endpoint (Locust request name); * is all together.")
@click.option("--limit", type=click.IntRange(1), help="Only the newest N runs.")
@click.option("--plot", "plot_path", type=click.Path(path_type=Path), metavar="FILE.png",
              help="Also draw the metric over the runs to a PNG file.")
@click.option("--changes", is_flag=True,
              help="List the change points of the pack's series instead (median service times, p95s, capacity).")
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
def history(reports_dir: Path, pack: str | None, profile: str | None, metric: str, tier: int | None,
            endpoint: str, limit: int | None, plot_path: Path | None, changes: bool, debug: bool) -> None:  # fmt: skip
    """List the runs in the history database with a metric, and plot it over time.

    Every audit adds its run to REPORTS/history.sqlite (runs of an older history.jsonl are
    imported once, without metrics).
    """
    console = Console(stderr=True)
    if changes:
        _exit_with(console, debug, lambda: _changes(reports_dir, pack, profile, limit))
    _exit_with(console, debug, lambda: _history(reports_dir, pack, profile, metric, tier, endpoint, limit, plot_path))


def _changes(reports_dir: Path, pack: str | None, profile: str | None, limit: int | None) -> int:
    from harness.nightly import changes_text, open_store

    with open_store(reports_dir) as store:
        text = changes_text(store, pack=pack, profile=profile, limit=limit)
    Console(width=220).print(text, markup=False, highlight=False)
    return EXIT_READY


def _history(reports_dir: Path, pack: str | None, profile: str | None, metric: str, tier: int | None,
             endpoint: str, limit: int | None, plot_path: Path | None) -> int:  # fmt: skip
    from harness.nightly import history_view, open_store, series_dict

    with open_store(reports_dir) as store:
        view = history_view(store, pack=pack, profile=profile, metric=metric, tier=tier, endpoint=endpoint, limit=limit)
    out = Console(width=200)
    out.print(view.table(), markup=False, highlight=False)
    if plot_path is not None:
        from harness.report.charts import figure_png, history_chart

        fig = history_chart(series_dict(view))
        if fig is None:
            raise ConfigError(f"--plot {plot_path}: {metric} is known for fewer than two runs, nothing to draw")
        plot_path.write_bytes(figure_png(fig))
        out.print(f"Plot: {plot_path}")
    return EXIT_READY


@main.command()
@click.argument("run_a", metavar="RUN_A")
@click.argument("run_b", metavar="RUN_B")
@click.option("--reports", "reports_dir", type=click.Path(path_type=Path), default=Path("reports"),
              show_default=True, help="Folder that holds the history database.")
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
def compare(run_a: str, run_b: str, reports_dir: Path, debug: bool) -> None:
    """Compare RUN_B with RUN_A (two runs of one pack in the history database).

    Each endpoint's median service time and p95 at each tier both measured: slower or faster
    only when significant (Mann-Whitney U, bootstrap interval) and larger than the larger of
    10 % and the run-to-run noise. Exit 1 when RUN_B is slower beyond the noise, else 0.
    """
    console = Console(stderr=True)
    _exit_with(console, debug, lambda: _compare(run_a, run_b, reports_dir))


def _compare(run_a: str, run_b: str, reports_dir: Path) -> int:
    from harness.history.baseline import compare_stored
    from harness.nightly import comparison_text, open_store

    with open_store(reports_dir) as store:
        comparison = compare_stored(store, run_a, run_b)
    Console(width=200).print(comparison_text(comparison), markup=False, highlight=False)
    return EXIT_NOT_READY if comparison.regressions else EXIT_READY


@main.group()
def baseline() -> None:
    """Pin the run that later audits of a pack and profile are compared with."""


@baseline.command("pin")
@click.argument("run", metavar="RUN")
@click.option("--reports", "reports_dir", type=click.Path(path_type=Path), default=Path("reports"),
              show_default=True, help="Folder that holds the history database.")
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
def baseline_pin(run: str, reports_dir: Path, debug: bool) -> None:
    """Make RUN the baseline of its pack and profile (instead of the last READY run)."""
    console = Console(stderr=True)

    def pin() -> int:
        from harness.nightly import open_store

        with open_store(reports_dir) as store:
            pinned = store.pin_baseline(run)
        Console().print(f"Baseline of {pinned.pack} ({pinned.profile}): {pinned.run_id} ({pinned.verdict})",
                        markup=False, highlight=False)  # fmt: skip
        return EXIT_READY

    _exit_with(console, debug, pin)


@baseline.command("show")
@click.option("--pack", required=True, metavar="NAME", help="The pack's name ([pack] name in its scenario.toml).")
@click.option("--profile", default="standard", show_default=True, help="The profile.")
@click.option("--reports", "reports_dir", type=click.Path(path_type=Path), default=Path("reports"),
              show_default=True, help="Folder that holds the history database.")
@click.option("--unpin", is_flag=True, help="Forget the pinned baseline (back to the last READY run).")
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
def baseline_show(pack: str, profile: str, reports_dir: Path, unpin: bool, debug: bool) -> None:
    """Say which run the next audit of PACK with PROFILE is compared with."""
    console = Console(stderr=True)

    def show() -> int:
        from harness.nightly import open_store

        with open_store(reports_dir) as store:
            if unpin:
                store.unpin_baseline(pack, profile)
            run = store.baseline_for(pack, profile)
            pinned = store.pinned_baseline(pack, profile)
        out = Console()
        if run is None:
            out.print(f"No baseline for {pack} ({profile}) yet: the next READY audit becomes it.", markup=False)
        else:
            how = "pinned" if pinned == run.run_id else "the last READY run"
            out.print(f"Baseline of {pack} ({profile}): {run.run_id} ({how})", markup=False, highlight=False)
        return EXIT_READY

    _exit_with(console, debug, show)


@main.command()
@click.argument("pack", default="scenarios/booking", metavar="[PACK]")
@click.option("--master", required=True, metavar="HOST:PORT",
              help="Where the audit's master listens (its --bind).")
@click.option("--idle-timeout", "idle_text", metavar="DURATION", default="30m", show_default=True,
              help="Stop once no master has appeared for this long (between tiers the audit provisions).")
@click.option("--once", is_flag=True, help="Stop after the first master's load (one tier).")
def worker(pack: str, master: str, idle_text: str, once: bool) -> None:
    """Generate part of an audit's load from this machine (a Locust worker).

    PACK is this host's copy of the audit's pack folder: its version must match the master's
    (checked at join). The worker joins each tier's master at HOST:PORT in turn and receives the
    plan and the customers over Locust's messages; it never reads the master's files.
    """
    host, _, port = master.rpartition(":")
    if not host or not port.isdigit():
        raise click.BadParameter(f"{master}: write HOST:PORT, e.g. 10.0.0.5:5557", param_hint="--master")
    from harness.load.joining import serve
    from harness.pack import resolve_pack_path

    console = Console(stderr=True)
    # The folder only: a worker runs no target, provisioning or suites; the version hash at
    # join is the check that its copy is the master's.
    _exit_with(console, False, lambda: serve(master, resolve_pack_path(pack),
                                             idle_timeout_s=parse_duration(idle_text, "--idle-timeout"),
                                             once=once))  # fmt: skip


if __name__ == "__main__":
    main()
