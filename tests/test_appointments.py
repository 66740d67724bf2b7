"""Booking, the status machine, reschedules, the calendar feed, and no double booking under concurrency."""

import threading
from datetime import datetime, timedelta, timezone

import pytest
from icalendar import Calendar
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError, OperationalError

from pawmanity.core.extensions import db
from pawmanity.notifications.models import Notification
from pawmanity.scheduling.models import Appointment
from tests.support import assert_problem, iso, next_slot, postgres_only

APPOINTMENTS = "/api/v1/appointments"


@pytest.fixture
def scene(gen_user, gen_patient, gen_doctor):
    owner = gen_user()
    doctor_user, doctor = gen_doctor(specialty="dermatology", species=("dog", "cat"))
    return {"owner": owner, "pet": gen_patient(owner, species="dog", name="Biscuit"), "doctor_user": doctor_user,
            "doctor": doctor}


def book(client, auth, scene, start, **overrides):
    body = {"doctor_id": str(scene["doctor"].id), "patient_id": str(scene["pet"].id), "start": iso(start),
            "type": "video", "reason": "Itchy ears", **overrides}
    return client.post(APPOINTMENTS, json=body, headers=auth(overrides.pop("as_user", None) or scene["owner"]))


class TestBooking:
    def test_booking_a_free_slot(self, client, auth, scene):
        start = next_slot()
        response = book(client, auth, scene, start)
        assert response.status_code == 201, response.get_data(as_text=True)
        body = response.get_json()
        assert body["status"] == "requested" and body["start"] == iso(start)
        assert body["end"] == iso(start + timedelta(minutes=30))
        assert [event["action"] for event in body["history"]] == ["book"]
        taken = {item["start"] for item in client.get(
            f"/api/v1/doctors/{scene['doctor'].id}/slots?from={iso(start - timedelta(hours=1))}"
            f"&to={iso(start + timedelta(hours=1))}").get_json()["items"]}
        assert iso(start) not in taken

    def test_booking_notifies_the_doctor(self, client, auth, scene):
        book(client, auth, scene, next_slot())
        kinds = db.session.scalars(select(Notification.kind).where(
            Notification.user_id == scene["doctor_user"].id)).all()
        assert kinds == ["appointment.booked"]

    def test_a_start_in_the_past_is_its_own_refusal(self, client, auth, scene):
        # Relative to now, which the document cannot state: a code of its own, which it lists for the operation.
        past = next_slot() - timedelta(days=7)
        assert "start" in assert_problem(book(client, auth, scene, past), 422, "start_in_past")["errors"]

    def test_the_same_slot_twice_is_slot_taken(self, client, auth, scene, gen_user, gen_patient):
        start = next_slot()
        assert book(client, auth, scene, start).status_code == 201
        other_owner = gen_user()
        other_pet = gen_patient(other_owner)
        response = book(client, auth, {**scene, "owner": other_owner, "pet": other_pet}, start)
        assert_problem(response, 409, "slot_taken")

    @pytest.mark.parametrize("start, status, code", [
        ("2030-01-01T10:00:00", 422, None),                      # naive time
        ("yesterday", 422, None),
    ])
    def test_unparseable_or_naive_start(self, client, auth, scene, start, status, code):
        body = {"doctor_id": str(scene["doctor"].id), "patient_id": str(scene["pet"].id), "start": start,
                "type": "video"}
        assert "start" in assert_problem(client.post(APPOINTMENTS, json=body, headers=auth(scene["owner"])),
                                         status)["errors"]

    def test_start_in_the_past(self, client, auth, scene):
        body = assert_problem(book(client, auth, scene, next_slot(days=-1)), 422)
        assert "start" in body["errors"]

    def test_outside_the_doctors_hours(self, client, auth, scene):
        assert_problem(book(client, auth, scene, next_slot(hour=20)), 409, "outside_availability")

    def test_not_on_the_slot_grid(self, client, auth, scene):
        assert_problem(book(client, auth, scene, next_slot(hour=10, minute=10)), 409, "outside_availability")

    def test_during_time_off(self, client, auth, scene):
        start = next_slot()
        client.post("/api/v1/doctors/me/time-off", headers=auth(scene["doctor_user"]),
                    json={"start": iso(start), "end": iso(start + timedelta(hours=2))})
        assert_problem(book(client, auth, scene, start), 409, "outside_availability")

    def test_beyond_the_booking_horizon(self, client, auth, scene):
        assert_problem(book(client, auth, scene, next_slot(days=200)), 409, "outside_availability")

    def test_unverified_doctor(self, client, auth, scene, gen_doctor):
        _, unverified = gen_doctor(verified=False)
        assert_problem(book(client, auth, {**scene, "doctor": unverified}, next_slot()), 409, "doctor_not_bookable")

    def test_species_the_doctor_does_not_treat(self, client, auth, scene, gen_patient):
        parrot = gen_patient(scene["owner"], species="bird")
        assert_problem(book(client, auth, {**scene, "pet": parrot}, next_slot()), 409, "species_not_treated")

    def test_patient_the_caller_does_not_guard(self, client, auth, scene, gen_user):
        assert_problem(book(client, auth, {**scene, "owner": gen_user()}, next_slot()), 404)

    def test_unknown_type(self, client, auth, scene):
        assert_problem(book(client, auth, scene, next_slot(), type="telepathy"), 422)

    def test_one_account_cannot_hoard_the_week(self, make_app, auth, scene):
        client = make_app(MAX_ACTIVE_BOOKINGS=2).test_client()
        assert book(client, auth, scene, next_slot(hour=9)).status_code == 201
        assert book(client, auth, scene, next_slot(hour=10)).status_code == 201
        assert_problem(book(client, auth, scene, next_slot(hour=11)), 409, "too_many_bookings")

    def test_overlapping_but_unequal_intervals_conflict(self, client, auth, scene):
        start = next_slot(hour=9)
        assert book(client, auth, scene, start).status_code == 201      # 09:00-09:30
        scene["doctor"].slot_minutes = 20                                # the grid is now 09:00, 09:20, 09:40...
        db.session.commit()
        assert_problem(book(client, auth, scene, start + timedelta(minutes=20)), 409, "slot_taken")  # 09:20-09:40
        assert book(client, auth, scene, start + timedelta(minutes=40)).status_code == 201

    def test_the_database_itself_refuses_overlaps(self, scene, gen_appointment):
        start = next_slot()
        gen_appointment(scene["doctor"], scene["pet"], start)
        with pytest.raises(IntegrityError, match="appointments_no_overlap"):
            gen_appointment(scene["doctor"], scene["pet"], start + timedelta(minutes=15), minutes=30)
        db.session.rollback()
        # A cancelled appointment holds no time.
        gen_appointment(scene["doctor"], scene["pet"], start + timedelta(minutes=15), status="cancelled")


