"""The tamper-evident audit trail: `models` is the hash-chained, append-only table; `trail` records events in their
transaction, seals them into the chain after the commit (`tasks` sweeps what is left), verifies the chain and lists
it for admins. Every domain above it writes here; it imports nothing but the platform."""
