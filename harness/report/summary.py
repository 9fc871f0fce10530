"""The report's first page, for a reader who is not a performance engineer.

From the scorecard alone: the verdict in one sentence ("Handles about 7,100 customers, 1.4
times the 5,000 you plan for; we recommend fixing the slowdown of GET /patients?q as data
grows before launch"), the capacity as a bar from the first tier to the predicted limit with
the goal marked, what was tested, and the findings ranked by impact (severity) and effort, each
with what teams usually do about it (:mod:`harness.report.recommendations`).

Pure: no I/O, no matplotlib.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from harness.report.recommendations import Recommendation, rank_key, recommendation_for

__all__ = ["Action", "Briefing", "CapacityBar", "briefing", "ranked_actions"]

Card = Mapping[str, Any]
TOP = 3  # findings on the first page


@dataclass(frozen=True)
class CapacityBar:
    """The capacity as a bar on a linear axis of customers from 0 to ``axis_max``."""

    axis_max: float
    first_tier: int | None  # the smallest tier measured: where the growth path starts
    goal: int
    predicted: float
    low: float | None
    high: float | None
    at_least: bool  # a measured floor, not a model's estimate: the service may carry more
    failed_at: float | None = None  # the fewest customers above the capacity measured failing

    def pct(self, customers: float) -> float:
        """Where ``customers`` falls along the bar, in percent of its width."""
        return round(max(0.0, min(100.0, 100.0 * customers / self.axis_max)), 2)


@dataclass(frozen=True)
class Action:
    """Findings of one kind at one tier, as one thing to do: what, where, what teams do about it.

    Seven endpoints too slow at the same tier are one problem to a reader deciding what to fix
    (the verdict names which is the cause where it can tell); their findings stay listed.
    """

    rank: int
    findings: tuple[Mapping[str, Any], ...]  # the scorecard's findings, most severe first
    anchors: tuple[str, ...]  # each finding's element id in the report
    recommendation: Recommendation

    @property
    def finding(self) -> Mapping[str, Any]:
        return self.findings[0]

    @property
    def severity(self) -> str:
        return str(self.finding["severity"])

    @property
    def endpoints(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(f["endpoint"] for f in self.findings if f.get("endpoint")))

    @property
    def tier(self) -> int | None:
        tier = self.finding.get("tier")
        return int(tier) if isinstance(tier, int) else None

    @property
    def problem(self) -> str:
        """"the slowdown of GET /patients?q as data grows"; "the slow responses of 7 endpoints
        at 5,000 customers"."""
        endpoints = self.endpoints
        if len(endpoints) > 1:
            where = f"{len(endpoints)} endpoints" + (f" at {self.tier:,} customers" if self.tier else "")
        else:
            where = endpoints[0] if endpoints else "the service"
        return self.recommendation.problem.format(where=where)

    @property
    def heading(self) -> str:
        return self.problem[:1].upper() + self.problem[1:]

    @property
    def found(self) -> str:
        """What the audit found, in one sentence."""
        if len(self.findings) == 1:
            return str(self.finding["title"]).rstrip(".") + "."
        names = self.endpoints
        shown = ", ".join(names[:4]) + (f" and {len(names) - 4} more" if len(names) > 4 else "")
        return f"{len(self.findings)} findings: {shown}. The first: {str(self.finding['title']).rstrip('.')}."


@dataclass(frozen=True)
class Briefing:
    sentence: str
    tested: str
    bar: CapacityBar | None
    actions: tuple[Action, ...]  # every finding worth acting on, ranked
    top: tuple[Action, ...]  # the first page's few, one per kind of problem first


def ranked_actions(card: Card, anchors: Mapping[str, str]) -> tuple[Action, ...]:
    """The findings worth acting on (not ``info``, not a symptom folded under its cause), grouped
    by kind and tier, by impact then effort (in the verdict's order otherwise)."""
    findings = [f for f in card.get("findings", []) if f.get("severity") != "info" and not f.get("caused_by")]
    ordered = sorted(findings, key=lambda f: rank_key(f["severity"], f["category"]))
    groups: dict[tuple[str, object], list[Mapping[str, Any]]] = {}
    for f in ordered:
        groups.setdefault((f["category"], f.get("tier")), []).append(f)
    return tuple(
        Action(i, tuple(group), tuple(anchors.get(f["id"], "") for f in group),
               recommendation_for(category))
        for i, ((category, _), group) in enumerate(groups.items(), 1)
    )  # fmt: skip


def _top(actions: Sequence[Action]) -> tuple[Action, ...]:
    """One action per kind of problem first, then the rest in rank order."""
    first: list[Action] = []
    seen: set[str] = set()
    for a in actions:
        if a.recommendation.category not in seen:
            first.append(a)
            seen.add(a.recommendation.category)
    rest = [a for a in actions if a not in first]
    return tuple(sorted((first + rest)[:TOP], key=lambda a: a.rank))


