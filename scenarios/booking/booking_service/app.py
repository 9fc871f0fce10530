"""The HTTP API (FastAPI). Endpoints are plain `def`s run in the worker thread pool, each
borrowing one pooled database connection for its few short queries.

Only the API-key check is `async`: keys never change, so a bounded in-memory map answers most
requests without leaving the event loop.
"""


import json
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import date
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, Path, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Receive, Scope, Send

from booking_service import models, scheduling
from booking_service.db import Database, PoolTimeout, TextRefused
from booking_service.downstream import CalendarBusy, calendar_dependencies
from booking_service.flaws import Flaw
from booking_service.settings import Settings
from booking_service.store import Clinic, Conflict, Invalid, NotFound, Store

IdPath = Annotated[int, Path(ge=1, le=models.MAX_ID)]
DateQuery = Annotated[str, Query(max_length=32, description="YYYY-MM-DD")]
KEY_CACHE_SIZE = 20_000
PUBLIC_PATHS = frozenset({"/clinics", "/health", "/stats", "/metrics"})


class Unauthorized(Exception):
    pass


class RequestCounter:
    """Counts requests for GET /stats (pure ASGI: costs next to nothing)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.requests = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            self.requests += 1
        await self.app(scope, receive, send)


def _rss_bytes() -> int:
    try:
        with open("/proc/self/statm", "rb") as f:
            import os

            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


class KeyCache:
    """api key -> Clinic, least recently used evicted (clinics and their keys never change)."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._entries: OrderedDict[str, Clinic] = OrderedDict()

    def get(self, key: str) -> Clinic | None:
        clinic = self._entries.get(key)
        if clinic is not None:
            self._entries.move_to_end(key)
        return clinic

    def put(self, key: str, clinic: Clinic) -> None:
        self._entries[key] = clinic
        if len(self._entries) > self._size:
            self._entries.popitem(last=False)


class ResponseCache:
    """memory-leak: GET responses memoised by (clinic, data version, URL). A write bumps the
    clinic's version so stale entries are never served... and never removed either."""

    def __init__(self) -> None:
        self.entries: dict[tuple[int, int, str], bytes] = {}
        self.versions: dict[int, int] = {}

    def bump(self, clinic_id: int) -> None:
        self.versions[clinic_id] = self.versions.get(clinic_id, 0) + 1

    def get_or_render(self, clinic_id: int, url: str, compute: Callable[[], Any]) -> Response:
        key = (clinic_id, self.versions.get(clinic_id, 0), url)
        body = self.entries.get(key)
        if body is None:
            body = self.entries[key] = json.dumps(compute(), ensure_ascii=False).encode()
        return Response(body, media_type="application/json")


# What an operation answers besides its success, written into the OpenAPI document so that it
# says what the service does: Schemathesis (the harness's properties stage) checks every status
# and body against it. The errors the service raises itself carry a sentence in "detail"; a
# request the framework refuses carries FastAPI's list of problems there (422), and a body that
# is not JSON at all is the framework's 400.
_ERROR = {"model": models.Problem}
PUBLIC_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {**_ERROR, "description": "the body is not JSON"},
    422: {**_ERROR, "description": "the request breaks the schema or a rule of the service"},
}
TENANT_ERRORS: dict[int | str, dict[str, Any]] = {
    **PUBLIC_ERRORS,
    401: {**_ERROR, "description": "missing or invalid X-API-Key"},
    404: {**_ERROR, "description": "no such record in the caller's clinic"},
    409: {**_ERROR, "description": "the slot is taken, or the record changed meanwhile"},
    503: {**_ERROR, "description": "the service or its calendar is busy; retry later"},
}


