"""Booking on behalf of patients: `booking` (book a slot or the earliest one, the status machine,
reschedules, lists and calendar feeds) and `reminders` (24 h and 1 h before, each sent exactly once, claimed
through `models.ReminderDelivery`); `tasks` runs the reminders from Celery beat."""
