"""Offline-first sync for mobile apps, in WatermelonDB's pull/push protocol shape: `models` (the change log written by
database triggers, pull cursors, the purge watermark), `tables` (what is synced and whose it is), `pull` (changes
since a cursor, in commit order), `push` (a batch of client changes applied atomically, and per-record resolves),
`retention` (tombstones kept for SYNC_TOMBSTONE_DAYS, then purged)."""
