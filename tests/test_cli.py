"""`flask` commands."""

from sqlalchemy import func, select

from pawmanity.core.database import utcnow
from pawmanity.core.extensions import db
from pawmanity.demo import DEMO_ACCOUNTS, DEMO_PASSWORD
from pawmanity.identity.models import RefreshToken, RevokedToken, User


def test_create_admin_is_idempotent_and_reads_the_password_from_the_environment(app, client, monkeypatch):
    monkeypatch.setenv("PAWMANITY_ADMIN_PASSWORD", "root of all trust")
    runner = app.test_cli_runner()
    first = runner.invoke(args=["create-admin", "Root@Clinic.example"])
    second = runner.invoke(args=["create-admin", "root@clinic.example"])
    assert first.exit_code == 0 and "Created admin root@clinic.example" in first.output
    assert second.exit_code == 0 and "Already present" in second.output
    assert db.session.scalar(select(func.count()).select_from(User).where(User.role == "admin")) == 1
    login = client.post("/api/v1/auth/login", json={"email": "root@clinic.example", "password": "root of all trust"})
    assert login.status_code == 200


def test_create_admin_prompts_when_no_password_is_set(app, monkeypatch):
    monkeypatch.delenv("PAWMANITY_ADMIN_PASSWORD", raising=False)
    result = app.test_cli_runner().invoke(args=["create-admin", "a@clinic.example"],
                                          input="prompted passphrase\nprompted passphrase\n")
    assert result.exit_code == 0, result.output
    assert db.session.scalar(select(User.role).where(User.email == "a@clinic.example")) == "admin"


def test_create_admin_refuses_a_weak_password(app, monkeypatch):
    monkeypatch.setenv("PAWMANITY_ADMIN_PASSWORD", "password")
    result = app.test_cli_runner().invoke(args=["create-admin", "weak@clinic.example"])
    assert result.exit_code != 0
    assert db.session.scalar(select(func.count()).select_from(User)) == 0


def test_demo_load_creates_both_clinics_once(app, client):
    runner = app.test_cli_runner()
    assert runner.invoke(args=["demo", "load"]).exit_code == 0
    again = runner.invoke(args=["demo", "load"])
    assert again.exit_code == 0 and "created" not in again.output
    assert db.session.scalar(select(func.count()).select_from(User)) == len(DEMO_ACCOUNTS)
    assert client.get("/api/v1/doctors").get_json()["total"] == 4
    assert client.get("/api/v1/doctors?specialty=dermatology&species=dog").get_json()["total"] == 1


def test_demo_owner_books_the_earliest_dermatology_slot(app, client):
    app.test_cli_runner().invoke(args=["demo", "load"])
    tokens = client.post("/api/v1/auth/login", json={"email": "sam.owner@example.com",
                                                     "password": DEMO_PASSWORD}).get_json()
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}
    pets = {p["name"]: p for p in client.get("/api/v1/patients", headers=headers).get_json()["items"]}
    assert {"Biscuit", "Miso", "Sam Lee"} == set(pets)
    booked = client.post("/api/v1/appointments/earliest", headers=headers, json={
        "specialty": "dermatology", "patient_id": pets["Biscuit"]["id"], "type": "video"})
    assert booked.status_code == 201, booked.get_data(as_text=True)
    doctor = client.get(f"/api/v1/doctors/{booked.get_json()['doctor_id']}").get_json()
    assert doctor["full_name"] == "Dr. Elena Rivera"


def test_purge_drops_only_expired_tokens(app, gen_user, tokens_for):
    from datetime import timedelta

    from pawmanity.identity.tasks import purge_expired_tokens

    tokens_for(gen_user())
    long_ago = utcnow() - timedelta(days=90)
    db.session.add(RevokedToken(key="jti:old", expires_at=long_ago))
    db.session.add(RevokedToken(key="jti:live", expires_at=utcnow() + timedelta(minutes=5)))
    db.session.commit()
    # Runs the Celery task in-process (eager), as the embedded default does.
    result = purge_expired_tokens.delay().get()
    assert result == {"refresh_tokens": 0, "revoked_tokens": 1}
    assert db.session.scalars(select(RevokedToken.key)).all() == ["jti:live"]
    assert db.session.scalar(select(func.count()).select_from(RefreshToken)) == 1


def test_demo_load_refuses_a_production_configuration(make_app):
    app = make_app(REQUIRE_REAL_SECRETS=True)
    with app.app_context():
        result = app.test_cli_runner().invoke(args=["demo", "load"])
        assert result.exit_code != 0 and "production configuration" in result.output
        assert db.session.scalar(select(func.count()).select_from(User)) == 0


