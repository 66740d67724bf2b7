"""Doctor profiles, verification, the directory, availability rules, time off and free slots (DST included)."""

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.support import assert_problem, iso, next_slot

PROFILE = {"specialty": "dermatology", "species_treated": ["dog", "cat"], "license_number": "VET-2231",
           "bio": "Skin and ears.", "timezone": "Europe/Berlin"}


def test_profile_created_then_verified_then_listed(client, gen_user, auth):
    doctor, admin = gen_user(role="doctor"), gen_user(role="admin")
    created = client.put("/api/v1/doctors/me", json=PROFILE, headers=auth(doctor))
    assert created.status_code == 201 and created.get_json()["verified"] is False
    doctor_id = created.get_json()["id"]
    assert client.get("/api/v1/doctors").get_json()["total"] == 0
    assert_problem(client.get(f"/api/v1/doctors/{doctor_id}"), 404)
    assert client.get(f"/api/v1/doctors/{doctor_id}", headers=auth(doctor)).status_code == 200
    assert client.get("/api/v1/auth/me", headers=auth(doctor)).get_json()["doctor_id"] == doctor_id

    verified = client.post(f"/api/v1/admin/doctors/{doctor_id}/verify", headers=auth(admin))
    assert verified.status_code == 200 and verified.get_json()["verified"] is True
    listed = client.get("/api/v1/doctors").get_json()
    assert [d["id"] for d in listed["items"]] == [doctor_id]
    assert listed["items"][0]["full_name"] == doctor.full_name


def test_changing_the_licence_needs_verifying_again(client, gen_user, auth):
    doctor, admin = gen_user(role="doctor"), gen_user(role="admin")
    doctor_id = client.put("/api/v1/doctors/me", json=PROFILE, headers=auth(doctor)).get_json()["id"]
    client.post(f"/api/v1/admin/doctors/{doctor_id}/verify", headers=auth(admin))
    updated = client.put("/api/v1/doctors/me", json={**PROFILE, "license_number": "VET-9999"}, headers=auth(doctor))
    assert updated.status_code == 200 and updated.get_json()["verified"] is False


@pytest.mark.parametrize("change", [
    {"specialty": "cardiology"},
    {"species_treated": ["dog", "cat", "horse"]},
    {"species_treated": ["dog"]},
])
def test_changing_what_was_verified_needs_verifying_again(client, gen_user, auth, change):
    doctor, admin = gen_user(role="doctor"), gen_user(role="admin")
    doctor_id = client.put("/api/v1/doctors/me", json=PROFILE, headers=auth(doctor)).get_json()["id"]
    client.post(f"/api/v1/admin/doctors/{doctor_id}/verify", headers=auth(admin))
    same = client.put("/api/v1/doctors/me", json={**PROFILE, "bio": "Now with a longer bio"}, headers=auth(doctor))
    assert same.get_json()["verified"] is True  # a bio or hours change is not what was verified
    updated = client.put("/api/v1/doctors/me", json={**PROFILE, **change}, headers=auth(doctor))
    assert updated.status_code == 200 and updated.get_json()["verified"] is False
    assert client.get("/api/v1/doctors").get_json()["items"] == []


def test_a_doctor_renaming_themselves_needs_verifying_again(client, gen_user, auth):
    doctor, admin = gen_user(role="doctor"), gen_user(role="admin")
    doctor_id = client.put("/api/v1/doctors/me", json=PROFILE, headers=auth(doctor)).get_json()["id"]
    client.post(f"/api/v1/admin/doctors/{doctor_id}/verify", headers=auth(admin))
    assert client.patch("/api/v1/auth/me", json={"timezone": "Europe/Paris"}, headers=auth(doctor)).status_code == 200
    assert client.get("/api/v1/doctors/me", headers=auth(doctor)).get_json()["verified"] is True
    assert client.patch("/api/v1/auth/me", json={"full_name": "Dr Someone Else"},
                        headers=auth(doctor)).status_code == 200
    assert client.get("/api/v1/doctors/me", headers=auth(doctor)).get_json()["verified"] is False


