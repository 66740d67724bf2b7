"""The Agora video provider: AccessToken2 RTC tokens only for participants, inside the join window, for one channel and
one uid, with relative expiry, and a renewal that checks again.

Tokens are checked by decoding them here, independently of pawmanity.conversations.agora: the version, the zlib and
base64 layers, the HMAC-SHA256 signature under the App Certificate, and the signed channel, uid, privileges and
expiry. The builder itself is checked against the published test vectors of Agora's reference implementation.
"""

import base64
import hashlib
import hmac
import struct
import zlib
from datetime import timedelta

import pytest
from sqlalchemy import delete

from pawmanity.care.models import Guardianship
from pawmanity.conversations import agora
from pawmanity.core.database import utcnow
from pawmanity.core.extensions import db
from tests.support import assert_problem

SESSIONS = "/api/v1/video-sessions"
APP_ID = "0123456789abcdef0123456789abcdef"
CERTIFICATE = "fedcba9876543210fedcba9876543210"

# AgoraIO/Tools, DynamicKey/AgoraDynamicKey/python3/test/AccessToken2Test.py (test_service_rtc, test_service_rtc_uid_0)
REFERENCE = {
    "app_id": "970CA35de60c44645bbae8a215061b33", "certificate": "5CFd2fd1755d40ecb72977518be15d3b",
    "channel": "7d72365eb983485397e3e3f9d460bdda", "expire": 600, "salt": 1, "issued_at": 1111111,
}
REFERENCE_TOKENS = {
    2882341273: "007eJxTYBBbsMMnKq7p9Hf/HcIX5kce9b518kCiQgSr5Zrp4X1Tu6UUGCzNDZwdjU1TUs0Mkk1MzExMk5ISUy0SjQxNDcw"
                "Mk4yN3b8IMEQwMTAwMoAwBIL4CgzmKeZGxmamqUmWFsYmFqbGluapxqnGaZYpJmYGSSkpiVwMRhYWRsYmhkbmxgDCaiTj",
    0: "007eJxTYLhzZP08Lxa1Pg57+TcXb/3cZ3wi4V6kbpbOog0G2dOYk20UGCzNDZwdjU1TUs0Mkk1MzExMk5ISUy0SjQxNDcw"
       "Mk4yN3b8IMEQwMTAwMoAwBIL4CgzmKeZGxmamqUmWFsYmFqbGluapxqnGaZYpJmYGSSkpiQwMADacImo=",
}


class Reader:
    def __init__(self, data):
        self.data, self.at = data, 0

    def take(self, fmt):
        (value,) = struct.unpack_from(fmt, self.data, self.at)
        self.at += struct.calcsize(fmt)
        return value

    def bytes(self):
        length = self.take("<H")
        value = self.data[self.at:self.at + length]
        self.at += length
        return value


def decode(token, certificate):
    """Parse an AccessToken2 and verify its signature; return what it grants."""
    assert token.startswith("007")
    raw = zlib.decompress(base64.b64decode(token[3:], validate=True))
    reader = Reader(raw)
    signature = reader.bytes()
    content = raw[reader.at:]
    app_id = reader.bytes().decode()
    issued_at, expire, salt = reader.take("<I"), reader.take("<I"), reader.take("<I")
    services = {}
    for _ in range(reader.take("<H")):
        kind = reader.take("<H")
        assert kind == 1, "only the RTC service is expected"
        privileges = {reader.take("<H"): reader.take("<I") for _ in range(reader.take("<H"))}
        services[kind] = {"privileges": privileges, "channel": reader.bytes().decode(), "uid": reader.bytes().decode()}
    assert reader.at == len(raw), "trailing bytes"
    key = hmac.new(struct.pack("<I", issued_at), certificate.encode(), hashlib.sha256).digest()
    key = hmac.new(struct.pack("<I", salt), key, hashlib.sha256).digest()
    valid = hmac.compare_digest(hmac.new(key, content, hashlib.sha256).digest(), signature)
    return {"valid": valid, "app_id": app_id, "issued_at": issued_at, "expire": expire, "rtc": services[1]}


