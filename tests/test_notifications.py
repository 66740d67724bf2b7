"""Notifications: in-app (listed, read, pushed live), e-mail by preference, unread digests, reminders, SMTP."""

import email
import socket
import threading
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from pawmanity.appointments import reminders
from pawmanity.appointments.models import ReminderDelivery
from pawmanity.conversations import messaging
from pawmanity.core.database import utcnow
from pawmanity.core.extensions import db, socketio
from pawmanity.notifications.models import Notification
from tests.support import assert_problem, bearer, iso, next_slot, postgres_only

NOTIFICATIONS = "/api/v1/notifications"


def outbox(app):
    return [email.message_from_bytes(path.read_bytes())
            for path in sorted(Path(app.config["MAIL_OUTBOX_DIR"]).glob("*.eml"))]


def text_of(message):
    return message.get_payload(decode=True).decode()


@pytest.fixture
def booked(client, auth, gen_user, gen_patient, gen_doctor):
    owner = gen_user()
    doctor_user, doctor = gen_doctor()
    pet = gen_patient(owner, name="Biscuit")
    response = client.post("/api/v1/appointments", headers=auth(owner), json={
        "doctor_id": str(doctor.id), "patient_id": str(pet.id), "start": iso(next_slot()), "type": "video",
        "reason": "Suspected ringworm"})
    assert response.status_code == 201
    return {"owner": owner, "doctor_user": doctor_user, "doctor": doctor, "pet": pet,
            "appointment": response.get_json()}


class TestInApp:
    def test_list_read_and_read_all(self, client, auth, booked):
        doctor = auth(booked["doctor_user"])
        listed = client.get(NOTIFICATIONS, headers=doctor).get_json()
        assert [n["kind"] for n in listed["items"]] == ["appointment.booked"]
        notification_id = listed["items"][0]["id"]
        assert client.post(f"{NOTIFICATIONS}/{notification_id}/read", headers=doctor).get_json()["read_at"]
        assert client.get(f"{NOTIFICATIONS}?unread=true", headers=doctor).get_json()["total"] == 0
        client.post(f"/api/v1/appointments/{booked['appointment']['id']}/cancel", json={"reason": "Sorry"},
                    headers=auth(booked["owner"]))
        assert client.post(f"{NOTIFICATIONS}/read-all", headers=doctor).get_json() == {"marked": 1}

    def test_someone_elses_notification_is_404(self, client, auth, booked):
        notification_id = client.get(NOTIFICATIONS, headers=auth(booked["doctor_user"])).get_json()["items"][0]["id"]
        assert_problem(client.post(f"{NOTIFICATIONS}/{notification_id}/read", headers=auth(booked["owner"])), 404)

    def test_pushed_live_to_the_users_room(self, app, client, auth, gen_user, gen_patient, gen_doctor, tokens_for):
        owner = gen_user()
        doctor_user, doctor = gen_doctor()
        live = socketio.test_client(app, namespace="/notifications",
                                    auth={"token": tokens_for(doctor_user)["access_token"]})
        assert live.is_connected("/notifications")
        client.post("/api/v1/appointments", headers=auth(owner), json={
            "doctor_id": str(doctor.id), "patient_id": str(gen_patient(owner).id), "start": iso(next_slot()),
            "type": "chat"})
        events = [e for e in live.get_received("/notifications") if e["name"] == "notification"]
        assert len(events) == 1
        body = events[0]["args"] if isinstance(events[0]["args"], dict) else events[0]["args"][0]
        assert body["kind"] == "appointment.booked"

    def test_unauthenticated_live_connection_is_refused(self, app):
        assert not socketio.test_client(app, namespace="/notifications").is_connected("/notifications")


