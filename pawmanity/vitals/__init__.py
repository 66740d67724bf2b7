"""Vital signs: `units` (measurements, LOINC codes, UCUM units and conversion), `devices` (registration and hashed
ingest tokens), `readings` (idempotent batch ingest, raw and downsampled queries), `alerts` (rules per species with
per-patient overrides, hysteresis and minimum duration); `models` beside them."""
