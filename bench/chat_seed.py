"""Set-up of bench/chat_bench.py, run by it in a subprocess with the server's environment (bench database,
SECRET_KEY): writes the rooms of the chat benchmark straight to the database through the app's models, and prints
them as JSON on stdout.

    python bench/chat_seed.py ROOMS SIZE [SIZE ...]

For each room: a verified doctor, a dog whose owner (and, when SIZE > 2, SIZE - 2 more guardians) takes part, and a
confirmed 30-minute video appointment that started 2 minutes ago, so that its doctor may open the consultation now.
Every account gets a sign-in session and its access token, signed with the server's SECRET_KEY. Nothing here talks to
the server; the appointments skip the availability and booking rules, as the tests' gen_appointment does.
"""

import json
import sys
import uuid
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repository, for `pawmanity`

from pawmanity import create_app  # noqa: E402
from pawmanity.care.models import Guardianship, Patient
from pawmanity.core.database import utcnow
from pawmanity.core.extensions import db  # noqa: E402
from pawmanity.identity import passwords, tokens  # noqa: E402
from pawmanity.identity.actor import Actor  # noqa: E402
from pawmanity.identity.models import User
from pawmanity.scheduling.models import Appointment, DoctorProfile, DoctorSpecies

PASSWORD = "bench passphrase 2026"
STARTED_MINUTES_AGO = 2
APPOINTMENT_MINUTES = 30


def seed(sizes):
    password_hash = passwords.hash_password(PASSWORD)  # one argon2id hash for every account
    start = utcnow() - timedelta(minutes=STARTED_MINUTES_AGO)
    rooms, users = [], []

    def account(role, email, full_name):
        user = User(id=uuid.uuid4(), email=email, full_name=full_name, role=role, password_hash=password_hash)
        db.session.add(user)
        users.append(user)
        return user

    for room, size in enumerate(sizes):
        doctor = account("doctor", f"chat-doctor{room}-bench@example.com", f"Doctor Chat {room}")
        profile = DoctorProfile(id=uuid.uuid4(), user_id=doctor.id, specialty="general_practice",
                                license_number=f"CHAT-{room:05d}", timezone="UTC", verified_at=utcnow(),
                                species=[DoctorSpecies(species="dog")])
        guardians = [account("patient", f"chat-guardian{room}-{n}-bench@example.com", f"Guardian Chat {room}-{n}")
                     for n in range(size - 1)]
        pet = Patient(id=uuid.uuid4(), name=f"Rex {room}", species="dog", sex="male")
        pet.guardianships = [Guardianship(user_id=user.id, relation="owner" if n == 0 else "family",
                                          is_primary=n == 0) for n, user in enumerate(guardians)]
        appointment = Appointment(id=uuid.uuid4(), doctor_id=profile.id, patient_id=pet.id, booked_by=guardians[0].id,
                                  start_at=start, end_at=start + timedelta(minutes=APPOINTMENT_MINUTES),
                                  type="video", status="confirmed", reason="chat benchmark")
        db.session.add_all([profile, pet])
        db.session.flush()  # the doctor profile and the patient before the appointment that refers to them
        db.session.add(appointment)
        rooms.append({"appointment_id": str(appointment.id), "members": [doctor, *guardians]})
    db.session.flush()

    pairs = {user.id: tokens.issue_session(user, Actor(ip="127.0.0.1")) for user in users}
    db.session.commit()
    return [{"appointment_id": room["appointment_id"],
             "members": [{"user_id": str(user.id), "email": user.email, "role": user.role,
                          "token": pairs[user.id]["access_token"]} for user in room["members"]]}
            for room in rooms]


def main(argv):
    if len(argv) < 2 or int(argv[0]) != len(argv) - 1 or any(int(size) < 2 for size in argv[1:]):
        sys.exit("usage: chat_seed.py ROOMS SIZE [SIZE ...]  (one SIZE >= 2 per room)")
    app = create_app()
    with app.app_context():
        rooms = seed([int(size) for size in argv[1:]])
        db.engine.dispose()
    print(json.dumps(rooms))


if __name__ == "__main__":
    main(sys.argv[1:])