class TestEarliest:
    def test_earliest_with_a_doctor(self, client, auth, scene):
        after = next_slot(days=2, hour=0)
        response = client.post(f"{APPOINTMENTS}/earliest", headers=auth(scene["owner"]), json={
            "doctor_id": str(scene["doctor"].id), "patient_id": str(scene["pet"].id), "type": "chat",
            "after": iso(after)})
        assert response.status_code == 201
        assert response.get_json()["start"] == iso(after.replace(hour=8))

    def test_earliest_for_a_specialty_picks_the_soonest_doctor(self, client, auth, scene, gen_doctor):
        _, late = gen_doctor(specialty="dermatology", species=("dog",),
                             hours=[(day, "12:00", "13:00") for day in range(7)])
        _, early = gen_doctor(specialty="dermatology", species=("dog",),
                              hours=[(day, "06:00", "07:00") for day in range(7)])
        gen_doctor(specialty="dermatology", species=("human",), hours=[(d, "00:00", "01:00") for d in range(7)])
        after = next_slot(days=2, hour=0)
        body = client.post(f"{APPOINTMENTS}/earliest", headers=auth(scene["owner"]), json={
            "specialty": "dermatology", "patient_id": str(scene["pet"].id), "type": "video",
            "after": iso(after)}).get_json()
        assert body["doctor_id"] == str(early.id) and body["start"] == iso(after.replace(hour=6))

    def test_earliest_skips_taken_slots(self, client, auth, scene, gen_user, gen_patient, gen_appointment):
        after = next_slot(days=2, hour=0)
        gen_appointment(scene["doctor"], gen_patient(gen_user()), after.replace(hour=8))
        body = client.post(f"{APPOINTMENTS}/earliest", headers=auth(scene["owner"]), json={
            "doctor_id": str(scene["doctor"].id), "patient_id": str(scene["pet"].id), "type": "video",
            "after": iso(after)}).get_json()
        assert body["start"] == iso(after.replace(hour=8, minute=30))

    def test_no_doctor_for_the_specialty(self, client, auth, scene):
        response = client.post(f"{APPOINTMENTS}/earliest", headers=auth(scene["owner"]), json={
            "specialty": "neurosurgery", "patient_id": str(scene["pet"].id), "type": "video"})
        assert_problem(response, 409, "no_slot_available")

    def test_doctor_or_specialty_but_not_both(self, client, auth, scene):
        response = client.post(f"{APPOINTMENTS}/earliest", headers=auth(scene["owner"]), json={
            "specialty": "dermatology", "doctor_id": str(scene["doctor"].id), "patient_id": str(scene["pet"].id),
            "type": "video"})
        assert_problem(response, 422)


