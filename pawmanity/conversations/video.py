"""Video sessions for video appointments: who may join, when, with which ICE servers, and what happened.

Two providers, chosen per deployment (VIDEO_PROVIDER) and remembered per session:
- `webrtc`: media flows browser to browser; the server only signals. Joining takes a join token: short-lived, for one
  user, good once, redeemed at the /video namespace.
- `agora`: media flows through Agora's network. Joining gives an Agora RTC token (AccessToken2, see agora.py) for this
  session's channel and this participant's uid, expiring at the latest with the window; the client renews it through
  `renew`, which checks everything again.
Either is given only to the appointment's participants (its doctor and the patient's guardians, never admins) and only
inside the join window (by default 10 minutes before the start until the end). A participant who drops asks again and
rejoins; only the doctor, or the end of the window, ends the session. Room and channel names are random: no personal
data reaches the provider, and an Agora uid is a keyed hash of session and user, not the user's id.
"""

import base64
import hashlib
import hmac
import secrets
import uuid
from datetime import timedelta

from flask import current_app
from sqlalchemy import exists, select
from sqlalchemy.orm import selectinload

from pawmanity.appointments import booking
from pawmanity.audit import trail
from pawmanity.care.models import Guardianship
from pawmanity.conversations import agora
from pawmanity.conversations.models import VideoAttendance, VideoJoinToken, VideoSession
from pawmanity.core import live
from pawmanity.core.database import paginate, utcnow
from pawmanity.core.errors import Conflict, Forbidden, InvalidInput, NotFound, ServiceUnavailable, Unauthorized
from pawmanity.core.extensions import db
from pawmanity.scheduling.models import Appointment, DoctorProfile

VIDEO = "/video"


def webrtc_ice_servers(user_id, now):
    """STUN as configured; TURN with time-limited credentials the TURN REST way (HMAC-SHA1 of "expiry:user")."""
    config = current_app.config
    servers = [{"urls": list(config["VIDEO_STUN_URLS"])}] if config["VIDEO_STUN_URLS"] else []
    if config["VIDEO_TURN_URLS"] and config["VIDEO_TURN_SECRET"]:
        expiry = int((now + timedelta(seconds=config["VIDEO_TURN_TTL_SECONDS"])).timestamp())
        username = f"{expiry}:{user_id}"
        digest = hmac.new(config["VIDEO_TURN_SECRET"].encode(), username.encode(), hashlib.sha1).digest()
        servers.append({"urls": list(config["VIDEO_TURN_URLS"]), "username": username,
                        "credential": base64.b64encode(digest).decode()})
    return servers


def webrtc_grant(session, actor, now, closes):
    """A single-use join token for the signalling server, and the ICE servers."""
    token = secrets.token_urlsafe(32)
    expires_at = now + timedelta(seconds=current_app.config["VIDEO_JOIN_TOKEN_SECONDS"])
    db.session.add(VideoJoinToken(token_hash=_hash(token), session_id=session.id, user_id=actor.user_id,
                                  expires_at=expires_at))
    return {"join_token": token, "expires_at": expires_at, "room": session.room,
            "ice_servers": webrtc_ice_servers(actor.user_id, now)}


def agora_uid(session_id, user_id):
    """The participant's Agora uid: stable for one user in one session (a renewal keeps it), unlinkable to the
    account outside it, never 0 (which Agora reads as "any uid")."""
    key = current_app.config["SECRET_KEY"].encode()
    digest = hmac.new(key, f"agora-uid:{session_id}:{user_id}".encode(), hashlib.sha256).digest()
    return int.from_bytes(digest[:4], "big") % 0xFFFFFFFF + 1


def agora_grant(session, actor, now, closes):
    """An Agora RTC token for this session's channel and this participant's uid, as a publisher, expiring after
    AGORA_TOKEN_SECONDS or at the end of the window, whichever comes first."""
    config = current_app.config
    if not (config["AGORA_APP_ID"] and config["AGORA_APP_CERTIFICATE"]):
        raise ServiceUnavailable("The video provider is not configured.", code="video_provider_unconfigured")
    issued_at = int(now.timestamp())
    seconds = max(1, min(config["AGORA_TOKEN_SECONDS"], int((closes - now).total_seconds())))
    uid = agora_uid(session.id, actor.user_id)
    token = agora.rtc_token(config["AGORA_APP_ID"], config["AGORA_APP_CERTIFICATE"], session.room, uid,
                            token_seconds=seconds, issued_at=issued_at)
    expires_at = now.replace(microsecond=0) + timedelta(seconds=seconds)
    return {"expires_at": expires_at, "room": session.room,
            "agora": {"app_id": config["AGORA_APP_ID"], "channel": session.room, "uid": uid, "token": token,
                      "expires_at": expires_at}}