def test_demo_has_pharmacies_with_stock_and_a_collar_sending_vitals(app, client):
    app.test_cli_runner().invoke(args=["demo", "load"])
    token = client.post("/api/v1/auth/login", json={"email": "sam.owner@example.com",
                                                    "password": DEMO_PASSWORD}).get_json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    amoxicillin = client.get("/api/v1/medicines?q=amoxi", headers=headers).get_json()["items"][0]
    near_mitte = client.get(f"/api/v1/pharmacies?medicine={amoxicillin['id']}&near=52.5200,13.3880&radius_km=10",
                            headers=headers).get_json()
    assert [hit["name"] for hit in near_mitte["items"]] == ["Apotheke Mitte", "Tierapotheke am Park"]
    biscuit = next(p for p in client.get("/api/v1/patients", headers=headers).get_json()["items"]
                   if p["name"] == "Biscuit")
    from datetime import datetime, timedelta, timezone

    now = datetime.now(timezone.utc)
    window = f"from={(now - timedelta(days=2)):%Y-%m-%dT%H:%M:%SZ}&to={(now + timedelta(days=1)):%Y-%m-%dT%H:%M:%SZ}"
    series = client.get(f"/api/v1/vitals?patient_id={biscuit['id']}&measurement=heart_rate&{window}&bucket=1d",
                        headers=headers).get_json()
    assert sum(point["count"] for point in series["points"]) == 24 * 60


def test_demo_load_leaves_a_visit_to_look_at_and_says_where(app, client):
    from datetime import datetime, timedelta

    from pawmanity.conversations.models import Consultation, Message, VideoSession
    from pawmanity.demo import ADMIN_EMAIL, VISIT
    from pawmanity.scheduling.models import Appointment

    def sign_in(email):
        tokens = client.post("/api/v1/auth/login", json={"email": email, "password": DEMO_PASSWORD}).get_json()
        return {"Authorization": f"Bearer {tokens['access_token']}"}

    def counts():
        return [db.session.scalar(select(func.count()).select_from(model))
                for model in (User, Appointment, Consultation, Message, VideoSession)]

    result = app.test_cli_runner().invoke(args=["demo", "load"])
    assert result.exit_code == 0, result.output
    base = app.config["PUBLIC_URL"]
    for link in (f"{base}/\n", f"{base}/api/docs", f"{base}/chat", f"{base}/video", ADMIN_EMAIL, DEMO_PASSWORD,
                 VISIT["owner"], VISIT["doctor"]):
        assert link in result.output, link

    assert client.get("/api/v1/auth/me", headers=sign_in(ADMIN_EMAIL)).get_json()["role"] == "admin"
    now = utcnow()
    # A confirmed appointment coming up.
    priya = sign_in("priya.owner@example.com")
    upcoming = client.get("/api/v1/appointments?status=confirmed", headers=priya).get_json()["items"]
    assert len(upcoming) == 1
    assert now < datetime.fromisoformat(upcoming[0]["start"].replace("Z", "+00:00")) < now + timedelta(days=7)
    # The visit: its consultation open with messages, its video session ready to join, for both sides.
    for email in (VISIT["owner"], VISIT["doctor"]):
        headers = sign_in(email)
        [consultation] = client.get("/api/v1/consultations?active=true", headers=headers).get_json()["items"]
        assert (consultation["patient_name"], consultation["doctor_name"]) == ("Biscuit", "Dr. Chidi Okafor")
        messages = client.get(f"/api/v1/consultations/{consultation['id']}/messages", headers=headers).get_json()
        owner_id = client.get("/api/v1/auth/me", headers=sign_in(VISIT["owner"])).get_json()["id"]
        assert messages["total"] == 3
        assert {m["sender_id"] for m in messages["items"]} == {consultation["doctor_user_id"], owner_id}
        [call] = client.get("/api/v1/video-sessions", headers=headers).get_json()["items"]
        assert call["status"] == "open" and call["appointment_id"] == consultation["appointment_id"]
        starts = datetime.fromisoformat(call["starts_at"].replace("Z", "+00:00"))
        assert now < starts < now + timedelta(minutes=15)
        joined = client.post(f"/api/v1/video-sessions/{call['id']}/join", headers=headers)
        assert joined.status_code == 200, joined.get_data(as_text=True)

    # Idempotent: a second load adds nothing...
    before = counts()
    again = app.test_cli_runner().invoke(args=["demo", "load"])
    assert again.exit_code == 0 and "created" not in again.output and counts() == before
    # ...until the visit is over: then it makes a fresh one to look at.
    visit = db.session.scalar(select(Appointment).where(Appointment.reason == VISIT["reason"]))
    visit.start_at, visit.end_at = now - timedelta(hours=2), now - timedelta(hours=1)
    db.session.commit()
    later = app.test_cli_runner().invoke(args=["demo", "load"])
    assert "created  a video visit" in later.output
    assert counts()[1:] == [before[1] + 1, before[2] + 1, before[3] + 3, before[4] + 1]
