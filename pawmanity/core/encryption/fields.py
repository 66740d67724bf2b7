"""Field-level encryption of identifiers: AES-256-GCM bound to the row, and blind indexes to look values up.

E-mail addresses, phone numbers, licence and microchip numbers (and secrets such as TOTP seeds) are stored as

    v1:<key id>:<base64url(12-byte nonce | ciphertext | 16-byte tag)>

sealed with AES-256-GCM (`cryptography`'s AESGCM) under the key named by the key id. The associated data is the
format version, the key id, the table, the field and the row's id, so a ciphertext copied into another row, another
column or another table does not decrypt: reading it raises `UndecryptableField` (409 `undecryptable_field` to a
client, one line in the `pawmanity.field_encryption` log) instead of showing another record's value.

Equality lookups and uniqueness use a blind index: HMAC-SHA256, under a separate key, of the field's name and its
normalised value (`<table>.<field>\\0<value>`), 64 hex characters. It reveals which rows share a value, nothing more.

Keys never live in the database. They come from the environment or a key file (see `load_keyring`): several
encryption keys may be configured, the first one encrypts and all of them decrypt, so keys rotate by putting a new
one first and running `flask keys rotate` (rotation.py re-encrypts in batches, resumably; tasks.py in the worker).
The blind index key cannot rotate this way (every index would change at once); it is meant to stay.

Using it in a model -- any model whose row id is known before it is inserted (a client-side UUID, as IdMixin's):

    class User(IdMixin, db.Model):
        __tablename__ = "users"
        email = EncryptedField(nullable=False, blind_index=UNIQUE, normalize=str.lower)
        totp_secret = EncryptedField()                         # encrypted, never looked up
        license_number = EncryptedField(nullable=False)

`EncryptedField` adds the columns itself, named after the field: `email_ciphertext` (TEXT) and, with a blind index,
`email_index` (VARCHAR(64); `UNIQUE` gives it a unique constraint, `INDEXED` a plain index); a migration creates
them like any other column. Then:

- `user.email` reads the plaintext (decrypted once per loaded value) and `user.email = "..."` writes it; the
  ciphertext is made when the row id is known (at once for a stored row; at flush for a new one, whose UUID is
  assigned then if it has none);
- `User.email == value`, `User.email != value` and `User.email.in_(values)` in a query compare blind indexes
  (normalised with `normalize` first; the stored value itself is kept as given); `User.email.is_(None)` checks
  the ciphertext. Comparing a field without a blind index, `LIKE` and the like raise TypeError, and
  `select(User.email)` or `order_by(User.email)` an SQLAlchemy ArgumentError: the database cannot see values.
- `EncryptedField(ciphertext=False, blind_index=UNIQUE)` keeps only the index (write-only; the look-alike skeleton
  of an e-mail address is one); `row_id="user_id"` binds ciphertexts to another client-known column.

`encrypt_value` / `decrypt_value` do the same for values outside a model field (a stored HTTP answer, a migration).
"""

import base64
import binascii
import hashlib
import hmac
import json
import logging
import os
import re
import secrets
import uuid
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from flask import current_app
from sqlalchemy import String, Text, event
from sqlalchemy.orm import Session, mapped_column

from pawmanity.core.errors import DomainError

FORMAT = "v1"
KEY_ID = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
KEY_BYTES = 32  # AES-256
NONCE_BYTES = 12
INDEX_HEX_CHARS = 64
UNIQUE, INDEXED = "unique", "indexed"
EXTENSION_KEY = "pawmanity.field_keys"
DEVELOPMENT_KEY_FILE = "field-keys.json"

log = logging.getLogger("pawmanity.field_encryption")


class FieldKeysMissing(Exception):
    """No usable keys: the message is one line for the operator (create_app turns it into a ConfigurationError)."""


class UndecryptableField(DomainError):
    """A stored value that does not decrypt for its row: moved from another row, altered, or sealed under a key no
    longer configured. Not the client's fault, and not worth a 500 with a trace: the record is refused with a clear
    code while the log names the row for an administrator."""

    status, code = 409, "undecryptable_field"


