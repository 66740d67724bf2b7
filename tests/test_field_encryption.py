"""Identifiers encrypted at rest (pawmanity/core/encryption/fields.py): nothing readable in the database, a ciphertext
that does not decrypt outside its own row, lookups by blind index, readers still seeing plaintext, keys rotating."""

import base64
import json
import os
import stat

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import select, text

from pawmanity import ConfigurationError, create_app
from pawmanity.care.models import Patient
from pawmanity.core.encryption import rotation as key_rotation
from pawmanity.core.encryption.fields import DEVELOPMENT_KEY_FILE, new_key
from pawmanity.core.extensions import db
from pawmanity.identity.models import User
from pawmanity.pharmacy.models import Pharmacy
from pawmanity.scheduling.models import DoctorProfile
from tests.support import PASSWORD, assert_problem, postgres_only

API = "/api/v1"
CHIP = "985112009876543"
LICENCE = "VET-LIC-55731"
PHONE = "+33 1 42 68 53 00"


def login(client, email, password=PASSWORD):
    response = client.post(f"{API}/auth/login", json={"email": email, "password": password})
    assert response.status_code == 200, response.get_data(as_text=True)
    return {"Authorization": f"Bearer {response.get_json()['access_token']}"}


def register(client, email, role="patient", full_name="Someone Here"):
    response = client.post(f"{API}/auth/register", json={"email": email, "password": PASSWORD,
                                                         "full_name": full_name, "role": role})
    assert response.status_code == 201, response.get_data(as_text=True)
    return login(client, email)


@pytest.fixture
def world(app, client, gen_user, auth):
    """Identifiers of every kind, entered through the API: an owner with a chipped dog, a doctor with a licence,
    an invitation, a pharmacy with a phone and an address, and an admin-created account (its answer stored for
    Idempotency-Key replays)."""
    owner = register(client, "Owner.Person@Example.com", full_name="Olive Owner")
    doctor = register(client, "dr.lee@clinic.example", role="doctor", full_name="Dana Lee")
    admin = gen_user("admin", email="root.admin@clinic.example")
    as_admin = auth(admin)
    pet = client.post(f"{API}/patients", headers=owner, json={"name": "Rex", "species": "dog", "sex": "male",
                                                              "microchip_id": CHIP})
    assert pet.status_code == 201, pet.get_data(as_text=True)
    profile = client.put(f"{API}/doctors/me", headers=doctor, json={
        "specialty": "dermatology", "species_treated": ["dog"], "license_number": LICENCE, "timezone": "UTC"})
    assert profile.status_code == 201, profile.get_data(as_text=True)
    invited = client.post(f"{API}/patients/{pet.get_json()['id']}/invitations", headers=owner,
                          json={"email": "granny.smith@example.org", "relation": "family"})
    assert invited.status_code == 201, invited.get_data(as_text=True)
    pharmacy = client.post(f"{API}/pharmacies", headers=as_admin, json={
        "name": "Pharmacie du Parc", "address": "3 rue du Parc", "latitude": 48.85, "longitude": 2.35,
        "phone": PHONE, "email": "counter@pharmacie-parc.example"})
    assert pharmacy.status_code == 201, pharmacy.get_data(as_text=True)
    created = client.post(f"{API}/admin/users", headers={**as_admin, "Idempotency-Key": "make-nurse"}, json={
        "email": "nurse.joy@clinic.example", "password": PASSWORD, "full_name": "Joy Nurse", "role": "patient"})
    assert created.status_code == 201, created.get_data(as_text=True)
    return {"owner": owner, "doctor": doctor, "as_admin": as_admin, "pet": pet.get_json()["id"],
            "doctor_id": profile.get_json()["id"], "pharmacy": pharmacy.get_json()["id"]}


PLAINTEXTS = ("owner.person@example.com", "dr.lee@clinic.example", "root.admin@clinic.example",
              "granny.smith@example.org", "counter@pharmacie-parc.example", "nurse.joy@clinic.example",
              "sam.owner@example.com", "counter1@pharmacy.example", CHIP, "985112003456789", LICENCE, PHONE,
              "+44 20 7946 01")


