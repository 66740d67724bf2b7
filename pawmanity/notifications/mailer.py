"""Outgoing e-mail: SMTP through Flask-Mail when MAIL_SERVER is set, else .eml files in a local outbox folder."""

import uuid
from pathlib import Path

from flask import current_app
from flask_mail import Message

from pawmanity.core.extensions import mail


def send_mail(*, to, subject, body):
    message = Message(subject=subject, recipients=[to], body=body)
    if current_app.config.get("MAIL_SERVER"):
        mail.send(message)
        return None
    outbox = Path(current_app.config["MAIL_OUTBOX_DIR"])
    outbox.mkdir(parents=True, exist_ok=True)
    path = outbox / f"{uuid.uuid4()}.eml"
    path.write_bytes(message.as_bytes())
    return path
