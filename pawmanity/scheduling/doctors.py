"""Doctor profiles, the public directory, weekly availability and time off."""

from datetime import timedelta

from sqlalchemy import exists, select
from sqlalchemy.orm import contains_eager, joinedload

from pawmanity.audit import trail
from pawmanity.core.database import paginate, utcnow
from pawmanity.core.errors import Conflict, Forbidden, InvalidInput, NotFound
from pawmanity.core.extensions import db
from pawmanity.identity.accounts import check_timezone
from pawmanity.identity.models import User
from pawmanity.notifications.notifier import notify
from pawmanity.scheduling import availability
from pawmanity.scheduling.models import (
    ACTIVE_STATUSES,
    Appointment,
    AvailabilityRule,
    DoctorProfile,
    DoctorSpecies,
    TimeOff,
)

MAX_SLOT_RANGE = timedelta(days=31)


def own_profile(actor):
    profile = db.session.scalar(select(DoctorProfile).where(DoctorProfile.user_id == actor.user_id))
    if profile is None:
        raise NotFound("Create your doctor profile first (PUT /doctors/me).", code="no_doctor_profile")
    return profile


def profile_id_for(user):
    if user.role != "doctor":
        return None
    return db.session.scalar(select(DoctorProfile.id).where(DoctorProfile.user_id == user.id))


def upsert_profile(actor, data):
    """Create or replace the caller's profile. A new licence number, specialty or species treated needs verifying
    again (the name, on the account, likewise: see accounts.update_profile)."""
    check_timezone(data["timezone"])
    profile = db.session.scalar(select(DoctorProfile).where(DoctorProfile.user_id == actor.user_id))
    created = profile is None
    if created:
        profile = DoctorProfile(user_id=actor.user_id)
        db.session.add(profile)
    species = sorted(set(data.pop("species_treated")))
    data["specialty"] = normalize_specialty(data["specialty"])
    changed = [] if created else [name for name, old, new in (
        ("license_number", profile.license_number, data["license_number"]),
        ("specialty", profile.specialty, data["specialty"]),
        ("species_treated", profile.species_treated, species)) if old != new]
    held = bool(changed) and profile.hold_for_review()
    for field, value in data.items():
        setattr(profile, field, value)
    profile.species = [DoctorSpecies(species=name) for name in species]
    db.session.flush()
    trail.record("doctor.profile." + ("create" if created else "update"), actor, object_type="doctor",
                 object_id=profile.id, detail={"held_for_review": changed} if held else None)
    db.session.commit()
    return profile, created


def set_availability(actor, *, rules, slot_minutes, buffer_minutes):
    profile = own_profile(actor)
    lock_calendar(profile.id)
    windows = sorted((rule["weekday"], rule["start"], rule["end"]) for rule in rules)
    for weekday, start, end in windows:
        if start >= end:
            raise InvalidInput("A window must end after it starts.",
                               errors={"rules": [f"weekday {weekday}: {_hhmm(start)} is not before {_hhmm(end)}"]})
    for (day_a, _, end_a), (day_b, start_b, _) in zip(windows, windows[1:]):
        if day_a == day_b and start_b < end_a:
            raise InvalidInput("Windows on the same day overlap.",
                               errors={"rules": [f"weekday {day_a}: windows overlap at {_hhmm(start_b)}"]})
    profile.rules = [AvailabilityRule(weekday=day, start_minute=start, end_minute=end) for day, start, end in windows]
    profile.slot_minutes, profile.buffer_minutes = slot_minutes, buffer_minutes
    trail.record("doctor.availability.update", actor, object_type="doctor", object_id=profile.id)
    db.session.commit()
    return profile


def add_time_off(actor, *, start, end, reason=None):
    profile = own_profile(actor)
    lock_calendar(profile.id)
    if start >= end:
        raise InvalidInput("Time off must end after it starts.", errors={"end": ["Must be after start."]})
    clashing = db.session.scalars(select(Appointment.id).where(
        Appointment.doctor_id == profile.id, Appointment.status.in_(ACTIVE_STATUSES),
        Appointment.start_at < end, Appointment.end_at > start)).all()
    if clashing:
        raise Conflict("Appointments are booked in that time; cancel or reschedule them first.",
                       code="appointments_in_time_off", extra={"appointment_ids": [str(i) for i in clashing]})
    entry = TimeOff(doctor_id=profile.id, start_at=start, end_at=end, reason=reason)
    db.session.add(entry)
    db.session.flush()
    trail.record("doctor.time_off.create", actor, object_type="doctor", object_id=profile.id)
    db.session.commit()
    return entry