def stored_plaintexts(plaintexts):
    """(table, column, plaintext) for every text, varchar, json, jsonb or bytea column holding one of them."""
    columns = db.session.execute(text(
        "SELECT table_name, column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = current_schema() AND data_type IN "
        "('text', 'character varying', 'character', 'json', 'jsonb', 'bytea', 'ARRAY')")).all()
    assert len(columns) > 50  # every table of the schema, not an empty search
    found = []
    for table, column, data_type in columns:
        value = f'encode("{column}", \'escape\')' if data_type == "bytea" else f'"{column}"::text'
        for plaintext in plaintexts:
            if db.session.scalar(text(f'SELECT count(*) FROM "{table}" WHERE strpos(lower({value}), :p) > 0'),
                                 {"p": plaintext.lower()}):
                found.append((table, column, plaintext))
    return found


@postgres_only
def test_no_identifier_is_stored_in_plaintext_anywhere(app, client, world):
    from pawmanity import demo
    from pawmanity.identity.actor import Actor

    demo.load(actor=Actor(role="system", ip="test"))
    db.session.commit()
    from pawmanity.care.models import GuardianInvitation

    # Everything the API and the demo stored, read back through the models (so decrypted).
    known = {*PLAINTEXTS, *(user.email for user in db.session.scalars(select(User))),
             *(profile.license_number for profile in db.session.scalars(select(DoctorProfile))),
             *(pet.microchip_id for pet in db.session.scalars(select(Patient)) if pet.microchip_id),
             *(invitation.email for invitation in db.session.scalars(select(GuardianInvitation))),
             *(value for pharmacy in db.session.scalars(select(Pharmacy)) for value in (pharmacy.phone, pharmacy.email)
               if value)}
    assert len(known) > 25 and {CHIP, LICENCE, PHONE, "sam.owner@example.com"} <= known
    assert stored_plaintexts(known) == []
    # The scan finds what it looks for.
    db.session.execute(text("CREATE TABLE leak_probe (note jsonb)"))
    db.session.execute(text("""INSERT INTO leak_probe VALUES ('{"to": "Sam.Owner@example.com"}')"""))
    assert stored_plaintexts(known) == [("leak_probe", "note", "sam.owner@example.com")]
    db.session.rollback()


def test_readers_see_the_plaintext_everywhere(client, world):
    owner, as_admin = world["owner"], world["as_admin"]
    assert client.get(f"{API}/auth/me", headers=owner).get_json()["email"] == "owner.person@example.com"
    assert client.get(f"{API}/patients/{world['pet']}", headers=owner).get_json()["microchip_id"] == CHIP
    assert client.get(f"{API}/doctors/me", headers=world["doctor"]).get_json()["license_number"] == LICENCE
    pharmacy = client.get(f"{API}/pharmacies/{world['pharmacy']}", headers=owner).get_json()
    assert (pharmacy["phone"], pharmacy["email"]) == (PHONE, "counter@pharmacie-parc.example")
    guardians = client.get(f"{API}/patients/{world['pet']}/guardians", headers=owner).get_json()
    assert [guardian["email"] for guardian in guardians["items"]] == ["owner.person@example.com"]
    fhir = client.get(f"/fhir/Patient/{world['pet']}", headers=owner).get_json()
    assert fhir["identifier"] == [{"system": "urn:pawmanity:microchip", "value": CHIP}]
    # An idempotent replay answers from the stored (encrypted) answer, identical to the first.
    replay = client.post(f"{API}/admin/users", headers={**as_admin, "Idempotency-Key": "make-nurse"}, json={
        "email": "nurse.joy@clinic.example", "password": PASSWORD, "full_name": "Joy Nurse", "role": "patient"})
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.get_json()["email"] == "nurse.joy@clinic.example"


