"""The document-store seam (AI diagnosis logs, raw model outputs): pymongo's API over a backend chosen by MONGO_URI.

    mongodb://... or mongodb+srv://...  -> a real MongoDB through pymongo (production)
    montydb:///path                      -> MontyDB, an embedded on-disk store with pymongo's API (embedded default)

Backends are a plain registry, so the test suite can add its in-memory double without the application knowing it.
Clients are created on first use, never at import or in create_app.

Callers that can do without the store (the diagnosis log has its outbox) go through `run`, a circuit breaker: after
a failure the store is skipped for DOCSTORE_BREAKER_SECONDS, so each request does not wait out pymongo's 2 s server
selection while MongoDB is down; then one caller tries again, and a success closes the breaker.

`store_by_id` writes a document under its own _id with an insert, which every backend does by key; an upsert
(`replace_one(..., upsert=True)`) makes MontyDB read and decode the whole collection to look for the _id first, so
each diagnosis log cost more than the one before (55% of the worker's CPU at a few hundred logs).
"""

import functools
import time
from pathlib import Path
from urllib.parse import urlsplit

from flask import current_app


def _pymongo_client(uri):
    from pymongo import MongoClient

    # Short timeouts: /ready and the AI outbox must learn quickly that MongoDB is down.
    return MongoClient(uri, serverSelectionTimeoutMS=2000, connectTimeoutMS=2000, tz_aware=True)


def _montydb_client(uri):
    from montydb import MontyClient, set_storage

    path = Path(uri[len("montydb://"):])
    path.mkdir(parents=True, exist_ok=True)
    set_storage(str(path), storage="sqlite")
    return MontyClient(str(path), tz_aware=True)


@functools.cache
def duplicate_key_errors():
    """What the backends raise for an _id already stored (mongomock raises pymongo's)."""
    from montydb.errors import DuplicateKeyError as MontyDuplicateKey
    from pymongo.errors import DuplicateKeyError

    return DuplicateKeyError, MontyDuplicateKey


def store_by_id(collection, document):
    """Store `document` under its _id, replacing any earlier copy: an insert, and a replace only when the _id is
    already there (a log delivered again), so the common case is one keyed write on MontyDB too."""
    try:
        collection.insert_one(document)
    except duplicate_key_errors():
        collection.replace_one({"_id": document["_id"]}, document, upsert=True)


BACKENDS = {
    "mongodb": _pymongo_client,
    "mongodb+srv": _pymongo_client,
    "montydb": _montydb_client,
}


class DocStoreUnavailable(Exception):
    """The store failed recently and is being skipped until its breaker's pause is over."""


class DocStore:
    def init_app(self, app):
        uri = app.config["MONGO_URI"]
        scheme = urlsplit(uri).scheme
        if scheme not in BACKENDS:
            raise RuntimeError(f"MONGO_URI scheme '{scheme}' is not one of {sorted(BACKENDS)}")
        app.extensions["docstore"] = {"uri": uri, "scheme": scheme, "client": None, "open_until": 0.0}

    def _state(self):
        return current_app.extensions["docstore"]

    @property
    def client(self):
        state = self._state()
        if state["client"] is None:
            state["client"] = BACKENDS[state["scheme"]](state["uri"])
        return state["client"]

    @property
    def blocking(self):
        """Whether the backend waits without yielding to the event loop (the embedded store's disk writes)."""
        return self._state()["scheme"] == "montydb"

    @property
    def db(self):
        return self.client[current_app.config["MONGO_DB_NAME"]]

    def ping(self):
        """A round trip to the store; raises if it cannot be reached."""
        self.db.list_collection_names()

    def run(self, operation):
        """`operation(db)` through the circuit breaker; DocStoreUnavailable while it is open."""
        state = self._state()
        pause = current_app.config["DOCSTORE_BREAKER_SECONDS"]
        if state["open_until"]:
            if time.monotonic() < state["open_until"]:
                raise DocStoreUnavailable("the document store failed recently; skipped for now")
            state["open_until"] = time.monotonic() + pause  # this caller probes; the others keep skipping
        try:
            result = operation(self.db)
        except Exception as error:
            if pause:
                if not state["open_until"]:
                    current_app.logger.warning("document store failed (%s); skipping it for %ss",
                                               type(error).__name__, pause)
                state["open_until"] = time.monotonic() + pause
            raise
        if state["open_until"]:
            state["open_until"] = 0.0
            current_app.logger.info("document store reachable again")
        return result
