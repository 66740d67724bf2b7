"""The iCalendar feed. Calendars sync to third parties, so events say when and with whom, never why."""

from datetime import timezone

from icalendar import Calendar, Event

from pawmanity.core.database import utcnow

STATUS = {"requested": "TENTATIVE", "confirmed": "CONFIRMED", "in_progress": "CONFIRMED",
          "completed": "CONFIRMED", "no_show": "CANCELLED", "cancelled": "CANCELLED"}


def calendar_feed(appointments):
    calendar = Calendar()
    calendar.add("prodid", "-//PAWMANITY//Appointments//EN")
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("x-wr-calname", "PAWMANITY appointments")
    stamp = utcnow()
    for appointment in appointments:
        event = Event()
        event.add("uid", f"{appointment.id}@pawmanity")
        event.add("dtstamp", stamp)
        event.add("dtstart", appointment.start_at.astimezone(timezone.utc))
        event.add("dtend", appointment.end_at.astimezone(timezone.utc))
        event.add("summary", f"{appointment.type.replace('_', ' ').capitalize()} appointment: "
                             f"{appointment.patient.name} with {appointment.doctor.user.full_name}")
        event.add("status", STATUS[appointment.status])
        event.add("last-modified", appointment.updated_at)
        calendar.add_component(event)
    return calendar.to_ical()