def test_lookups_go_through_the_blind_indexes(client, world, gen_user, gen_patient):
    # Sign-in by address, whatever its case; duplicates and look-alikes refused at sign-up.
    login(client, "OWNER.PERSON@example.com")
    duplicate = client.post(f"{API}/auth/register", json={"email": "owner.person@EXAMPLE.com", "password": PASSWORD,
                                                          "full_name": "Again", "role": "patient"})
    assert_problem(duplicate, 409, "email_taken")
    look_alike = client.post(f"{API}/auth/register", json={"email": "owner.pers\u043en@example.com",
                                                           "password": PASSWORD, "full_name": "Mallory",
                                                           "role": "patient"})
    assert_problem(look_alike, 409, "email_confusable")
    # Microchip search: exact, any case, and only among the patients the caller may see.
    stranger = gen_user()
    gen_patient(stranger, microchip_id=CHIP)
    found = client.get(f"{API}/patients", headers=world["owner"], query_string={"microchip_id": CHIP.lower()})
    assert [item["id"] for item in found.get_json()["items"]] == [world["pet"]]
    assert client.get(f"{API}/patients", headers=world["owner"],
                      query_string={"microchip_id": "985112009876540"}).get_json()["total"] == 0
    assert_problem(client.get(f"{API}/patients", headers=world["owner"], query_string={"microchip_id": "x%"}), 422)
    # Admins find an account by its whole address (not a fragment of it: the database cannot see addresses).
    listed = client.get(f"{API}/admin/users", headers=world["as_admin"],
                        query_string={"q": "Dr.Lee@clinic.example"}).get_json()
    assert [item["email"] for item in listed["items"]] == ["dr.lee@clinic.example"]
    assert client.get(f"{API}/admin/users", headers=world["as_admin"],
                      query_string={"q": "dr.lee@clinic"}).get_json()["total"] == 0


def test_the_stored_form_is_documented_aes_gcm_bound_to_the_row(app, world):
    """Decrypted here with cryptography's AESGCM and the documented layout, not with the module's own code."""
    user = db.session.scalar(select(User).where(User.email == "dr.lee@clinic.example"))
    version, key_id, payload = user.email_ciphertext.split(":")
    with open(os.path.join(app.config["INSTANCE_DIR"], DEVELOPMENT_KEY_FILE)) as file:
        keys = {entry["id"]: base64.urlsafe_b64decode(entry["key"]) for entry in json.load(file)["keys"]}
    blob = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    associated = f"pawmanity-field|v1|{key_id}|users|email|{user.id}".encode()
    assert version == "v1"
    assert AESGCM(keys[key_id]).decrypt(blob[:12], blob[12:], associated) == b"dr.lee@clinic.example"
    other_row = f"pawmanity-field|v1|{key_id}|users|email|{world['doctor_id']}".encode()
    with pytest.raises(Exception):
        AESGCM(keys[key_id]).decrypt(blob[:12], blob[12:], other_row)


@postgres_only
def test_a_ciphertext_moved_to_another_row_does_not_decrypt(client, world, caplog):
    owner = db.session.scalar(select(User).where(User.email == "owner.person@example.com"))
    doctor = db.session.scalar(select(User).where(User.email == "dr.lee@clinic.example"))
    # The doctor's row gets the owner's sealed address (and the blind index still says "doctor").
    db.session.execute(text("UPDATE users SET email_ciphertext = (SELECT email_ciphertext FROM users WHERE id = :a) "
                            "WHERE id = :b"), {"a": owner.id, "b": doctor.id})
    # The owner's pet gets the microchip of another record.
    other = client.post(f"{API}/patients", headers=world["owner"], json={"name": "Tom", "species": "cat",
                                                                         "microchip_id": "250268500112233"})
    db.session.execute(text("UPDATE patients SET microchip_id_ciphertext = (SELECT microchip_id_ciphertext FROM "
                            "patients WHERE id = :a) WHERE id = :b"), {"a": other.get_json()["id"], "b": world["pet"]})
    # A pharmacy's phone copied into its own e-mail column: another column, also refused.
    db.session.execute(text("UPDATE pharmacies SET email_ciphertext = phone_ciphertext WHERE id = :p"),
                       {"p": world["pharmacy"]})
    db.session.commit()
    db.session.expire_all()

    me = client.get(f"{API}/auth/me", headers=login(client, "dr.lee@clinic.example"))
    body = assert_problem(me, 409, "undecryptable_field")
    assert "owner.person" not in me.get_data(as_text=True) and "users.email" in body["detail"]
    assert_problem(client.get(f"{API}/patients/{world['pet']}", headers=world["owner"]), 409, "undecryptable_field")
    fhir = client.get(f"/fhir/Patient/{world['pet']}", headers=world["owner"])
    assert fhir.status_code == 409 and fhir.get_json()["resourceType"] == "OperationOutcome"
    assert_problem(client.get(f"{API}/pharmacies/{world['pharmacy']}", headers=world["owner"]), 409,
                   "undecryptable_field")
    assert "cannot decrypt pharmacies.email of row" in caplog.text
    # Rows left alone still read.
    assert client.get(f"{API}/patients/{other.get_json()['id']}",
                      headers=world["owner"]).get_json()["microchip_id"] == "250268500112233"


