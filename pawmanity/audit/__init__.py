"""The tamper-evident audit trail: `models` is the hash-chained, append-only table and `trail` records
events just before their transaction commits, verifies the chain and lists it for admins. Every domain above it
writes here; it imports nothing but the platform."""
