"""Video sessions: who may open and join them, single-use join tokens, TURN credentials, and signalling."""

import base64
import hashlib
import hmac
from datetime import timedelta

import pytest
from sqlalchemy import select

from pawmanity.conversations.models import VideoAttendance, VideoJoinToken
from pawmanity.core.database import utcnow
from pawmanity.core.extensions import db, socketio
from tests.support import assert_problem

SESSIONS = "/api/v1/video-sessions"


@pytest.fixture
def call(client, auth, gen_user, gen_patient, gen_doctor, gen_appointment):
    owner = gen_user()
    doctor_user, doctor = gen_doctor()
    appointment = gen_appointment(doctor, gen_patient(owner), utcnow() + timedelta(minutes=5), status="confirmed")
    created = client.post(SESSIONS, json={"appointment_id": str(appointment.id)}, headers=auth(doctor_user))
    assert created.status_code == 201, created.get_data(as_text=True)
    return {"owner": owner, "doctor_user": doctor_user, "appointment": appointment, "session": created.get_json()}


def video_client(app, tokens_for, user):
    return socketio.test_client(app, namespace="/video", auth={"token": tokens_for(user)["access_token"]})


def join_socket(client, auth, socket, call, user):
    grant = client.post(f"{SESSIONS}/{call['session']['id']}/join", headers=auth(user)).get_json()
    return socket.emit("join", {"session_id": call["session"]["id"], "join_token": grant["join_token"]},
                       namespace="/video", callback=True), grant


def events(socket, name):
    return [e["args"][0] if isinstance(e["args"], list) else e["args"]
            for e in socket.get_received("/video") if e["name"] == name]


class TestSessions:
    def test_only_the_doctor_opens_and_only_for_video(self, client, auth, gen_user, gen_patient, gen_doctor,
                                                      gen_appointment, call):
        again = client.post(SESSIONS, json={"appointment_id": str(call["appointment"].id)},
                            headers=auth(call["doctor_user"]))
        assert again.status_code == 200 and again.get_json()["id"] == call["session"]["id"]
        assert_problem(client.post(SESSIONS, json={"appointment_id": str(call["appointment"].id)},
                                   headers=auth(call["owner"])), 403)
        owner = gen_user()
        doctor_user, doctor = gen_doctor()
        chat = gen_appointment(doctor, gen_patient(owner), utcnow() + timedelta(hours=1), status="confirmed",
                               type="chat")
        assert_problem(client.post(SESSIONS, json={"appointment_id": str(chat.id)}, headers=auth(doctor_user)), 409,
                       "not_a_video_appointment")

    def test_join_window(self, client, auth, gen_user, gen_patient, gen_doctor, gen_appointment):
        owner = gen_user()
        doctor_user, doctor = gen_doctor()
        later = gen_appointment(doctor, gen_patient(owner), utcnow() + timedelta(hours=2), status="confirmed")
        session_id = client.post(SESSIONS, json={"appointment_id": str(later.id)},
                                 headers=auth(doctor_user)).get_json()["id"]
        assert_problem(client.post(f"{SESSIONS}/{session_id}/join", headers=auth(owner)), 409,
                       "outside_join_window")

    def test_strangers_see_nothing(self, client, auth, gen_user, call):
        stranger = gen_user()
        assert_problem(client.get(f"{SESSIONS}/{call['session']['id']}", headers=auth(stranger)), 404)
        assert_problem(client.post(f"{SESSIONS}/{call['session']['id']}/join", headers=auth(stranger)), 404)
        assert client.get(SESSIONS, headers=auth(stranger)).get_json()["total"] == 0

    def test_turn_credentials_follow_the_turn_rest_scheme(self, make_app, auth, call):
        client = make_app(VIDEO_TURN_URLS=("turn:turn.example:3478",), VIDEO_TURN_SECRET="s3cret",
                          VIDEO_STUN_URLS=("stun:stun.example:3478",)).test_client()
        grant = client.post(f"{SESSIONS}/{call['session']['id']}/join", headers=auth(call["owner"])).get_json()
        stun, turn = grant["ice_servers"]
        assert stun == {"urls": ["stun:stun.example:3478"]}
        expiry, user = turn["username"].split(":")
        assert user == str(call["owner"].id) and int(expiry) > utcnow().timestamp()
        expected = base64.b64encode(hmac.new(b"s3cret", turn["username"].encode(), hashlib.sha1).digest()).decode()
        assert turn["credential"] == expected

    def test_end_records_duration_and_participants(self, app, client, auth, tokens_for, call):
        socket = video_client(app, tokens_for, call["owner"])
        assert join_socket(client, auth, socket, call, call["owner"])[0]["ok"]
        assert_problem(client.post(f"{SESSIONS}/{call['session']['id']}/end", headers=auth(call["owner"])), 403)
        ended = client.post(f"{SESSIONS}/{call['session']['id']}/end", headers=auth(call["doctor_user"])).get_json()
        assert ended["status"] == "ended" and ended["duration_seconds"] is not None
        detail = client.get(f"{SESSIONS}/{call['session']['id']}", headers=auth(call["owner"])).get_json()
        assert [p["user_id"] for p in detail["participants"]] == [str(call["owner"].id)]
        assert detail["participants"][0]["left_at"] is not None
        assert events(socket, "ended") == [{"session_id": call["session"]["id"]}]
        assert_problem(client.post(f"{SESSIONS}/{call['session']['id']}/join", headers=auth(call["owner"])), 409,
                       "session_ended")