def test_development_keys_are_generated_once_and_kept(make_app, tmp_path):
    first = make_app()
    path = os.path.join(first.config["INSTANCE_DIR"], DEVELOPMENT_KEY_FILE)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    with open(path) as file:
        content = file.read()
    make_app()
    with open(path) as file:
        assert file.read() == content


def test_production_refuses_to_start_without_keys(tmp_path):
    long_secret = "a-production-secret-for-this-test-only-0123456789"
    secret = {"SECRET_KEY": long_secret, "JWT_SECRET_KEY": long_secret, "INSTANCE_DIR": str(tmp_path),
              "FIELD_KEYS": None, "BLIND_INDEX_KEY": None, "FIELD_KEY_FILE": None}
    with pytest.raises(ConfigurationError, match="Set PAWMANITY_FIELD_KEYS and PAWMANITY_BLIND_INDEX_KEY, or "
                                                 "PAWMANITY_FIELD_KEY_FILE"):
        create_app("production", plugins=(), settings=secret)
    assert not os.path.exists(tmp_path / DEVELOPMENT_KEY_FILE)
    blind = new_key()
    for keys, message in ((f"k1:{blind}", "must differ from every encryption key"),
                          ("k1:c2hvcnQ=", "must be 32 random bytes"),
                          (f"bad id:{new_key()}", "Field key ids are 1 to 32 letters")):
        with pytest.raises(ConfigurationError, match=message):
            create_app("production", plugins=(), settings={**secret, "FIELD_KEYS": keys, "BLIND_INDEX_KEY": blind})
    create_app("production", plugins=(), settings={**secret, "FIELD_KEYS": f"k1:{new_key()}",
                                                   "BLIND_INDEX_KEY": blind})


def test_rotation_re_encrypts_in_resumable_batches_and_leaves_versions_alone(make_app, gen_user, gen_patient,
                                                                              database_url):
    old, new, blind = new_key(), new_key(), new_key()
    first = make_app(FIELD_KEYS=f"old:{old}", BLIND_INDEX_KEY=blind)
    with first.app_context():
        owners = [gen_user(email=f"owner{n}@example.com") for n in range(5)]
        pets = [gen_patient(owner, microchip_id=f"98511200000000{n}") for n, owner in enumerate(owners)]
        versions = {pet.id: (pet.version, pet.updated_at) for pet in pets}
        db.session.remove()
    rotated = make_app(FIELD_KEYS=f"new:{new},old:{old}", BLIND_INDEX_KEY=blind)
    with rotated.app_context():
        users_field = next(field for model, field in key_rotation.ENCRYPTED_FIELDS
                           if (field.table, field.name) == ("users", "email"))
        assert key_rotation.rotate_batch(User, users_field, batch_size=2) is False
        assert key_rotation.rotate_batch(User, users_field, batch_size=2) is False
        progress = db.session.get(key_rotation.FieldKeyRotation, ("new", "users", "email"))
        assert (progress.rewritten, progress.finished_at) == (4, None) and progress.last_row_id
        # Interrupted here; the CLI carries on from the saved position.
        result = rotated.test_cli_runner().invoke(args=["keys", "rotate", "--wait", "--batch-size", "2"])
        assert result.exit_code == 0, result.output
        assert db.session.get(key_rotation.FieldKeyRotation, ("new", "users", "email")).rewritten == 5
        status = rotated.test_cli_runner().invoke(args=["keys", "status"]).output
        assert "users.email" in status and "5 of        5 on the active key (done" in status
        stored = db.session.execute(text("SELECT email_ciphertext FROM users UNION ALL "
                                         "SELECT microchip_id_ciphertext FROM patients")).scalars().all()
        assert len(stored) == 10 and all(value.startswith("v1:new:") for value in stored)
        db.session.remove()
    only_new = make_app(FIELD_KEYS=f"new:{new}", BLIND_INDEX_KEY=blind)
    with only_new.app_context():
        assert sorted(user.email for user in db.session.scalars(select(User))) == \
            [f"owner{n}@example.com" for n in range(5)]
        for pet in db.session.scalars(select(Patient)):
            assert (pet.version, pet.updated_at) == versions[pet.id]  # ETags unchanged by a rotation
        assert db.session.scalar(select(Patient).where(Patient.microchip_id == "985112000000003")) is not None
        db.session.remove()


