"""Demonstration data: two clinics' worth of accounts, loaded by `flask demo load`.

Patients, pets and schedules join this data set as their plugins arrive; every account here signs in with
DEMO_PASSWORD.
"""

from sqlalchemy import select

from pawmanity.extensions import db
from pawmanity.models import User
from pawmanity.services import accounts

DEMO_PASSWORD = "pawmanity-demo-2026"

DEMO_ACCOUNTS = (
    # Happy Paws Veterinary Clinic
    ("dr.rivera@happypaws.example", "Dr. Elena Rivera", "doctor"),
    ("dr.okafor@happypaws.example", "Dr. Chidi Okafor", "doctor"),
    ("sam.owner@example.com", "Sam Lee (owner of Biscuit and Miso)", "patient"),
    ("priya.owner@example.com", "Priya Nair (owner of Rocket)", "patient"),
    # Riverside Family Practice
    ("dr.chen@riverside.example", "Dr. Wei Chen", "doctor"),
    ("dr.haddad@riverside.example", "Dr. Lina Haddad", "doctor"),
    ("maria.patient@example.com", "Maria Gomez", "patient"),
    ("tom.guardian@example.com", "Tom Becker (guardian of Lea)", "patient"),
)


def load(*, actor):
    lines = []
    for email, full_name, role in DEMO_ACCOUNTS:
        if db.session.scalar(select(User.id).where(User.email == email)) is not None:
            lines.append(f"exists   {role:8} {email}")
            continue
        accounts.register(email=email, password=DEMO_PASSWORD, full_name=full_name, role=role, actor=actor)
        lines.append(f"created  {role:8} {email}")
    lines.append(f"demo password for every account: {DEMO_PASSWORD}")
    return lines
