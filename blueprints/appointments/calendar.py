"""The iCalendar feed. Calendars sync to third parties, so events say when and with whom, never why.

icalendar is pure Python and a long feed takes tens of milliseconds to render, so the rows are read on the event
loop (they need the database session) and rendered on the `cpu` offload pool, where the loop gets the GIL back every
switch interval instead of waiting for the whole feed.
"""

from datetime import timezone

from icalendar import Calendar, Event

from pawmanity.core.database import utcnow
from pawmanity.core.offload import run_blocking

STATUS = {"requested": "TENTATIVE", "confirmed": "CONFIRMED", "in_progress": "CONFIRMED",
          "completed": "CONFIRMED", "no_show": "CANCELLED", "cancelled": "CANCELLED"}


def calendar_feed(appointments):
    events = [{
        "uid": f"{appointment.id}@pawmanity",
        "dtstart": appointment.start_at.astimezone(timezone.utc),
        "dtend": appointment.end_at.astimezone(timezone.utc),
        "summary": f"{appointment.type.replace('_', ' ').capitalize()} appointment: "
                   f"{appointment.patient.name} with {appointment.doctor.user.full_name}",
        "status": STATUS[appointment.status],
        "last-modified": appointment.updated_at,
    } for appointment in appointments]
    return run_blocking(_render, events, utcnow(), pool="cpu")


def _render(events, stamp):
    calendar = Calendar()
    calendar.add("prodid", "-//PAWMANITY//Appointments//EN")
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("x-wr-calname", "PAWMANITY appointments")
    for fields in events:
        event = Event()
        event.add("uid", fields["uid"])
        event.add("dtstamp", stamp)
        for name in ("dtstart", "dtend", "summary", "status", "last-modified"):
            event.add(name, fields[name])
        calendar.add_component(event)
    return calendar.to_ical()
