"""Properties: any valid invoice reads back unchanged and only to its company; no input is a 5xx."""

from __future__ import annotations

import pytest
from conftest import Company, NewCompany, expect
from hypothesis import given
from hypothesis import strategies as st

clients = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), min_size=1, max_size=60)


@pytest.fixture(scope="module")
def pair(new_company: NewCompany) -> tuple[Company, Company]:
    return new_company(), new_company()


@given(client=clients, amount=st.integers(0, 10**12))
def test_an_invoice_round_trips_and_stays_private(pair: tuple[Company, Company], client: str, amount: int) -> None:
    a, b = pair
    created = expect(a.client.post("/invoices", json={"client": client, "amount_cents": amount}), 201)
    read = expect(a.client.get(f"/invoices/{created['id']}"), 200)
    assert (read["client"], read["amount_cents"]) == (client, amount)
    expect(b.client.get(f"/invoices/{created['id']}"), 404)


@given(body=st.dictionaries(st.sampled_from(["client", "amount_cents", "x"]),
                            st.one_of(st.none(), st.integers(), st.text(max_size=10))))  # fmt: skip
def test_no_invoice_body_is_a_server_error(pair: tuple[Company, Company], body: dict[str, object]) -> None:
    a, _ = pair
    assert a.client.post("/invoices", json=body).status_code < 500