def create_app(settings: Settings) -> FastAPI:
    db = Database(settings)
    store = Store(db, settings)
    keys = KeyCache(KEY_CACHE_SIZE)
    responses = ResponseCache() if settings.has(Flaw.MEMORY_LEAK) else None
    started = time.monotonic()

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        db.close()

    app = FastAPI(
        lifespan=lifespan,
        title="Booking demo service",
        version="1.0",
        description="Multi-tenant appointment booking (the scaleready demo target).",
    )

    # --- errors -------------------------------------------------------------------------------

    def _error(status: int, detail: str) -> JSONResponse:
        return JSONResponse({"detail": detail}, status_code=status)

    async def invalid_request(_request: Request, exc: Exception) -> Response:
        # FastAPI's default handler echoes the input; json.dumps(ensure_ascii=False) then fails
        # on a lone surrogate ("\ud800") and turns a 422 into a 500. Escape everything instead.
        assert isinstance(exc, RequestValidationError)
        if _request.url.path not in PUBLIC_PATHS and await _authenticate(
            _request.headers.get("x-api-key")
        ) is None:
            return _unauthorized()  # authentication comes first, even for a malformed body
        body = json.dumps({"detail": jsonable_encoder(exc.errors())}, ensure_ascii=True)
        return Response(body, status_code=422, media_type="application/json")

    app.add_exception_handler(RequestValidationError, invalid_request)
    def _unauthorized() -> JSONResponse:
        return _error(401, "missing or invalid X-API-Key")

    app.add_exception_handler(Unauthorized, lambda r, e: _unauthorized())
    app.add_exception_handler(NotFound, lambda r, e: _error(404, str(e)))
    app.add_exception_handler(Conflict, lambda r, e: _error(409, str(e)))
    app.add_exception_handler(Invalid, lambda r, e: _error(422, str(e)))
    app.add_exception_handler(TextRefused, lambda r, e: _error(422, str(e)))
    app.add_exception_handler(
        PoolTimeout, lambda r, e: _error(503, f"service busy: {e}")
    )
    app.add_exception_handler(
        CalendarBusy, lambda r, e: _error(503, f"calendar unavailable: {e}")
    )

    # --- auth ---------------------------------------------------------------------------------

    def _lookup(api_key: str) -> Clinic | None:
        with db.connection() as conn:
            return store.clinic_by_key(conn, api_key)

    async def _authenticate(api_key: str | None) -> Clinic | None:
        if not api_key or len(api_key) > 128:
            return None
        clinic = keys.get(api_key)
        if clinic is None:
            clinic = await run_in_threadpool(_lookup, api_key)
            if clinic is not None:
                keys.put(api_key, clinic)
        return clinic

    async def caller(x_api_key: Annotated[str | None, Header()] = None) -> Clinic:
        clinic = await _authenticate(x_api_key)
        if clinic is None:
            raise Unauthorized()
        return clinic

    Caller = Annotated[Clinic, Depends(caller)]
    # blocking-event-loop, downstream-slots: the external calendar, consulted before free-slot
    # search and booking ([] for a service without those flaws).
    calendar = calendar_dependencies(settings, caller)

    def _day(text: str) -> date:
        try:
            return scheduling.parse_date(text)
        except ValueError as exc:
            raise Invalid(f"date={text[:40]!r}: {exc}") from None

    def _read(clinic: Clinic, request: Request, compute: Callable[[], Any]) -> Any:
        _slower(request)
        if responses is not None:
            return responses.get_or_render(clinic.id, str(request.url), compute)
        return compute()

    def _slower(request: Request) -> None:
        # BOOKING_SLOWDOWN: CPU work, as a slower release of the endpoint would do (not a sleep,
        # which would cost the process nothing while it waits).
        if not settings.slowdown_ms:
            return
        route = request.scope.get("route")
        extra = settings.slowdown_ms.get(f"{request.method} {getattr(route, 'path', '')}")
        if extra:
            until = time.perf_counter() + extra / 1000.0
            while time.perf_counter() < until:
                pass

    def _wrote(clinic: Clinic) -> None:
        if responses is not None:
            responses.bump(clinic.id)

    # --- public -------------------------------------------------------------------------------

    @app.get("/health", response_model=models.Health)
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/stats", response_model=models.Stats)
    async def stats() -> dict[str, Any]:
        return {
            "requests": counter.requests,
            "rss_bytes": _rss_bytes(),
            "uptime_s": round(time.monotonic() - started, 1),
        }

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        # Prometheus text: prometheus_client's process collector (RSS, CPU seconds, open fds),
        # what a harness that did not start this process reads (target.stats_path).
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    @app.post("/clinics", status_code=201, response_model=models.ClinicOut, responses=PUBLIC_ERRORS)
    def create_clinic(body: models.ClinicIn) -> dict[str, Any]:
        with db.connection() as conn:
            return store.create_clinic(conn, body)

    # --- the caller's clinic ------------------------------------------------------------------

    @app.get("/clinic", response_model=models.ClinicView, responses=TENANT_ERRORS)
    async def get_clinic(clinic: Caller) -> dict[str, Any]:
        return clinic.out()

    @app.get("/clinic/usage", response_model=models.UsageOut, responses=TENANT_ERRORS)
    def get_usage(clinic: Caller) -> dict[str, Any]:
        # Never memoised (memory-leak's response cache): the invoice reads the current count.
        with db.connection() as conn:
            return store.usage(conn, clinic)

    @app.post("/practitioners", status_code=201, response_model=models.PractitionerOut, responses=TENANT_ERRORS)
    def create_practitioner(clinic: Caller, body: models.PractitionerIn) -> dict[str, Any]:
        with db.connection() as conn:
            created = store.create_practitioner(conn, clinic, body)
        _wrote(clinic)
        return created

    @app.get("/practitioners", response_model=list[models.PractitionerOut], responses=TENANT_ERRORS)
    def list_practitioners(clinic: Caller, request: Request) -> Any:
        def compute() -> Any:
            with db.connection() as conn:
                return store.list_practitioners(conn, clinic)

        return _read(clinic, request, compute)

    @app.post("/patients", status_code=201, response_model=models.PatientOut, responses=TENANT_ERRORS)
    def create_patient(clinic: Caller, body: models.PatientIn) -> dict[str, Any]:
        with db.connection() as conn:
            created = store.create_patient(conn, clinic, body)
        _wrote(clinic)
        return created

    @app.post("/patients/import", status_code=201, response_model=models.PatientImportOut, responses=TENANT_ERRORS)
    def import_patients(clinic: Caller, body: models.PatientImportIn) -> dict[str, Any]:
        with db.connection() as conn:
            created = store.import_patients(conn, clinic, body.patients)
        _wrote(clinic)
        return created

    @app.get("/patients", response_model=list[models.PatientOut], responses=TENANT_ERRORS)
    def search_patients(
        clinic: Caller,
        request: Request,
        q: Annotated[str, Query(max_length=200)] = "",
        limit: Annotated[int, Query(ge=1, le=100)] = 20,
    ) -> Any:
        def compute() -> Any:
            with db.connection() as conn:
                return store.search_patients(conn, clinic, q, limit)

        return _read(clinic, request, compute)

    @app.get("/patients/{patient_id}", response_model=models.PatientOut, responses=TENANT_ERRORS)
    def get_patient(clinic: Caller, request: Request, patient_id: IdPath) -> Any:
        def compute() -> Any:
            with db.connection() as conn:
                return store.get_patient(conn, clinic, patient_id)

        return _read(clinic, request, compute)

    @app.get("/slots", response_model=models.SlotsOut, dependencies=calendar, responses=TENANT_ERRORS)
    def free_slots(
        clinic: Caller,
        request: Request,
        practitioner_id: Annotated[int, Query(ge=1, le=models.MAX_ID)],
        date: DateQuery,
    ) -> Any:
        day = _day(date)

        def compute() -> Any:
            with db.connection() as conn:
                return store.free_slots(conn, clinic, practitioner_id, day)

        return _read(clinic, request, compute)

    @app.post("/bookings", status_code=201, response_model=models.BookingOut, dependencies=calendar, responses=TENANT_ERRORS)
    def create_booking(clinic: Caller, body: models.BookingIn) -> dict[str, Any]:
        with db.connection() as conn:
            created = store.create_booking(conn, clinic, body)
        _wrote(clinic)
        return created

    @app.get("/bookings/{booking_id}", response_model=models.BookingOut, responses=TENANT_ERRORS)
    def get_booking(clinic: Caller, request: Request, booking_id: IdPath) -> Any:
        def compute() -> Any:
            with db.connection() as conn:
                return store.get_booking(conn, clinic, booking_id)

        return _read(clinic, request, compute)

    @app.get("/bookings", response_model=list[models.BookingOut], responses=TENANT_ERRORS)
    def list_bookings(
        clinic: Caller,
        request: Request,
        date: DateQuery,
        practitioner_id: Annotated[int | None, Query(ge=1, le=models.MAX_ID)] = None,
    ) -> Any:
        day = _day(date)

        def compute() -> Any:
            with db.connection() as conn:
                return store.list_bookings(conn, clinic, day, practitioner_id)

        return _read(clinic, request, compute)

    @app.post("/bookings/{booking_id}/cancel", response_model=models.BookingOut, responses=TENANT_ERRORS)
    def cancel_booking(clinic: Caller, booking_id: IdPath) -> dict[str, Any]:
        with db.connection() as conn:
            cancelled = store.cancel_booking(conn, clinic, booking_id)
        _wrote(clinic)
        return cancelled

    @app.get("/reports/daily", response_model=models.DailyReport, responses=TENANT_ERRORS)
    def daily_report(clinic: Caller, request: Request, date: DateQuery) -> Any:
        day = _day(date)

        def compute() -> Any:
            with db.connection() as conn:
                return store.daily_report(conn, clinic, day)

        return _read(clinic, request, compute)

    counter = RequestCounter(app)
    app.state.counter = counter
    return app  # the caller serves `app.state.counter` (the counting wrapper); see serve()


def create_asgi(settings: Settings) -> ASGIApp:
    """The ASGI application to serve: the FastAPI app wrapped by its request counter."""
    return create_app(settings).state.counter  # type: ignore[no-any-return]


#: The environment variable that carries the settings to each worker process (``--workers N``).
SETTINGS_ENV = "BOOKING_SETTINGS"


def create_from_env() -> ASGIApp:
    """The application of one worker process, from the settings its parent put in the environment."""
    import os

    return create_asgi(Settings.from_env(os.environ[SETTINGS_ENV]))
