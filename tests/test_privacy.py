"""Exports and erasure.

An export is one zip archive: a FHIR Bundle (validated with fhir.resources' R4B models, as the FHIR API's own tests
do), the records FHIR does not carry yet, and the uploaded files byte for byte; only its owner downloads it, only
until it expires. After an erasure, the responses of every list endpoint, the FHIR API and a co-guardian's export are
searched for the person's name and e-mail address and hold neither, while the restricted clinical records wait for
the retention job, which purges them once the period is over.
"""

import hashlib
import io
import json
import re
import uuid
import zipfile
from datetime import timedelta

import pytest
from fhir.resources.R4B import get_fhir_model_class
from PIL import Image
from sqlalchemy import func, select

from pawmanity.audit.models import AuditEvent
from pawmanity.care import patients as patient_service
from pawmanity.care.models import Guardianship, Patient, Upload
from pawmanity.conversations.models import Consultation
from pawmanity.core.database import utcnow
from pawmanity.core.extensions import db, docstore
from pawmanity.fhir.server import RESOURCE_TYPES
from pawmanity.identity.models import User
from pawmanity.media import storage
from pawmanity.notifications.notifier import notify
from pawmanity.privacy import archive, erasure
from pawmanity.privacy.models import DataExport, Erasure, RestrictedRecord
from pawmanity.triage.diagnoses import COLLECTION as DIAGNOSIS_LOGS
from tests.support import PASSWORD, assert_problem

EXPORTS = "/api/v1/exports"
NAME = "Alicia Zephyrine Quill"
EMAIL = "alicia.zephyrine@example.org"
# What must not appear anywhere once she is erased (her pet shares a distinctive part of her name).
MARKERS = ("zephyrine", "alicia")


def png(colour):
    output = io.BytesIO()
    Image.new("RGB", (24, 16), colour).save(output, format="PNG")
    return output.getvalue()


def upload(client, headers, patient, data, filename):
    response = client.post("/api/v1/uploads", headers=headers, content_type="multipart/form-data",
                           data={"patient_id": str(patient.id), "file": (io.BytesIO(data), filename)})
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.get_json()


def consult(client, auth, doctor_user, appointment, messages):
    """Open the appointment's consultation, exchange messages, end it with a summary and a prescription."""
    opened = client.post("/api/v1/consultations", json={"appointment_id": str(appointment.id)},
                         headers=auth(doctor_user))
    assert opened.status_code == 201, opened.get_data(as_text=True)
    consultation = opened.get_json()
    for number, (sender, body) in enumerate(messages):
        sent = client.post(f"/api/v1/consultations/{consultation['id']}/messages", headers=auth(sender),
                           json={"body": body, "client_id": f"m-{number}"})
        assert sent.status_code == 201, sent.get_data(as_text=True)
    ended = client.post(f"/api/v1/consultations/{consultation['id']}/end", headers=auth(doctor_user), json={
        "summary": "Mild otitis; review in two weeks.", "diagnosis": "Otitis externa",
        "prescriptions": [{"medication": "Amoxicillin", "dosage": "250 mg", "days": 5}]})
    assert ended.status_code == 200, ended.get_data(as_text=True)
    return consultation


