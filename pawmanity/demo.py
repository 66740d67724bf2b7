"""Demonstration data for `flask demo load`: a veterinary clinic and a family practice, with doctors and their
hours, owners and their pets, and people with their own records; an admin; and something to look at straight away:
a video visit starting in a few minutes, with its consultation open and a few messages in it and its video session
ready, and a confirmed appointment coming up. Idempotent (a visit that is over is replaced by a fresh one); every
account signs in with DEMO_PASSWORD, and the one in DEMO_MFA with a TOTP code as well. It ends by printing where to
look and whom to sign in as.
"""

from datetime import date, timedelta

from sqlalchemy import select

from pawmanity.appointments import booking
from pawmanity.audit import trail
from pawmanity.care import patients
from pawmanity.care.models import Guardianship, Patient
from pawmanity.conversations import consultations, messaging, video
from pawmanity.core.database import utcnow
from pawmanity.core.extensions import db
from pawmanity.identity import accounts
from pawmanity.identity.actor import Actor
from pawmanity.identity.models import TotpFactor, User
from pawmanity.pharmacy import pharmacies, stock
from pawmanity.pharmacy.models import Pharmacy
from pawmanity.scheduling.models import Appointment, AvailabilityRule, DoctorProfile, DoctorSpecies
from pawmanity.vitals import devices, readings
from pawmanity.vitals.models import AlertRule
from pawmanity.webhooks import endpoints as webhook_endpoints
from pawmanity.webhooks.events import EVENT_TYPES
from pawmanity.webhooks.models import WebhookEndpoint

DEMO_PASSWORD = "pawmanity-demo-2026"
WEEKDAYS = range(0, 5)
ADMIN_EMAIL = "admin@pawmanity.example"

# email, name, role, doctor profile (specialty, species, timezone, hours) or None
DEMO_ACCOUNTS = (
    (ADMIN_EMAIL, "Ada Admin", "admin", None),
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
    # Pharmacists: ordinary accounts, members of a pharmacy's staff
    ("anna.pharmacist@example.com", "Anna Schulz", "patient", None),
    ("james.pharmacist@example.com", "James Park", "patient", None),
)

# Accounts that sign in with MFA, and their (published, demo-only) TOTP secrets: add one to an authenticator app, or
# `python -c "import pyotp; print(pyotp.TOTP('<secret>').now())"`.
DEMO_MFA = {"dr.haddad@riverside.example": "PAWMANITYDEMOTOTPSECRETFORDRHADD"}

