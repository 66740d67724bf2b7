"""Uploads: the bytes decide the type, metadata never survives, and every download is checked."""

import io
import struct
import uuid
import zlib

import pytest
from PIL import Image
from sqlalchemy import func, select

from pawmanity.audit.models import AuditEvent
from pawmanity.care.models import Upload
from pawmanity.core.extensions import db
from tests.crafted_media import deflated_dicom, pdf
from tests.support import assert_problem

UPLOADS = "/api/v1/uploads"
GPS_IFD = 0x8825
ORIENTATION = 0x0112


def jpeg_with_gps(width=64, height=32, orientation=6):
    image = Image.new("RGB", (width, height), (200, 30, 30))
    exif = Image.Exif()
    exif[ORIENTATION] = orientation          # "rotate 90° clockwise to display"
    exif[0x010F] = "PhoneMaker"
    exif.get_ifd(GPS_IFD).update({1: "N", 2: (52.0, 31.0, 12.0), 3: "E", 4: (13.0, 24.0, 36.0)})
    output = io.BytesIO()
    image.save(output, format="JPEG", exif=exif)
    return output.getvalue()


def png(width=40, height=20):
    output = io.BytesIO()
    Image.new("RGBA", (width, height), (0, 128, 255, 255)).save(output, format="PNG")
    return output.getvalue()


