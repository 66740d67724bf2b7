"""Two headless Chromium pages with fake cameras, a doctor and a patient, connect over WebRTC through the app's
signalling; then the patient reloads mid-call and the call comes back."""

from datetime import timedelta

import pytest
import requests

from tests.live_server import gunicorn
from tests.support import PASSWORD
from tests.test_browser_chat import CHROMIUM, CHROMIUM_ARGS, OUTPUT, pytestmark  # noqa: F401  (same conditions)

MEDIA_ARGS = ["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"]


@pytest.fixture
def video_scene(gen_user, gen_patient, gen_doctor, gen_appointment):
    from pawmanity.core.database import utcnow

    owner = gen_user(full_name="Sam Lee")
    doctor_user, doctor = gen_doctor(full_name="Dr. Elena Rivera")
    appointment = gen_appointment(doctor, gen_patient(owner), utcnow() + timedelta(minutes=3), status="confirmed")
    return {"owner": owner.email, "doctor": doctor_user.email, "appointment_id": str(appointment.id)}


def join(page, base_url, email, session_id):
    page.goto(f"{base_url}/video")
    page.fill("#email", email)
    page.fill("#password", PASSWORD)
    page.fill("#session", session_id)
    page.click("#login button[type=submit]")


def wait_connected(page, timeout=45_000):  # WebRTC on a loaded 2-core runner can take its time
    page.wait_for_function("() => window.pawmanityCall && window.pawmanityCall.pc && "
                           "window.pawmanityCall.pc.connectionState === 'connected'", timeout=timeout)
    # Media arrived from the other side, not just a connection.
    page.wait_for_function("() => document.getElementById('remote').srcObject && "
                           "document.getElementById('remote').srcObject.getVideoTracks().length > 0", timeout=timeout)


def test_doctor_and_patient_connect_and_reconnect_after_a_reload(video_scene, server_env, tmp_path):
    from playwright.sync_api import sync_playwright

    OUTPUT.mkdir(exist_ok=True)
    with gunicorn(server_env, tmp_path / "server.log") as base_url:
        doctor_token = requests.post(f"{base_url}/api/v1/auth/login", timeout=10, json={
            "email": video_scene["doctor"], "password": PASSWORD}).json()["access_token"]
        session = requests.post(f"{base_url}/api/v1/video-sessions", timeout=10,
                                json={"appointment_id": video_scene["appointment_id"]},
                                headers={"Authorization": f"Bearer {doctor_token}"}).json()

        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                                 args=CHROMIUM_ARGS + MEDIA_ARGS)
            try:
                # bypass_csp lets the test's own probes run; the page keeps its policy for everything else.
                doctor = browser.new_context(bypass_csp=True).new_page()
                patient = browser.new_context(bypass_csp=True).new_page()
                join(doctor, base_url, video_scene["doctor"], session["id"])
                join(patient, base_url, video_scene["owner"], session["id"])
                wait_connected(doctor)
                wait_connected(patient)
                doctor.screenshot(path=str(OUTPUT / "video-doctor.png"))

                patient.reload()
                join(patient, base_url, video_scene["owner"], session["id"])
                wait_connected(patient)
                wait_connected(doctor)
                patient.screenshot(path=str(OUTPUT / "video-patient-after-reload.png"))
            finally:
                browser.close()

        detail = requests.get(f"{base_url}/api/v1/video-sessions/{session['id']}", timeout=10,
                              headers={"Authorization": f"Bearer {doctor_token}"}).json()
        assert detail["status"] == "open"
        # The patient joined twice (before and after the reload) without the session ending.
        assert len(detail["participants"]) == 3