class TestSignalling:
    def test_signals_reach_the_other_participant_only(self, app, client, auth, tokens_for, call):
        doctor, owner = video_client(app, tokens_for, call["doctor_user"]), video_client(app, tokens_for, call["owner"])
        assert join_socket(client, auth, doctor, call, call["doctor_user"])[0]["ok"]
        assert join_socket(client, auth, owner, call, call["owner"])[0]["ok"]
        assert [e["user_id"] for e in events(doctor, "peer_joined")] == [str(call["owner"].id)]
        ack = doctor.emit("signal", {"session_id": call["session"]["id"], "type": "offer",
                                     "data": {"type": "offer", "sdp": "v=0"}}, namespace="/video", callback=True)
        assert ack == {"ok": True}
        assert [s["type"] for s in events(owner, "signal")] == ["offer"]
        assert events(doctor, "signal") == []
        owner.disconnect(namespace="/video")
        assert [e["user_id"] for e in events(doctor, "peer_left")] == [str(call["owner"].id)]

    def test_a_join_token_works_once_and_only_for_its_owner(self, app, client, auth, tokens_for, call, gen_user):
        socket = video_client(app, tokens_for, call["owner"])
        ack, grant = join_socket(client, auth, socket, call, call["owner"])
        assert ack["ok"]
        again = socket.emit("join", {"session_id": call["session"]["id"], "join_token": grant["join_token"]},
                            namespace="/video", callback=True)
        assert again["error"]["code"] == "join_token_used"
        thief = video_client(app, tokens_for, call["doctor_user"])
        fresh = client.post(f"{SESSIONS}/{call['session']['id']}/join", headers=auth(call["owner"])).get_json()
        stolen = thief.emit("join", {"session_id": call["session"]["id"], "join_token": fresh["join_token"]},
                            namespace="/video", callback=True)
        assert stolen["error"]["code"] == "invalid_join_token"

    def test_an_expired_join_token_is_refused(self, app, client, auth, tokens_for, call):
        grant = client.post(f"{SESSIONS}/{call['session']['id']}/join", headers=auth(call["owner"])).get_json()
        for row in db.session.scalars(select(VideoJoinToken)):
            row.expires_at = utcnow() - timedelta(seconds=1)
        db.session.commit()
        socket = video_client(app, tokens_for, call["owner"])
        ack = socket.emit("join", {"session_id": call["session"]["id"], "join_token": grant["join_token"]},
                          namespace="/video", callback=True)
        assert ack["error"]["code"] == "join_token_expired"

    def test_a_dropped_participant_rejoins(self, app, client, auth, tokens_for, call):
        first = video_client(app, tokens_for, call["owner"])
        join_socket(client, auth, first, call, call["owner"])
        first.disconnect(namespace="/video")
        second = video_client(app, tokens_for, call["owner"])
        assert join_socket(client, auth, second, call, call["owner"])[0]["ok"]
        visits = db.session.scalars(select(VideoAttendance).order_by(VideoAttendance.joined_at)).all()
        assert len(visits) == 2 and visits[0].left_at is not None and visits[1].left_at is None

    @pytest.mark.parametrize("payload", [
        "offer", None, {}, {"type": "offer"},
        {"session_id": "not-a-uuid", "type": "offer", "data": {}},
        {"session_id": "SESSION", "type": "hack", "data": {}},
        {"session_id": "SESSION", "type": "offer", "data": "v=0"},
    ])
    def test_malformed_signals_get_an_error_ack(self, app, client, auth, tokens_for, call, payload):
        socket = video_client(app, tokens_for, call["owner"])
        join_socket(client, auth, socket, call, call["owner"])
        if isinstance(payload, dict) and payload.get("session_id") == "SESSION":
            payload = {**payload, "session_id": call["session"]["id"]}
        ack = socket.emit("signal", payload, namespace="/video", callback=True)
        assert ack["error"]["status"] == 422 and socket.is_connected("/video")

    def test_signalling_into_a_session_you_did_not_join(self, app, client, auth, tokens_for, call, gen_user):
        outsider = video_client(app, tokens_for, gen_user())
        ack = outsider.emit("signal", {"session_id": call["session"]["id"], "type": "offer", "data": {}},
                            namespace="/video", callback=True)
        assert ack["error"]["code"] == "not_joined"


def test_admins_get_no_join_token(client, auth, gen_user, call):
    admin = gen_user(role="admin")
    assert_problem(client.post(f"{SESSIONS}/{call['session']['id']}/join", headers=auth(admin)), 403,
                   "not_a_participant")
    assert db.session.scalar(select(VideoJoinToken)) is None


def test_no_signalling_once_the_session_has_ended(app, client, auth, tokens_for, call):
    doctor, owner = video_client(app, tokens_for, call["doctor_user"]), video_client(app, tokens_for, call["owner"])
    assert join_socket(client, auth, doctor, call, call["doctor_user"])[0]["ok"]
    assert join_socket(client, auth, owner, call, call["owner"])[0]["ok"]
    assert client.post(f"{SESSIONS}/{call['session']['id']}/end", headers=auth(call["doctor_user"])).status_code == 200
    ack = owner.emit("signal", {"session_id": call["session"]["id"], "type": "offer",
                                "data": {"type": "offer", "sdp": "v=0"}}, namespace="/video", callback=True)
    assert ack["error"]["code"] == "session_ended"
    assert events(doctor, "signal") == []


def test_the_end_of_the_window_ends_the_session(app, client, auth, call):
    from pawmanity.conversations import video

    assert video.end_expired() == 0
    appointment = db.session.get(type(call["appointment"]), call["appointment"].id)
    result = app.test_cli_runner().invoke(args=["video", "end-expired"])
    assert result.exit_code == 0 and "ended 0" in result.output
    assert video.end_expired(now=appointment.end_at + timedelta(seconds=1)) == 1
    assert client.get(f"{SESSIONS}/{call['session']['id']}", headers=auth(call["owner"])).get_json()["status"] == \
        "ended"