def test_only_doctors_have_doctor_profiles(client, gen_user, auth):
    assert_problem(client.put("/api/v1/doctors/me", json=PROFILE, headers=auth(gen_user())), 403)
    assert_problem(client.post("/api/v1/admin/doctors/00000000-0000-4000-8000-000000000000/verify",
                               headers=auth(gen_user(role="doctor"))), 403)


@pytest.mark.parametrize("changes, field", [
    ({"timezone": "Europe/Atlantis"}, "timezone"),
    ({"species_treated": ["unicorn"]}, "species_treated"),
    ({"species_treated": []}, "species_treated"),
])
def test_bad_profile_input(client, gen_user, auth, changes, field):
    body = assert_problem(client.put("/api/v1/doctors/me", json={**PROFILE, **changes},
                                     headers=auth(gen_user(role="doctor"))), 422)
    assert field in body["errors"]


def test_directory_filters(client, gen_doctor):
    gen_doctor(specialty="dermatology", species=("dog",))
    gen_doctor(specialty="dermatology", species=("human",))
    gen_doctor(specialty="cardiology", species=("dog",))
    assert client.get("/api/v1/doctors?specialty=dermatology").get_json()["total"] == 2
    assert client.get("/api/v1/doctors?specialty=dermatology&species=dog").get_json()["total"] == 1
    assert_problem(client.get("/api/v1/doctors?species=dragon"), 422)


class TestAvailability:
    def test_rules_round_trip_as_wall_clock_times(self, client, gen_user, auth):
        doctor = gen_user(role="doctor")
        client.put("/api/v1/doctors/me", json=PROFILE, headers=auth(doctor))
        body = client.put("/api/v1/doctors/me/availability", headers=auth(doctor), json={
            "rules": [{"weekday": 0, "start": "09:00", "end": "12:30"}, {"weekday": 0, "start": "14:00",
                                                                          "end": "24:00"}],
            "slot_minutes": 20, "buffer_minutes": 5}).get_json()
        assert body["rules"] == [{"weekday": 0, "start": "09:00", "end": "12:30"},
                                 {"weekday": 0, "start": "14:00", "end": "24:00"}]
        assert (body["slot_minutes"], body["buffer_minutes"]) == (20, 5)

    @pytest.mark.parametrize("rules", [
        [{"weekday": 0, "start": "25:00", "end": "26:00"}],
        [{"weekday": 7, "start": "09:00", "end": "10:00"}],
        [{"weekday": 0, "start": "10:00", "end": "09:00"}],
        [{"weekday": 0, "start": "09:00", "end": "12:00"}, {"weekday": 0, "start": "11:00", "end": "13:00"}],
        [{"weekday": 0, "start": "9am", "end": "10:00"}],
    ])
    def test_bad_rules_are_refused(self, client, gen_user, auth, rules):
        doctor = gen_user(role="doctor")
        client.put("/api/v1/doctors/me", json=PROFILE, headers=auth(doctor))
        assert_problem(client.put("/api/v1/doctors/me/availability", json={"rules": rules}, headers=auth(doctor)),
                       422)

    def test_availability_needs_a_profile(self, client, gen_user, auth):
        response = client.put("/api/v1/doctors/me/availability", json={"rules": []},
                              headers=auth(gen_user(role="doctor")))
        assert_problem(response, 404, "no_doctor_profile")


def slots(client, doctor, start, end):
    response = client.get(f"/api/v1/doctors/{doctor.id}/slots?from={iso(start)}&to={iso(end)}")
    assert response.status_code == 200, response.get_data(as_text=True)
    return [(item["start"], item["end"]) for item in response.get_json()["items"]]


def utc(*args):
    return datetime(*args, tzinfo=timezone.utc)