@pytest.mark.parametrize("uid", sorted(REFERENCE_TOKENS))
def test_builder_matches_the_reference_test_vectors(uid):
    r = REFERENCE
    token = agora.rtc_token(r["app_id"], r["certificate"], r["channel"], uid, token_seconds=r["expire"],
                            privileges=(agora.JOIN_CHANNEL,), issued_at=r["issued_at"], salt=r["salt"])
    assert token == REFERENCE_TOKENS[uid]
    decoded = decode(token, r["certificate"])
    assert decoded["valid"] and decoded["rtc"]["uid"] == (str(uid) if uid else "")
    assert not decode(token, "0" * 32)["valid"]


@pytest.fixture
def agora_app(make_app):
    return make_app(VIDEO_PROVIDER="agora", AGORA_APP_ID=APP_ID, AGORA_APP_CERTIFICATE=CERTIFICATE,
                    AGORA_TOKEN_SECONDS=600)


@pytest.fixture
def agora_call(agora_app, auth, gen_user, gen_patient, gen_doctor, gen_appointment):
    client = agora_app.test_client()
    owner = gen_user(full_name="Ottilie Guardian")
    doctor_user, doctor = gen_doctor()
    patient = gen_patient(owner, name="Rex Privatename")
    appointment = gen_appointment(doctor, patient, utcnow() + timedelta(minutes=5), status="confirmed")
    created = client.post(SESSIONS, json={"appointment_id": str(appointment.id)}, headers=auth(doctor_user))
    assert created.status_code == 201, created.get_data(as_text=True)
    return {"client": client, "owner": owner, "doctor_user": doctor_user, "patient": patient,
            "appointment": appointment, "session": created.get_json()}


def grant_for(call, auth, user, action="join"):
    return call["client"].post(f"{SESSIONS}/{call['session']['id']}/{action}", headers=auth(user))


def test_participants_get_a_token_for_one_channel_and_one_uid(auth, agora_call):
    session = agora_call["session"]
    assert session["provider"] == "agora"
    before = int(utcnow().timestamp())
    answer = grant_for(agora_call, auth, agora_call["owner"])
    assert answer.status_code == 200, answer.get_data(as_text=True)
    grant = answer.get_json()
    assert "join_token" not in grant and "ice_servers" not in grant
    given = grant["agora"]
    decoded = decode(given["token"], CERTIFICATE)
    assert decoded["valid"]
    assert decoded["app_id"] == APP_ID == given["app_id"]
    assert decoded["rtc"]["channel"] == given["channel"] == session["room"]
    assert decoded["rtc"]["uid"] == str(given["uid"]) and 0 < given["uid"] < 2 ** 32
    # Relative expiry: seconds after the issue time, the configured 600 (the window lasts 35 minutes more).
    assert before - 1 <= decoded["issued_at"] <= int(utcnow().timestamp())
    assert decoded["expire"] == 600
    assert decoded["rtc"]["privileges"] == {agora.JOIN_CHANNEL: 600, agora.PUBLISH_AUDIO: 600,
                                            agora.PUBLISH_VIDEO: 600, agora.PUBLISH_DATA: 600}
    assert given["expires_at"] == grant["expires_at"]
    assert not decode(given["token"], "0" * 32)["valid"]

    doctor = grant_for(agora_call, auth, agora_call["doctor_user"]).get_json()["agora"]
    assert decode(doctor["token"], CERTIFICATE)["rtc"]["channel"] == given["channel"]
    assert doctor["uid"] != given["uid"]


def test_channel_and_uid_carry_no_personal_data(auth, agora_call):
    given = grant_for(agora_call, auth, agora_call["owner"]).get_json()["agora"]
    personal = [agora_call["owner"].email, agora_call["owner"].full_name, agora_call["patient"].name,
                str(agora_call["owner"].id), agora_call["owner"].id.hex, str(agora_call["patient"].id),
                str(agora_call["appointment"].id), agora_call["session"]["id"]]
    for value in personal:
        assert value.lower() not in given["channel"].lower()
    assert str(given["uid"]) not in str(agora_call["owner"].id.int)


