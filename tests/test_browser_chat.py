"""Two real headless Chromium browsers, a doctor and a patient, chat through the page the app serves."""

import shutil
from datetime import timedelta
from pathlib import Path

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
    from playwright.sync_api import expect, sync_playwright

    OUTPUT.mkdir(exist_ok=True)
    with gunicorn(server_env, tmp_path / "server.log") as base_url:
        doctor_token = requests.post(f"{base_url}/api/v1/auth/login", timeout=10, json={
            "email": chat_scene["doctor"], "password": PASSWORD}).json()["access_token"]
        opened = requests.post(f"{base_url}/api/v1/consultations", timeout=10,
                               json={"appointment_id": chat_scene["appointment_id"]},
                               headers={"Authorization": f"Bearer {doctor_token}"})
        assert opened.status_code == 201, opened.text

        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            try:
                doctor = browser.new_context().new_page()
                patient = browser.new_context().new_page()
                sign_in(doctor, base_url, chat_scene["doctor"])
                sign_in(patient, base_url, chat_scene["owner"])

                patient.fill("#body", "Hello, Biscuit keeps scratching his ear")
                expect(doctor.locator("#typing")).to_have_text("typing…")
                patient.click("#composer button")
                expect(doctor.locator("#messages li.theirs .text")).to_have_text(
                    ["Hello, Biscuit keeps scratching his ear"])
                # The doctor's page marked it read; the patient sees the receipt.
                expect(patient.locator("#messages li.mine .status")).to_have_text(["read"])

                doctor.fill("#body", "Is the ear red or smelly?")
                doctor.click("#composer button")
                expect(patient.locator("#messages li.theirs .text")).to_have_text(["Is the ear red or smelly?"])
                expect(doctor.locator("#chat-error")).to_have_text("")

                doctor.screenshot(path=str(OUTPUT / "chat-doctor.png"), full_page=True)
                patient.screenshot(path=str(OUTPUT / "chat-patient.png"), full_page=True)
            finally:
                browser.close()
    assert Path(OUTPUT / "chat-doctor.png").stat().st_size > 0