class TestLifecycle:
    def booked(self, client, auth, scene, start=None):
        return book(client, auth, scene, start or next_slot()).get_json()["id"]

    def test_confirm_then_complete(self, client, auth, scene):
        appointment_id = self.booked(client, auth, scene)
        doctor = auth(scene["doctor_user"])
        assert client.post(f"{APPOINTMENTS}/{appointment_id}/confirm", headers=doctor).get_json()["status"] == \
            "confirmed"
        done = client.post(f"{APPOINTMENTS}/{appointment_id}/complete", headers=doctor).get_json()
        assert done["status"] == "completed"
        assert [e["to_status"] for e in done["history"]] == ["requested", "confirmed", "completed"]

    def test_illegal_transitions_are_409(self, client, auth, scene):
        appointment_id = self.booked(client, auth, scene)
        doctor = auth(scene["doctor_user"])
        assert_problem(client.post(f"{APPOINTMENTS}/{appointment_id}/complete", headers=doctor), 409,
                       "invalid_transition")
        client.post(f"{APPOINTMENTS}/{appointment_id}/cancel", json={"reason": "Feeling better"}, headers=doctor)
        assert_problem(client.post(f"{APPOINTMENTS}/{appointment_id}/confirm", headers=doctor), 409,
                       "invalid_transition")
        assert_problem(client.post(f"{APPOINTMENTS}/{appointment_id}/cancel", json={"reason": "again"},
                                   headers=doctor), 409, "invalid_transition")

    def test_patients_cannot_confirm(self, client, auth, scene):
        appointment_id = self.booked(client, auth, scene)
        assert_problem(client.post(f"{APPOINTMENTS}/{appointment_id}/confirm", headers=auth(scene["owner"])), 403)

    def test_cancel_needs_a_reason(self, client, auth, scene):
        appointment_id = self.booked(client, auth, scene)
        assert_problem(client.post(f"{APPOINTMENTS}/{appointment_id}/cancel", json={},
                                   headers=auth(scene["owner"])), 422)

    def test_late_cancellation_is_recorded(self, client, auth, scene, gen_appointment):
        soon = gen_appointment(scene["doctor"], scene["pet"], datetime.now(timezone.utc) + timedelta(hours=3))
        body = client.post(f"{APPOINTMENTS}/{soon.id}/cancel", json={"reason": "Car broke down"},
                           headers=auth(scene["owner"])).get_json()
        assert body["status"] == "cancelled" and body["late_cancellation"] is True
        early = self.booked(client, auth, scene, next_slot(days=5))
        body = client.post(f"{APPOINTMENTS}/{early}/cancel", json={"reason": "Plans changed"},
                           headers=auth(scene["owner"])).get_json()
        assert body["late_cancellation"] is False and body["cancel_reason"] == "Plans changed"

    def test_no_show_only_after_the_start(self, client, auth, scene, gen_appointment):
        future = gen_appointment(scene["doctor"], scene["pet"], next_slot(), status="confirmed")
        assert_problem(client.post(f"{APPOINTMENTS}/{future.id}/no-show", headers=auth(scene["doctor_user"])), 409,
                       "not_started")
        past = gen_appointment(scene["doctor"], scene["pet"], next_slot(days=-1), status="confirmed")
        assert client.post(f"{APPOINTMENTS}/{past.id}/no-show",
                           headers=auth(scene["doctor_user"])).get_json()["status"] == "no_show"

    def test_reschedule_keeps_history_and_needs_reconfirming(self, client, auth, scene):
        first, second = next_slot(hour=9), next_slot(hour=11)
        appointment_id = self.booked(client, auth, scene, first)
        client.post(f"{APPOINTMENTS}/{appointment_id}/confirm", headers=auth(scene["doctor_user"]))
        body = client.post(f"{APPOINTMENTS}/{appointment_id}/reschedule", json={"start": iso(second)},
                           headers=auth(scene["owner"])).get_json()
        assert body["start"] == iso(second) and body["status"] == "requested"
        last = body["history"][-1]
        assert (last["action"], last["from_start"], last["to_start"]) == ("reschedule", iso(first), iso(second))

    def test_reschedule_onto_a_taken_slot(self, client, auth, scene, gen_user, gen_patient, gen_appointment):
        appointment_id = self.booked(client, auth, scene, next_slot(hour=9))
        gen_appointment(scene["doctor"], gen_patient(gen_user()), next_slot(hour=11))
        response = client.post(f"{APPOINTMENTS}/{appointment_id}/reschedule", json={"start": iso(next_slot(hour=11))},
                               headers=auth(scene["owner"]))
        assert_problem(response, 409, "slot_taken")
        assert client.get(f"{APPOINTMENTS}/{appointment_id}",
                          headers=auth(scene["owner"])).get_json()["start"] == iso(next_slot(hour=9))