# Providers decide what a participant needs to connect, given the session, the participant, now and the window's end.
PROVIDERS = {"webrtc": webrtc_grant, "agora": agora_grant}
# Providers whose credentials expire during a call and are renewed (`renew`).
RENEWABLE = ("agora",)


def create(actor, appointment_id):
    appointment, relation = booking.visible_appointment(actor, appointment_id, lock=True)
    if relation not in ("doctor", "admin"):
        raise Forbidden("Only the appointment's doctor opens its video session.")
    if appointment.type != "video":
        raise Conflict("This is not a video appointment.", code="not_a_video_appointment")
    if appointment.status not in ("confirmed", "in_progress"):
        raise Conflict("Confirm the appointment first.", code="invalid_transition")
    existing = db.session.scalar(select(VideoSession).where(VideoSession.appointment_id == appointment.id))
    if existing is not None:
        return existing, False
    provider = current_app.config["VIDEO_PROVIDER"]
    if provider not in PROVIDERS:
        raise ServiceUnavailable("The video provider is not configured.", code="video_provider_unconfigured")
    session = VideoSession(appointment_id=appointment.id, provider=provider,
                           room=secrets.token_urlsafe(16), created_by=actor.user_id)
    db.session.add(session)
    db.session.flush()
    trail.record("video.create", actor, object_type="video_session", object_id=session.id)
    db.session.commit()
    return session, True


def join(actor, session_id):
    """What this participant needs to connect (the session's provider decides), inside the join window."""
    session, now, closes = _participant_in_window(actor, session_id)
    grant = PROVIDERS[session.provider](session, actor, now, closes)
    trail.record("video.join_token", actor, object_type="video_session", object_id=session.id,
                 detail={"provider": session.provider})
    db.session.commit()
    return grant


def renew(actor, session_id):
    """A fresh provider token during the call: every check of `join` is made again (still a participant, the
    session still open, still inside the window)."""
    session, now, closes = _participant_in_window(actor, session_id)
    if session.provider not in RENEWABLE:
        raise Conflict("This session's provider has nothing to renew; join again instead.",
                       code="renewal_not_supported")
    grant = PROVIDERS[session.provider](session, actor, now, closes)
    trail.record("video.renew_token", actor, object_type="video_session", object_id=session.id,
                 detail={"provider": session.provider})
    db.session.commit()
    return grant


def _participant_in_window(actor, session_id):
    """The session, now and the window's end, if the actor is a participant and the window is open. Admins are not
    participants."""
    session = visible(actor, session_id)
    if booking.relation_to(actor, session.appointment) == "admin":
        raise Forbidden("Admins do not join video calls; only the appointment's doctor and the patient's "
                        "guardians do.", code="not_a_participant")
    if session.status == "ended":
        raise Conflict("This video session has ended.", code="session_ended")
    now = utcnow()
    opens, closes = window(session)
    if not opens <= now < closes:
        raise Conflict(f"Joining opens at {opens.strftime('%Y-%m-%d %H:%M UTC')} and closes at the end of the "
                       f"appointment.", code="outside_join_window")
    return session, now, closes


def redeem(actor, session_id, token):
    """Spend a join token at the signalling server; the caller joins the call."""
    row = db.session.scalar(select(VideoJoinToken).where(VideoJoinToken.token_hash == _hash(token))
                            .with_for_update())
    now = utcnow()
    if row is None or row.session_id != session_id or row.user_id != actor.user_id:
        raise Unauthorized("This join token is not valid for you and this session.", code="invalid_join_token")
    if row.used_at is not None:
        raise Unauthorized("This join token has already been used; ask for a new one.", code="join_token_used")
    if row.expires_at <= now:
        raise Unauthorized("This join token has expired; ask for a new one.", code="join_token_expired")
    session = db.session.get(VideoSession, session_id)
    if session.status == "ended" or now >= window(session)[1]:
        raise Conflict("This video session has ended.", code="session_ended")
    row.used_at = now
    session.first_joined_at = session.first_joined_at or now
    db.session.add(VideoAttendance(session_id=session.id, user_id=actor.user_id, joined_at=now))
    db.session.commit()
    return session