@dataclass(frozen=True)
class Keyring:
    """The encryption keys by id (the active one first) and the blind-index key."""

    ciphers: dict
    active: str
    blind_key: bytes

    def encrypt(self, plaintext: bytes, *, table, column, row_id) -> str:
        nonce = os.urandom(NONCE_BYTES)
        sealed = self.ciphers[self.active].encrypt(nonce, plaintext,
                                                   _associated_data(self.active, table, column, row_id))
        return f"{FORMAT}:{self.active}:{base64.urlsafe_b64encode(nonce + sealed).rstrip(b'=').decode()}"

    def decrypt(self, token: str, *, table, column, row_id) -> bytes:
        version, key_id, payload = _split(token)
        cipher = self.ciphers.get(key_id) if version == FORMAT else None
        if cipher is None:
            raise _undecryptable(table, column, row_id, f"format {version!r} or key {key_id!r} is not configured")
        try:
            blob = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
            return cipher.decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:],
                                  _associated_data(key_id, table, column, row_id))
        except (InvalidTag, ValueError, binascii.Error):
            raise _undecryptable(table, column, row_id, "authentication failed (moved from another row, or "
                                                        "altered)") from None

    def blind_index(self, context, normalized: str) -> str:
        return hmac.new(self.blind_key, f"{context}\0{normalized}".encode(), hashlib.sha256).hexdigest()


def _associated_data(key_id, table, column, row_id):
    return "|".join(("pawmanity-field", FORMAT, key_id, table, column, str(row_id))).encode()


def _split(token):
    parts = (token or "").split(":", 2)
    return tuple(parts) if len(parts) == 3 else ("?", "?", "")


def key_id_of(token):
    """The key id a stored value was sealed under (None for something else)."""
    version, key_id, _ = _split(token)
    return key_id if version == FORMAT else None


def _undecryptable(table, column, row_id, reason):
    log.error("cannot decrypt %s.%s of row %s: %s", table, column, row_id, reason)
    return UndecryptableField(f"A stored identifier of this record ({table}.{column}) cannot be decrypted; an "
                              "administrator must restore it or its key.")


# --- keys --------------------------------------------------------------------------------------------------------