class TestListsAndCalendar:
    def test_lists_are_scoped_and_filtered(self, client, auth, scene, gen_user, gen_patient, gen_appointment):
        mine = gen_appointment(scene["doctor"], scene["pet"], next_slot(hour=9))
        gen_appointment(scene["doctor"], scene["pet"], next_slot(hour=10), status="cancelled")
        gen_appointment(scene["doctor"], gen_patient(gen_user()), next_slot(hour=11))
        owner_view = client.get(APPOINTMENTS, headers=auth(scene["owner"])).get_json()
        assert owner_view["total"] == 2
        assert client.get(f"{APPOINTMENTS}?status=requested", headers=auth(scene["owner"])).get_json()["items"][0][
            "id"] == str(mine.id)
        doctor_view = client.get("/api/v1/doctors/me/appointments", headers=auth(scene["doctor_user"])).get_json()
        assert doctor_view["total"] == 3
        window = f"from={iso(next_slot(hour=10))}&to={iso(next_slot(hour=12))}"
        assert client.get(f"{APPOINTMENTS}?{window}", headers=auth(scene["doctor_user"])).get_json()["total"] == 2

    def test_calendar_feed(self, client, auth, scene, gen_appointment):
        gen_appointment(scene["doctor"], scene["pet"], next_slot(hour=9), status="confirmed")
        gen_appointment(scene["doctor"], scene["pet"], next_slot(hour=10), status="cancelled")
        response = client.get(f"{APPOINTMENTS}/calendar.ics", headers=auth(scene["owner"]))
        assert response.status_code == 200 and response.mimetype == "text/calendar"
        events = [c for c in Calendar.from_ical(response.data).walk() if c.name == "VEVENT"]
        assert len(events) == 1
        event = events[0]
        assert event["STATUS"] == "CONFIRMED" and "Biscuit" in str(event["SUMMARY"])
        assert event.decoded("DTSTART") == next_slot(hour=9)
        assert b"Itchy" not in response.data

    def test_calendar_apps_subscribe_to_a_secret_url(self, client, auth, scene, gen_appointment, gen_user):
        from pawmanity.audit.models import AuditEvent

        gen_appointment(scene["doctor"], scene["pet"], next_slot(hour=9), status="confirmed")
        issued = client.post(f"{APPOINTMENTS}/calendar-feed", headers=auth(scene["owner"]))
        assert issued.status_code == 201
        url = issued.get_json()["url"]
        assert url.startswith("http://127.0.0.1:5000/api/v1/appointments/calendar/") and url.endswith(".ics")
        path = url.removeprefix("http://127.0.0.1:5000")
        feed = client.get(path)  # no bearer token: calendar apps cannot send one
        assert feed.status_code == 200 and feed.mimetype == "text/calendar"
        assert feed.headers["Cache-Control"] == "no-store"
        events = [c for c in Calendar.from_ical(feed.data).walk() if c.name == "VEVENT"]
        assert len(events) == 1 and "Biscuit" in str(events[0]["SUMMARY"])
        used = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "appointment.calendar")).all()
        assert [(e.actor_id, e.detail["via"]) for e in used] == [(scene["owner"].id, "calendar_feed")]

        rotated = client.post(f"{APPOINTMENTS}/calendar-feed", headers=auth(scene["owner"])).get_json()["url"]
        assert rotated != url
        assert_problem(client.get(path), 404)  # the old URL died with the rotation
        new_path = rotated.removeprefix("http://127.0.0.1:5000")
        assert client.get(new_path).status_code == 200
        assert client.delete(f"{APPOINTMENTS}/calendar-feed", headers=auth(scene["owner"])).status_code == 204
        assert_problem(client.get(new_path), 404)
        assert_problem(client.delete(f"{APPOINTMENTS}/calendar-feed", headers=auth(scene["owner"])), 404,
                       "no_calendar_feed")
        assert_problem(client.get(f"{APPOINTMENTS}/calendar/guess.ics"), 404)


