"""The document-store seam: pymongo's API over whichever backend MONGO_URI names."""

import pytest

from pawmanity.core import docstore as docstore_module
from pawmanity.core.extensions import docstore


def test_tests_use_the_in_memory_double_through_pymongo_api(app):
    logs = docstore.db["diagnosis_logs"]
    logs.insert_one({"diagnosis_id": "d1", "patient_id": "p1", "probabilities": {"flu": 0.7}})
    assert logs.find_one({"patient_id": "p1"})["probabilities"] == {"flu": 0.7}
    docstore.ping()


def test_embedded_store_persists_on_disk(make_app, tmp_path):
    uri = f"montydb://{tmp_path / 'docs'}"
    with make_app(MONGO_URI=uri).app_context():
        docstore.db["diagnosis_logs"].insert_one({"diagnosis_id": "d1", "urgency": 5})
    # A second app (a restarted server) finds the document again.
    with make_app(MONGO_URI=uri).app_context():
        assert docstore.db["diagnosis_logs"].find_one({"diagnosis_id": "d1"})["urgency"] == 5
    assert (tmp_path / "docs").is_dir()


def test_mongodb_uri_selects_pymongo_without_connecting(make_app):
    app = make_app(MONGO_URI="mongodb://127.0.0.1:9/")
    with app.app_context():
        from pymongo import MongoClient

        assert isinstance(docstore.client, MongoClient)


def test_unknown_scheme_fails_start_up(make_app):
    with pytest.raises(RuntimeError, match="MONGO_URI scheme 'redis'"):
        make_app(MONGO_URI="redis://localhost/0")


def test_backends_are_a_plain_registry():
    assert {"mongodb", "mongodb+srv", "montydb"} <= set(docstore_module.BACKENDS)


def test_the_embedded_store_writes_a_new_log_by_key_without_reading_the_collection(make_app, tmp_path, monkeypatch):
    """An upsert makes MontyDB decode every stored document to find the _id: each log cost more than the last."""
    from montydb.collection import MontyCollection

    with make_app(MONGO_URI=f"montydb://{tmp_path / 'docs'}").app_context():
        logs = docstore.db["diagnosis_logs"]
        logs.insert_one({"_id": "old", "urgency": 1})
        scans = []
        real_scan = MontyCollection._internal_scan_query

        def counted_scan(self, query):
            scans.append(query)
            return real_scan(self, query)

        monkeypatch.setattr(MontyCollection, "_internal_scan_query", counted_scan)
        docstore_module.store_by_id(logs, {"_id": "new", "urgency": 3})
        assert scans == []
        # Delivered again (a worker that died after writing): replaced, still one copy.
        docstore_module.store_by_id(logs, {"_id": "new", "urgency": 4})
        assert [doc["urgency"] for doc in logs.find({"_id": "new"})] == [4]
        assert logs.count_documents({}) == 2


def test_a_second_delivery_replaces_on_the_test_double_too(app):
    logs = docstore.db["diagnosis_logs"]
    docstore_module.store_by_id(logs, {"_id": "d1", "urgency": 2})
    docstore_module.store_by_id(logs, {"_id": "d1", "urgency": 5})
    assert [doc["urgency"] for doc in logs.find({})] == [5]
