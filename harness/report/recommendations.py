"""What each kind of finding usually means and what teams do about it, in plain words.

One entry per finding category (the closed list ``records.CATEGORIES``; a test checks that every
category has one). The texts are written for this project's readers: a founder, an agency's
client, a board, and the engineer who will do the work. They say what the finding usually
means in a web service, what teams usually do about it, and how big a job that tends to be, so
the report's first page can rank what to fix by impact (the finding's severity) and effort.

The text is advice, not diagnosis: the finding's own title, detail and evidence say what this
audit measured; the recommendation says where that kind of evidence usually points.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from harness.records import severity_rank

__all__ = ["EFFORT_ORDER", "RECOMMENDATIONS", "Recommendation", "rank_key", "recommendation_for"]

Effort = Literal["small", "medium", "large"]

#: Quick wins first: at equal impact, the smaller job is the better next step.
EFFORT_ORDER: tuple[Effort, ...] = ("small", "medium", "large")

EFFORT_TEXT: Mapping[Effort, str] = {
    "small": "small (usually hours)",
    "medium": "medium (usually days)",
    "large": "large (a design change, usually weeks)",
}


@dataclass(frozen=True)
class Recommendation:
    """What a finding category usually means and what teams do about it."""

    category: str
    name: str  # a short plain name for the problem: "slows down as data grows"
    # what to fix, completing "we recommend fixing ...": {where} is the endpoint or "the service"
    problem: str
    meaning: str  # what this usually means, for a non-specialist
    actions: tuple[str, ...]  # what teams do about it, most common first
    effort: Effort  # the usual size of the fix
    evidence: tuple[str, ...] = ()  # the evidence keys that point there, most telling first

    @property
    def effort_text(self) -> str:
        return EFFORT_TEXT[self.effort]


_ALL = (
    Recommendation(
        "regression",
        "a regression test fails",
        "the failing regression test",
        "One of the service's own tests failed against the running service before any load was "
        "applied: something that used to work does not. The load results that follow describe a "
        "service that is already broken in this respect.",
        (
            "Read the failing test's message in the report and fix the behaviour (or the test, if "
            "the behaviour changed on purpose).",
            "Rerun the regression gate with the reproduce command before trusting the load results.",
        ),
        "small",
        ("failed", "failing", "passed"),
    ),
    Recommendation(
        "property",
        "unusual input breaks the service",
        "the input that breaks {where}",
        "Generated inputs found a request that makes the service fail: usually a server error (500) "
        "on input that is odd but possible (an empty name, a negative number, a date in the past), "
        "or a round trip that changes the data. Real users and scripts send such input sooner or "
        "later.",
        (
            "Replay the minimal example shown with the finding.",
            "Validate input at the edge of the service and answer 4xx with a reason, never 500.",
            "Keep the example as a regression test so it stays fixed.",
        ),
        "small",
        ("property", "example", "error", "replay"),
    ),
    Recommendation(
        "slo-latency",
        "responses too slow under load",
        "the slow responses of {where}",
        "Responses were slower than the agreed limit while the service carried the tier's traffic. "
        "Two causes are common. When the latency counted from each request's planned start is far "
        "above the time the service spent on it, requests waited in a queue: too few workers, a "
        "database connection pool that is full, or a lock they all wait for. When the two are "
        "close, the handler itself is slow: a missing index, one query per row (N+1), or work "
        "that grows with the data.",
        (
            "Speed up the slowest endpoint first: run EXPLAIN on its queries with the largest "
            "tier's data, add the missing index, fetch related rows in one query.",
            "If its service time is far below its latency, requests queue instead: size the "
            "worker processes to the cores and the connection pool to the workers; move slow work "
            "(e-mail, PDFs, reports) to a background queue.",
            "Cache what is read far more often than it is written.",
        ),
        "medium",
        ("p95_ms", "service_p95_ms", "slo_p95_ms", "p99_ms", "slo_p99_ms", "breached", "requests"),
    ),
    Recommendation(
        "slo-errors",
        "too many requests fail under load",
        "the failing requests on {where}",
        "More requests failed than the error budget allows. Errors that pass when the same request "
        "is replayed alone are capacity (a full connection pool, a worker timeout, 'database is "
        "locked'); errors that fail alone too are bugs.",
        (
            "Read the error samples and the replays in the tier's section.",
            "Capacity errors: size the connection pool and the timeouts; retry lock conflicts "
            "with a short backoff; answer 503 with Retry-After when full instead of timing out.",
            "Bugs: fix the handler and add the failing request as a regression test.",
        ),
        "medium",
        ("error_rate", "max_error_rate", "errors", "requests", "errors_by_reason"),
    ),
    Recommendation(
        "throughput",
        "capacity close to the goal",
        "the capacity shortfall",
        "How many customers' peak traffic the service can carry within its latency limit, "
        "measured and (where the data allow) modelled. Capacity under the goal, or only a little "
        "above it, leaves no room for a marketing spike or a few months of growth.",
        (
            "Find what is busiest at the knee: the endpoint that takes most of the service's time "
            "(requests per second x time per request) is usually the one to speed up first.",
            "Cache responses that many customers read and few change.",
            "Once the service keeps no state in its processes, run more of them (or more "
            "instances) behind the load balancer.",
        ),
        "medium",
        ("predicted_customers", "headroom", "goal_customers", "low", "high", "method"),
    ),
    Recommendation(
        "data-volume-scaling",
        "slows down as data grows",
        "the slowdown of {where} as data grows",
        "An endpoint gets slower as the customers' data grows, even without extra traffic. That "
        "is usually a query that reads a whole table instead of using an index, a list returned "
        "without pagination, or one database query per row (N+1). It gets worse every month the "
        "service grows, so it is cheapest to fix now.",
        (
            "Run EXPLAIN on the endpoint's queries with the largest tier's data; add an index on "
            "the columns it filters and sorts by.",
            "Paginate lists and searches; return the first page, not everything.",
            "Load related rows in one query (a join or WHERE id IN ...) instead of one per row.",
        ),
        "small",
        ("points", "slope", "breaks_at_customers", "slo_p95_ms", "growth_class", "goal_customers"),
    ),
    Recommendation(
        "contention",
        "requests wait for each other",
        "the requests waiting for each other in {where}",
        "Part of every request's work runs one at a time (the contention σ of the Universal "
        "Scalability Law): requests queue for a lock, a single worker, a single database "
        "connection or one interpreter. Beyond a point, more traffic adds waiting, not throughput.",
        (
            "Narrow the lock scope: hold a lock only around the write that needs it, not the "
            "whole request.",
            "Prefer row-level locks or optimistic updates (a version column) to a global lock.",
            "Run several worker processes; with SQLite, turn on WAL mode or move to PostgreSQL.",
        ),
        "medium",
        ("sigma", "max_measured_concurrency", "contention_sigma_threshold"),
    ),
    Recommendation(
        "coherency",
        "throughput falls past a peak",
        "the fall in throughput past its peak",
        "Past a certain load the service completes fewer requests, not more (the coherency κ of "
        "the Universal Scalability Law): requests interfere with each other, through a cache "
        "that is invalidated for everyone, a row everyone updates (a counter, a balance), or "
        "retries that add load when the service is already slow.",
        (
            "Find the shared hot spot (a counter row, one cache key, a table-wide lock) and split "
            "or batch it.",
            "Add backoff with jitter to retries.",
            "Cap concurrency with a queue or admission control, so the service stays at its peak "
            "instead of sliding past it.",
        ),
        "large",
        ("kappa", "n_star", "max_measured_concurrency", "coherency_reach"),
    ),
    Recommendation(
        "saturation-errors",
        "errors instead of slowing down when overloaded",
        "the errors {where} gives when overloaded",
        "Pushed past its load, the service answers with errors rather than slowing down, and the "
        "same requests pass when replayed alone: it ran out of something (database connections, "
        "workers, file descriptors), not into a bug.",
        (
            "Size the database connection pool to the number of workers, and set the pool's "
            "wait timeout on purpose.",
            "When full, answer 503 with Retry-After quickly rather than failing slowly.",
            "Queue work that can wait instead of doing it in the request.",
        ),
        "medium",
        ("statuses", "replay_statuses", "distinct_requests", "beyond_nominal_load", "over_error_budget"),
    ),
    Recommendation(
        "resource-leak",
        "memory grows with every request",
        "the memory leak",
        "The service's memory grew steadily with the requests it served and did not come back: "
        "something keeps a little of every request (a cache without a size limit, a list that "
        "only grows, a listener never removed). In production it ends in an out-of-memory "
        "restart, usually at the busiest hour.",
        (
            "Give every in-process cache a size limit or an expiry.",
            "Take heap snapshots before and after load (tracemalloc, memray) and compare them.",
            "As a stopgap, restart workers after a number of requests (gunicorn's max_requests).",
        ),
        "medium",
        ("mb_per_10k_requests", "growth_mb", "mb_per_hour_at_goal", "r2", "requests_span"),
    ),
    Recommendation(
        "integrity-lost-write",
        "saved data went missing",
        "the lost writes",
        "The service confirmed a write (it answered 2xx) that could not be read back afterwards: "
        "data was lost while requests ran at the same time. Usually a transaction that was not "
        "committed before answering, a write that only reached a cache, or two updates where "
        "the second overwrote the first.",
        (
            "Commit before answering; never acknowledge what is not durable.",
            "Make read-modify-write updates conditional (UPDATE ... WHERE version = ?) or lock "
            "the row (SELECT ... FOR UPDATE).",
            "Add the lost write's scenario as a concurrent test.",
        ),
        "large",
        ("violations", "kinds", "affected_customers", "checked", "identifiers"),
    ),
    Recommendation(
        "integrity-duplicate",
        "something that must be unique was created twice",
        "the duplicate records",
        "Something that must exist once exists twice, such as one reservation made twice or a "
        "duplicate order: two requests at the same moment both passed a 'check, then insert'.",
        (
            "Let the database enforce it: a unique (or exclusion) constraint, with the conflict "
            "answered as 409.",
            "Make creation idempotent with an idempotency key the client sends.",
        ),
        "small",
        ("violations", "kinds", "affected_customers", "checked", "identifiers"),
    ),
    Recommendation(
        "isolation-leak",
        "one customer can see another's data",
        "the leak of one customer's data to another",
        "A customer could read data belonging to another customer. Usually a query without the "
        "tenant filter, a cache key that leaves the tenant out, or per-request state kept in a "
        "global that another request reads. It is the most common serious flaw in web APIs "
        "(OWASP API1, broken object-level authorisation) and a data-protection incident.",
        (
            "Scope every query by tenant in one place (a base query, or the database's row-level "
            "security).",
            "Put the tenant in every cache key; keep request state out of globals.",
            "Keep the leaking read as a regression test.",
        ),
        "medium",
        ("violations", "kinds", "affected_customers", "checked", "identifiers"),
    ),
    Recommendation(
        "baseline-regression",
        "slower than the previous run",
        "the slowdown since the baseline run",
        "A measurement got worse than the baseline run by more than the noise measured between "
        "runs: a recent change made something slower.",
        (
            "Compare the two runs' endpoint tables to see what changed.",
            "Bisect the changes between the two runs; rerun both to rule out the machine.",
        ),
        "small",
        (),
    ),
    Recommendation(
        "target-unavailable",
        "the service stopped answering",
        "the crash under load",
        "The service stopped answering during a tier: it crashed, was killed for using too much "
        "memory, or stopped accepting connections. Under real traffic that is an outage.",
        (
            "Read target.log around the time given; look for out-of-memory kills and unhandled "
            "exceptions.",
            "Limit concurrency so overload slows the service down instead of killing it.",
            "Run it under a supervisor that restarts it, and alert on restarts.",
        ),
        "medium",
        ("where", "connection_errors", "first_connection_error_at", "tier_reason"),
    ),
    Recommendation(
        "generator-saturated",
        "the measurement itself was overloaded",
        "the overloaded measurement (a rerun, not a fix)",
        "The harness's own load generator ran out of CPU, or the machine was busy with other work, "
        "so part of the latency measured was the harness's, not the service's. This says nothing "
        "bad about the service yet; it means that part could not be judged.",
        (
            "Rerun on a quieter machine.",
            "Spread the load over more processes (--workers 2) or a second machine "
            "(scaleready worker).",
        ),
        "small",
        ("reasons", "cpu_max_pct", "other_cpu_pct", "dropped_iterations", "iterations_scheduled", "workers"),
    ),
    Recommendation(
        "provisioning",
        "new customers cannot all sign up",
        "customer sign-up at {where}",
        "Creating a customer through the service's own API failed for some of them. At launch many "
        "customers sign up at once: the ones this audit could not create are the ones a real launch "
        "would turn away. The service's answers usually point at a lock or connection-pool timeout "
        "on the sign-up path, or a bug that only shows when sign-ups overlap.",
        (
            "Read the service's answers in the finding and its log at that moment.",
            "Make sign-up safe under concurrency: short transactions, a larger pool, a retry on a "
            "lock timeout ('database is locked'), no per-request state shared between requests.",
            "Test sign-ups in parallel in the service's own suite.",
        ),
        "small",
        ("missing", "wanted", "errors", "failed_attempts"),
    ),
)

RECOMMENDATIONS: Mapping[str, Recommendation] = {r.category: r for r in _ALL}

_GENERIC = Recommendation(
    "other",
    "something needs attention",
    "what the finding describes",
    "The finding's own text says what was measured.",
    ("Read the finding's detail and rerun it with its reproduce command.",),
    "medium",
)


def recommendation_for(category: str) -> Recommendation:
    """The category's recommendation (a generic one for a category this version does not know,
    as in a scorecard written by a newer harness)."""
    return RECOMMENDATIONS.get(category, _GENERIC)


def rank_key(severity: str, category: str) -> tuple[int, int]:
    """Sort key for what to fix first: higher impact (severity) first, then the smaller job."""
    return severity_rank(severity), EFFORT_ORDER.index(recommendation_for(category).effort)