@postgres_only
@pytest.mark.parametrize("contenders", [20])
def test_concurrent_bookings_for_one_slot_exactly_one_wins(make_app, gen_user, gen_patient, gen_doctor,
                                                           tokens_for, contenders):
    app = make_app()
    _, doctor = gen_doctor()
    doctor_id, start = str(doctor.id), next_slot()
    people = []
    for _ in range(contenders):
        owner = gen_user()
        people.append((tokens_for(owner)["access_token"], str(gen_patient(owner).id)))
    barrier, statuses = threading.Barrier(contenders), []

    def attempt(token, patient_id):
        client = app.test_client()
        barrier.wait()
        response = client.post(APPOINTMENTS, headers={"Authorization": f"Bearer {token}"}, json={
            "doctor_id": doctor_id, "patient_id": patient_id, "start": iso(start), "type": "video"})
        statuses.append((response.status_code, (response.get_json() or {}).get("code")))

    threads = [threading.Thread(target=attempt, args=person) for person in people]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses, key=str) == sorted([(201, None)] + [(409, "slot_taken")] * (contenders - 1), key=str)
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Appointment)) == 1


@postgres_only
def test_concurrent_overlapping_unequal_intervals_exactly_one_wins(make_app, gen_user, gen_patient, gen_doctor):
    """Straight at the database, from separate connections: 10:00-10:30 against 10:15-10:45 and friends."""
    app = make_app()
    _, doctor = gen_doctor()
    owner = gen_user()
    ids = {"doctor": doctor.id, "patient": gen_patient(owner).id, "owner": owner.id}
    base = next_slot(hour=10)
    barrier, outcomes = threading.Barrier(10), []

    def insert(offset_minutes):
        with app.app_context():
            start = base + timedelta(minutes=offset_minutes)
            barrier.wait()
            try:
                db.session.execute(text(
                    "INSERT INTO appointments (id, doctor_id, patient_id, booked_by, start_at, end_at, type, status, "
                    "late_cancellation, created_at, updated_at) VALUES (gen_random_uuid(), :doctor, :patient, "
                    ":owner, :start, :end, 'video', 'requested', false, now(), now())"),
                    {**ids, "start": start, "end": start + timedelta(minutes=30)})
                db.session.commit()
                outcomes.append("stored")
            except (IntegrityError, OperationalError) as error:
                # Raw concurrent inserts under an exclusion constraint may also end in a deadlock (40P01): that
                # too is the database refusing the overlap. The app queues per doctor to avoid it.
                assert getattr(error.orig, "sqlstate", None) in ("23P01", "40P01"), error
                db.session.rollback()
                outcomes.append("refused")

    threads = [threading.Thread(target=insert, args=(offset,)) for offset in range(0, 20, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["refused"] * 9 + ["stored"]
