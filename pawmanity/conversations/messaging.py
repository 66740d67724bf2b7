"""Consultation chat: one message store for REST and Socket.IO.

A message is committed before anyone hears of it; the sender's client_id makes a retried send store once; messages
are numbered under a lock on the consultation, so their order is the commit order and `?after=` never skips one.
"""

import functools
from datetime import timedelta

from flask import current_app
from sqlalchemy import bindparam, case, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.attributes import set_committed_value

from pawmanity.audit import trail
from pawmanity.care.models import Upload
from pawmanity.conversations import consultations
from pawmanity.conversations.models import Consultation, Message, ReadReceipt
from pawmanity.core import live, ratelimits
from pawmanity.core.database import dialect_name, paginate, upsert_into, utcnow
from pawmanity.core.errors import Conflict, DomainError, InvalidInput, NotFound
from pawmanity.core.extensions import db
from pawmanity.notifications.notifier import notify


def post_message(actor, consultation_id, *, body, client_id, attachment_ids=(), skip_sid=None):
    """Store a message (or find the one already stored under this client_id). Returns (message, created)."""
    consultation, participants = consultations.visible_with_participants(actor, consultation_id)
    try:
        message = _store(actor, consultation, body=body, client_id=client_id, attachment_ids=attachment_ids)
    except (DomainError, IntegrityError):
        # A retried send is the common case of a refusal worth a second look: the same client_id stored before
        # (perhaps on another connection, racing this one), whether or not the consultation has ended since.
        db.session.rollback()
        stored = _by_client_id(consultation_id, actor.user_id, client_id)
        if stored is None:
            raise
        return stored, False
    _advance_receipt(consultation.id, actor.user_id, message.seq)
    live.emit_to_users("message", serialize(message), participants, namespace=live.CHAT, skip_sid=skip_sid)
    db.session.commit()
    return message, True


def _store(actor, consultation, *, body, client_id, attachment_ids):
    if not consultation.active:
        raise Conflict("This consultation has ended; it takes no new messages.", code="consultation_closed")
    body = _clean_body(body)
    attachment_ids = _check_attachments(consultation, attachment_ids)
    ratelimits.spend("chat_message", actor.user_id)
    seq = db.session.scalar(_TAKE_NEXT_SEQ, {"consultation_id": consultation.id})
    if seq is None:  # ended while this message was on its way
        raise Conflict("This consultation has ended; it takes no new messages.", code="consultation_closed")
    set_committed_value(consultation, "message_count", seq)
    message = Message(consultation_id=consultation.id, seq=seq, sender_id=actor.user_id, client_id=client_id,
                      body=body, attachment_ids=attachment_ids or None)
    db.session.add(message)
    db.session.flush()  # a client_id this sender used before fails here, as an IntegrityError
    return message


# The next number, taken with the row lock that the UPDATE holds until commit: nobody else takes a number in
# between, so numbers are committed in order and `?after=` never skips one. No number for an ended consultation.
_consultations = Consultation.__table__
_TAKE_NEXT_SEQ = (
    update(_consultations)
    .where(_consultations.c.id == bindparam("consultation_id"), _consultations.c.ended_at.is_(None))
    .values(message_count=_consultations.c.message_count + 1)
    .returning(_consultations.c.message_count))


def list_messages(actor, consultation_id, *, after=None, page=1, per_page=100):
    consultation = consultations.visible(actor, consultation_id)
    query = select(Message).where(Message.consultation_id == consultation.id).order_by(Message.seq)
    if after is not None:
        anchor = db.session.scalar(select(Message.seq).where(Message.id == after,
                                                             Message.consultation_id == consultation.id))
        if anchor is None:
            raise NotFound("`after` names no message of this consultation.", code="unknown_message")
        query = query.where(Message.seq > anchor)
    listed = paginate(query, page=page, per_page=per_page)
    trail.record("message.list", actor, object_type="consultation", object_id=consultation.id,
                 detail={"ids": [str(message.id) for message in listed["items"]]})
    db.session.commit()
    return listed


def mark_read(actor, consultation_id, message_id, *, skip_sid=None):
    """Read up to and including `message_id`; the others in the room hear of it."""
    consultation, participants = consultations.visible_with_participants(actor, consultation_id)
    seq = db.session.scalar(select(Message.seq).where(Message.id == message_id,
                                                      Message.consultation_id == consultation.id))
    if seq is None:
        raise NotFound("No such message in this consultation.", code="unknown_message")
    _advance_receipt(consultation.id, actor.user_id, seq)
    live.emit_to_users("read", {"consultation_id": str(consultation.id), "user_id": str(actor.user_id),
                                "message_id": str(message_id), "seq": seq},
                       participants, namespace=live.CHAT, skip_sid=skip_sid)
    db.session.commit()
    return seq


