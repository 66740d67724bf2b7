"""Pharmacies: the stock ledger and its invariants, reservations from prescriptions, nearest-first search."""

import threading
import uuid
from datetime import date, timedelta

import pytest
from sqlalchemy import func, select, text, update
from sqlalchemy.exc import DBAPIError

from pawmanity.core.database import utcnow
from pawmanity.core.extensions import db
from pawmanity.notifications.models import Notification
from pawmanity.pharmacy import pharmacies as pharmacy_service
from pawmanity.pharmacy import stock
from pawmanity.pharmacy.models import Prescription, Reservation, StockItem, StockLot, StockMovement
from tests.support import ON_POSTGRES, assert_problem, postgres_only

API = "/api/v1"
PARIS, LYON, VERSAILLES, SAINT_DENIS = (48.8566, 2.3522), (45.7640, 4.8357), (48.8049, 2.1204), (48.9362, 2.3574)


@pytest.fixture
def world(client, auth, gen_user):
    """An admin, a pharmacy near Paris with a pharmacist, a medicine, and helpers to stock it."""
    admin, pharmacist, owner = gen_user("admin"), gen_user("patient"), gen_user("patient")
    as_admin = auth(admin)

    def new_pharmacy(name, position, staff=()):
        response = client.post(f"{API}/pharmacies", headers=as_admin, json={
            "name": name, "address": f"1 rue {name}", "latitude": position[0], "longitude": position[1],
            "opening_hours": {"mon": [["08:00", "19:00"]]}})
        assert response.status_code == 201, response.get_data(as_text=True)
        for user in staff:
            added = client.post(f"{API}/pharmacies/{response.get_json()['id']}/staff", headers=as_admin,
                                json={"user_id": str(user.id)})
            assert added.status_code == 201, added.get_data(as_text=True)
        return response.get_json()["id"]

    medicine = client.post(f"{API}/medicines", headers=as_admin, json={
        "name": "Amoxicillin", "strength": "250 mg", "form": "tablet", "code": "QJ01CA04", "use": "both"}).get_json()
    pharmacy_id = new_pharmacy("Centrale", PARIS, staff=[pharmacist])
    headers = auth(pharmacist)

    def receive(quantity, *, lot="L1", expires_on=None, key=None, pharmacy=None, medicine_id=None):
        return client.post(f"{API}/pharmacies/{pharmacy or pharmacy_id}/stock/movements", headers=headers, json={
            "kind": "receive", "medicine_id": medicine_id or medicine["id"], "lot_number": lot, "quantity": quantity,
            "expires_on": (expires_on or date.today() + timedelta(days=365)).isoformat(),
            "idempotency_key": key or f"key-{uuid.uuid4().hex}"})

    return {"admin": admin, "as_admin": as_admin, "pharmacist": pharmacist, "as_pharmacist": headers,
            "owner": owner, "medicine": medicine, "pharmacy_id": pharmacy_id, "receive": receive,
            "new_pharmacy": new_pharmacy}


def stock_item(pharmacy_id, medicine_id):
    return db.session.scalar(select(StockItem).where(StockItem.pharmacy_id == uuid.UUID(pharmacy_id),
                                                     StockItem.medicine_id == uuid.UUID(medicine_id))
                             .execution_options(populate_existing=True))


def assert_ledger_matches(item):
    assert stock.ledger_totals(item.id) == (item.on_hand, item.reserved)
    assert 0 <= item.reserved <= item.on_hand


def prescriptions_for(patient, medicine_id, count=1, quantity=1):
    made = [Prescription(patient_id=patient.id, medicine_id=uuid.UUID(medicine_id), medication="Amoxicillin",
                         quantity=quantity) for _ in range(count)]
    db.session.add_all(made)
    db.session.commit()
    return [str(p.id) for p in made]


