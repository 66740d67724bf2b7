"""Pharmacies and medicines: `pharmacies` (places, staff, the nearest-first search), `stock` (the movement ledger,
reservations and expiry of lots), `prescriptions` (what a consultation prescribed, reserved by a guardian and
dispensed by a pharmacist); `models` and `tasks` beside them."""