def load_keyring(config):
    """Keys from PAWMANITY_FIELD_KEYS and PAWMANITY_BLIND_INDEX_KEY, else from the key file PAWMANITY_FIELD_KEY_FILE;
    failing both, the development and test configurations generate (once) and keep `instance/field-keys.json`, and
    production refuses to start (FieldKeysMissing).

    PAWMANITY_FIELD_KEYS is `id:base64key,id:base64key,...` (32-byte keys, the first one encrypts); the key file is
    JSON: {"keys": [{"id": ..., "key": base64}, ...], "blind_index_key": base64}.
    """
    if config.get("FIELD_KEYS") or config.get("BLIND_INDEX_KEY"):
        if not (config.get("FIELD_KEYS") and config.get("BLIND_INDEX_KEY")):
            raise FieldKeysMissing("Set both PAWMANITY_FIELD_KEYS and PAWMANITY_BLIND_INDEX_KEY (or neither and "
                                   "PAWMANITY_FIELD_KEY_FILE)")
        pairs = [item.strip().split(":", 1) for item in config["FIELD_KEYS"].split(",") if item.strip()]
        if any(len(pair) != 2 for pair in pairs):
            raise FieldKeysMissing("PAWMANITY_FIELD_KEYS must be `id:base64key[,id:base64key...]`")
        return build_keyring(pairs, config["BLIND_INDEX_KEY"], source="PAWMANITY_FIELD_KEYS")
    path = config.get("FIELD_KEY_FILE")
    if not path and config.get("GENERATE_FIELD_KEYS"):
        path = ensure_development_key_file(os.path.join(config["INSTANCE_DIR"], DEVELOPMENT_KEY_FILE))
    if not path:
        raise FieldKeysMissing("Set PAWMANITY_FIELD_KEYS and PAWMANITY_BLIND_INDEX_KEY, or PAWMANITY_FIELD_KEY_FILE, "
                               "for production: identifiers are stored encrypted (`flask keys generate` makes keys)")
    try:
        with open(path, encoding="utf-8") as file:
            data = json.load(file)
        pairs = [(entry["id"], entry["key"]) for entry in data["keys"]]
        blind = data["blind_index_key"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise FieldKeysMissing(f"Cannot read the field key file {path}: {type(error).__name__}: {error}") from None
    return build_keyring(pairs, blind, source=path)


def build_keyring(pairs, blind_index_key, *, source):
    ciphers = {}
    for key_id, encoded in pairs:
        key = _decode_key(encoded, f"key {key_id!r} in {source}")
        if not KEY_ID.match(key_id or ""):
            raise FieldKeysMissing(f"Field key ids are 1 to 32 letters, digits, '-' or '_' ({key_id!r} in {source})")
        if key_id in ciphers:
            raise FieldKeysMissing(f"Field key id {key_id!r} appears twice in {source}")
        ciphers[key_id] = (AESGCM(key), key)
    if not ciphers:
        raise FieldKeysMissing(f"No field encryption key in {source}")
    blind = _decode_key(blind_index_key, f"the blind index key of {source}")
    if any(blind == key for _, key in ciphers.values()):
        raise FieldKeysMissing(f"The blind index key must differ from every encryption key ({source})")
    return Keyring(ciphers={key_id: cipher for key_id, (cipher, _) in ciphers.items()}, active=next(iter(ciphers)),
                   blind_key=blind)


def _decode_key(encoded, what):
    try:
        key = base64.b64decode((encoded or "").strip() + "=" * (-len((encoded or "").strip()) % 4), altchars=b"-_")
    except (binascii.Error, ValueError):
        key = b""
    if len(key) != KEY_BYTES:
        raise FieldKeysMissing(f"{what} must be {KEY_BYTES} random bytes in base64 (`flask keys generate`)")
    return key


def new_key():
    return base64.urlsafe_b64encode(secrets.token_bytes(KEY_BYTES)).decode()


def ensure_development_key_file(path):
    """Create the key file if it is missing (mode 0600; a concurrent creator wins and its file is kept)."""
    if not os.path.exists(path):
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        content = json.dumps({"keys": [{"id": "dev1", "key": new_key()}], "blind_index_key": new_key(),
                              "note": "development keys for the embedded default; never use them in production"},
                             indent=2)
        try:
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return path
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            file.write(content + "\n")
    return path


def init_app(app):
    app.extensions[EXTENSION_KEY] = load_keyring(app.config)


def keyring():
    return current_app.extensions[EXTENSION_KEY]


def encrypt_value(value, *, table, column, row_id):
    """Seal a str (or bytes) for one row's field; None stays None."""
    if value is None:
        return None
    data = value if isinstance(value, bytes) else value.encode()
    return keyring().encrypt(data, table=table, column=column, row_id=row_id)


def decrypt_value(token, *, table, column, row_id, as_bytes=False):
    if token is None:
        return None
    data = keyring().decrypt(token, table=table, column=column, row_id=row_id)
    return data if as_bytes else data.decode()


def blind_index(table, field, value, normalize=None):
    """The index of `value` for `<table>.<field>` (normalised as the field does)."""
    if value is None:
        return None
    return keyring().blind_index(f"{table}.{field}", normalize(value) if normalize else value)


# --- the model field ---------------------------------------------------------------------------------------------

ENCRYPTED_FIELDS = []  # (model class, EncryptedField) for every field declared: what `flask keys rotate` walks


class EncryptedField:
    """A model attribute stored encrypted (and/or as a blind index); see the module's docstring.

    For a secret that is only ever read back (a TOTP seed, say), one line in the model is all:

        totp_secret = EncryptedField()           # column totp_secret_ciphertext TEXT NULL

    and in the migration `sa.Column('totp_secret_ciphertext', sa.Text(), nullable=True)`. Reading `row.totp_secret`
    gives the str stored; a value copied from another row raises UndecryptableField (409). Options:
    `nullable=False`; `blind_index=UNIQUE | INDEXED` with `normalize=` (a str -> str function applied before
    hashing, on writes and on comparisons alike) to find or de-duplicate by value; `ciphertext=False` to keep the
    index alone; `row_id=` the attribute that identifies the row (default `id`; it must be known before the INSERT,
    or be a UUID that may be assigned at flush). Binary values: base64 them first, or use encrypt_value/decrypt_value.
    """

    def __init__(self, *, nullable=True, blind_index=None, normalize=None, ciphertext=True, row_id="id"):
        if blind_index not in (None, UNIQUE, INDEXED):
            raise ValueError("blind_index is None, UNIQUE or INDEXED")
        if not ciphertext and not blind_index:
            raise ValueError("a field keeps a ciphertext, a blind index or both")
        self.nullable, self.blind_index, self.normalize = nullable, blind_index, normalize
        self.encrypted, self.row_id_attr = ciphertext, row_id

    def __set_name__(self, owner, name):
        self.name, self.owner = name, owner
        self.table = owner.__tablename__
        self.ciphertext_attr, self.index_attr = f"{name}_ciphertext", f"{name}_index"
        self._pending, self._cached = f"_pawmanity_pending_{name}", f"_pawmanity_plain_{name}"
        # Added before the declarative machinery (the metaclass, after type.__new__) reads the class.
        if self.encrypted:
            setattr(owner, self.ciphertext_attr, mapped_column(self.ciphertext_attr, Text, nullable=self.nullable))
        if self.blind_index:
            setattr(owner, self.index_attr, mapped_column(
                self.index_attr, String(INDEX_HEX_CHARS), nullable=self.nullable or not self.encrypted,
                unique=self.blind_index == UNIQUE or None, index=self.blind_index == INDEXED or None))
        if self.encrypted:
            ENCRYPTED_FIELDS.append((owner, self))

    def index_of(self, value):
        return blind_index(self.table, self.name, value, self.normalize)

    def __get__(self, instance, owner):
        if instance is None:
            return FieldComparator(owner, self)
        if not self.encrypted:
            raise AttributeError(f"{owner.__name__}.{self.name} is stored only as a blind index")
        state = instance.__dict__
        if self._pending in state:
            return state[self._pending]
        token = getattr(instance, self.ciphertext_attr)
        if token is None:
            return None
        cached = state.get(self._cached)
        if cached is not None and cached[0] == token:
            return cached[2]
        row_id = getattr(instance, self.row_id_attr)
        plaintext = decrypt_value(token, table=self.table, column=self.name, row_id=row_id)
        state[self._cached] = (token, row_id, plaintext)
        return plaintext

    def __set__(self, instance, value):
        if value is not None and not isinstance(value, str):
            raise TypeError(f"{self.name} takes a str or None")
        if self.encrypted and self._pending not in instance.__dict__ \
                and getattr(instance, self.ciphertext_attr) is not None and self.__get__(instance, None) == value:
            return  # unchanged: a fresh nonce would make an UPDATE (and a new version) out of nothing
        if self.blind_index:
            setattr(instance, self.index_attr, None if value is None else self.index_of(value))
        if not self.encrypted:
            return
        instance.__dict__[self._pending] = value
        if value is None or getattr(instance, self.row_id_attr) is not None:
            self.seal(instance)
        # else: sealed at flush, once the row has its id (seal_new_rows)

    def seal(self, instance):
        """Encrypt the pending plaintext for the row's current id (assigning a UUID if it has none yet)."""
        value = instance.__dict__.pop(self._pending)
        row_id = getattr(instance, self.row_id_attr)
        if value is None:
            setattr(instance, self.ciphertext_attr, None)
            return
        if row_id is None:
            row_id = uuid.uuid4()
            setattr(instance, self.row_id_attr, row_id)
        token = encrypt_value(value, table=self.table, column=self.name, row_id=row_id)
        setattr(instance, self.ciphertext_attr, token)
        instance.__dict__[self._cached] = (token, row_id, value)

    def reseal_if_moved(self, instance):
        """A new row whose id was set after its value (`Model(email=..., id=...)`) is sealed again for that id."""
        if self._pending in instance.__dict__:
            self.seal(instance)
            return
        cached = instance.__dict__.get(self._cached)
        if cached is not None and cached[1] != getattr(instance, self.row_id_attr):
            instance.__dict__[self._pending] = cached[2]
            self.seal(instance)


class FieldComparator:
    """`Model.field` in a query: comparisons become blind-index comparisons."""

    __hash__ = None

    def __init__(self, owner, field):
        self.owner, self.field = owner, field

    def _index_column(self):
        if not self.field.blind_index:
            raise TypeError(f"{self.owner.__name__}.{self.field.name} is encrypted without a blind index: it cannot "
                            "be compared in SQL")
        return getattr(self.owner, self.field.index_attr)

    def __eq__(self, value):
        if value is None:
            return self.is_(None)
        return self._index_column() == self.field.index_of(value)

    def __ne__(self, value):
        if value is None:
            return self.is_not(None)
        return self._index_column() != self.field.index_of(value)

    def blind_index_of(self, value):
        """The index a value has in this field (to compare with one read from the database, or to log)."""
        return self.field.index_of(value)

    def in_(self, values):
        return self._index_column().in_([self.field.index_of(value) for value in values])

    def _stored_column(self):
        attr = self.field.ciphertext_attr if self.field.encrypted else self.field.index_attr
        return getattr(self.owner, attr)

    def is_(self, value):
        return self._stored_column().is_(value)

    def is_not(self, value):
        return self._stored_column().is_not(value)

    def __repr__(self):
        return f"<encrypted field {self.owner.__name__}.{self.field.name}>"

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        raise TypeError(f"{self.owner.__name__}.{self.field.name} is encrypted: the database can only compare its "
                        f"blind index (==, !=, in_), not `{name}`")


def fields_of(model):
    return [field for owner, field in ENCRYPTED_FIELDS if isinstance(model, owner)]


@event.listens_for(Session, "before_flush")
def seal_new_rows(session, flush_context, instances):
    for instance in session.new:
        for field in fields_of(instance):
            field.reseal_if_moved(instance)