class TestLedger:
    def test_a_receipt_is_recorded_once_per_idempotency_key(self, client, world):
        first = world["receive"](10, key="delivery-0001")
        assert first.status_code == 201, first.get_data(as_text=True)
        again = world["receive"](10, key="delivery-0001")
        assert again.status_code == 200 and again.get_json()["id"] == first.get_json()["id"]
        assert_problem(world["receive"](11, key="delivery-0001"), 409, "idempotency_key_reused")
        item = stock_item(world["pharmacy_id"], world["medicine"]["id"])
        assert item.on_hand == 10
        assert db.session.scalar(select(func.count()).select_from(StockMovement)) == 1
        assert_ledger_matches(item)

    def test_the_ledger_is_append_only(self, client, world):
        world["receive"](3)
        with pytest.raises(DBAPIError):
            db.session.execute(update(StockMovement).values(on_hand_delta=300))
            db.session.flush()
        db.session.rollback()
        with pytest.raises(DBAPIError):
            db.session.execute(text("DELETE FROM stock_movements"))
        db.session.rollback()

    @pytest.mark.parametrize("change, status, code", [
        ({"quantity": 0}, 422, None),
        ({"expires_on": "2001-01-01"}, 422, None),
        ({"kind": "dispense"}, 422, None),
        ({"idempotency_key": "short"}, 422, None),
        ({"medicine_id": str(uuid.uuid4())}, 422, None),
        ({"kind": "adjust", "quantity": -11}, 409, "insufficient_stock"),
        ({"kind": "adjust", "lot_number": "NOPE", "quantity": -1}, 404, None),
        ({"expires_on": (date.today() + timedelta(days=9)).isoformat()}, 409, "lot_mismatch"),
    ])
    def test_bad_movements_change_nothing(self, client, world, change, status, code):
        world["receive"](10)
        body = {"kind": "receive", "medicine_id": world["medicine"]["id"], "lot_number": "L1", "quantity": 5,
                "expires_on": (date.today() + timedelta(days=365)).isoformat(),
                "idempotency_key": f"key-{uuid.uuid4().hex}", **change}
        response = client.post(f"{API}/pharmacies/{world['pharmacy_id']}/stock/movements",
                               headers=world["as_pharmacist"], json=body)
        assert_problem(response, status, code)
        item = stock_item(world["pharmacy_id"], world["medicine"]["id"])
        assert item.on_hand == 10
        assert_ledger_matches(item)

    def test_only_staff_touch_stock(self, client, auth, world):
        stranger = auth(world["owner"])
        url = f"{API}/pharmacies/{world['pharmacy_id']}"
        assert_problem(client.get(f"{url}/stock", headers=stranger), 404)
        assert_problem(client.get(f"{url}/stock/movements", headers=stranger), 404)
        assert_problem(client.post(f"{url}/stock/movements", headers=stranger, json={
            "kind": "receive", "medicine_id": world["medicine"]["id"], "lot_number": "X", "quantity": 1,
            "expires_on": "2100-01-01", "idempotency_key": "key-stranger"}), 404)
        assert client.get(f"{url}/stock", headers=world["as_pharmacist"]).status_code == 200

    def test_my_pharmacies_staff_and_stock_are_listed_in_pages(self, client, auth, world, gen_user):
        for name in ("Bravo", "Alpha"):
            world["new_pharmacy"](name, PARIS, staff=[world["pharmacist"]])
        mine = [client.get(f"{API}/pharmacies/mine?per_page=2&page={n}", headers=world["as_pharmacist"]).get_json()
                for n in (1, 2)]
        assert [pharmacy["name"] for page in mine for pharmacy in page["items"]] == ["Alpha", "Bravo", "Centrale"]
        assert [(page["page"], page["per_page"], page["total"]) for page in mine] == [(1, 2, 3), (2, 2, 3)]
        url = f"{API}/pharmacies/{world['pharmacy_id']}"
        for user in (gen_user("patient"), gen_user("patient")):
            assert client.post(f"{url}/staff", headers=world["as_admin"],
                               json={"user_id": str(user.id)}).status_code == 201
        staff = client.get(f"{url}/staff?per_page=2", headers=world["as_pharmacist"]).get_json()
        everyone = client.get(f"{url}/staff", headers=world["as_pharmacist"]).get_json()
        assert staff["total"] == everyone["total"] == 3 and staff["items"] == everyone["items"][:2]
        assert [user["full_name"] for user in everyone["items"]] == sorted(u["full_name"] for u in everyone["items"])
        other = client.post(f"{API}/medicines", headers=world["as_admin"], json={
            "name": "Cefalexin", "strength": "500 mg", "form": "capsule", "code": "QJ01DB01", "use": "both"}).get_json()
        assert world["receive"](5).status_code == 201 and world["receive"](3, medicine_id=other["id"]).status_code == 201
        pages = [client.get(f"{url}/stock?per_page=1&page={n}", headers=world["as_pharmacist"]).get_json()
                 for n in (1, 2, 3)]
        assert [(item["medicine"]["name"], item["available"]) for page in pages for item in page["items"]] == [
            ("Amoxicillin", 5), ("Cefalexin", 3)]
        assert [page["total"] for page in pages] == [2, 2, 2] and pages[2]["items"] == []

    def test_bad_pharmacies_and_medicines(self, client, world):
        assert_problem(client.post(f"{API}/pharmacies", headers=world["as_admin"], json={
            "name": "X", "address": "Y", "latitude": 91, "longitude": 0}), 422)
        # Closing before opening is a refusal of its own (JSON Schema cannot compare two items); a day that is not
        # one, a clock that is not one, are schema violations the document states.
        assert_problem(client.post(f"{API}/pharmacies", headers=world["as_admin"], json={
            "name": "X", "address": "Y", "latitude": 1, "longitude": 0, "opening_hours": {"mon": [["19:00", "08:00"]]}}),
            422, "closes_before_opening")
        for hours in ({"x-holiday": []}, {"mon": [["8:00", "19:00"]]}, {"mon": [["08:00"]]}, {"mon": "08:00-19:00"}):
            assert_problem(client.post(f"{API}/pharmacies", headers=world["as_admin"], json={
                "name": "X", "address": "Y", "latitude": 1, "longitude": 0, "opening_hours": hours}),
                422, "validation_failed")
        hours = client.get("/api/v1/openapi.json").get_json()["components"]["schemas"]["PharmacyIn"]["properties"][
            "opening_hours"]
        assert set(hours["properties"]) == {"mon", "tue", "wed", "thu", "fri", "sat", "sun"}
        assert hours["additionalProperties"] is False
        assert_problem(client.post(f"{API}/medicines", headers=world["as_admin"], json={
            "name": "Amoxicillin", "strength": "250 mg", "form": "tablet"}), 409, "medicine_exists")
        assert_problem(client.post(f"{API}/medicines", headers=world["as_pharmacist"], json={
            "name": "Other", "strength": "1 mg", "form": "tablet"}), 403)


