"""Writes of unknown outcome: intent recorded before sending, outcome when (if ever) it comes.

A write cut off in flight (the load stopped at phase end with its request unanswered) may or may
not have reached the service. The ledger keeps its intent; the checkers accept both outcomes.
These tests specify that on the ledger alone, through ``check_tier`` on a fake API, and end to end
through the load engine, whose drain really cuts a DELETE off.
"""

from __future__ import annotations

import json
import re
import textwrap
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from json_http import send_json

from harness.integrity.check import check_tier
from harness.integrity.ledger import Ledger, NullLedger, read_ledger_dir
from harness.load import LoadPlan, PhasePlan, run_load

ITEM = {"name": "invoice 7"}
REQUEST_TIMEOUT_S = 1.0  # the engine drains a phase for this + 1 s, then stops its users
RECEIPT_S = 0.8  # three receipts and a DELETE: longer than the drain, so the DELETE is cut off


def test_an_intent_with_its_answer_reads_as_one_operation(tmp_path: Path) -> None:
    with Ledger.open(tmp_path) as ledger:
        pending = ledger.begin(customer=2, kind="item", op="create", content=ITEM, started=10.0)
        pending.done(201, ident=44, ended=10.5)
        pending.done(500)  # a second answer is ignored: the first one is the outcome
    contents = read_ledger_dir(tmp_path)
    [op] = contents.operations
    assert (op.op, op.outcome, op.status, op.ident, op.content) == ("create", "ok", 201, "44", ITEM)
    assert (op.started, op.ended, op.unanswered) == (10.0, 10.5, False)
    assert contents.unanswered == 0 and contents.bad_lines == 0


def test_an_intent_never_answered_is_unknown(tmp_path: Path) -> None:
    with Ledger.open(tmp_path) as ledger:
        ledger.begin(customer=2, kind="item", op="delete", ident=44, started=12.0)
    contents = read_ledger_dir(tmp_path)
    [op] = contents.operations
    assert (op.op, op.outcome, op.ident, op.unanswered) == ("delete", "unknown", "44", True)
    assert contents.unanswered == 1


def test_leaving_the_block_without_an_answer_records_unknown(tmp_path: Path) -> None:
    with (
        Ledger.open(tmp_path) as ledger,
        pytest.raises(TimeoutError),
        ledger.begin(customer=1, kind="item", op="update", ident=5),
    ):
        raise TimeoutError("the request was cut off")
    [op] = read_ledger_dir(tmp_path).operations
    assert op.outcome == "unknown" and op.status is None and not op.unanswered


def test_intents_pair_within_their_own_file(tmp_path: Path) -> None:
    # Two processes number their intents alike; each file pairs its own.
    with Ledger.open(tmp_path) as a, Ledger.open(tmp_path) as b:
        pa = a.begin(customer=0, kind="item", op="create", started=1.0)
        pb = b.begin(customer=1, kind="item", op="create", started=2.0)
        pb.done(201, ident="b1", ended=2.1)
        del pa  # never answered
    ops = {o.customer: o for o in read_ledger_dir(tmp_path).operations}
    assert ops[0].outcome == "unknown" and ops[0].unanswered
    assert ops[1].outcome == "ok" and ops[1].ident == "b1"


def test_the_null_ledger_takes_intents_too() -> None:
    with NullLedger().begin(customer=0, kind="item", op="create") as pending:
        pending.done(201)


# --- end to end: the engine's drain cuts a DELETE off ---------------------------------------------


class ItemStore:
    """A tiny item API: POST creates, DELETE removes at once but answers only after ``hold_s``."""

    def __init__(self, hold_s: float, forget_creates: bool = False) -> None:
        self.items: dict[int, dict[str, object]] = {}
        self.next_id = 1
        self.hold_s = hold_s
        self.forget_creates = forget_creates  # acknowledge creates without storing them
        self.lock = threading.Lock()
        self.closing = threading.Event()