def test_a_rewritten_value_is_sealed_once_and_unchanged_values_are_not_rewritten(app, gen_user, gen_patient):
    owner = gen_user()
    pet = gen_patient(owner, microchip_id=CHIP)
    sealed, version = pet.microchip_id_ciphertext, pet.version
    pet.microchip_id = CHIP
    db.session.commit()
    assert (pet.microchip_id_ciphertext, pet.version) == (sealed, version)
    pet.microchip_id = None
    db.session.commit()
    assert (pet.microchip_id_ciphertext, pet.microchip_id_index, pet.version) == (None, None, version + 1)
    profile = DoctorProfile(user_id=gen_user("doctor").id, specialty="dermatology", license_number=LICENCE,
                            timezone="UTC")
    db.session.add(profile)
    db.session.commit()
    db.session.expire_all()
    assert db.session.get(DoctorProfile, profile.id).license_number == LICENCE
    with pytest.raises(TypeError, match="without a blind index"):
        select(DoctorProfile).where(DoctorProfile.license_number == LICENCE)
    with pytest.raises(TypeError, match="not `like`"):
        Pharmacy.email.like("%@example.com")


def test_rotate_runs_in_the_worker_by_default(make_app, gen_user):
    """Without --wait the CLI queues the Celery task (run at once here: the test config's Celery is eager), which
    hands over to a fresh task when its time budget is spent."""
    old, new, blind = new_key(), new_key(), new_key()
    with make_app(FIELD_KEYS=f"old:{old}", BLIND_INDEX_KEY=blind).app_context():
        for n in range(3):
            gen_user(email=f"worker{n}@example.com")
        db.session.remove()
    rotated = make_app(FIELD_KEYS=f"new:{new},old:{old}", BLIND_INDEX_KEY=blind)
    with rotated.app_context():
        from pawmanity.core.encryption import tasks

        handed_over = []
        original = tasks.rotate_field_keys.delay
        tasks.rotate_field_keys.delay = lambda *args: (handed_over.append(args), original(*args))
        try:
            result = rotated.test_cli_runner().invoke(args=["keys", "rotate", "--batch-size", "1"])
            assert result.exit_code == 0 and "queued" in result.output, result.output
        finally:
            tasks.rotate_field_keys.delay = original
        assert handed_over == [(1,)]
        # A task out of time (here after each batch) hands over to a fresh one, which resumes from the saved position.
        newest = make_app(FIELD_KEYS=f"newest:{new_key()},new:{new}", BLIND_INDEX_KEY=blind)
        with newest.app_context():
            assert key_rotation.rotate(batch_size=1, seconds=0) is False
            progress = db.session.get(key_rotation.FieldKeyRotation, ("newest", "users", "email"))
            assert (progress.rewritten, progress.finished_at) == (1, None)
            tasks.rotate_field_keys(batch_size=1, seconds=0)
            db.session.expire_all()
            assert db.session.get(key_rotation.FieldKeyRotation, ("newest", "users", "email")).rewritten == 3
            db.session.remove()
        stored = db.session.execute(text("SELECT email_ciphertext FROM users")).scalars().all()
        assert len(stored) == 3 and all(value.startswith("v1:newest:") for value in stored)
        db.session.remove()
