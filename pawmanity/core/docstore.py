"""The document-store seam (AI diagnosis logs, raw model outputs): pymongo's API over a backend chosen by MONGO_URI.

    mongodb://... or mongodb+srv://...  -> a real MongoDB through pymongo (production)
    montydb:///path                      -> MontyDB, an embedded on-disk store with pymongo's API (embedded default)

Backends are a plain registry, so the test suite can add its in-memory double without the application knowing it.
Clients are created on first use, never at import or in create_app.
"""

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


BACKENDS = {
    "mongodb": _pymongo_client,
    "mongodb+srv": _pymongo_client,
    "montydb": _montydb_client,
}


class DocStore:
    def init_app(self, app):
        uri = app.config["MONGO_URI"]
        scheme = urlsplit(uri).scheme
        if scheme not in BACKENDS:
            raise RuntimeError(f"MONGO_URI scheme '{scheme}' is not one of {sorted(BACKENDS)}")
        app.extensions["docstore"] = {"uri": uri, "scheme": scheme, "client": None}

    def _state(self):
        return current_app.extensions["docstore"]

    @property
    def client(self):
        state = self._state()
        if state["client"] is None:
            state["client"] = BACKENDS[state["scheme"]](state["uri"])
        return state["client"]

    @property
    def db(self):
        return self.client[current_app.config["MONGO_DB_NAME"]]

    def ping(self):
        """A round trip to the store; raises if it cannot be reached."""
        self.db.list_collection_names()