class TestReservations:
    def test_a_consultations_prescription_is_reserved_by_the_guardian_and_dispensed(
            self, client, auth, world, gen_user, gen_patient, gen_doctor, gen_appointment, tokens_for):
        owner = world["owner"]
        doctor_user, doctor = gen_doctor()
        pet = gen_patient(owner)
        appointment = gen_appointment(doctor, pet, utcnow() - timedelta(minutes=5), status="confirmed")
        consultation = client.post(f"{API}/consultations", json={"appointment_id": str(appointment.id)},
                                   headers=auth(doctor_user)).get_json()
        assert_problem(client.post(f"{API}/consultations/{consultation['id']}/end", headers=auth(doctor_user), json={
            "summary": "Infection", "prescriptions": [{"medication": "x", "medicine_id": str(uuid.uuid4())}]}), 422)
        # A request's session ends with its app context; this test's context outlives requests, so drop it here.
        db.session.rollback()
        ended = client.post(f"{API}/consultations/{consultation['id']}/end", headers=auth(doctor_user), json={
            "summary": "Infection", "prescriptions": [
                {"medication": "Amoxicillin 250 mg", "medicine_id": world["medicine"]["id"], "quantity": 2},
                {"medication": "amoxicillin"}]})
        assert ended.status_code == 200, ended.get_data(as_text=True)
        listed = client.get(f"{API}/prescriptions?patient_id={pet.id}", headers=auth(owner)).get_json()["items"]
        assert sorted(item["quantity"] for item in listed) == [1, 2]
        assert all(item["medicine_id"] == world["medicine"]["id"] for item in listed)  # the second by its name
        prescription_id = next(item["id"] for item in listed if item["quantity"] == 2)
        world["receive"](5)
        url = f"{API}/prescriptions/{prescription_id}/reservations"
        body = {"pharmacy_id": world["pharmacy_id"]}

        stranger = gen_user()
        assert_problem(client.post(url, headers=auth(stranger), json=body), 404)
        assert_problem(client.get(f"{API}/prescriptions/{prescription_id}", headers=auth(stranger)), 404)
        assert_problem(client.post(url, headers=auth(owner), json={"pharmacy_id": str(uuid.uuid4())}), 404)
        reserved = client.post(url, headers=auth(owner), json=body)
        assert reserved.status_code == 201, reserved.get_data(as_text=True)
        assert_problem(client.post(url, headers=auth(owner), json=body), 409, "already_reserved")
        reservation_url = f"{API}/reservations/{reserved.get_json()['id']}"

        other_pharmacist = gen_user()
        world["new_pharmacy"]("Ailleurs", LYON, staff=[other_pharmacist])
        assert_problem(client.post(f"{reservation_url}/dispense", headers=auth(other_pharmacist)), 404)
        assert_problem(client.post(f"{reservation_url}/dispense", headers=auth(owner)), 404)
        dispensed = client.post(f"{reservation_url}/dispense", headers=world["as_pharmacist"])
        assert dispensed.status_code == 200 and dispensed.get_json()["status"] == "dispensed"
        assert_problem(client.post(f"{reservation_url}/dispense", headers=world["as_pharmacist"]), 409,
                       "reservation_closed")
        assert_problem(client.post(url, headers=auth(owner), json=body), 409, "already_dispensed")
        item = stock_item(world["pharmacy_id"], world["medicine"]["id"])
        assert (item.on_hand, item.reserved) == (3, 0)
        assert_ledger_matches(item)

    def test_expired_lots_are_never_available(self, client, auth, world, gen_patient):
        pet = gen_patient(world["owner"])
        world["receive"](4, lot="OLD", expires_on=date.today())
        world["receive"](1, lot="NEW")
        # Time passes: the OLD lot's last day is behind us, before any sweep has run.
        db.session.execute(update(StockLot).where(StockLot.lot_number == "OLD")
                           .values(expires_on=date.today() - timedelta(days=1)))
        db.session.commit()
        first, second = prescriptions_for(pet, world["medicine"]["id"], count=2)
        body = {"pharmacy_id": world["pharmacy_id"]}
        assert client.post(f"{API}/prescriptions/{first}/reservations", headers=auth(world["owner"]),
                           json=body).status_code == 201
        assert_problem(client.post(f"{API}/prescriptions/{second}/reservations", headers=auth(world["owner"]),
                                   json=body), 409, "insufficient_stock")
        hits = client.get(f"{API}/pharmacies?medicine={world['medicine']['id']}",
                          headers=auth(world["owner"])).get_json()
        assert hits["total"] == 0  # the one in-date unit is held
        assert stock.expire_lots() == 1
        item = stock_item(world["pharmacy_id"], world["medicine"]["id"])
        assert (item.on_hand, item.reserved) == (1, 1)
        assert_ledger_matches(item)

    def test_an_expiring_lot_releases_reservations_it_can_no_longer_cover(self, client, auth, world, gen_patient):
        pet = gen_patient(world["owner"])
        world["receive"](2, lot="SOON", expires_on=date.today())
        (only,) = prescriptions_for(pet, world["medicine"]["id"], quantity=2)
        assert client.post(f"{API}/prescriptions/{only}/reservations", headers=auth(world["owner"]),
                           json={"pharmacy_id": world["pharmacy_id"]}).status_code == 201
        assert stock.expire_lots(date.today() + timedelta(days=1)) == 1
        item = stock_item(world["pharmacy_id"], world["medicine"]["id"])
        assert (item.on_hand, item.reserved) == (0, 0)
        assert_ledger_matches(item)
        assert db.session.scalar(select(Reservation.status)) == "released"

    def test_a_reservation_lapses_after_its_time_limit(self, client, auth, world, gen_patient):
        pet = gen_patient(world["owner"])
        world["receive"](2)
        first, second = prescriptions_for(pet, world["medicine"]["id"], count=2)
        body = {"pharmacy_id": world["pharmacy_id"]}
        one = client.post(f"{API}/prescriptions/{first}/reservations", headers=auth(world["owner"]), json=body)
        two = client.post(f"{API}/prescriptions/{second}/reservations", headers=auth(world["owner"]), json=body)
        db.session.execute(update(Reservation).values(expires_at=utcnow() - timedelta(minutes=1)))
        db.session.commit()
        assert_problem(client.post(f"{API}/reservations/{one.get_json()['id']}/dispense",
                                   headers=world["as_pharmacist"]), 409, "reservation_expired")
        assert stock.release_expired_reservations() == 1
        statuses = {client.get(f"{API}/reservations/{r.get_json()['id']}", headers=auth(world["owner"]))
                    .get_json()["status"] for r in (one, two)}
        assert statuses == {"expired"}
        item = stock_item(world["pharmacy_id"], world["medicine"]["id"])
        assert (item.on_hand, item.reserved) == (2, 0)
        assert_ledger_matches(item)

    def test_low_stock_notifies_once_per_crossing(self, client, auth, world, gen_patient):
        pet = gen_patient(world["owner"])
        medicine_id = world["medicine"]["id"]
        client.put(f"{API}/pharmacies/{world['pharmacy_id']}/stock/{medicine_id}", headers=world["as_pharmacist"],
                   json={"reorder_point": 5})

        def alerts():
            return db.session.scalar(select(func.count()).select_from(Notification).where(
                Notification.kind == "pharmacy.low_stock", Notification.user_id == world["pharmacist"].id))

        assert alerts() == 1  # nothing in stock: at the point already
        world["receive"](10)
        for prescription_id in prescriptions_for(pet, medicine_id, count=8):
            client.post(f"{API}/prescriptions/{prescription_id}/reservations", headers=auth(world["owner"]),
                        json={"pharmacy_id": world["pharmacy_id"]})
        assert alerts() == 2  # one crossing at 5 left, none for 4, 3, 2
        world["receive"](1, lot="L2")
        assert alerts() == 2  # 3 available: still below
        world["receive"](10, lot="L3")
        for prescription_id in prescriptions_for(pet, medicine_id, count=9):
            client.post(f"{API}/prescriptions/{prescription_id}/reservations", headers=auth(world["owner"]),
                        json={"pharmacy_id": world["pharmacy_id"]})
        assert alerts() == 3


