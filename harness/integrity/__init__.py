"""Integrity under load: nothing acknowledged is lost or duplicated, no customer sees another's data.

Growth breaks data before latency: races that never happen with one user (double bookings,
lost updates) and caches or queries that mix customers' data. After each tier the harness
compares what the load did with what the target now says, Jepsen-style, and reads as customers
to look for leaks:

========================  ===============================================  ==================
check                     what must hold                                   violation kinds
========================  ===============================================  ==================
``set``                   every acknowledged write is readable with the     lost-write,
                          same stable content; a write of unknown outcome   half-written
                          is there or not, never half there
``unique``                a unique key (one active booking per slot) is     duplicate
                          held once: from read-backs, and from the ledger
                          (two acknowledged creates, neither deleted first)
``deleted``               an acknowledged delete does not come back         resurrected
``isolation``             reads with one customer's credentials carry no    isolation-leak
                          other customer's marker; another customer's
                          identifiers are refused (403/404)
``isolation-under-load``  markers the load engine found in responses,       isolation-leak
                          confirmed by replaying the request as the
                          customer credited and as the data's owner
========================  ===============================================  ==================

One module per concept:

* :mod:`~harness.integrity.ledger`: the operation ledger the load writes and the checks read;
* :mod:`~harness.integrity.markers`: customer markers, and finding another customer's in a body;
* :mod:`~harness.integrity.declare`: what a pack declares in its ``invariants.py``;
* :mod:`~harness.integrity.evaluate`: the pure checkers (no I/O);
* :mod:`~harness.integrity.session`: the bounded HTTP session the checks read the target with;
* :mod:`~harness.integrity.replay`: confirming a leak seen under load by replaying its request;
* :mod:`~harness.integrity.check`: :func:`~harness.integrity.check.check_tier`, over HTTP.

The package re-exports nothing, so importing the ledger or the markers (as the load engine's
processes do) loads neither an HTTP client nor the pack loader.
"""