class TestSlots:
    def test_nine_oclock_stays_nine_oclock_across_the_spring_change(self, client, gen_doctor):
        # Berlin moves from UTC+1 to UTC+2 on Sunday 28 March 2027.
        _, doctor = gen_doctor(timezone="Europe/Berlin", hours=[(4, "09:00", "10:00"), (0, "09:00", "10:00")])
        found = slots(client, doctor, utc(2027, 3, 25), utc(2027, 3, 30))
        assert found == [("2027-03-26T08:00:00Z", "2027-03-26T08:30:00Z"),
                         ("2027-03-26T08:30:00Z", "2027-03-26T09:00:00Z"),
                         ("2027-03-29T07:00:00Z", "2027-03-29T07:30:00Z"),
                         ("2027-03-29T07:30:00Z", "2027-03-29T08:00:00Z")]

    def test_nine_oclock_stays_nine_oclock_across_the_autumn_change(self, client, gen_doctor):
        # New York moves from UTC-4 to UTC-5 on Sunday 7 November 2027.
        _, doctor = gen_doctor(timezone="America/New_York", hours=[(5, "09:00", "09:30"), (0, "09:00", "09:30")])
        assert slots(client, doctor, utc(2027, 11, 5), utc(2027, 11, 9)) == [
            ("2027-11-06T13:00:00Z", "2027-11-06T13:30:00Z"), ("2027-11-08T14:00:00Z", "2027-11-08T14:30:00Z")]

    def test_the_skipped_hour_has_no_slots(self, client, gen_doctor):
        _, doctor = gen_doctor(timezone="Europe/Berlin", hours=[(6, "01:30", "03:30")])
        # 01:30 CET exists; 02:00 and 02:30 never happen that night; 03:00 CEST does.
        assert [start for start, _ in slots(client, doctor, utc(2027, 3, 27), utc(2027, 3, 29))] == [
            "2027-03-28T00:30:00Z", "2027-03-28T01:00:00Z"]

    def test_the_repeated_hour_counts_once(self, client, gen_doctor):
        _, doctor = gen_doctor(timezone="Europe/Berlin", hours=[(6, "02:00", "03:00")])
        # 31 October 2027: 02:00-03:00 happens twice; the first (summer time, UTC+2) is used.
        assert [start for start, _ in slots(client, doctor, utc(2027, 10, 30), utc(2027, 11, 1))] == [
            "2027-10-31T00:00:00Z", "2027-10-31T00:30:00Z"]

    def test_buffer_spaces_slots(self, client, gen_doctor):
        _, doctor = gen_doctor(hours=[(day, "09:00", "10:30") for day in range(7)], slot_minutes=20,
                               buffer_minutes=10)
        day = next_slot(days=3, hour=0)
        assert [start[11:16] for start, _ in slots(client, doctor, day, day + timedelta(days=1))] == [
            "09:00", "09:30", "10:00"]

    def test_slots_are_paged_earliest_first(self, client, gen_doctor):
        _, doctor = gen_doctor(hours=[(day, "09:00", "12:00") for day in range(7)])
        day = next_slot(days=3, hour=0)
        window = f"from={iso(day)}&to={iso(day + timedelta(days=1))}"
        first, second = (client.get(f"/api/v1/doctors/{doctor.id}/slots?{window}&per_page=4&page={n}").get_json()
                         for n in (1, 2))
        assert (first["total"], first["page"], first["per_page"], second["page"]) == (6, 1, 4, 2)
        assert [item["start"][11:16] for item in first["items"] + second["items"]] == [
            "09:00", "09:30", "10:00", "10:30", "11:00", "11:30"]

    def test_taken_slots_and_time_off_are_not_free(self, client, gen_doctor, gen_user, gen_patient,
                                                   gen_appointment, auth):
        doctor_user, doctor = gen_doctor(hours=[(day, "09:00", "11:00") for day in range(7)])
        day = next_slot(days=3, hour=0)
        gen_appointment(doctor, gen_patient(gen_user()), day.replace(hour=9))
        gen_appointment(doctor, gen_patient(gen_user()), day.replace(hour=9, minute=30), status="cancelled")
        off = client.post("/api/v1/doctors/me/time-off", headers=auth(doctor_user), json={
            "start": iso(day.replace(hour=10)), "end": iso(day.replace(hour=10, minute=45)), "reason": "Training"})
        assert off.status_code == 201
        assert [start[11:16] for start, _ in slots(client, doctor, day, day + timedelta(days=1))] == ["09:30"]

    def test_time_off_is_listed_in_pages_earliest_first(self, client, gen_doctor, auth):
        doctor_user, _ = gen_doctor()
        day = next_slot(days=3, hour=0)
        for offset in (2, 0, 1):
            assert client.post("/api/v1/doctors/me/time-off", headers=auth(doctor_user), json={
                "start": iso(day + timedelta(days=offset)), "end": iso(day + timedelta(days=offset, hours=1)),
                "reason": f"day {offset}"}).status_code == 201
        pages = [client.get(f"/api/v1/doctors/me/time-off?per_page=2&page={n}", headers=auth(doctor_user)).get_json()
                 for n in (1, 2)]
        assert [entry["reason"] for page in pages for entry in page["items"]] == ["day 0", "day 1", "day 2"]
        assert [(page["page"], page["per_page"], page["total"]) for page in pages] == [(1, 2, 3), (2, 2, 3)]

    def test_time_off_over_booked_appointments_is_refused(self, client, gen_doctor, gen_user, gen_patient,
                                                          gen_appointment, auth):
        doctor_user, doctor = gen_doctor()
        start = next_slot()
        booked = gen_appointment(doctor, gen_patient(gen_user()), start)
        body = assert_problem(client.post("/api/v1/doctors/me/time-off", headers=auth(doctor_user), json={
            "start": iso(start - timedelta(hours=1)), "end": iso(start + timedelta(hours=1))}), 409,
            "appointments_in_time_off")
        assert body["appointment_ids"] == [str(booked.id)]

    def test_past_slots_are_not_offered(self, client, gen_doctor):
        _, doctor = gen_doctor()
        now = datetime.now(timezone.utc)
        assert all(start > iso(now) for start, _ in slots(client, doctor, now - timedelta(days=1), now + timedelta(days=1)))

    @pytest.mark.parametrize("query", ["from=2027-01-01T00:00:00Z&to=2027-03-01T00:00:00Z",
                                       "from=2027-01-02T00:00:00Z&to=2027-01-01T00:00:00Z",
                                       "from=2027-01-01T00:00:00"])
    def test_bad_ranges(self, client, gen_doctor, query):
        _, doctor = gen_doctor()
        assert_problem(client.get(f"/api/v1/doctors/{doctor.id}/slots?{query}"), 422)

    def test_unverified_doctors_have_no_public_slots(self, client, gen_doctor):
        _, doctor = gen_doctor(verified=False)
        assert_problem(client.get(f"/api/v1/doctors/{doctor.id}/slots"), 404)


