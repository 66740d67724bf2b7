"""Two headless Chromium pages with fake cameras, a doctor and a patient, pick their session from a list and connect
over WebRTC through the app's signalling; the patient mutes, reloads mid-call and the call comes back, then hangs
up; a session not open yet says why."""

from datetime import timedelta

import pytest
import requests

from tests.live_server import gunicorn
from tests.support import PASSWORD
from tests.test_browser_chat import (  # noqa: F401  (pytestmark: the same conditions)
    CHROMIUM,
    CHROMIUM_ARGS,
    OUTPUT,
    browser_context,
    local_clock,
    pytestmark,
)

MEDIA_ARGS = ["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"]


@pytest.fixture
def video_scene(gen_user, gen_patient, gen_doctor, gen_appointment):
    from pawmanity.core.database import utcnow

    owner = gen_user(full_name="Sam Lee")
    doctor_user, doctor = gen_doctor(full_name="Dr. Elena Rivera")
    pet = gen_patient(owner, name="Biscuit")
    appointment = gen_appointment(doctor, pet, utcnow() + timedelta(minutes=3), status="confirmed")
    # Tomorrow's call: its session is listed, but cannot be joined yet.
    later = gen_appointment(doctor, pet, utcnow() + timedelta(days=1), status="confirmed")
    return {"owner": owner.email, "doctor": doctor_user.email, "appointment_id": str(appointment.id),
            "later_id": str(later.id)}


def sign_in(page, base_url, email):
    page.goto(f"{base_url}/video")
    page.fill("#email", email)
    page.fill("#password", PASSWORD)
    page.click("#login button[type=submit]")
    page.wait_for_selector("#sessions button")


def join(page, base_url, email, session_id):
    """Sign in and pick the session from the list: no raw id to type."""
    sign_in(page, base_url, email)
    page.click(f'#sessions button[data-id="{session_id}"]')


def wait_connected(page, timeout=45_000):  # WebRTC on a loaded 2-core runner can take its time
    try:
        _wait_connected(page, timeout)
    except Exception:
        # Where the page had got to, for the failure report.
        print("call page:", page.evaluate("""() => JSON.stringify({state: document.getElementById('state').textContent,
            error: document.getElementById('error').textContent, pc: window.pawmanityCall.pc &&
            [window.pawmanityCall.pc.connectionState, window.pawmanityCall.pc.iceConnectionState,
             window.pawmanityCall.pc.signalingState]})"""))
        raise


def _wait_connected(page, timeout):
    page.wait_for_function("() => window.pawmanityCall && window.pawmanityCall.pc && "
                           "window.pawmanityCall.pc.connectionState === 'connected'", timeout=timeout)
    # Media arrived from the other side, not just a connection.
    page.wait_for_function("() => document.getElementById('remote').srcObject && "
                           "document.getElementById('remote').srcObject.getVideoTracks().length > 0", timeout=timeout)


def test_doctor_and_patient_connect_and_reconnect_after_a_reload(video_scene, server_env, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    OUTPUT.mkdir(exist_ok=True)
    with gunicorn(server_env, tmp_path / "server.log") as base_url:
        doctor_token = requests.post(f"{base_url}/api/v1/auth/login", timeout=10, json={
            "email": video_scene["doctor"], "password": PASSWORD}).json()["access_token"]
        session, later = (requests.post(f"{base_url}/api/v1/video-sessions", timeout=10,
                                        json={"appointment_id": video_scene[key]},
                                        headers={"Authorization": f"Bearer {doctor_token}"}).json()
                          for key in ("appointment_id", "later_id"))

        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                                 args=CHROMIUM_ARGS + MEDIA_ARGS)
            try:
                # bypass_csp lets the test's own probes run; the page keeps its policy for everything else.
                doctor = browser_context(browser, bypass_csp=True).new_page()
                patient = browser_context(browser, bypass_csp=True).new_page()

                # The picker: the caller's sessions by who and when (on the browser's clock), soonest first.
                sign_in(patient, base_url, video_scene["owner"])
                expect(patient.locator("#sessions button .title")).to_have_text(
                    ["Biscuit with Dr. Elena Rivera"] * 2)
                expect(patient.locator("#sessions button .started time")).to_have_text(
                    [local_clock(call["starts_at"], with_date=True) for call in (session, later)])
                # Tomorrow's session cannot be joined yet, and the page says why instead of failing silently.
                patient.click(f'#sessions button[data-id="{later["id"]}"]')
                expect(patient.locator("#error")).to_contain_text("Joining opens at")
                expect(patient.locator("#picker")).to_be_visible()

                join(doctor, base_url, video_scene["doctor"], session["id"])
                patient.click(f'#sessions button[data-id="{session["id"]}"]')
                wait_connected(doctor)
                wait_connected(patient)
                expect(patient.locator("#call-title")).to_have_text("Biscuit with Dr. Elena Rivera")
                expect(doctor.locator("#end")).to_be_visible()
                expect(patient.locator("#end")).to_be_hidden()
                # Mute switches the microphone's track off (the call goes on), and back on.
                patient.click("#mute")
                expect(patient.locator("#mute")).to_have_text("Unmute")
                assert patient.evaluate("window.pawmanityCall.stream.getAudioTracks().every(t => !t.enabled)")
                patient.click("#mute")
                assert patient.evaluate("window.pawmanityCall.stream.getAudioTracks().every(t => t.enabled)")
                doctor.screenshot(path=str(OUTPUT / "video-doctor.png"))

                patient.reload()
                join(patient, base_url, video_scene["owner"], session["id"])
                wait_connected(patient)
                wait_connected(doctor)
                patient.screenshot(path=str(OUTPUT / "video-patient-after-reload.png"))

                # Hang up: back to the list, the camera released, and the server sees the patient leave.
                patient.click("#hangup")
                expect(patient.locator("#picker")).to_be_visible()
                assert patient.evaluate("window.pawmanityCall.stream === null && window.pawmanityCall.pc === null")
                patient_id = patient.evaluate("window.pawmanitySession.me.id")
            finally:
                browser.close()

        detail = requests.get(f"{base_url}/api/v1/video-sessions/{session['id']}", timeout=10,
                              headers={"Authorization": f"Bearer {doctor_token}"}).json()
        assert detail["status"] == "open"
        # The patient joined twice (before and after the reload) without the session ending, and hung up.
        assert len(detail["participants"]) == 3
        assert all(visit["left_at"] for visit in detail["participants"] if visit["user_id"] == patient_id)
