"""Free slots, computed from weekly rules in the doctor's own timezone (never stored as rows).

A rule of 09:00-17:00 on Mondays means 09:00 on the doctor's wall clock every Monday, on both sides of a daylight
saving change. Slots start at the rule's start and every slot length plus buffer after it; a wall-clock time that
does not exist on a given day (the hour skipped in spring) yields no slot, and an ambiguous one (the hour repeated
in autumn) means its first occurrence.
"""

from bisect import bisect_left
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

from sqlalchemy import select

from pawmanity.core.database import utcnow
from pawmanity.core.extensions import db
from pawmanity.scheduling.models import ACTIVE_STATUSES, Appointment, TimeOff

UTC = timezone.utc


@dataclass(frozen=True, order=True)
class Slot:
    start: datetime
    end: datetime


def slot_grid(doctor, start, end):
    """Every slot the rules allow in [start, end), busy or not, in order."""
    zone = ZoneInfo(doctor.timezone)
    length = timedelta(minutes=doctor.slot_minutes)
    step = doctor.slot_minutes + doctor.buffer_minutes
    rules = defaultdict(list)
    for rule in doctor.rules:
        rules[rule.weekday].append(rule)
    day = start.astimezone(zone).date() - timedelta(days=1)
    last_day = end.astimezone(zone).date()
    slots = []
    while day <= last_day:
        for rule in rules.get(day.weekday(), ()):
            minute = rule.start_minute
            while minute + doctor.slot_minutes <= rule.end_minute:
                wall = datetime.combine(day, time()) + timedelta(minutes=minute)
                slot_start = _wall_to_utc(wall, zone)
                if slot_start is not None and start <= slot_start and slot_start + length <= end:
                    slots.append(Slot(slot_start, slot_start + length))
                minute += step
        day += timedelta(days=1)
    return sorted(set(slots))


def free_slots(doctor, start, end, *, now=None):
    """Slots in [start, end) that are in the future, outside time off and not taken by an active appointment."""
    now = now or utcnow()
    future = [slot for slot in slot_grid(doctor, start, end) if slot.start > now]
    return clear_of(future, busy_intervals(doctor.id, start, end))


def clear_of(slots, busy):
    """The slots that overlap none of the busy (start, end) intervals, in O((slots + busy) log busy)."""
    busy_starts, busy_ends = _merged(busy)
    free = []
    for slot in slots:
        # After merging, the last busy interval that starts before the slot ends is the only one that can overlap.
        index = bisect_left(busy_starts, slot.end) - 1
        if index < 0 or busy_ends[index] <= slot.start:
            free.append(slot)
    return free


def _merged(intervals):
    """Sorted, non-overlapping intervals, as parallel lists of starts and ends."""
    starts, ends = [], []
    for begin, finish in sorted(intervals):
        if ends and begin <= ends[-1]:
            ends[-1] = max(ends[-1], finish)
        else:
            starts.append(begin)
            ends.append(finish)
    return starts, ends


def is_slot_start(doctor, start):
    """Whether `start` begins a slot of the rules (taken or not) and is clear of time off."""
    length = timedelta(minutes=doctor.slot_minutes)
    candidates = slot_grid(doctor, start - timedelta(minutes=1), start + length + timedelta(minutes=1))
    if Slot(start, start + length) not in candidates:
        return False
    return not _time_off_overlaps(doctor.id, start, start + length)


def busy_intervals(doctor_id, start, end, *, exclude_appointment_id=None):
    appointments = select(Appointment.start_at, Appointment.end_at).where(
        Appointment.doctor_id == doctor_id, Appointment.status.in_(ACTIVE_STATUSES),
        Appointment.start_at < end, Appointment.end_at > start)
    if exclude_appointment_id is not None:
        appointments = appointments.where(Appointment.id != exclude_appointment_id)
    time_off = select(TimeOff.start_at, TimeOff.end_at).where(
        TimeOff.doctor_id == doctor_id, TimeOff.start_at < end, TimeOff.end_at > start)
    return [tuple(row) for row in db.session.execute(appointments)] + \
        [tuple(row) for row in db.session.execute(time_off)]


def _time_off_overlaps(doctor_id, start, end):
    return db.session.scalar(select(TimeOff.id).where(
        TimeOff.doctor_id == doctor_id, TimeOff.start_at < end, TimeOff.end_at > start).limit(1)) is not None


def _wall_to_utc(wall, zone):
    """The UTC instant of a wall-clock time, or None when the clock skips it (spring forward)."""
    aware = wall.replace(tzinfo=zone)
    as_utc = aware.astimezone(UTC)
    if as_utc.astimezone(zone).replace(tzinfo=None) != wall:
        return None
    return as_utc
