"""Roles (C30): support reads and searches; admin also exports, erases, reads the audit log and
ends sessions. Erasure from the console is the API's erasure, confirmed by typing the number."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlmodel import Session, select

from bot.dev.chat import ChatSession
from bot.wiring.logmask import fingerprint
from storage.models import AuditEvent, Contact, ErasureRecord, Message
from tests.console.conftest import CUSTOMER, CUSTOMER_NAME, STAFF, SUPPORT, csrf_from

ERASE = f"/console/contacts/{CUSTOMER}/erase"


def erase(client: FlaskClient, confirm: str, *, key: str = CUSTOMER):
    token = csrf_from(client, "/console/")
    return client.post(
        f"/console/contacts/{key}/erase", data={"confirm": confirm, "csrf_token": token}
    )


def contacts(engine) -> int:
    with Session(engine) as session:
        return len(session.exec(select(Contact)).all())


def test_c30_support_reads_and_searches(support_client: FlaskClient, conversation) -> None:
    listing = support_client.get("/console/?q=4567").get_data(as_text=True)
    assert "1 contact matching" in listing and CUSTOMER_NAME in listing
    page = support_client.get(f"/console/contacts/{CUSTOMER}")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert f"Signed in as <strong>{SUPPORT}</strong>" in text
    assert "export.json" not in text and "/erase" not in text  # offered to admins only
    assert 'href="/console/audit"' not in text
    assert support_client.get("/console/dashboard").status_code == 200
    assert support_client.get("/console/inbox").status_code == 200


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("post", ERASE),
        ("get", f"/console/contacts/{CUSTOMER}/export.json"),
        ("get", "/console/audit"),
        ("get", "/console/sessions"),
        ("post", "/console/sessions/end"),
    ],
)
def test_c30_support_is_refused_what_only_admins_may_do(
    support_client: FlaskClient, conversation, engine, method: str, path: str
) -> None:
    data = {
        "confirm": CUSTOMER,
        "username": "*",
        "csrf_token": csrf_from(support_client, "/console/"),
    }
    response = getattr(support_client, method)(path, data=data if method == "post" else None)
    assert response.status_code == 403
    assert "Administrators only" in response.get_data(as_text=True)
    assert contacts(engine) == 1
    assert support_client.get("/console/").status_code == 200  # still signed in
    with Session(engine) as session:
        refused = session.exec(select(AuditEvent).where(AuditEvent.action == "refused")).one()
    assert refused.actor == SUPPORT


def test_c30_admin_erases_with_the_typed_number_through_the_apis_erasure(
    app: Flask, staff_client: FlaskClient, conversation: ChatSession, api, engine
) -> None:
    page = staff_client.get(f"/console/contacts/{CUSTOMER}").get_data(as_text=True)
    assert f'action="{ERASE}"' in page and 'name="confirm"' in page

    assert erase(staff_client, "971501234568").status_code == 400  # one digit off
    assert erase(staff_client, "").status_code == 400
    assert contacts(engine) == 1

    response = erase(staff_client, "+971 50 123 4567")  # the number, as people write it

    assert response.status_code == 200
    text = response.get_data(as_text=True)
    assert "Contact erased" in text and "••••••••4567" in text and CUSTOMER not in text
    assert contacts(engine) == 0
    with Session(engine) as session:
        assert session.exec(select(Message)).all() == []
        [record] = session.exec(select(ErasureRecord)).all()
    assert record.token_fingerprint == f"console:{fingerprint(STAFF)}"
    assert staff_client.get(f"/console/contacts/{CUSTOMER}").status_code == 404
    assert api.get(f"/contacts/{CUSTOMER}").status_code == 404
    assert "suppression entry" in api.get(f"/contacts/{CUSTOMER}").json["message"]


def test_erasure_needs_the_csrf_token(staff_client: FlaskClient, conversation, engine) -> None:
    response = staff_client.post(ERASE, data={"confirm": CUSTOMER})
    assert response.status_code == 400
    assert contacts(engine) == 1


def test_a_contact_known_by_user_id_is_confirmed_by_its_user_id(
    app: Flask, staff_client: FlaskClient, engine
) -> None:
    with Session(engine) as session:
        session.add(Contact(user_id="US.1357924680", name="Sam"))
        session.commit()
    assert erase(staff_client, "US.135792468", key="US.1357924680").status_code == 400
    assert erase(staff_client, "US.1357924680", key="US.1357924680").status_code == 200
    assert contacts(engine) == 0


def test_erasing_an_unknown_contact_is_a_404(staff_client: FlaskClient) -> None:
    assert erase(staff_client, "15550000000", key="15550000000").status_code == 404