@pytest.mark.parametrize("contenders, units", [(50, 10)])
@postgres_only
def test_concurrent_reservations_never_oversell(make_app, gen_user, gen_patient, tokens_for, contenders, units):
    app = make_app()
    with app.app_context():
        client = app.test_client()
        admin, pharmacist, owner = gen_user("admin"), gen_user(), gen_user()
        tokens = {user: tokens_for(user)["access_token"] for user in (admin, pharmacist, owner)}
        pharmacy = client.post(f"{API}/pharmacies", headers={"Authorization": f"Bearer {tokens[admin]}"}, json={
            "name": "Rush", "address": "1 rue", "latitude": 48.85, "longitude": 2.35}).get_json()
        medicine = client.post(f"{API}/medicines", headers={"Authorization": f"Bearer {tokens[admin]}"}, json={
            "name": "Rare", "strength": "1 mg", "form": "tablet"}).get_json()
        client.post(f"{API}/pharmacies/{pharmacy['id']}/staff", headers={"Authorization": f"Bearer {tokens[admin]}"},
                    json={"user_id": str(pharmacist.id)})
        received = client.post(f"{API}/pharmacies/{pharmacy['id']}/stock/movements",
                               headers={"Authorization": f"Bearer {tokens[pharmacist]}"}, json={
                                   "kind": "receive", "medicine_id": medicine["id"], "lot_number": "R1",
                                   "quantity": units, "expires_on": "2100-01-01", "idempotency_key": "rush-0001"})
        assert received.status_code == 201
        pet = gen_patient(owner)
        ids = prescriptions_for(pet, medicine["id"], count=contenders)
    barrier, outcomes = threading.Barrier(contenders), []

    def attempt(prescription_id):
        response = app.test_client().post(f"{API}/prescriptions/{prescription_id}/reservations",
                                          headers={"Authorization": f"Bearer {tokens[owner]}"},
                                          json={"pharmacy_id": pharmacy["id"]})
        outcomes.append((response.status_code, (response.get_json() or {}).get("code")))

    def run(prescription_id):
        with app.app_context():
            barrier.wait()
            attempt(prescription_id)

    threads = [threading.Thread(target=run, args=(prescription_id,)) for prescription_id in ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes, key=str) == sorted([(201, None)] * units + [(409, "insufficient_stock")]
                                               * (contenders - units), key=str)
    with app.app_context():
        item = stock_item(pharmacy["id"], medicine["id"])
        assert (item.on_hand, item.reserved) == (units, units)
        assert_ledger_matches(item)
        assert db.session.scalar(select(func.count()).select_from(Reservation)) == units