def serve(store: ItemStore) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def _json(self, status: int, body: object) -> None:
            send_json(self, status, body)

        def do_POST(self) -> None:  # noqa: N802 - stdlib name
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length) or b"{}")
            with store.lock:
                ident = store.next_id
                store.next_id += 1
                if not store.forget_creates:
                    store.items[ident] = body
            self._json(201, {"id": ident, **body})

        def do_DELETE(self) -> None:  # noqa: N802 - stdlib name
            ident = int(self.path.rsplit("/", 1)[1])
            with store.lock:
                store.items.pop(ident, None)  # applied now; the answer comes late (or never)
            store.closing.wait(store.hold_s)
            self._json(204 if not store.closing.is_set() else 503, {})

        def do_GET(self) -> None:  # noqa: N802 - stdlib name
            if self.path == "/receipt":
                store.closing.wait(RECEIPT_S)
                self._json(200, {"ok": True})
                return
            m = re.fullmatch(r"/items/(\d+)", self.path)
            item = store.items.get(int(m.group(1))) if m else None
            if item is None:
                self._json(404, {"detail": "not found"})
            else:
                self._json(200, {"id": int(m.group(1)) if m else 0, **item})

    class Server(ThreadingHTTPServer):
        def handle_error(self, request: object, client_address: object) -> None:
            pass  # the engine hangs up on requests it cut off: expected here

    server = Server(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture
def item_api(request: pytest.FixtureRequest) -> Iterator[tuple[str, ItemStore]]:
    store = ItemStore(**getattr(request, "param", {"hold_s": 30.0}))
    server = serve(store)
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", store
    finally:
        store.closing.set()
        server.shutdown()
        server.server_close()


LOCUSTFILE = """
from harness.load.kit import CustomerUser, task

class Clerk(CustomerUser):
    @task
    def create_then_delete(self):
        c = self.customer()
        item = {"name": "invoice 7"}
        with self.write("item", "create", content=item) as w:
            resp = self.client.post("/items", json=item, name="POST /items")
            ident = resp.json()["id"] if resp.status_code == 201 else None
            w.done(resp.status_code or None, ident=ident)
        if ident is not None and DELETE:
            for _ in range(3):  # read the receipt: the iteration outlasts the phase's drain
                self.client.get("/receipt", name="GET /receipt")
            with self.write("item", "delete", ident=ident) as w:
                resp = self.client.delete(f"/items/{ident}", name="DELETE /items/{id}")
                w.done(resp.status_code or None)
"""

INVARIANTS = """
from harness.pack_api import readback, resource

item = resource("item", stable_fields=("name",))

def auth_headers(customer):
    return {}

@readback("item")
def read_item(client, customer, ident):
    r = client.get(f"/items/{ident}")
    return None if r.status_code == 404 else r.json()
"""


def audit_items(tmp_path: Path, url: str, *, delete: bool, rate: float = 4.0) -> tuple[object, object]:
    """One short load phase of create-then-delete, then the integrity check over its ledger."""
    lf = tmp_path / "locustfile.py"
    lf.write_text(f"DELETE = {delete}\n" + textwrap.dedent(LOCUSTFILE), encoding="utf-8")
    inv = tmp_path / "invariants.py"
    inv.write_text(textwrap.dedent(INVARIANTS), encoding="utf-8")
    customers = [{"index": 0, "id": 1, "api_key": "k", "marker": "srmt01c000000"}]
    cfile = tmp_path / "customers.jsonl"
    cfile.write_text("".join(json.dumps(c) + "\n" for c in customers), encoding="utf-8")
    ledger = tmp_path / "ledger"
    plan = LoadPlan(
        locustfile=str(lf), host=url, output_dir=str(tmp_path / "out"), customers_file=str(cfile),
        phases=(PhasePlan("steady", "steady", rate, 1.0),), request_timeout_s=REQUEST_TIMEOUT_S, max_users=20,
        env={"SCALEREADY_LEDGER_DIR": str(ledger)},
    )  # fmt: skip
    t0 = time.monotonic()
    outcome = run_load(plan)
    assert outcome.error is None
    assert time.monotonic() - t0 < 60
    result = check_tier(inv, base_url=url, customers=customers, ledger_dir=ledger, sample=100,
                        request_timeout_s=5.0)  # fmt: skip
    return read_ledger_dir(ledger), result


def test_a_delete_cut_off_at_phase_end_is_no_lost_write(tmp_path: Path, item_api: tuple[str, ItemStore]) -> None:
    url, store = item_api
    contents, result = audit_items(tmp_path, url, delete=True)
    creates = [o for o in contents.operations if o.op == "create" and o.outcome == "ok"]
    deletes = [o for o in contents.operations if o.op == "delete"]
    gone = [c for c in creates if int(c.ident or 0) not in store.items]
    assert gone  # acknowledged, then deleted on the service: the answer to the DELETE never came
    assert deletes and all(d.outcome == "unknown" for d in deletes)
    assert all(not d.status for d in deletes)  # no answer: timed out or cut off by the drain
    assert result.violations == (), result.violations
    assert result.status == "passed"
    assert "got no answer" in result.note and "accepted both" in result.note, result.note


@pytest.mark.parametrize("item_api", [{"hold_s": 0.0, "forget_creates": True}], indirect=True)
def test_an_acknowledged_create_that_is_gone_is_still_a_lost_write(
    tmp_path: Path, item_api: tuple[str, ItemStore]
) -> None:
    url, _ = item_api
    contents, result = audit_items(tmp_path, url, delete=False)
    assert any(o.op == "create" and o.outcome == "ok" for o in contents.operations)
    assert result.status == "failed"
    assert {v.kind for v in result.violations} == {"lost-write"}
