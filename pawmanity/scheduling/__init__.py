"""Doctors and their calendars: `doctors` (profiles, verification, the directory, hours and time off),
`availability` (free slots computed from weekly rules in the doctor's own timezone). `models` also holds the
Appointment table, because slots and the care access policy read it; booking one is the job of `appointments`."""