class TestSearch:
    def test_nearest_first_with_distance_and_only_where_available(self, client, auth, world, gen_user):
        pharmacist = gen_user()
        far, near, empty = (world["new_pharmacy"](name, position, staff=[world["pharmacist"], pharmacist])
                            for name, position in (("Lyon", LYON), ("Versailles", VERSAILLES),
                                                   ("Saint-Denis", SAINT_DENIS)))
        for pharmacy_id in (world["pharmacy_id"], far, near):
            assert world["receive"](3, pharmacy=pharmacy_id).status_code == 201
        other = client.post(f"{API}/medicines", headers=world["as_admin"], json={
            "name": "Other", "strength": "1 mg", "form": "tablet"}).get_json()
        world["receive"](3, pharmacy=empty, medicine_id=other["id"])
        headers = auth(world["owner"])
        here = "48.8600,2.3400"  # a kilometre west of Centrale
        hits = client.get(f"{API}/pharmacies?medicine={world['medicine']['id']}&near={here}&radius_km=30",
                          headers=headers).get_json()
        assert [hit["name"] for hit in hits["items"]] == ["Centrale", "Versailles"]
        assert hits["total"] == 2
        assert 0.9 < hits["items"][0]["distance_km"] < 1.5 and 15 < hits["items"][1]["distance_km"] < 18
        assert hits["items"][0]["available"] == 3
        wide = client.get(f"{API}/pharmacies?medicine={world['medicine']['id']}&near={here}&radius_km=500",
                          headers=headers).get_json()
        assert [hit["name"] for hit in wide["items"]] == ["Centrale", "Versailles", "Lyon"]
        assert 380 < wide["items"][2]["distance_km"] < 400
        page_two = client.get(f"{API}/pharmacies?medicine={world['medicine']['id']}&near={here}&radius_km=500"
                              f"&per_page=1&page=2", headers=headers).get_json()
        assert [hit["name"] for hit in page_two["items"]] == ["Versailles"] and page_two["total"] == 3
        everything = client.get(f"{API}/pharmacies?near={here}&radius_km=30", headers=headers).get_json()
        assert [hit["name"] for hit in everything["items"]] == ["Centrale", "Saint-Denis", "Versailles"]

    def test_uses_postgis_on_postgresql(self, app):
        assert (pharmacy_service.postgis_schema() is not None) == ON_POSTGRES

    @pytest.mark.parametrize("query, status", [
        ("near=91,0", 422), ("near=abc", 422), ("near=1,2,3", 422), ("radius_km=5", 422),
        ("near=1,2&radius_km=0", 422), ("near=1,2&radius_km=501", 422), ("medicine=nope", 422),
        ("medicine=0b8e2f4c-1d6a-4c1e-9b7d-3f2a1c0d9e8f", 404), ("colour=red", 422),
    ])
    def test_bad_searches(self, client, auth, world, query, status):
        assert_problem(client.get(f"{API}/pharmacies?{query}", headers=auth(world["owner"])), status)

    def test_a_radius_without_a_centre_is_a_documented_domain_refusal(self, client, auth, world):
        # OpenAPI cannot tie one query parameter to another, so the rule has its own code, which the document lists.
        assert_problem(client.get(f"{API}/pharmacies?radius_km=5", headers=auth(world["owner"])), 422,
                       "radius_needs_near")
        responses = client.get("/api/v1/openapi.json").get_json()["paths"]["/api/v1/pharmacies"]["get"]["responses"]
        assert "radius_needs_near" in responses["422"]["content"]["application/problem+json"]["examples"]

    def test_across_the_antimeridian(self, client, auth, world):
        fiji = world["new_pharmacy"]("Suva", (-18.1, 179.99))
        samoa_side = world["new_pharmacy"]("East", (-18.1, -179.99))
        hits = client.get(f"{API}/pharmacies?near=-18.1,179.999&radius_km=5", headers=auth(world["owner"])).get_json()
        assert {hit["id"] for hit in hits["items"]} == {fiji, samoa_side}