# name, address, (lat, lon), staff email, {medicine index: (units, reorder point)}
DEMO_PHARMACIES = (
    ("Tierapotheke am Park", "Invalidenstrasse 42, 10115 Berlin", (52.5298, 13.3797), "anna.pharmacist@example.com",
     {0: (40, 10), 1: (25, 5)}),
    ("Apotheke Mitte", "Friedrichstrasse 120, 10117 Berlin", (52.5243, 13.3882), "anna.pharmacist@example.com",
     {0: (8, 10), 2: (60, 20)}),
    ("Riverside Pharmacy", "200 Riverside Dr, New York, NY 10025", (40.8005, -73.9713),
     "james.pharmacist@example.com", {0: (30, 10), 2: (100, 20)}),
)
DEMO_MEDICINES = (
    {"name": "Amoxicillin", "strength": "250 mg", "form": "tablet", "code": "J01CA04", "use": "both"},
    {"name": "Carprofen", "strength": "50 mg", "form": "chewable tablet", "code": "QM01AE91", "use": "veterinary"},
    {"name": "Ibuprofen", "strength": "200 mg", "form": "tablet", "code": "M01AE01", "use": "human"},
)
# species, measurement, direction, threshold, clear threshold, minimum minutes (resting adult ranges)
DEMO_ALERT_RULES = (
    ("dog", "heart_rate", "above", 160, 140, 5), ("dog", "heart_rate", "below", 50, 60, 5),
    ("dog", "body_temperature", "above", 39.7, 39.2, 10),
    ("cat", "heart_rate", "above", 220, 200, 5), ("cat", "body_temperature", "above", 39.7, 39.2, 10),
    ("human", "heart_rate", "above", 120, 100, 5), ("human", "spo2", "below", 92, 94, 2),
    ("human", "body_temperature", "above", 38.0, 37.5, 10),
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


# The live visit: Biscuit (Sam Lee's beagle) sees Dr. Okafor by video, starting a few minutes after loading.
VISIT = {"doctor": "dr.okafor@happypaws.example", "owner": "sam.owner@example.com", "patient": "Biscuit",
         "reason": "Demo: Biscuit keeps scratching his left ear", "lead_minutes": 5, "minutes": 30}
VISIT_MESSAGES = (
    ("owner", "Hello Dr. Okafor, Biscuit keeps scratching his left ear since Sunday."),
    ("doctor", "Thanks, Sam. Is the ear red, or does it smell? We can look at it together on the video call."),
    ("owner", "A bit red, no smell. I'll be on the call in a few minutes."),
)
# The appointment coming up: Rocket (Priya Nair's rabbit) with Dr. Okafor, the first free slot an hour from now.
UPCOMING = {"doctor": "dr.okafor@happypaws.example", "owner": "priya.owner@example.com", "patient": "Rocket",
            "reason": "Demo: Rocket's yearly check-up"}


def loaded_accounts():
    """The demo accounts present in this database, for the front page (empty when demo data is not loaded)."""
    emails = [email for email, *_ in DEMO_ACCOUNTS]
    found = db.session.scalars(select(User).where(User.email.in_(emails))).all()
    return sorted(found, key=lambda user: (user.role, user.email))  # addresses are encrypted: sorted here


def load(*, actor):
    lines = []
    for email, full_name, role, doctor in DEMO_ACCOUNTS:
        user = db.session.scalar(select(User).where(User.email == email))
        if user is not None:
            lines.append(f"exists   {role:8} {email}")
            continue
        if role == "admin":
            accounts.ensure_admin(email=email, password=DEMO_PASSWORD, full_name=full_name, actor=actor)
            lines.append(f"created  {role:8} {email}")
            continue
        user = accounts.register(email=email, password=DEMO_PASSWORD, full_name=full_name, role=role, actor=actor)
        if doctor:
            _add_doctor_profile(user, *doctor, actor=actor)
        if email in DEMO_MFA:
            db.session.add(TotpFactor(user_id=user.id, secret=DEMO_MFA[email], confirmed_at=utcnow()))
            db.session.commit()
        for data in DEMO_PATIENTS.get(email, ()):
            patients.create_patient(Actor(user_id=user.id, role=user.role, ip=actor.ip), dict(data))
        lines.append(f"created  {role:8} {email}")
    lines += _load_pharmacies(actor)
    lines += _load_vitals(actor)
    lines += _load_visit(actor)
    lines += _load_upcoming(actor)
    lines += _load_webhooks(actor)
    lines.append(f"demo password for every account: {DEMO_PASSWORD}")
    lines += [f"{email} signs in with MFA; its demo TOTP secret: {secret}" for email, secret in DEMO_MFA.items()]
    return lines


def where_to_look(public_url):
    """The lines `flask demo load` ends with: the pages to open and whom to sign in as."""
    return [
        "",
        "Try it:",
        f"  home         {public_url}/",
        f"  API docs     {public_url}/api/docs  (OpenAPI {public_url}/api/v1/openapi.json, "
        f"AsyncAPI {public_url}/api/v1/asyncapi.json)",
        f"  chat         {public_url}/chat   sign in as {VISIT['owner']} in one browser and {VISIT['doctor']} "
        "in another",
        f"  video call   {public_url}/video  the same two accounts; pick {VISIT['patient']}'s session",
        f"  admin        {ADMIN_EMAIL} (the admin API: users, doctors' verification, break-glass reads)",
        f"  password     {DEMO_PASSWORD}  (every demo account)",
    ]


def _user(email):
    return db.session.scalar(select(User).where(User.email == email))


def _as(user, actor):
    return Actor(user_id=user.id, role=user.role, ip=actor.ip)


def _scene(spec):
    doctor_user, owner = _user(spec["doctor"]), _user(spec["owner"])
    doctor = db.session.scalar(select(DoctorProfile).where(DoctorProfile.user_id == doctor_user.id))
    patient = db.session.scalar(select(Patient).join(Guardianship).where(Guardianship.user_id == owner.id,
                                                                         Patient.name == spec["patient"]))
    return doctor_user, doctor, owner, patient


def _load_visit(actor):
    """A video visit starting in a few minutes: confirmed, its video session open, its consultation open with a
    few messages. While one is still running a second load leaves it be; once it is over a fresh one is made."""
    doctor_user, doctor, owner, patient = _scene(VISIT)
    now = utcnow()
    current = db.session.scalar(select(Appointment).where(
        Appointment.patient_id == patient.id, Appointment.reason == VISIT["reason"], Appointment.end_at > now,
        Appointment.status.in_(("confirmed", "in_progress"))))
    if current is not None:
        return [f"exists   a video visit: {patient.name} with {doctor_user.full_name} (consultation and call open)"]
    start = now.replace(second=0, microsecond=0) + timedelta(minutes=VISIT["lead_minutes"])
    # Written directly, as a clinic's front desk would squeeze it in: the doctor's published hours may be over.
    appointment = Appointment(doctor_id=doctor.id, patient_id=patient.id, booked_by=owner.id, start_at=start,
                              end_at=start + timedelta(minutes=VISIT["minutes"]), type="video",
                              reason=VISIT["reason"], status="requested")
    db.session.add(appointment)
    db.session.flush()
    trail.record("appointment.book", actor, object_type="appointment", object_id=appointment.id,
                 detail={"demo": True})
    as_doctor, as_owner = _as(doctor_user, actor), _as(owner, actor)
    booking.advance(appointment, "doctor", as_doctor, "confirm")
    db.session.commit()
    video.create(as_doctor, appointment.id)
    consultation, _ = consultations.start(as_doctor, appointment.id)
    for number, (who, body) in enumerate(VISIT_MESSAGES, 1):
        messaging.post_message(as_owner if who == "owner" else as_doctor, consultation.id, body=body,
                               client_id=f"demo-{consultation.id.hex[:8]}-{number}", attachment_ids=[])
    return [f"created  a video visit at {start:%H:%M} UTC: {patient.name} with {doctor_user.full_name}; its "
            f"consultation is open with {len(VISIT_MESSAGES)} messages and its video session is ready"]


def _load_upcoming(actor):
    """A confirmed appointment coming up (the first free slot an hour from now), while there is none."""
    doctor_user, doctor, owner, patient = _scene(UPCOMING)
    now = utcnow()
    upcoming = db.session.scalar(select(Appointment).where(
        Appointment.patient_id == patient.id, Appointment.reason == UPCOMING["reason"], Appointment.start_at > now,
        Appointment.status == "confirmed"))
    if upcoming is not None:
        return [f"exists   a confirmed appointment: {patient.name} with {doctor_user.full_name}"]
    appointment = booking.book_earliest(_as(owner, actor), patient_id=patient.id, type="video", doctor_id=doctor.id,
                                        after=now + timedelta(hours=1), reason=UPCOMING["reason"])
    booking.transition(_as(doctor_user, actor), appointment.id, "confirm")
    return [f"created  a confirmed appointment on {appointment.start_at:%Y-%m-%d %H:%M} UTC: {patient.name} with "
            f"{doctor_user.full_name}"]


def _load_pharmacies(actor):
    admin = Actor(role="admin", ip=actor.ip)
    if db.session.scalar(select(Pharmacy.id).limit(1)) is not None:
        return ["exists   pharmacies and medicines"]
    medicines = [pharmacies.create_medicine(admin, dict(data)) for data in DEMO_MEDICINES]
    for number, (name, address, (latitude, longitude), staff_email, stocked) in enumerate(DEMO_PHARMACIES, 1):
        pharmacy = pharmacies.create_pharmacy(admin, {
            "name": name, "address": address, "latitude": latitude, "longitude": longitude,
            "phone": f"+44 20 7946 01{number:02d}", "email": f"counter{number}@pharmacy.example",
            "opening_hours": {day: [["08:00", "19:00"]] for day in ("mon", "tue", "wed", "thu", "fri")}})
        staff = db.session.scalar(select(User).where(User.email == staff_email))
        pharmacies.add_staff(admin, pharmacy.id, staff.id)
        pharmacist = Actor(user_id=staff.id, role=staff.role, ip=actor.ip)
        for index, (units, reorder_point) in stocked.items():
            medicine = medicines[index]
            pharmacies.configure_stock(pharmacist, pharmacy.id, medicine.id, reorder_point)
            pharmacies.add_movement(pharmacist, pharmacy.id, {
                "kind": "receive", "medicine_id": medicine.id, "lot_number": f"DEMO-{index}",
                "expires_on": utcnow().date() + timedelta(days=400), "quantity": units,
                "idempotency_key": f"demo-{pharmacy.id.hex[:8]}-{index}"})
    stock.expire_lots()
    return [f"created  {len(DEMO_PHARMACIES)} pharmacies, {len(DEMO_MEDICINES)} medicines"]


def _load_webhooks(actor):
    """A webhook endpoint for every event, switched off: its receiver is an example address. An admin points it at a
    real receiver (PATCH /webhooks/{id} with url and active) to see signed deliveries and the delivery log."""
    admin = db.session.scalar(select(User).where(User.email == ADMIN_EMAIL))
    if db.session.scalar(select(WebhookEndpoint.id).limit(1)) is not None:
        return ["exists   a webhook endpoint"]
    endpoint = webhook_endpoints.create(Actor(user_id=admin.id, role=admin.role, ip=actor.ip),
                                        url="https://hooks.clinic.example/pawmanity", events=list(EVENT_TYPES),
                                        description="Demo: every event; point it at your receiver to try it")
    endpoint.active = False
    db.session.commit()
    return [f"created  a webhook endpoint (off) for every event; its signing secret: {endpoint.secret}"]


def _load_vitals(actor):
    admin = Actor(role="admin", ip=actor.ip)
    if db.session.scalar(select(AlertRule.id).limit(1)) is not None:
        return ["exists   vitals alert rules and Biscuit's collar"]
    for species, measurement, direction, threshold, clear, minutes in DEMO_ALERT_RULES:
        db.session.add(AlertRule(species=species, measurement=measurement, direction=direction, threshold=threshold,
                                 clear_threshold=clear, min_duration_seconds=minutes * 60))
    trail.record("alert_rule.create", admin, object_type="alert_rule", detail={"demo": len(DEMO_ALERT_RULES)})
    db.session.commit()
    owner = db.session.scalar(select(User).where(User.email == "sam.owner@example.com"))
    biscuit = db.session.scalar(select(Patient).join(Guardianship).where(Guardianship.user_id == owner.id,
                                                                         Patient.name == "Biscuit"))
    guardian = Actor(user_id=owner.id, role=owner.role, ip=actor.ip)
    device, token = devices.register(guardian, biscuit.id, "Biscuit's collar")
    start = utcnow().replace(second=0, microsecond=0) - timedelta(hours=24)
    day = [{"sample_id": f"demo-{n}", "measurement": "heart_rate", "value": 80 + (n % 30), "unit": "/min",
            "taken_at": start + timedelta(minutes=n), "version": 1} for n in range(24 * 60)]
    for first in range(0, len(day), readings.MAX_BATCH):
        readings.ingest(readings.Source.of_device(device, ip=actor.ip), biscuit.id, day[first:first + 1000])
    return ["created  vitals alert rules; a day of Biscuit's heart rate from his collar",
            f"         the collar's device token (shown once): {token}"]


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