@pytest.fixture
def scene(client, auth, gen_user, gen_doctor, gen_patient, gen_appointment):
    """Alicia (a patient account with her own record), a dog she shares with Bob, a cat only she cares for, a
    doctor who has seen all three, messages, uploads, weights and a reminder that names her."""
    alicia = gen_user(full_name=NAME, email=EMAIL)
    herself = patient_service.create_self_patient(alicia)
    db.session.commit()
    bob = gen_user(full_name="Bob Sharer")
    doctor_user, doctor = gen_doctor(species=("human", "dog", "cat"))
    dog = gen_patient(alicia, name="Pepper")
    db.session.add(Guardianship(patient_id=dog.id, user_id=bob.id, relation="co_owner"))
    cat = gen_patient(alicia, name="Zephyrine Junior", species="cat")
    db.session.commit()

    visits = {}
    for patient in (herself, dog, cat):
        # One after the other: an ended consultation completes its appointment, freeing the doctor's time.
        visits[patient.id] = gen_appointment(doctor, patient, utcnow() - timedelta(minutes=5), status="confirmed",
                                             booked_by=alicia.id)
        consult(client, auth, doctor_user, visits[patient.id],
                [(alicia, "It started on Monday."), (doctor_user, "Thank you, noted.")])

    for patient in (herself, dog, cat):
        weighed = client.post(f"/api/v1/patients/{patient.id}/weights", headers=auth(alicia),
                              json={"weight_kg": 9.5, "measured_at": utcnow().isoformat()})
        assert weighed.status_code == 201, weighed.get_data(as_text=True)
    her_scan = upload(client, auth(alicia), herself, png((200, 10, 10)), "alicia-zephyrine-scan.png")
    dog_photo = upload(client, auth(alicia), dog, png((10, 200, 10)), "paw.png")
    assessed = client.post("/api/v1/ai/diagnoses", headers=auth(alicia), json={
        "patient_id": str(cat.id), "age_years": 3,
        "symptoms": [{"code": code, "severity": 5, "duration_days": 2} for code in ("head_shaking", "ear_odor")]})
    assert assessed.status_code == 201, assessed.get_data(as_text=True)
    notify([doctor_user.id], "reminder.1h", title="Appointment in one hour",
           body=f"Your appointment with {NAME} starts soon.",
           data={"appointment_id": str(visits[herself.id].id)})
    db.session.commit()
    return {"alicia": alicia, "herself": herself, "bob": bob, "doctor_user": doctor_user, "doctor": doctor,
            "dog": dog, "cat": cat, "visits": visits, "her_scan": her_scan, "dog_photo": dog_photo}


def validated_bundle(data):
    bundle = json.loads(data)
    get_fhir_model_class("Bundle").model_validate(bundle)
    return bundle


def export_archive(client, headers, **body):
    requested = client.post(EXPORTS, headers=headers, json=body)
    assert requested.status_code == 202, requested.get_data(as_text=True)
    export = requested.get_json()
    assert export["status"] == "ready", export  # the embedded default runs the job eagerly
    downloaded = client.get(f"{EXPORTS}/{export['id']}/archive", headers=headers)
    assert downloaded.status_code == 200 and downloaded.mimetype == "application/zip"
    assert hashlib.sha256(downloaded.data).hexdigest() == export["sha256"]
    return export, zipfile.ZipFile(io.BytesIO(downloaded.data))


