"""Two real headless Chromium browsers, a doctor and a patient, chat through the page the app serves: names rather
than ids, times in the browser's own time zone, an attachment, and a token refreshed on the open socket."""

import shutil
import time
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import requests

from tests.live_server import ROOT, gunicorn
from tests.support import PASSWORD

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
SOCKETIO_CLIENT = ROOT / "node_modules" / "socket.io-client" / "dist" / "socket.io.min.js"
OUTPUT = ROOT / "test-output"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(CHROMIUM is None, reason="needs Chromium (apt-get install chromium; .ci/run installs it)"),
    pytest.mark.skipif(not SOCKETIO_CLIENT.is_file(), reason="needs the npm packages (npm install; make does it)"),
]
# Chromium as root in a sandbox-less container, and with nothing reaching out to the internet.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
# Not UTC, and no daylight saving time to make the expected clock ambiguous: a page that showed UTC would fail.
BROWSER_TIMEZONE = "Asia/Kolkata"


def local_clock(iso, *, with_date=False):
    """What the pages show for an ISO time in BROWSER_TIMEZONE: "14:05", or "Nov 30 14:05"."""
    moment = datetime.fromisoformat(iso.replace("Z", "+00:00")).astimezone(ZoneInfo(BROWSER_TIMEZONE))
    today = datetime.now(ZoneInfo(BROWSER_TIMEZONE)).date() == moment.date()
    return (f"{moment:%b} {moment.day} " if with_date or not today else "") + f"{moment:%H:%M}"


def browser_context(browser, **options):
    return browser.new_context(timezone_id=BROWSER_TIMEZONE, locale="en-US", **options)


@pytest.fixture
def chat_scene(gen_user, gen_patient, gen_doctor, gen_appointment):
    from pawmanity.core.database import utcnow

    owner = gen_user(full_name="Sam Lee")
    doctor_user, doctor = gen_doctor(full_name="Dr. Elena Rivera")
    appointment = gen_appointment(doctor, gen_patient(owner, name="Biscuit"), utcnow() - timedelta(minutes=2),
                                  status="confirmed")
    return {"owner": owner.email, "doctor": doctor_user.email, "appointment_id": str(appointment.id)}


def sign_in(page, base_url, email):
    page.goto(f"{base_url}/chat")
    page.fill("#email", email)
    page.fill("#password", PASSWORD)
    page.click("#login button[type=submit]")
    page.wait_for_selector("#consultations button")
    page.click("#consultations button")
    page.wait_for_selector("#conversation:not([hidden])")
    assert not page.is_visible("#login")


def test_doctor_and_patient_chat_in_two_browsers(chat_scene, server_env, tmp_path):
    from PIL import Image
    from playwright.sync_api import expect, sync_playwright

    photo = tmp_path / "ear.png"
    Image.new("RGB", (64, 48), (200, 80, 60)).save(photo)

    OUTPUT.mkdir(exist_ok=True)
    with gunicorn(server_env, tmp_path / "server.log") as base_url:
        doctor_token = requests.post(f"{base_url}/api/v1/auth/login", timeout=10, json={
            "email": chat_scene["doctor"], "password": PASSWORD}).json()["access_token"]
        opened = requests.post(f"{base_url}/api/v1/consultations", timeout=10,
                               json={"appointment_id": chat_scene["appointment_id"]},
                               headers={"Authorization": f"Bearer {doctor_token}"})
        assert opened.status_code == 201, opened.text
        consultation = opened.json()

        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            try:
                doctor = browser_context(browser).new_page()
                patient = browser_context(browser).new_page()
                sign_in(doctor, base_url, chat_scene["doctor"])
                sign_in(patient, base_url, chat_scene["owner"])
                # Who the consultation is about and with, and when it started on the viewer's clock.
                for page in (doctor, patient):
                    expect(page.locator("#consultations button .title")).to_have_text(
                        ["Biscuit with Dr. Elena Rivera"])
                    expect(page.locator("#consultations button .started time")).to_have_text(
                        [local_clock(consultation["started_at"], with_date=True)])
                    expect(page.locator("#conversation-title")).to_have_text("Biscuit with Dr. Elena Rivera")

                patient.fill("#body", "Hello, Biscuit keeps scratching his ear")
                expect(doctor.locator("#typing")).to_have_text("typing…")
                patient.set_input_files("#file", str(photo))
                patient.click("#composer button[type=submit]")
                expect(doctor.locator("#messages li.theirs .text")).to_have_text(
                    ["Hello, Biscuit keeps scratching his ear"])
                expect(doctor.locator("#messages li.theirs .sender")).to_have_text(["Biscuit"])
                expect(doctor.locator("#messages li.theirs .attachments a")).to_have_text([
                    "ear.png (1 KB)"])
                # The doctor's page marked it read; the patient sees the receipt.
                expect(patient.locator("#messages li.mine .status")).to_have_text(["read"])
                expect(patient.locator("#messages li.mine .sender")).to_have_text(["You"])

                doctor.fill("#body", "Is the ear red or smelly?")
                doctor.click("#composer button[type=submit]")
                expect(patient.locator("#messages li.theirs .text")).to_have_text(["Is the ear red or smelly?"])
                expect(patient.locator("#messages li.theirs .sender")).to_have_text(["Dr. Elena Rivera"])
                expect(doctor.locator("#chat-error")).to_have_text("")

                # Message times on the viewer's clock, as the server stamped them.
                messages = requests.get(f"{base_url}/api/v1/consultations/{consultation['id']}/messages",
                                        timeout=10, headers={"Authorization": f"Bearer {doctor_token}"}).json()
                stamps = [local_clock(message["created_at"]) for message in messages["items"]]
                assert messages["items"][0]["attachment_ids"]
                expect(patient.locator("#messages li .meta time")).to_have_text(stamps)
                expect(doctor.locator("#messages li .meta time")).to_have_text(stamps)

                # The access token is renewed before it expires (15 minutes, less a minute), and the open
                # socket is carried over to the new one with `reauth`.
                due = patient.evaluate("window.pawmanitySession.nextRefreshAt") / 1000 - time.time()
                assert 14 * 60 - 30 < due < 14 * 60 + 5, due
                old_token = patient.evaluate("window.pawmanitySession.token")
                patient.evaluate("window.pawmanitySession.refresh()")
                patient.wait_for_function("() => window.pawmanitySession.lastReauth !== null")
                assert patient.evaluate("window.pawmanitySession.lastReauth.ok") is True
                assert patient.evaluate("window.pawmanitySession.token") != old_token
                patient.fill("#body", "It is red")
                patient.click("#composer button[type=submit]")
                expect(doctor.locator("#messages li.theirs .text")).to_have_text(
                    ["Hello, Biscuit keeps scratching his ear", "It is red"])
                expect(patient.locator("#chat-error")).to_have_text("")

                doctor.screenshot(path=str(OUTPUT / "chat-doctor.png"), full_page=True)
                patient.screenshot(path=str(OUTPUT / "chat-patient.png"), full_page=True)
            finally:
                browser.close()
    assert Path(OUTPUT / "chat-doctor.png").stat().st_size > 0