@given(slots=st.lists(st.tuples(st.integers(0, 500), st.integers(1, 60)), max_size=40),
       busy=st.lists(st.tuples(st.integers(0, 500), st.integers(1, 90)), max_size=40))
def test_clear_of_agrees_with_checking_every_pair(slots, busy):
    from pawmanity.scheduling.availability import Slot, clear_of

    base = datetime(2027, 1, 1, tzinfo=timezone.utc)

    def at(minutes):
        return base + timedelta(minutes=minutes)

    candidates = [Slot(at(start), at(start + length)) for start, length in slots]
    intervals = [(at(start), at(start + length)) for start, length in busy]
    expected = [slot for slot in candidates
                if not any(b_start < slot.end and slot.start < b_end for b_start, b_end in intervals)]
    assert clear_of(candidates, intervals) == expected


# Zones with the awkward cases: half-hour shifts (Lord Howe), changes at midnight (Havana, Santiago), a +12:45 offset
# (Chatham), none at all (Kolkata, UTC).
GRID_ZONES = ["Europe/London", "America/New_York", "Australia/Lord_Howe", "America/Havana", "America/Santiago",
              "Pacific/Chatham", "Asia/Kolkata", "UTC"]


def _clock_change_days(zone_name):
    from datetime import date
    from zoneinfo import ZoneInfo

    zone, day, days = ZoneInfo(zone_name), date(2025, 1, 1), []
    while day < date(2027, 1, 1):
        midnight = datetime.combine(day, datetime.min.time())
        if midnight.replace(tzinfo=zone).utcoffset() != (midnight + timedelta(days=1)).replace(tzinfo=zone).utcoffset():
            days.append(day)
        day += timedelta(days=1)
    return days or [date(2025, 3, 30)]