class TestExport:
    def test_a_guardian_exports_a_patient(self, client, auth, scene):
        export, zipped = export_archive(client, auth(scene["bob"]), patient_id=str(scene["dog"].id))
        names = zipped.namelist()
        bundle = validated_bundle(zipped.read("bundle.json"))
        kinds = {entry["resource"]["resourceType"] for entry in bundle["entry"]}
        assert kinds == {"Patient", "Appointment", "Encounter", "Communication", "DocumentReference", "Observation"}
        assert [e["resource"]["id"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient"] \
            == [str(scene["dog"].id)]
        records = json.loads(zipped.read("records.json"))[str(scene["dog"].id)]
        assert {record["kind"] for record in records["medical_records"]} == {"condition", "note", "prescription"}
        assert records["prescriptions"][0]["medication"] == "Amoxicillin"
        photo = db.session.get(Upload, uuid.UUID(scene["dog_photo"]["id"]))
        stored = zipped.read(f"files/{photo.id}/{photo.filename}")
        assert hashlib.sha256(stored).hexdigest() == photo.sha256
        assert "account.json" not in names
        # Only the dog: nothing of the cat or of Alicia's own record.
        text = "".join(zipped.read(name).decode(errors="replace") for name in names)
        assert str(scene["cat"].id) not in text and str(scene["herself"].id) not in text

    def test_anyone_exports_themself(self, client, auth, scene):
        _, zipped = export_archive(client, auth(scene["alicia"]))
        account = json.loads(zipped.read("account.json"))
        assert account["user"]["email"] == EMAIL and "password_hash" not in account["user"]
        bundle = validated_bundle(zipped.read("bundle.json"))
        patients = [e["resource"]["id"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient"]
        assert patients == [str(scene["herself"].id)]
        scan = db.session.get(Upload, uuid.UUID(scene["her_scan"]["id"]))
        assert zipped.read(f"files/{scan.id}/{scan.filename}")

    def test_only_the_owner_downloads_and_only_guardians_export(self, client, auth, scene, gen_user):
        requested = client.post(EXPORTS, headers=auth(scene["bob"]), json={"patient_id": str(scene["dog"].id)})
        export_id = requested.get_json()["id"]
        admin = gen_user(role="admin")
        for other in (scene["alicia"], scene["doctor_user"], admin, gen_user()):
            assert_problem(client.get(f"{EXPORTS}/{export_id}/archive", headers=auth(other)), 404)
            assert_problem(client.get(f"{EXPORTS}/{export_id}", headers=auth(other)), 404)
            assert export_id not in client.get(EXPORTS, headers=auth(other)).get_data(as_text=True)
        # The doctor sees the dog but does not act for it; a stranger does not see it.
        assert_problem(client.post(EXPORTS, headers=auth(scene["doctor_user"]),
                                   json={"patient_id": str(scene["dog"].id)}), 403)
        assert_problem(client.post(EXPORTS, headers=auth(gen_user()), json={"patient_id": str(scene["dog"].id)}),
                       404)

    def test_the_archive_expires_and_everything_is_audited(self, app, client, auth, scene):
        headers = auth(scene["bob"])
        export, _ = export_archive(client, headers, patient_id=str(scene["dog"].id))
        row = db.session.get(DataExport, uuid.UUID(export["id"]))
        path = archive.export_dir() / row.archive_name
        assert path.exists()
        assert archive.expire_due(utcnow() + timedelta(hours=app.config["EXPORT_HOURS"] - 1)) == 0
        assert archive.expire_due(utcnow() + timedelta(hours=app.config["EXPORT_HOURS"], minutes=1)) == 1
        assert not path.exists()
        assert_problem(client.get(f"{EXPORTS}/{export['id']}/archive", headers=headers), 410, "export_expired")
        assert client.get(f"{EXPORTS}/{export['id']}", headers=headers).get_json()["status"] == "expired"
        actions = db.session.scalars(select(AuditEvent.action).where(AuditEvent.object_id == export["id"])).all()
        assert {"export.request", "export.build", "export.download", "export.expire"} <= set(actions)
        assert "patient.everything" in db.session.scalars(select(AuditEvent.action).where(
            AuditEvent.object_id == str(scene["dog"].id))).all()


# --- erasure ---------------------------------------------------------------------------------------------------


def identifying(text):
    lowered = text.lower()
    return [marker for marker in MARKERS if marker in lowered]


def every_list_response(app, client, headers, known_ids):
    """GET every API route whose path parameters we can fill (collections, and the dog's sub-collections), and every
    FHIR search; returns {url: body}."""
    bodies = {}
    for rule in app.url_map.iter_rules():
        if "GET" not in rule.methods or not rule.rule.startswith(("/api/v1/", "/fhir/")):
            continue
        if rule.rule.startswith("/api/v1/docs") or rule.rule.endswith(("/archive", "/content", "/thumbnail")):
            continue
        url = rule.rule
        for argument in rule.arguments:
            if argument not in known_ids:
                break
            url = re.sub(rf"<[^>]*{argument}>", known_ids[argument], url)
        else:
            bodies[url] = client.get(url, headers=headers).get_data(as_text=True)
    for name in RESOURCE_TYPES:
        bodies[f"/fhir/{name}"] = client.get(f"/fhir/{name}", headers=headers).get_data(as_text=True)
    bodies["$everything"] = client.get(f"/fhir/Patient/{known_ids['patient_id']}/$everything",
                                       headers=headers).get_data(as_text=True)
    return bodies


class TestErasure:
    def test_an_erased_account_leaves_nothing_identifying(self, app, client, auth, scene, gen_user):
        admin = gen_user(role="admin")
        dog_consultation = db.session.scalar(select(Consultation.id).where(Consultation.patient_id == scene["dog"].id))
        known = {"patient_id": str(scene["dog"].id), "appointment_id": str(scene["visits"][scene["dog"].id].id),
                 "consultation_id": str(dog_consultation)}
        viewers = {"admin": admin, "doctor": scene["doctor_user"], "bob": scene["bob"]}

        # The search can fail: before the erasure her name and address are there to be found.
        before = {who: every_list_response(app, client, auth(user), known) for who, user in viewers.items()}
        assert any(identifying(body) for bodies in before.values() for body in bodies.values())

        her_scan = db.session.get(Upload, uuid.UUID(scene["her_scan"]["id"]))
        dog_photo = db.session.get(Upload, uuid.UUID(scene["dog_photo"]["id"]))
        local = storage.backend("local")
        scan_path, photo_path = local.path(her_scan.storage_key), local.path(dog_photo.storage_key)
        assert scan_path.exists() and photo_path.exists()
        herself_id, cat_id, alicia_id = scene["herself"].id, scene["cat"].id, scene["alicia"].id
        assert list(docstore.db[DIAGNOSIS_LOGS].find({"patient_id": str(cat_id)}))
        alicia_headers = auth(scene["alicia"])

        assert_problem(client.post("/api/v1/erasures/me", headers=alicia_headers, json={"password": "wrong"}), 422)
        erased = client.post("/api/v1/erasures/me", headers=alicia_headers, json={"password": PASSWORD})
        assert erased.status_code == 200, erased.get_data(as_text=True)
        log = erased.get_json()
        assert log["subject_type"] == "user" and len(log["actions"]["patients_erased"]) == 2
        assert not identifying(json.dumps(log))
        assert_problem(client.get("/api/v1/auth/me", headers=alicia_headers), 401)

        # Every list, every FHIR search and $everything, for everyone who could see her before.
        for who, user in viewers.items():
            for url, body in every_list_response(app, client, auth(user), known).items():
                assert not identifying(body), (who, url, identifying(body))
        # The co-guardian's export of the shared dog.
        _, zipped = export_archive(client, auth(scene["bob"]), patient_id=str(scene["dog"].id))
        validated_bundle(zipped.read("bundle.json"))
        for name in zipped.namelist():
            assert not identifying(zipped.read(name).decode(errors="replace")), name
        # Her record and her cat are gone from the API, for admins too; the shared dog stays with Bob.
        for patient_id in (herself_id, cat_id):
            assert_problem(client.get(f"/api/v1/patients/{patient_id}", headers=auth(admin)), 404)
        assert client.get(f"/api/v1/patients/{scene['dog'].id}", headers=auth(scene["bob"])).status_code == 200

        # In the database: no trace of her name or address; her account row is a pseudonym.
        account = db.session.get(User, alicia_id)
        assert not account.active and account.email.endswith("@erased.invalid") and not identifying(
            account.full_name + account.email)
        assert db.session.scalar(select(func.count()).select_from(User).where(User.email == EMAIL)) == 0
        assert db.session.get(Patient, herself_id) is None and db.session.get(Patient, cat_id) is None
        assert db.session.scalar(select(func.count()).select_from(Guardianship).where(
            Guardianship.user_id == alicia_id)) == 0
        # Her uploaded file is deleted from disk; the dog's stays.
        assert not scan_path.exists() and photo_path.exists()

        # The clinical records of her and her cat are held apart, whole, for the retention job.
        held = db.session.scalars(select(RestrictedRecord)).all()
        assert {record.patient_id for record in held} == {herself_id, cat_id}
        mine = next(record for record in held if record.patient_id == herself_id)
        kinds = {entry["resource"]["resourceType"] for entry in mine.content["bundle"]["entry"]}
        assert {"Patient", "Appointment", "Encounter", "Communication", "Observation"} <= kinds
        assert mine.content["records"]["medical_records"] and mine.content["records"]["prescriptions"]
        # The cat's symptom-checker log left the document store and is held with the rest.
        assert not list(docstore.db[DIAGNOSIS_LOGS].find({"patient_id": str(cat_id)}))
        cats = next(record for record in held if record.patient_id == cat_id)
        assert [log["patient_id"] for log in cats.content["records"]["diagnosis_logs"]] == [str(cat_id)]
        retention = timedelta(days=app.config["CLINICAL_RETENTION_DAYS"])
        assert abs(mine.retain_until - (utcnow() + retention)) < timedelta(minutes=5)

        # The erasure log keeps counts, never the data.
        for row in db.session.scalars(select(Erasure)):
            assert not identifying(json.dumps(row.actions))

        # Only an audited admin read reaches them.
        patient_log = db.session.scalar(select(Erasure).where(Erasure.subject_id == herself_id))
        url = f"/api/v1/erasures/{patient_log.id}/break-glass"
        assert_problem(client.post(url, headers=auth(scene["doctor_user"]),
                                   json={"reason": "curious about this one"}), 403)
        read = client.post(url, headers=auth(admin), json={"reason": "court order 2026/17 for the records"})
        assert read.status_code == 200 and read.get_json()["patient_id"] == str(herself_id)
        assert db.session.scalar(select(AuditEvent).where(AuditEvent.action == "restricted.break_glass")).detail \
            == {"reason": "court order 2026/17 for the records"}

        # The retention job purges them once the period is over, not before.
        assert erasure.purge_due(utcnow() + retention - timedelta(days=1)) == 0
        assert erasure.purge_due(utcnow() + retention + timedelta(days=1)) == 2
        assert db.session.scalar(select(func.count()).select_from(RestrictedRecord)) == 0
        assert db.session.get(Erasure, patient_log.id).purged_at is not None
        assert_problem(client.post(url, headers=auth(admin), json={"reason": "court order 2026/17 again"}), 404)

    def test_an_admin_erases_a_patient(self, client, auth, scene, gen_user):
        admin = gen_user(role="admin")
        url = f"/api/v1/erasures/patients/{scene['dog'].id}"
        assert_problem(client.post(url, headers=auth(scene["bob"]), json={"reason": "please erase my dog"}), 403)
        done = client.post(url, headers=auth(admin), json={"reason": "guardians' written request"})
        assert done.status_code == 200, done.get_data(as_text=True)
        actions = done.get_json()["actions"]
        assert actions["deleted"]["patients"] == 1 and actions["deleted"]["messages"] == 2
        assert actions["restricted"]["medical_records"] == 3 and actions["files_deleted"] == 1
        for user in (scene["bob"], scene["alicia"], scene["doctor_user"], admin):
            assert_problem(client.get(f"/api/v1/patients/{scene['dog'].id}", headers=auth(user)), 404)
            assert "Pepper" not in client.get("/fhir/Patient", headers=auth(user)).get_data(as_text=True)
        assert [row.action for row in db.session.scalars(select(AuditEvent).where(
            AuditEvent.object_id == str(scene["dog"].id), AuditEvent.action == "patient.erase"))] == ["patient.erase"]

    def test_doctors_are_closed_by_an_admin(self, client, auth, scene):
        assert_problem(client.post("/api/v1/erasures/me", headers=auth(scene["doctor_user"]),
                                   json={"password": PASSWORD}), 409, "erasure_needs_admin")

    def test_only_admins_read_the_log(self, client, auth, scene):
        assert_problem(client.get("/api/v1/erasures", headers=auth(scene["bob"])), 403)


def test_the_commands_run_the_same_jobs(app, client, auth, scene, gen_user):
    admin = gen_user(role="admin")
    assert client.post(f"/api/v1/erasures/patients/{scene['cat'].id}", headers=auth(admin),
                       json={"reason": "guardian's written request"}).status_code == 200
    export, _ = export_archive(client, auth(scene["bob"]), patient_id=str(scene["dog"].id))
    runner = app.test_cli_runner()
    assert runner.invoke(args=["privacy", "purge"]).output.strip() == "purged 0 restricted records"
    assert runner.invoke(args=["privacy", "expire-exports"]).output.strip() == "expired 0 exports"
    record = db.session.scalar(select(RestrictedRecord))
    record.retain_until = utcnow() - timedelta(seconds=1)
    db.session.get(DataExport, uuid.UUID(export["id"])).expires_at = utcnow() - timedelta(seconds=1)
    db.session.commit()
    assert runner.invoke(args=["privacy", "purge"]).output.strip() == "purged 1 restricted records"
    assert runner.invoke(args=["privacy", "expire-exports"]).output.strip() == "expired 1 exports"


def test_a_damaged_file_fails_the_export_instead_of_shipping_it(client, auth, scene):
    photo = db.session.get(Upload, uuid.UUID(scene["dog_photo"]["id"]))
    storage.backend("local").path(photo.storage_key).write_bytes(b"not the stored picture")
    requested = client.post(EXPORTS, headers=auth(scene["bob"]), json={"patient_id": str(scene["dog"].id)})
    export = client.get(f"{EXPORTS}/{requested.get_json()['id']}", headers=auth(scene["bob"])).get_json()
    assert export["status"] == "failed" and "integrity check" in export["error"]
    assert_problem(client.get(f"{EXPORTS}/{export['id']}/archive", headers=auth(scene["bob"])), 409, "export_failed")
    assert not any(archive.export_dir().glob("*.zip"))