def _capacity_bar(card: Card) -> CapacityBar | None:
    c = card.get("capacity") or {}
    predicted = c.get("predicted_customers")
    goal = c.get("goal_customers")
    if not predicted or not goal:
        return None
    low, high = c.get("low"), c.get("high")
    tiers = [t["customers"] for t in card.get("tiers", []) if t.get("status") != "skipped"]
    failing = [t["customers"] for t in card.get("tiers", []) if t.get("status") == "failed"]
    ceiling = (c.get("params") or {}).get("ceiling_customers")
    above = [float(v) for v in (*failing, ceiling) if isinstance(v, int | float) and v > predicted]
    failed_at = min(above) if above else None
    top = max(v for v in (predicted, high, goal, failed_at) if v)
    return CapacityBar(
        axis_max=top * 1.12,
        first_tier=min(tiers) if tiers else None,
        goal=int(goal),
        predicted=float(predicted),
        low=float(low) if low else None,
        high=float(high) if high else None,
        at_least=c.get("method") != "usl",
        failed_at=failed_at,
    )


def _capacity_phrase(card: Card) -> str | None:
    c = card.get("capacity") or {}
    predicted, goal, headroom = c.get("predicted_customers"), c.get("goal_customers"), c.get("headroom")
    if not predicted or not goal:
        return None
    amount = f"at least {predicted:,.0f}" if c.get("method") != "usl" else f"about {predicted:,.0f}"
    text = f"handles {amount} customers"
    if headroom is not None:
        times = f"{headroom:.1f} times" if abs(headroom - 1.0) >= 0.05 else "about"
        only = "only " if headroom < 1.0 else ""
        text += f", {only}{times} the {goal:,.0f} you plan for"
    return text


def _tested(card: Card) -> str:
    parts = []
    reg = card["stages"]["regression"]
    if reg["status"] != "skipped":
        parts.append(f"{reg['passed'] + reg['failed'] + reg['errors']:,} of the service's own tests")
    props = card["stages"]["properties"]
    if props["status"] != "skipped":
        n = props["passed"] + props["failed"]
        each = f" ({props['examples_per_property']:,} generated inputs each)" if props.get("examples_per_property") else ""
        parts.append(f"{n} property checks{each}")
    tiers = [t["customers"] for t in card.get("tiers", []) if t["status"] != "skipped"]
    if tiers:
        sizes = ", ".join(f"{n:,}" for n in tiers)
        parts.append(f"the peak-hour traffic of {sizes} customers, each with their data in place, "
                     "checking afterwards that nothing written was lost or leaked to another customer")  # fmt: skip
    if not parts:
        return "Nothing was run."
    body = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
    return f"We ran {body}."


def _sentence(card: Card, top: Sequence[Action]) -> str:
    verdict = card["verdict"]
    capacity = _capacity_phrase(card)
    goal = (card.get("capacity") or {}).get("goal_customers") or (card.get("options") or {}).get("goal_customers")
    fix = top[0].problem if top else None
    if verdict == "READY":
        head = capacity[:1].upper() + capacity[1:] if capacity else "Every tier met its objectives"
        return f"{head}: ready for launch" + (f"; worth a look: {fix}." if fix else ".")
    if verdict == "AT RISK":
        head = capacity[:1].upper() + capacity[1:] if capacity else "Every tier passed"
        return f"{head}; we recommend fixing {fix} before launch." if fix else f"{head}, with little room to spare."
    if verdict == "NOT READY":
        target = f"{goal:,.0f} customers" if goal else "launch"
        text = f"Not ready for {target} yet"
        if capacity:
            text += f": the service {capacity}"
        return text + (f"; fix {fix} first." if fix else ".")
    return (f"No verdict yet: {_lower_first(_missing(card))}. The report shows what was measured; "
            "rerun the audit to complete it.")  # fmt: skip


def _missing(card: Card) -> str:
    """Why there is no verdict: the deciding sentence of the summary, else the audit's first note
    (the judgement's reasons follow the stages' notes there), else the headline. The headline alone
    can be a finding's title unrelated to what is missing (no tier reached the goal)."""
    why = card["summary"].get("why") or []
    notes = card.get("notes") or []
    text = why[0]["text"] if why else notes[0] if notes else card["summary"]["headline"]
    return str(text).rstrip(".")


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:] if text[1:2].islower() else text


def briefing(card: Card, anchors: Mapping[str, str]) -> Briefing:
    """The first page of the report for ``card`` (``anchors``: finding id -> element id)."""
    actions = ranked_actions(card, anchors)
    top = _top(actions)
    return Briefing(sentence=_sentence(card, top), tested=_tested(card), bar=_capacity_bar(card),
                    actions=actions, top=top)  # fmt: skip