def send_digests(now=None):
    """One e-mail per participant and consultation for messages left unread past the delay, never repeated."""
    now = now or utcnow()
    delay = timedelta(minutes=current_app.config["MESSAGE_DIGEST_DELAY_MINUTES"])
    seen_upto = case((ReadReceipt.last_read_seq > ReadReceipt.emailed_seq, ReadReceipt.last_read_seq),
                     else_=ReadReceipt.emailed_seq)
    candidates = db.session.execute(
        select(ReadReceipt, Consultation).join(Consultation, Consultation.id == ReadReceipt.consultation_id)
        .where(Consultation.message_count > seen_upto)
    ).all()
    sent = 0
    for receipt, consultation in candidates:
        if not consultations.is_participant(receipt.user_id, consultation):
            continue  # a guardian removed since: no more news of this consultation
        seen = max(receipt.last_read_seq, receipt.emailed_seq)
        unread = db.session.execute(
            select(func.count(), func.min(Message.created_at), func.max(Message.seq))
            .where(Message.consultation_id == consultation.id, Message.seq > seen,
                   Message.sender_id != receipt.user_id)).one()
        count, oldest, last_seq = unread
        if not count or oldest > now - delay:
            continue
        # Claim the digest: only the worker whose UPDATE matches sends it.
        claimed = db.session.execute(update(ReadReceipt).where(
            ReadReceipt.consultation_id == receipt.consultation_id, ReadReceipt.user_id == receipt.user_id,
            ReadReceipt.emailed_seq == receipt.emailed_seq).values(emailed_seq=last_seq)).rowcount
        if not claimed:
            continue
        doctor_name = consultation.doctor.user.full_name
        notify([receipt.user_id], "message.digest", title=f"{count} unread message{'s' if count > 1 else ''}",
               body=f"You have {count} unread message{'s' if count > 1 else ''} in your consultation with "
                    f"{doctor_name if receipt.user_id != consultation.doctor.user_id else 'a patient'}. "
                    f"Sign in to PAWMANITY to read {'them' if count > 1 else 'it'}.",
               data={"consultation_id": str(consultation.id)})
        db.session.commit()
        sent += 1
    return sent


def serialize(message):
    return {"id": str(message.id), "consultation_id": str(message.consultation_id), "seq": message.seq,
            "sender_id": str(message.sender_id), "client_id": message.client_id, "body": message.body,
            "attachment_ids": message.attachment_ids or [],
            "created_at": message.created_at.isoformat().replace("+00:00", "Z")}


def _by_client_id(consultation_id, sender_id, client_id):
    return db.session.scalar(select(Message).where(Message.consultation_id == consultation_id,
                                                   Message.sender_id == sender_id, Message.client_id == client_id))


def _advance_receipt(consultation_id, user_id, seq):
    """Move the reader's mark forward (never back), in one statement; create it for a newcomer."""
    db.session.execute(_advance_receipt_statement(dialect_name()),
                       {"consultation_id": consultation_id, "user_id": user_id, "last_read_seq": seq,
                        "updated_at": utcnow()})


@functools.cache
def _advance_receipt_statement(dialect):
    # Built once per dialect: every chat message runs it, and building its `excluded` alias cost more than sending it.
    receipts = ReadReceipt.__table__
    upsert = upsert_into(receipts, dialect)
    return upsert.on_conflict_do_update(
        index_elements=[receipts.c.consultation_id, receipts.c.user_id],
        set_={"last_read_seq": upsert.excluded.last_read_seq, "updated_at": upsert.excluded.updated_at},
        where=receipts.c.last_read_seq < upsert.excluded.last_read_seq)


def _check_attachments(consultation, attachment_ids):
    """Attachments must be live uploads of this consultation's patient (which every participant may see)."""
    wanted = list(dict.fromkeys(attachment_ids))
    if not wanted:
        return []
    found = set(db.session.scalars(select(Upload.id).where(
        Upload.id.in_(wanted), Upload.patient_id == consultation.patient_id, Upload.deleted_at.is_(None))))
    unknown = [str(upload_id) for upload_id in wanted if upload_id not in found]
    if unknown:
        raise InvalidInput("Attach only files uploaded for this patient.",
                           errors={"attachment_ids": [f"No such upload for this patient: {u}" for u in unknown]})
    return [str(upload_id) for upload_id in wanted]


def _clean_body(body):
    if not isinstance(body, str):
        raise InvalidInput("The message must be text.", errors={"body": ["Must be a string."]})
    if "\x00" in body:
        raise InvalidInput("The message contains a NUL character.", errors={"body": ["Must not contain NUL."]})
    body = body.strip()
    limit = current_app.config["CHAT_MESSAGE_MAX_CHARS"]
    if not body:
        raise InvalidInput("The message is empty.", errors={"body": ["Must not be empty."]})
    if len(body) > limit:
        raise InvalidInput("The message is too long.", errors={"body": [f"At most {limit} characters."]})
    return body

