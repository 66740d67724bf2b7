"""Demonstration data for `flask demo load`: a veterinary clinic and a family practice, with doctors and their
hours, owners and their pets, and people with their own records. Idempotent; every account signs in with
DEMO_PASSWORD.
"""

from datetime import date

from sqlalchemy import select

from pawmanity.audit import trail
from pawmanity.care import patients
from pawmanity.core.database import utcnow
from pawmanity.core.extensions import db
from pawmanity.identity import accounts
from pawmanity.identity.actor import Actor
from pawmanity.identity.models import User
from pawmanity.scheduling.models import AvailabilityRule, DoctorProfile, DoctorSpecies

DEMO_PASSWORD = "pawmanity-demo-2026"
WEEKDAYS = range(0, 5)

# email, name, role, doctor profile (specialty, species, timezone, hours) or None
DEMO_ACCOUNTS = (
    # Happy Paws Veterinary Clinic, Berlin
    ("dr.rivera@happypaws.example", "Dr. Elena Rivera", "doctor",
     ("dermatology", ("dog", "cat", "rabbit"), "Europe/Berlin", ("09:00", "17:00"))),
    ("dr.okafor@happypaws.example", "Dr. Chidi Okafor", "doctor",
     ("general_practice", ("dog", "cat", "rabbit", "bird"), "Europe/Berlin", ("08:00", "16:00"))),
    ("sam.owner@example.com", "Sam Lee", "patient", None),
    ("priya.owner@example.com", "Priya Nair", "patient", None),
    # Riverside Family Practice, New York
    ("dr.chen@riverside.example", "Dr. Wei Chen", "doctor",
     ("general_practice", ("human",), "America/New_York", ("09:00", "17:00"))),
    ("dr.haddad@riverside.example", "Dr. Lina Haddad", "doctor",
     ("dermatology", ("human",), "America/New_York", ("10:00", "18:00"))),
    ("maria.patient@example.com", "Maria Gomez", "patient", None),
    ("tom.guardian@example.com", "Tom Becker", "patient", None),
)

# owner email -> patients they add
DEMO_PATIENTS = {
    "sam.owner@example.com": (
        {"name": "Biscuit", "species": "dog", "breed": "Beagle", "sex": "male_neutered",
         "date_of_birth": date(2021, 4, 3), "microchip_id": "985112003456789", "weight_kg": 12.4},
        {"name": "Miso", "species": "cat", "breed": "Domestic shorthair", "sex": "female_spayed",
         "date_of_birth": date(2019, 9, 15), "weight_kg": 4.1},
    ),
    "priya.owner@example.com": (
        {"name": "Rocket", "species": "rabbit", "breed": "Holland Lop", "sex": "male", "weight_kg": 1.8},
    ),
    "tom.guardian@example.com": (
        {"name": "Lea Becker", "species": "human", "sex": "female", "date_of_birth": date(2017, 6, 1),
         "relation": "guardian"},
    ),
}


def loaded_accounts():
    """The demo accounts present in this database, for the front page (empty when demo data is not loaded)."""
    emails = [email for email, *_ in DEMO_ACCOUNTS]
    return db.session.scalars(select(User).where(User.email.in_(emails)).order_by(User.role, User.email)).all()


def load(*, actor):
    lines = []
    for email, full_name, role, doctor in DEMO_ACCOUNTS:
        user = db.session.scalar(select(User).where(User.email == email))
        if user is not None:
            lines.append(f"exists   {role:8} {email}")
            continue
        user = accounts.register(email=email, password=DEMO_PASSWORD, full_name=full_name, role=role, actor=actor)
        if doctor:
            _add_doctor_profile(user, *doctor, actor=actor)
        for data in DEMO_PATIENTS.get(email, ()):
            patients.create_patient(Actor(user_id=user.id, role=user.role, ip=actor.ip), dict(data))
        lines.append(f"created  {role:8} {email}")
    lines.append(f"demo password for every account: {DEMO_PASSWORD}")
    return lines


def _add_doctor_profile(user, specialty, species, timezone, hours, *, actor):
    start, end = (int(clock[:2]) * 60 + int(clock[3:]) for clock in hours)
    profile = DoctorProfile(
        user_id=user.id, specialty=specialty, license_number=f"DEMO-{user.id.hex[:8].upper()}",
        bio=f"{user.full_name}, {specialty.replace('_', ' ')}.", timezone=timezone, slot_minutes=30,
        verified_at=utcnow(), species=[DoctorSpecies(species=name) for name in species],
        rules=[AvailabilityRule(weekday=day, start_minute=start, end_minute=end) for day in WEEKDAYS],
    )
    db.session.add(profile)
    db.session.flush()
    trail.record("doctor.verify", actor, object_type="doctor", object_id=profile.id, detail={"demo": True})
    db.session.commit()