def png_bomb(side=50_000):
    """A PNG that claims 50,000 x 50,000 pixels in a few kilobytes."""
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    rows = zlib.compress(b"\x00" * (1 + side // 8) * 64, 9)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")


def dicom():
    from pydicom import examples

    output = io.BytesIO()
    examples.ct.save_as(output, enforce_file_format=True)
    return output.getvalue()


def heic():
    import pillow_heif

    pillow_heif.register_heif_opener()
    output = io.BytesIO()
    Image.new("RGB", (30, 20), "green").save(output, format="HEIF")
    return output.getvalue()


PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


@pytest.fixture
def owner_and_pet(gen_user, gen_patient):
    owner = gen_user()
    return owner, gen_patient(owner)


def upload(client, headers, patient, data, filename="photo.jpg", content_type="image/jpeg", **form):
    return client.post(UPLOADS, headers=headers, content_type="multipart/form-data", data={
        "patient_id": str(patient.id), "file": (io.BytesIO(data), filename, content_type), **form})


def test_a_photo_is_stored_upright_without_metadata(client, auth, owner_and_pet, app):
    owner, pet = owner_and_pet
    response = upload(client, auth(owner), pet, jpeg_with_gps(), description="Left ear")
    assert response.status_code == 201, response.get_data(as_text=True)
    body = response.get_json()
    assert body["content_type"] == "image/jpeg" and (body["width"], body["height"]) == (32, 64)  # rotated
    content = client.get(f"{UPLOADS}/{body['id']}/content", headers=auth(owner))
    assert content.status_code == 200 and content.headers["X-Content-Type-Options"] == "nosniff"
    assert 'attachment; filename=photo.jpg' in content.headers["Content-Disposition"]
    stored = Image.open(io.BytesIO(content.data))
    assert dict(stored.getexif()) == {} and stored.getexif().get_ifd(GPS_IFD) == {}
    assert b"PhoneMaker" not in content.data
    import hashlib

    assert hashlib.sha256(content.data).hexdigest() == body["sha256"]
    thumbnail = client.get(f"{UPLOADS}/{body['id']}/thumbnail", headers=auth(owner))
    assert thumbnail.mimetype == "image/png" and Image.open(io.BytesIO(thumbnail.data)).size[1] <= 320


def test_a_png_named_jpg_is_stored_as_png(client, auth, owner_and_pet):
    owner, pet = owner_and_pet
    body = upload(client, auth(owner), pet, png(), filename="scan.jpg", content_type="image/jpeg").get_json()
    assert body["content_type"] == "image/png" and body["filename"] == "scan.png"


@pytest.mark.parametrize("maker, content_type", [(dicom, "application/dicom"), (heic, "image/jpeg"),
                                                 (lambda: PDF, "application/pdf")])
def test_other_supported_formats(client, auth, owner_and_pet, maker, content_type):
    owner, pet = owner_and_pet
    body = upload(client, auth(owner), pet, maker(), filename="file.bin",
                  content_type="application/octet-stream").get_json()
    assert body["content_type"] == content_type
    if content_type == "application/dicom":
        assert (body["width"], body["height"]) == (128, 128) and body["has_preview"]
        preview = client.get(f"{UPLOADS}/{body['id']}/thumbnail", headers=auth(owner))
        assert Image.open(io.BytesIO(preview.data)).size == (128, 128)


@pytest.mark.parametrize("data, status, code", [
    (b"<html><script>alert(1)</script></html>", 415, "unsupported_media_type"),
    (b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>', 415, "unsupported_media_type"),
    (b"PK\x03\x04" + b"\x00" * 100, 415, "unsupported_media_type"),
    (b"", 422, "validation_failed"),
    (png_bomb(), 422, "image_too_large"),
])
def test_refused_files_store_nothing(client, auth, owner_and_pet, data, status, code):
    owner, pet = owner_and_pet
    assert_problem(upload(client, auth(owner), pet, data), status, code)
    assert db.session.scalar(select(func.count()).select_from(Upload)) == 0


@pytest.mark.parametrize("catalog, objects, compressed", [
    (b"/OpenAction 4 0 R", [b"<< /S /JavaScript /JS (app.alert(1)) >>"], False),
    (b"/OpenAction 4 0 R", [b"<< /S /JavaScript /JS (app.alert(1)) >>"], True),  # hidden in an object stream
    (b"/Open#41ction << /S /L#61unch /F (calc.exe) >>", [], False),                # names spelt with escapes
    (b"/AA << /WC << /S /Launch /F (x.exe) >> >>", [], False),
    (b"/Names << /EmbeddedFiles 4 0 R >>", [b"<< /Names [(a.exe) << /Type /Filespec /F (a.exe) /EF << /F 5 0 R >> "
                                            b">>] >>", b"<< /Type /EmbeddedFile /Length 0 >>\nstream\n\nendstream"], True),
    (b"/Names << /JavaScript 4 0 R >>", [b"<< /Names [(x) << /S /JavaScript /JS (1) >>] >>"], False),
], ids=["openaction-js", "compressed-js", "escaped-launch", "additional-actions", "embedded-file", "js-name-tree"])
def test_pdfs_with_active_content_are_415(client, auth, owner_and_pet, catalog, objects, compressed):
    owner, pet = owner_and_pet
    response = upload(client, auth(owner), pet, pdf(catalog, objects, compressed), filename="report.pdf")
    assert_problem(response, 415, "pdf_active_content")
    assert db.session.scalar(select(func.count()).select_from(Upload)) == 0


@pytest.mark.parametrize("compressed", [False, True])
def test_a_plain_pdf_is_kept_as_sent(client, auth, owner_and_pet, compressed):
    owner, pet = owner_and_pet
    document = pdf(b"/PageMode /UseOutlines", compressed=compressed)
    body = upload(client, auth(owner), pet, document, filename="report.pdf").get_json()
    assert body["content_type"] == "application/pdf"
    assert client.get(f"{UPLOADS}/{body['id']}/content", headers=auth(owner)).data == document


def test_the_bomb_is_only_a_few_kilobytes():
    assert len(png_bomb()) < 16 * 1024


def test_a_truncated_jpeg_is_refused(client, auth, owner_and_pet):
    owner, pet = owner_and_pet
    whole = jpeg_with_gps(width=400, height=300)
    assert_problem(upload(client, auth(owner), pet, whole[: len(whole) // 2]), 422)


def test_too_big_is_413_before_reading_it_all(make_app, auth, owner_and_pet):
    owner, pet = owner_and_pet
    client = make_app(UPLOAD_MAX_BYTES=10_000).test_client()
    assert_problem(upload(client, auth(owner), pet, b"\xff\xd8\xff" + b"\x00" * 200_000), 413)


def test_a_deflated_dicom_of_300_frames_is_refused_from_its_header(client, auth, owner_and_pet):
    owner, pet = owner_and_pet
    bomb = deflated_dicom(frames=300, rows=1000, columns=1000)  # inflates to 300 MB
    assert len(bomb) < 300 * 1024
    body = assert_problem(upload(client, auth(owner), pet, bomb, filename="scan.dcm"), 422, "image_too_large")
    assert "300 frame(s)" in body["detail"]
    assert db.session.scalar(select(func.count()).select_from(Upload)) == 0


def test_the_dicom_bomb_costs_the_worker_little_memory():
    """Issue 10: 285 KB took a worker from 257 MB to 1.2 GB. Measured in a fresh process (bench/media_memory.py)."""
    import json
    import os
    import subprocess
    import sys

    script = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bench", "media_memory.py")
    result = subprocess.run([sys.executable, script, "--json"], capture_output=True, text=True, check=True,
                            timeout=120)
    measured = json.loads(result.stdout.strip().splitlines()[-1])
    assert measured["growth_mb"] < 150, measured


def test_a_multi_frame_dicom_under_the_cap_is_kept_whole_and_previewed_from_its_first_frame(
        client, auth, owner_and_pet):
    owner, pet = owner_and_pet
    scan = deflated_dicom(frames=4, rows=60, columns=40, bits=16, value=7)
    body = upload(client, auth(owner), pet, scan, filename="scan.dcm").get_json()
    assert body["content_type"] == "application/dicom" and (body["width"], body["height"]) == (40, 60)
    content = client.get(f"{UPLOADS}/{body['id']}/content", headers=auth(owner))
    assert content.data == scan
    preview = client.get(f"{UPLOADS}/{body['id']}/thumbnail", headers=auth(owner))
    assert Image.open(io.BytesIO(preview.data)).size == (40, 60)


def test_the_cap_counts_frames_and_colour_samples(make_app, auth, owner_and_pet):
    owner, pet = owner_and_pet
    client = make_app(UPLOAD_MAX_SAMPLES=10_000).test_client()
    # 5 frames of 50x50: 12,500 samples, over the cap although each frame alone is far under it.
    assert_problem(upload(client, auth(owner), pet, deflated_dicom(frames=5, rows=50, columns=50)), 422,
                   "image_too_large")
    # 80x50 RGBA is 4,000 pixels but 16,000 samples.
    assert_problem(upload(client, auth(owner), pet, png(width=80, height=50), filename="a.png"), 422,
                   "image_too_large")
    assert upload(client, auth(owner), pet, png(width=50, height=50), filename="a.png").status_code == 201


@pytest.mark.parametrize("name, expected", [("../../etc/passwd.png", "passwd.png"),
                                            ("..\\..\\boot.ini.png", "boot.ini.png"),
                                            ("x\x07y\u202e\t.png", "xy.png"), ("", "upload.png")])
def test_filenames_are_made_safe(client, auth, owner_and_pet, name, expected):
    owner, pet = owner_and_pet
    assert upload(client, auth(owner), pet, png(), filename=name).get_json()["filename"] == expected


def test_someone_elses_patient_and_file(client, auth, owner_and_pet, gen_user):
    owner, pet = owner_and_pet
    stranger = gen_user()
    assert_problem(upload(client, auth(stranger), pet, png()), 404)
    upload_id = upload(client, auth(owner), pet, png()).get_json()["id"]
    for suffix in ("", "/content", "/thumbnail"):
        assert_problem(client.get(f"{UPLOADS}/{upload_id}{suffix}", headers=auth(stranger)), 404)
    assert_problem(client.delete(f"{UPLOADS}/{upload_id}", headers=auth(stranger)), 404)
    assert client.get(f"{UPLOADS}?patient_id={pet.id}", headers=auth(stranger)).get_json()["total"] == 0


def test_range_requests(client, auth, owner_and_pet):
    owner, pet = owner_and_pet
    upload_id = upload(client, auth(owner), pet, PDF, filename="report.pdf").get_json()["id"]
    partial = client.get(f"{UPLOADS}/{upload_id}/content", headers={**auth(owner), "Range": "bytes=0-7"})
    assert partial.status_code == 206 and partial.data == PDF[:8]


def test_a_tampered_file_is_not_served(app, client, auth, owner_and_pet):
    from pawmanity.media import storage

    owner, pet = owner_and_pet
    upload_id = upload(client, auth(owner), pet, PDF, filename="report.pdf").get_json()["id"]
    stored = db.session.scalar(select(Upload.storage_key).where(Upload.id == uuid.UUID(upload_id)))
    storage.backend().path(stored).write_bytes(PDF.replace(b"Catalog", b"Catalag"))
    assert_problem(client.get(f"{UPLOADS}/{upload_id}/content", headers=auth(owner)), 500, "integrity_check_failed")


def test_delete_keeps_an_audit_trail(client, auth, owner_and_pet):
    owner, pet = owner_and_pet
    upload_id = upload(client, auth(owner), pet, png()).get_json()["id"]
    assert client.delete(f"{UPLOADS}/{upload_id}", headers=auth(owner)).status_code == 204
    assert_problem(client.get(f"{UPLOADS}/{upload_id}", headers=auth(owner)), 404)
    deleted = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "upload.delete"))
    assert deleted.actor_id == owner.id and deleted.object_id == upload_id and deleted.detail["sha256"]


def test_identical_files_are_stored_once(app, client, auth, owner_and_pet):
    from pathlib import Path

    owner, pet = owner_and_pet
    first = upload(client, auth(owner), pet, PDF, filename="a.pdf").get_json()
    second = upload(client, auth(owner), pet, PDF, filename="b.pdf").get_json()
    assert first["id"] != second["id"] and first["sha256"] == second["sha256"]
    assert len([p for p in Path(app.config["UPLOAD_DIR"]).rglob("*.pdf")]) == 1


def test_the_s3_backend_stores_and_serves_through_the_same_checks(make_app, auth, owner_and_pet, monkeypatch):
    """Against moto's in-process S3 double: the bytes go to the bucket under the content key, and come back
    verified, with range requests."""
    import boto3
    from moto import mock_aws

    for name, value in {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
                        "AWS_DEFAULT_REGION": "eu-central-1"}.items():
        monkeypatch.setenv(name, value)
    owner, pet = owner_and_pet
    with mock_aws():
        boto3.client("s3").create_bucket(Bucket="clinic-files",
                                          CreateBucketConfiguration={"LocationConstraint": "eu-central-1"})
        client = make_app(UPLOAD_STORAGE="s3", UPLOAD_S3_BUCKET="clinic-files").test_client()
        body = upload(client, auth(owner), pet, jpeg_with_gps()).get_json()
        keys = [item["Key"] for item in boto3.client("s3").list_objects_v2(Bucket="clinic-files")["Contents"]]
        assert f"uploads/{body['sha256'][:2]}/{body['sha256'][2:4]}/{body['sha256']}.jpg" in keys
        content = client.get(f"{UPLOADS}/{body['id']}/content", headers=auth(owner))
        import hashlib

        assert hashlib.sha256(content.data).hexdigest() == body["sha256"]
        partial = client.get(f"{UPLOADS}/{body['id']}/content", headers={**auth(owner), "Range": "bytes=0-9"})
        assert partial.status_code == 206 and partial.data == content.data[:10]


def test_a_file_can_belong_to_a_medical_record_of_the_same_patient(client, auth, owner_and_pet, gen_patient):
    owner, pet = owner_and_pet
    record = client.post(f"/api/v1/patients/{pet.id}/records", headers=auth(owner), json={
        "kind": "lab_report", "title": "Skin scraping", "recorded_at": "2026-11-01T10:00:00Z"}).get_json()
    body = upload(client, auth(owner), pet, PDF, filename="lab.pdf", record_id=record["id"]).get_json()
    assert body["record_id"] == record["id"]
    other_pet = gen_patient(owner)
    assert_problem(upload(client, auth(owner), other_pet, PDF, filename="lab.pdf", record_id=record["id"]), 404,
                   "record_not_found")


def photo(kind, side=800):
    import random

    if kind == "sharp":
        image = Image.new("RGB", (side, side), "white")
        pixels = image.load()
        for x in range(side):
            for y in range(side):
                if (x // 8 + y // 8) % 2:
                    pixels[x, y] = (30, 30, 30)
    elif kind == "blurred":
        from PIL import ImageFilter

        image = photo("sharp", side).filter(ImageFilter.GaussianBlur(12))
    elif kind == "dark":
        rng = random.Random(1)
        image = Image.new("RGB", (side, side))
        image.putdata([(v, v, v) for v in (rng.randint(0, 20) for _ in range(side * side))])
    elif kind == "bright":
        rng = random.Random(1)
        image = Image.new("RGB", (side, side))
        image.putdata([(v, v, v) for v in (rng.randint(235, 255) for _ in range(side * side))])
    return image


def as_png(image):
    output = io.BytesIO()
    image.save(output, format="PNG")
    return output.getvalue()


@pytest.mark.parametrize("kind, side, problem", [
    ("sharp", 800, None),
    ("blurred", 800, "blurred"),
    ("dark", 800, "too dark"),
    ("bright", 800, "overexposed"),
    ("sharp", 200, "small"),
])
def test_photo_quality_advice(client, auth, owner_and_pet, kind, side, problem):
    owner, pet = owner_and_pet
    quality = upload(client, auth(owner), pet, as_png(photo(kind, side)), filename="ear.png").get_json()["quality"]
    if problem is None:
        assert quality["retake"] is False and quality["advice"] == []
    else:
        assert quality["retake"] is True and any(problem in line for line in quality["advice"])


REFUSAL_ON_THE_GEVENT_POOL = """
from gevent import monkey
monkey.patch_all()
from pawmanity import create_app
from pawmanity.media import imaging
from pawmanity.core.offload import run_blocking
app = create_app("testing", plugins=(), settings={"ASYNC_MODE": "gevent", "SQLALCHEMY_DATABASE_URI": "sqlite://"})
with app.app_context():
    for data in (b"<html></html>", b""):
        try:
            run_blocking(imaging.clean, data, max_samples=1000)
        except Exception as error:
            print(type(error).__name__)
"""


def test_expected_refusals_on_the_image_pool_print_no_traceback():
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-c", REFUSAL_ON_THE_GEVENT_POOL], capture_output=True, text=True,
                            timeout=120, check=True)
    assert result.stdout.split() == ["UnsupportedMediaType", "InvalidInput"]  # still raised to the caller
    assert "Traceback" not in result.stderr, result.stderr


def test_a_refused_upload_is_one_log_line(client, auth, owner_and_pet, caplog):
    owner, pet = owner_and_pet
    with caplog.at_level("INFO"):
        assert_problem(upload(client, auth(owner), pet, png_bomb()), 422, "image_too_large")
    refusals = [r for r in caplog.records if "upload refused" in r.getMessage()]
    assert len(refusals) == 1 and "422 image_too_large" in refusals[0].getMessage()
    assert not any(r.exc_info for r in caplog.records) and all(r.levelname != "ERROR" for r in caplog.records)


# Parsed in one go, a multipart body held the loop for one turn of 12-22 ms of CPU per 3 MB
# (bench/upload_loop_bench.py), 58 ms for this one; read cooperatively and read back on the media pool, this upload's
# longest turn took 2-5 ms.
# cpu_ms is the loop thread's own CPU in that turn, which waiting for a core on a busy machine does not inflate.
LARGE_BODY_BYTES = 8 * 1024 * 1024
UPLOAD_TURN_CPU_BOUND_MS = 15


@pytest.mark.slow
def test_a_large_upload_body_is_read_without_holding_the_event_loop(server_env, tmp_path):
    import json
    import os
    import time

    import requests

    from tests.live_server import gunicorn
    from tests.support import PASSWORD

    env = dict(server_env, PAWMANITY_LOOP_STALL_THRESHOLD_MS="5", PAWMANITY_UPLOAD_DIR=str(tmp_path / "uploads"),
               PAWMANITY_UPLOAD_RATE_LIMIT="10000 per minute", PAWMANITY_REGISTER_RATE_LIMIT="10000 per minute",
               PAWMANITY_LOGIN_RATE_LIMIT="10000 per minute")
    log_path = tmp_path / "gunicorn.log"
    with gunicorn(env, log_path) as base_url:
        email = f"large-{uuid.uuid4().hex[:8]}@example.com"
        assert requests.post(f"{base_url}/api/v1/auth/register", timeout=30, json={
            "email": email, "password": PASSWORD, "full_name": "Large Upload", "role": "patient"}).status_code == 201
        token = requests.post(f"{base_url}/api/v1/auth/login", timeout=30,
                              json={"email": email, "password": PASSWORD}).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        pet = requests.post(f"{base_url}/api/v1/patients", headers=headers, timeout=30,
                            json={"name": "Biscuit", "species": "dog", "sex": "male"}).json()
        for request_id, size in (("a-small-upload", 1024), ("the-large-upload", LARGE_BODY_BYTES)):
            # The small one first: a first upload's one-off costs (imports, schemas) are not what is measured.
            answer = requests.post(f"{base_url}{UPLOADS}", headers={**headers, "X-Request-ID": request_id},
                                   timeout=60, data={"patient_id": pet["id"]},
                                   files={"file": ("scan.jpg", os.urandom(size), "image/jpeg")})
            assert answer.status_code == 415, answer.text  # parsed in full, then refused by its bytes
        time.sleep(0.3)  # the monitor logs the turns its tracer saw on its next wake-up
    stalls = [json.loads(line[line.index("{"):]) for line in log_path.read_text().splitlines()
              if '"loop_stall"' in line and "request_id=the-large-upload" in line]
    assert max((stall["cpu_ms"] for stall in stalls), default=0) < UPLOAD_TURN_CPU_BOUND_MS, stalls