class TestPreferences:
    def test_defaults_and_partial_updates(self, client, auth, gen_user):
        user = gen_user()
        defaults = client.get(f"{NOTIFICATIONS}/preferences", headers=auth(user)).get_json()
        assert defaults["appointments"] == {"in_app": True, "email": True, "push": True}
        changed = client.put(f"{NOTIFICATIONS}/preferences", json={"appointments": {"email": False}},
                             headers=auth(user)).get_json()
        assert changed["appointments"] == {"in_app": True, "email": False, "push": True}
        assert changed["messages"] == {"in_app": True, "email": True, "push": True}

    def test_unknown_category_or_channel(self, client, auth, gen_user):
        # A channel is a JSON boolean: not 0 or 1, not "true" (marshmallow's Boolean would take them).
        for body in ({"gossip": {"email": True}}, {"appointments": {"pigeon": True}},
                     {"appointments": {"email": "yes please"}}, {"appointments": {"push": 0}},
                     {"appointments": {"push": 1}}, {"appointments": {"push": "true"}}):
            assert_problem(client.put(f"{NOTIFICATIONS}/preferences", json=body, headers=auth(gen_user())), 422)

    def test_email_follows_preferences_and_carries_no_clinical_details(self, app, client, auth, gen_user,
                                                                       gen_patient, gen_doctor):
        owner = gen_user()
        quiet_doctor, quiet = gen_doctor()
        chatty_doctor, chatty = gen_doctor()
        client.put(f"{NOTIFICATIONS}/preferences", json={"appointments": {"email": False}},
                   headers=auth(quiet_doctor))
        for doctor in (quiet, chatty):
            client.post("/api/v1/appointments", headers=auth(owner), json={
                "doctor_id": str(doctor.id), "patient_id": str(gen_patient(owner).id), "start": iso(next_slot()),
                "type": "video", "reason": "Suspected ringworm"})
        sent = outbox(app)
        assert sorted(m["To"] for m in sent) == sorted([owner.email, owner.email, chatty_doctor.email])
        assert quiet_doctor.email not in {m["To"] for m in sent}
        assert not any("ringworm" in text_of(m).lower() for m in sent)
        # In-app still arrives for both doctors.
        assert db.session.scalar(select(func.count()).select_from(Notification).where(
            Notification.user_id.in_([quiet_doctor.id, chatty_doctor.id]))) == 2

    def test_in_app_can_be_switched_off(self, client, auth, gen_user, gen_patient, gen_doctor):
        owner = gen_user()
        doctor_user, doctor = gen_doctor()
        client.put(f"{NOTIFICATIONS}/preferences", json={"appointments": {"in_app": False}},
                   headers=auth(doctor_user))
        client.post("/api/v1/appointments", headers=auth(owner), json={
            "doctor_id": str(doctor.id), "patient_id": str(gen_patient(owner).id), "start": iso(next_slot()),
            "type": "video"})
        assert client.get(NOTIFICATIONS, headers=auth(doctor_user)).get_json()["total"] == 0


@pytest.fixture
def consultation(client, gen_user, gen_patient, gen_doctor, gen_appointment, tokens_for):
    owner = gen_user()
    doctor_user, doctor = gen_doctor()
    appointment = gen_appointment(doctor, gen_patient(owner), utcnow() - timedelta(minutes=1), status="confirmed")
    doctor_token, owner_token = tokens_for(doctor_user)["access_token"], tokens_for(owner)["access_token"]
    cid = client.post("/api/v1/consultations", json={"appointment_id": str(appointment.id)},
                      headers=bearer(doctor_token)).get_json()["id"]
    return {"id": cid, "owner": owner, "doctor_user": doctor_user, "owner_token": owner_token,
            "doctor_token": doctor_token, "url": f"/api/v1/consultations/{cid}/messages"}


class TestDigests:
    def test_unread_messages_are_batched_into_one_email(self, app, client, consultation):
        for n in range(3):
            client.post(consultation["url"], json={"body": f"Question {n}", "client_id": f"q{n}"},
                        headers=bearer(consultation["doctor_token"]))
        assert messaging.send_digests() == 0                       # not yet past the delay
        later = utcnow() + timedelta(minutes=11)
        assert messaging.send_digests(now=later) == 1
        assert messaging.send_digests(now=later) == 0              # never repeated
        digests = [m for m in outbox(app) if "unread" in m["Subject"]]
        assert [m["To"] for m in digests] == [consultation["owner"].email]
        assert "3 unread messages" in text_of(digests[0]) and "Question" not in text_of(digests[0])

    def test_read_messages_need_no_digest(self, app, client, consultation):
        sent = client.post(consultation["url"], json={"body": "Hi", "client_id": "h1"},
                           headers=bearer(consultation["doctor_token"])).get_json()
        socket = socketio.test_client(app, namespace="/chat", auth={"token": consultation["owner_token"]})
        socket.emit("read", {"consultation_id": consultation["id"], "message_id": sent["id"]}, namespace="/chat",
                    callback=True)
        assert messaging.send_digests(now=utcnow() + timedelta(hours=1)) == 0