def check_open(session_id):
    """Refuse signalling in a session that has ended (by its doctor, or by the end of the appointment)."""
    session = db.session.get(VideoSession, uuid.UUID(str(session_id)))
    if session is None or session.status == "ended" or utcnow() >= window(session)[1]:
        raise Conflict("This video session has ended.", code="session_ended")


def left(session_id, user_id):
    session_id, user_id = uuid.UUID(str(session_id)), uuid.UUID(str(user_id))
    open_visit = db.session.scalar(select(VideoAttendance).where(
        VideoAttendance.session_id == session_id, VideoAttendance.user_id == user_id,
        VideoAttendance.left_at.is_(None)).order_by(VideoAttendance.joined_at.desc()).limit(1))
    if open_visit is not None:
        open_visit.left_at = utcnow()
        db.session.commit()


def end(actor, session_id):
    session = visible(actor, session_id, lock=True)
    if not (actor.is_admin or session.appointment.doctor.user_id == actor.user_id):
        raise Forbidden("Only the doctor ends the video session.")
    if session.status == "ended":
        raise Conflict("This video session has already ended.", code="session_ended")
    _close(session, actor.user_id)
    trail.record("video.end", actor, object_type="video_session", object_id=session.id,
                 detail={"duration_seconds": session.duration_seconds})
    db.session.commit()
    return session


def end_expired(now=None):
    """Close sessions whose appointment has ended (the end of the window ends the call)."""
    now = now or utcnow()
    expired = db.session.scalars(select(VideoSession).join(Appointment).where(
        VideoSession.status == "open", Appointment.end_at <= now)).all()
    for session in expired:
        _close(session, None)
    db.session.commit()
    return len(expired)


def _close(session, user_id):
    now = utcnow()
    session.status, session.ended_at, session.ended_by = "ended", now, user_id
    for visit in db.session.scalars(select(VideoAttendance).where(VideoAttendance.session_id == session.id,
                                                                  VideoAttendance.left_at.is_(None))):
        visit.left_at = now
    live.emit_after_commit("ended", {"session_id": str(session.id)}, namespace=VIDEO, room=room_of(session.id))


def get(actor, session_id):
    return visible(actor, session_id)


def list_sessions(actor, *, page, per_page):
    query = select(VideoSession).join(Appointment).order_by(VideoSession.created_at.desc(), VideoSession.id).options(
        selectinload(VideoSession.appointment).selectinload(Appointment.patient),
        selectinload(VideoSession.appointment).selectinload(Appointment.doctor).selectinload(DoctorProfile.user))
    if not actor.is_admin:
        query = query.where(
            exists().where(DoctorProfile.id == Appointment.doctor_id, DoctorProfile.user_id == actor.user_id)
            | exists().where(Guardianship.patient_id == Appointment.patient_id, Guardianship.user_id == actor.user_id))
    return paginate(query, page=page, per_page=per_page)


def visible(actor, session_id, *, lock=False):
    query = select(VideoSession).where(VideoSession.id == session_id)
    if lock:
        query = query.with_for_update()
    session = db.session.scalar(query)
    if session is None or booking.relation_to(actor, session.appointment) is None:
        raise NotFound("No such video session.")
    return session


def window(session):
    appointment = session.appointment
    opens = appointment.start_at - timedelta(minutes=current_app.config["VIDEO_JOIN_OPENS_MINUTES"])
    return opens, appointment.end_at


def room_of(session_id):
    return f"video:{session_id}"


def check_signal(signal_type, data):
    if signal_type not in ("offer", "answer", "ice"):
        raise InvalidInput("Signal type must be offer, answer or ice.", errors={"type": ["Unknown signal type."]})
    if not isinstance(data, dict):
        raise InvalidInput("Signal data must be an object.", errors={"data": ["Must be an object."]})


def _hash(token):
    return hashlib.sha256(token.encode()).hexdigest()