def _grid_by_converting_every_slot(doctor, start, end):
    """The slot grid as it was first written: each wall-clock slot converted through the zone on its own."""
    from zoneinfo import ZoneInfo

    zone, length, step = ZoneInfo(doctor.timezone), timedelta(minutes=doctor.slot_minutes), \
        doctor.slot_minutes + doctor.buffer_minutes
    day, starts = start.astimezone(zone).date() - timedelta(days=1), set()
    while day <= end.astimezone(zone).date():
        for rule in doctor.rules:
            minute = rule.start_minute
            while rule.weekday == day.weekday() and minute + doctor.slot_minutes <= rule.end_minute:
                wall = datetime.combine(day, datetime.min.time()) + timedelta(minutes=minute)
                instant = wall.replace(tzinfo=zone).astimezone(timezone.utc)
                if instant.astimezone(zone).replace(tzinfo=None) == wall and start <= instant \
                        and instant + length <= end:
                    starts.add(instant)
                minute += step
        day += timedelta(days=1)
    return sorted(starts)


@st.composite
def grid_cases(draw):
    from types import SimpleNamespace

    zone = draw(st.sampled_from(GRID_ZONES))
    day = draw(st.sampled_from(_clock_change_days(zone))) + timedelta(days=draw(st.integers(-1, 1)))
    # Around the clock (so that every skipped and repeated hour falls in a rule), or a few rules anywhere.
    rules = [SimpleNamespace(weekday=weekday, start_minute=0, end_minute=1440) for weekday in range(7)]
    if draw(st.booleans()):
        rules = []
        for _ in range(draw(st.integers(1, 4))):
            start_minute = draw(st.integers(0, 1400))
            rules.append(SimpleNamespace(weekday=draw(st.integers(0, 6)), start_minute=start_minute,
                                         end_minute=draw(st.integers(start_minute + 1, 1440))))
    doctor = SimpleNamespace(timezone=zone, rules=rules, slot_minutes=draw(st.sampled_from([10, 15, 30, 45, 60])),
                             buffer_minutes=draw(st.sampled_from([0, 5, 15])))
    start = datetime.combine(day, datetime.min.time(), tzinfo=timezone.utc) + \
        timedelta(minutes=draw(st.integers(-720, 720)))
    return doctor, start, start + timedelta(hours=draw(st.integers(1, 72)))


@given(grid_cases())
def test_the_slot_grid_and_a_booking_s_check_agree_with_converting_every_slot(case):
    """Around every clock change of 2025-2026 in these zones: the grid's shortcut (one offset for a day the clock
    does not change) and a booking's check of one instant give what converting each slot through the zone gives."""
    from pawmanity.scheduling.availability import on_slot_grid, slot_grid

    doctor, start, end = case
    assert [slot.start for slot in slot_grid(doctor, start, end)] == _grid_by_converting_every_slot(doctor, start, end)
    starts = set(_grid_by_converting_every_slot(doctor, start - timedelta(days=2), end + timedelta(days=2)))
    instant = start
    while instant < end:
        assert on_slot_grid(doctor, instant) == (instant in starts), instant
        instant += timedelta(minutes=5)