def list_time_off(actor, *, page=1, per_page=20):
    profile = own_profile(actor)
    return paginate(select(TimeOff).where(TimeOff.doctor_id == profile.id, TimeOff.end_at > utcnow())
                    .order_by(TimeOff.start_at, TimeOff.id), page=page, per_page=per_page)


def delete_time_off(actor, time_off_id):
    profile = own_profile(actor)
    entry = db.session.scalar(select(TimeOff).where(TimeOff.id == time_off_id, TimeOff.doctor_id == profile.id))
    if entry is None:
        raise NotFound("No such time off.")
    db.session.delete(entry)
    trail.record("doctor.time_off.delete", actor, object_type="doctor", object_id=profile.id)
    db.session.commit()


def directory_query(*, specialty=None, species=None):
    """Verified doctors with active accounts, the ones patients can find and book."""
    # The join that filters on the account also fills `profile.user` (DoctorOut shows its name): no query per row.
    query = select(DoctorProfile).join(User, User.id == DoctorProfile.user_id).options(
        contains_eager(DoctorProfile.user)).where(
        DoctorProfile.verified_at.is_not(None), User.active.is_(True)).order_by(User.full_name, DoctorProfile.id)
    if specialty:
        query = query.where(DoctorProfile.specialty == normalize_specialty(specialty))
    if species:
        query = query.where(exists().where(DoctorSpecies.doctor_id == DoctorProfile.id,
                                           DoctorSpecies.species == species))
    return query


def get_profile(actor, doctor_id):
    """A listed doctor for anyone; an unverified profile only for its owner and admins."""
    profile = load_profile(doctor_id)
    if profile is None or not (bookable(profile) or actor.is_admin or profile.user_id == actor.user_id):
        raise NotFound("No such doctor.")
    return profile


def load_profile(doctor_id):
    """The profile with all that booking and slots read of it (its account, weekly rules and species) in one
    statement: a handful of rules times a handful of species are few rows, where loading each apart cost a round
    trip each (4 statements before, 3 with the account joined)."""
    return db.session.get(DoctorProfile, doctor_id, options=[
        joinedload(DoctorProfile.user), joinedload(DoctorProfile.rules), joinedload(DoctorProfile.species)])


def bookable(profile):
    return profile.verified_at is not None and profile.user.active


def slots(actor, doctor_id, *, start, end):
    profile = get_profile(actor, doctor_id)
    if end <= start:
        raise InvalidInput("`to` must be after `from`.", errors={"to": ["Must be after from."]})
    if end - start > MAX_SLOT_RANGE:
        raise InvalidInput("Ask for at most 31 days of slots at a time.",
                           errors={"to": ["At most 31 days after from."]})
    return availability.free_slots(profile, start, end)


def verify(actor, doctor_id):
    if not actor.is_admin:
        raise Forbidden("Only admins verify doctors.")
    profile = db.session.get(DoctorProfile, doctor_id)
    if profile is None:
        raise NotFound("No such doctor.")
    if profile.verified_at is None:
        profile.verified_at, profile.verified_by = utcnow(), actor.user_id
        trail.record("doctor.verify", actor, object_type="doctor", object_id=profile.id)
        notify([profile.user_id], "doctor.verified", title="Your profile is verified",
               body="Patients can now find you and book appointments.")
        db.session.commit()
    return profile


def normalize_specialty(text):
    """"General Practice" and "general_practice" are one specialty."""
    return "_".join(text.strip().lower().replace("-", " ").split())


def lock_calendar(doctor_id):
    """Queue writers of one doctor's calendar (bookings, time off, hours) behind each other."""
    db.session.execute(select(DoctorProfile.id).where(DoctorProfile.id == doctor_id).with_for_update(key_share=True))


def _hhmm(minutes):
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def on_user_renamed(user, *, actor):
    """Subscribed to identity's `user_renamed` by the app factory: the name is part of what an admin verified
    against the licence register, so a renamed doctor is held for review again."""
    if user.role != "doctor":
        return
    profile = db.session.scalar(select(DoctorProfile).where(DoctorProfile.user_id == user.id))
    if profile is not None and profile.hold_for_review():
        trail.record("doctor.profile.update", actor, object_type="doctor", object_id=profile.id,
                     detail={"held_for_review": ["full_name"]})