def test_renewal_keeps_channel_and_uid_and_checks_again(auth, agora_call):
    first = grant_for(agora_call, auth, agora_call["owner"]).get_json()["agora"]
    renewed = grant_for(agora_call, auth, agora_call["owner"], "renew")
    assert renewed.status_code == 200, renewed.get_data(as_text=True)
    second = renewed.get_json()["agora"]
    assert decode(second["token"], CERTIFICATE)["valid"]
    assert (second["channel"], second["uid"]) == (first["channel"], first["uid"])
    assert second["token"] != first["token"]  # a new salt (and issue time)

    # No longer a guardian: the renewal is refused, as a join would be.
    db.session.execute(delete(Guardianship).where(Guardianship.user_id == agora_call["owner"].id))
    db.session.commit()
    assert_problem(grant_for(agora_call, auth, agora_call["owner"], "renew"), 404)

    # The doctor ends the call: no more renewals.
    assert agora_call["client"].post(f"{SESSIONS}/{agora_call['session']['id']}/end",
                                     headers=auth(agora_call["doctor_user"])).status_code == 200
    assert_problem(grant_for(agora_call, auth, agora_call["doctor_user"], "renew"), 409, "session_ended")


def test_only_participants_inside_the_window(auth, gen_user, agora_call,
                                             gen_patient, gen_doctor, gen_appointment):
    client = agora_call["client"]
    assert_problem(grant_for(agora_call, auth, gen_user()), 404)
    assert_problem(grant_for(agora_call, auth, gen_user(), "renew"), 404)
    assert_problem(grant_for(agora_call, auth, gen_user(role="admin")), 403, "not_a_participant")
    assert_problem(grant_for(agora_call, auth, gen_user(role="admin"), "renew"), 403, "not_a_participant")

    owner = gen_user()
    doctor_user, doctor = gen_doctor()
    later = gen_appointment(doctor, gen_patient(owner), utcnow() + timedelta(hours=2), status="confirmed")
    session_id = client.post(SESSIONS, json={"appointment_id": str(later.id)},
                             headers=auth(doctor_user)).get_json()["id"]
    for action in ("join", "renew"):
        assert_problem(client.post(f"{SESSIONS}/{session_id}/{action}", headers=auth(owner)), 409,
                       "outside_join_window")


def test_a_token_never_outlives_the_window(auth, agora_app, gen_user, gen_patient, gen_doctor, gen_appointment):
    client = agora_app.test_client()
    owner = gen_user()
    doctor_user, doctor = gen_doctor()
    # Started 28 minutes ago, ends in 2: the token lasts at most the 2 minutes left, not the configured 10.
    appointment = gen_appointment(doctor, gen_patient(owner), utcnow() - timedelta(minutes=28), status="confirmed")
    session_id = client.post(SESSIONS, json={"appointment_id": str(appointment.id)},
                             headers=auth(doctor_user)).get_json()["id"]
    for action in ("join", "renew"):
        decoded = decode(client.post(f"{SESSIONS}/{session_id}/{action}", headers=auth(owner))
                         .get_json()["agora"]["token"], CERTIFICATE)
        assert 100 <= decoded["expire"] <= 120
        assert set(decoded["rtc"]["privileges"].values()) == {decoded["expire"]}


def test_webrtc_sessions_have_nothing_to_renew(client, auth, gen_user, gen_patient, gen_doctor, gen_appointment):
    owner = gen_user()
    doctor_user, doctor = gen_doctor()
    appointment = gen_appointment(doctor, gen_patient(owner), utcnow() + timedelta(minutes=5), status="confirmed")
    session = client.post(SESSIONS, json={"appointment_id": str(appointment.id)}, headers=auth(doctor_user)).get_json()
    assert session["provider"] == "webrtc"
    assert_problem(client.post(f"{SESSIONS}/{session['id']}/renew", headers=auth(owner)), 409,
                   "renewal_not_supported")


def test_agora_without_credentials_is_a_503(make_app, auth, gen_user, gen_patient, gen_doctor, gen_appointment):
    client = make_app(VIDEO_PROVIDER="agora").test_client()
    owner = gen_user()
    doctor_user, doctor = gen_doctor()
    appointment = gen_appointment(doctor, gen_patient(owner), utcnow() + timedelta(minutes=5), status="confirmed")
    session = client.post(SESSIONS, json={"appointment_id": str(appointment.id)}, headers=auth(doctor_user)).get_json()
    assert_problem(client.post(f"{SESSIONS}/{session['id']}/join", headers=auth(owner)), 503,
                   "video_provider_unconfigured")