class TestReminders:
    def scene(self, gen_user, gen_patient, gen_doctor, gen_appointment, start, status="confirmed", timezone="UTC"):
        owner = gen_user()
        owner.timezone = timezone
        doctor_user, doctor = gen_doctor()
        appointment = gen_appointment(doctor, gen_patient(owner, name="Miso"), start, status=status)
        return owner, doctor_user, appointment

    def test_each_window_is_sent_once(self, app, gen_user, gen_patient, gen_doctor, gen_appointment):
        start = utcnow() + timedelta(hours=23)
        owner, doctor_user, appointment = self.scene(gen_user, gen_patient, gen_doctor, gen_appointment, start)
        assert reminders.send_due() == 1
        assert reminders.send_due() == 0
        assert reminders.send_due(now=start - timedelta(minutes=50)) == 1
        assert reminders.send_due(now=start - timedelta(minutes=40)) == 0
        kinds = db.session.scalars(select(Notification.kind).where(Notification.user_id == owner.id)
                                   .order_by(Notification.created_at)).all()
        assert kinds == ["reminder.24h", "reminder.1h"]
        assert {m["To"] for m in outbox(app)} == {owner.email, doctor_user.email}

    def test_cancelled_appointments_get_no_reminder(self, gen_user, gen_patient, gen_doctor, gen_appointment):
        self.scene(gen_user, gen_patient, gen_doctor, gen_appointment, utcnow() + timedelta(minutes=30),
                   status="cancelled")
        assert reminders.send_due() == 0

    def test_a_late_booking_skips_the_passed_window(self, gen_user, gen_patient, gen_doctor, gen_appointment):
        self.scene(gen_user, gen_patient, gen_doctor, gen_appointment, utcnow() + timedelta(minutes=30))
        assert reminders.send_due() == 1
        assert db.session.scalars(select(ReminderDelivery.window)).all() == ["1h"]

    def test_reminders_speak_the_recipients_time(self, gen_user, gen_patient, gen_doctor, gen_appointment):
        start = next_slot(days=1, hour=3, minute=30)  # 09:00 in Kolkata (UTC+5:30)
        owner, _, _ = self.scene(gen_user, gen_patient, gen_doctor, gen_appointment, start, timezone="Asia/Kolkata")
        reminders.send_due(now=start - timedelta(hours=20))
        body = db.session.scalar(select(Notification.body).where(Notification.user_id == owner.id))
        assert "at 09:00 (Asia/Kolkata)" in body and "Miso" in body

    def test_the_cli_command(self, app, gen_user, gen_patient, gen_doctor, gen_appointment):
        self.scene(gen_user, gen_patient, gen_doctor, gen_appointment, utcnow() + timedelta(hours=2))
        result = app.test_cli_runner().invoke(args=["reminders", "send-due"])
        assert result.exit_code == 0 and "sent 1 reminders" in result.output


@postgres_only
def test_two_workers_at_once_send_each_reminder_once(make_app, gen_user, gen_patient, gen_doctor, gen_appointment):
    app = make_app()
    _, doctor = gen_doctor()
    for n in range(6):
        owner = gen_user()
        gen_appointment(doctor, gen_patient(owner), utcnow() + timedelta(hours=2, minutes=30 * n))
    counts, barrier = [], threading.Barrier(4)

    def worker():
        with app.app_context():
            barrier.wait()
            counts.append(reminders.send_due())
            db.session.remove()

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(counts) == 6
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(ReminderDelivery)) == 6


def test_email_goes_through_a_real_smtp_server(make_app, gen_user, gen_patient, gen_doctor, auth):
    from aiosmtpd.controller import Controller
    from aiosmtpd.handlers import Message as MessageHandler

    inbox = []

    class Collect(MessageHandler):
        def handle_message(self, message):
            inbox.append(message)

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(Collect(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        # Flask-Mail suppresses sending in testing mode unless told otherwise.
        app = make_app(MAIL_SERVER="127.0.0.1", MAIL_PORT=port, MAIL_USE_TLS=False, MAIL_SUPPRESS_SEND=False)
        client = app.test_client()
        owner = gen_user()
        doctor_user, doctor = gen_doctor()
        response = client.post("/api/v1/appointments", headers=auth(owner), json={
            "doctor_id": str(doctor.id), "patient_id": str(gen_patient(owner).id), "start": iso(next_slot()),
            "type": "in_person"})
        assert response.status_code == 201
    finally:
        controller.stop()
    assert sorted(m["To"] for m in inbox) == sorted([owner.email, doctor_user.email])
    assert {m["Subject"] for m in inbox} == {"PAWMANITY: New appointment request"}
