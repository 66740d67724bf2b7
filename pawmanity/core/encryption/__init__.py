"""Field-level encryption of identifiers: `fields` (EncryptedField, keys, blind indexes), `rotation` (re-encrypting
under a new key, resumably) and `tasks` (rotation in the Celery worker). A package of the platform, so that any
domain's model can declare an encrypted field."""
