"""The authenticated floor: the least an authenticated read can cost, to which the benchmarks compare PAWMANITY.

One route that verifies the same kind of access token as PAWMANITY (flask-jwt-extended, HS256, signed with the
same SECRET_KEY) and selects its user by primary key with SQLAlchemy (the ORM, psycopg 3, a pooled connection with
pre-ping, as PAWMANITY is configured), then answers a few of the user's fields. It is served exactly like PAWMANITY
(gunicorn, one gevent worker) by bench/harness.py, on the bench database, so that a figure divided by the floor's
tells how much PAWMANITY adds to the work any authenticated endpoint has to do:

    SECRET_KEY=... DATABASE_URL=postgresql://postgres@127.0.0.1:5432/pawmanity_bench \\
        .venv/bin/gunicorn -k gevent -w 1 -b 127.0.0.1:8002 --chdir bench floor_app:app
"""

import os
import uuid

from flask import Flask
from flask_jwt_extended import JWTManager, current_user, jwt_required
from sqlalchemy import Boolean, String, Text, Uuid, create_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, scoped_session, sessionmaker


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    # Stored encrypted (pawmanity/core/encryption): the floor selects the sealed value with the row but, holding no
    # field key, does not answer it.
    email_ciphertext: Mapped[str] = mapped_column(Text)
    full_name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16))
    active: Mapped[bool] = mapped_column(Boolean)


def engine_url(url):
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


app = Flask(__name__)
app.config.update(JWT_SECRET_KEY=os.environ["SECRET_KEY"], JWT_ALGORITHM="HS256", JWT_TOKEN_LOCATION=["headers"])
jwt = JWTManager(app)
engine = create_engine(engine_url(os.environ["DATABASE_URL"]), pool_pre_ping=True, pool_size=10, max_overflow=20)
Session = scoped_session(sessionmaker(engine, expire_on_commit=False))


@jwt.user_lookup_loader
def load_user(_header, claims):
    return Session.get(User, uuid.UUID(claims["sub"]))


@app.teardown_appcontext
def end_session(_error):
    Session.remove()


@app.get("/")
def health():
    return {"status": "ok"}


@app.get("/me")
@jwt_required()
def me():
    return {"id": str(current_user.id), "full_name": current_user.full_name, "role": current_user.role}
