"""Outbound webhooks: `events` (the catalogue, and receivers that turn lower domains' signals into outbox rows in
the same transaction), `delivery` (Standard Webhooks signing, retries with backoff and jitter, disabling),
`transport` (the SSRF-safe HTTP client), `endpoints` (admins' registration, delivery log and replay), `tasks`."""
