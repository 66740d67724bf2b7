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

from sqlalchemy import select, union_all

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
        day_rules = rules.get(day.weekday())
        if day_rules:
            midnight = datetime.combine(day, time())
            to_utc = _wall_clock_of(midnight, zone)
            for rule in day_rules:
                for minute in range(rule.start_minute, rule.end_minute - doctor.slot_minutes + 1, step):
                    slot_start = to_utc(midnight + timedelta(minutes=minute))
                    if slot_start is not None and start <= slot_start and slot_start + length <= end:
                        slots.append(Slot(slot_start, slot_start + length))
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
    return on_slot_grid(doctor, start) and \
        not _time_off_overlaps(doctor.id, start, start + timedelta(minutes=doctor.slot_minutes))


def on_slot_grid(doctor, start):
    """Whether `start` is in slot_grid(doctor, ...), decided from its own wall-clock time rather than by laying out
    the days around it: a booking asks this of one instant."""
    zone = ZoneInfo(doctor.timezone)
    wall = start.astimezone(zone).replace(tzinfo=None, fold=0)
    # Not a wall-clock time that maps back to this instant: the second pass of an hour repeated in autumn.
    if wall.second or wall.microsecond or _wall_to_utc(wall, zone) != start:
        return False
    minute = wall.hour * 60 + wall.minute
    step = doctor.slot_minutes + doctor.buffer_minutes
    return any(rule.weekday == wall.weekday() and rule.start_minute <= minute
               and minute + doctor.slot_minutes <= rule.end_minute and (minute - rule.start_minute) % step == 0
               for rule in doctor.rules)


def busy_intervals(doctor_id, start, end, *, exclude_appointment_id=None):
    appointments = select(Appointment.start_at, Appointment.end_at).where(
        Appointment.doctor_id == doctor_id, Appointment.status.in_(ACTIVE_STATUSES),
        Appointment.start_at < end, Appointment.end_at > start)
    if exclude_appointment_id is not None:
        appointments = appointments.where(Appointment.id != exclude_appointment_id)
    time_off = select(TimeOff.start_at, TimeOff.end_at).where(
        TimeOff.doctor_id == doctor_id, TimeOff.start_at < end, TimeOff.end_at > start)
    # One round trip for both kinds of busy time.
    return [tuple(row) for row in db.session.execute(union_all(appointments, time_off))]


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


def _wall_clock_of(midnight, zone):
    """wall time -> UTC instant (or None) for the day starting at `midnight`. On a day whose UTC offset is the same
    at both ends, as on all but a day or two a year, the clock changes nowhere in between: every wall time is that
    offset away, one subtraction instead of three conversions through the zone."""
    offset = midnight.replace(tzinfo=zone).utcoffset()
    if (midnight + timedelta(days=1)).replace(tzinfo=zone).utcoffset() != offset:
        return lambda wall: _wall_to_utc(wall, zone)
    return lambda wall: (wall - offset).replace(tzinfo=UTC)
