"""Web Push, checked the way a browser and its push service would: a local push endpoint decrypts each message with
the subscription's private keys (RFC 8291, aes128gcm; a decryptor written here on `cryptography` alone and proven on
the RFC's own test vector) and verifies the VAPID JWT (RFC 8292) with the server's public key (PyJWT)."""

import base64
import json
import os
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import jwt
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import select

from pawmanity.core.extensions import db
from pawmanity.notifications.models import PushSubscription
from pawmanity.notifications.notifier import notify
from tests.support import assert_problem


def b64url(raw):
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def unb64url(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _hkdf(salt, ikm, info, length):
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=salt, info=info).derive(ikm)


def decrypt_aes128gcm(body, ua_private, auth_secret):
    """What the browser does with a push message (RFC 8291 section 3.4 over RFC 8188), for one record."""
    salt, record_size, id_length = body[:16], int.from_bytes(body[16:20], "big"), body[20]
    as_public = body[21:21 + id_length]
    ciphertext = body[21 + id_length:]
    assert id_length == 65 and len(ciphertext) <= record_size, "one record, keyed by the sender's public key"
    ua_public = ua_private.public_key().public_bytes(serialization.Encoding.X962,
                                                     serialization.PublicFormat.UncompressedPoint)
    shared = ua_private.exchange(ec.ECDH(), ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), as_public))
    ikm = _hkdf(auth_secret, shared, b"WebPush: info\x00" + ua_public + as_public, 32)
    key = _hkdf(salt, ikm, b"Content-Encoding: aes128gcm\x00", 16)
    nonce = _hkdf(salt, ikm, b"Content-Encoding: nonce\x00", 12)
    padded = AESGCM(key).decrypt(nonce, ciphertext, None)
    content = padded.rstrip(b"\x00")
    assert content.endswith(b"\x02"), "the last record ends with the 0x02 delimiter"
    return content[:-1]


def test_the_decryptor_reads_rfc_8291_appendix_a():
    ua_private = ec.derive_private_key(int.from_bytes(unb64url("q1dXpw3UpT5VOmu_cf_v6ih07Aems3njxI-JWgLcM94"), "big"),
                                       ec.SECP256R1())
    body = unb64url("DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8"
                    "wEqKK6PBru3jl7A_yl95bQpu6cVPTpK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSxsj_Qulcy4a-fN")
    assert decrypt_aes128gcm(body, ua_private, unb64url("BTBZMqHH6r4Tts7J_aSIgg")) == \
        b"When I grow up, I want to be a watermelon"


class Browser:
    """A browser's half of a subscription: its P-256 key pair and auth secret."""

    def __init__(self, endpoint):
        self.endpoint = endpoint
        self.private_key = ec.generate_private_key(ec.SECP256R1())
        self.auth_secret = os.urandom(16)

    def subscription_json(self):
        public = self.private_key.public_key().public_bytes(serialization.Encoding.X962,
                                                            serialization.PublicFormat.UncompressedPoint)
        return {"endpoint": self.endpoint, "expirationTime": None,
                "keys": {"p256dh": b64url(public), "auth": b64url(self.auth_secret)}}


class PushService:
    """A local push endpoint: records what arrives, answers each path with the status it is told (201 by default)."""

    def __init__(self):
        self.received = []
        self.answers = {}
        service = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                service.received.append({"path": self.path, "headers": {name.lower(): value for name, value in self.headers.items()}, "body": body})
                self.send_response(service.answers.get(self.path, 201))
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def browser(self, name):
        return Browser(f"{self.base}/push/{name}")

    def to(self, browser):
        return [message for message in self.received if message["path"] == urlsplit(browser.endpoint).path]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def push_service():
    service = PushService()
    yield service
    service.close()


PUSH_SETTINGS = {"PUSH_SERVICE_HOSTS": ("127.0.0.1",), "PUSH_ALLOW_HTTP_ENDPOINTS": True,
                 "VAPID_SUBJECT": "mailto:ops@clinic.example"}


@pytest.fixture
def app(make_app):
    """This module's app (the fixtures' too: the embedded Celery runs tasks in the app the test set up first) accepts
    the local push service."""
    app = make_app(**PUSH_SETTINGS)
    with app.app_context():
        yield app


def subscribe(client, headers, browser):
    return client.post("/api/v1/notifications/push/subscriptions", headers=headers, json=browser.subscription_json())


def verify_vapid(message, server_key, endpoint):
    """RFC 8292: `Authorization: vapid t=<ES256 JWT>, k=<the server's public key>`."""
    scheme, _, params = message["headers"]["authorization"].partition(" ")
    assert scheme == "vapid"
    fields = dict(part.strip().split("=", 1) for part in params.split(","))
    assert fields["k"] == server_key
    public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), unb64url(fields["k"]))
    origin = "{0.scheme}://{0.netloc}".format(urlsplit(endpoint))
    claims = jwt.decode(fields["t"], public, algorithms=["ES256"], audience=origin)
    assert claims["sub"] == "mailto:ops@clinic.example"
    assert time.time() < claims["exp"] <= time.time() + 24 * 3600
    return claims


def opened(message, browser):
    assert message["headers"]["content-encoding"] == "aes128gcm"
    assert int(message["headers"]["ttl"]) > 0
    return json.loads(decrypt_aes128gcm(message["body"], browser.private_key, browser.auth_secret))


def test_a_notification_reaches_the_browser_encrypted_signed_and_without_details(client, push_service, gen_user,
                                                                                auth):
    alice = gen_user()
    headers = auth(alice)
    browser = push_service.browser("alice-laptop")
    key = client.get("/api/v1/notifications/push/key").get_json()["public_key"]
    assert len(unb64url(key)) == 65 and unb64url(key)[0] == 4
    created = subscribe(client, headers, browser)
    assert created.status_code == 201, created.get_json()
    assert created.headers["Location"] == f"/api/v1/notifications/push/subscriptions/{created.get_json()['id']}"

    notes = notify([alice.id], "appointment.confirmed", title="Dr Vega confirmed: chest pain follow-up",
                   body="Bring your ECG results")
    db.session.commit()

    [message] = push_service.to(browser)
    verify_vapid(message, key, browser.endpoint)
    payload = opened(message, browser)
    assert payload == {"title": "PAWMANITY", "body": "An appointment changed.", "category": "appointments",
                       "notification_id": str(notes[0].id)}
    raw = json.dumps(payload)
    assert "chest" not in raw and "ECG" not in raw and "Vega" not in raw
    sent = client.get(f"/api/v1/notifications/push/subscriptions/{created.get_json()['id']}",
                           headers=headers).get_json()
    assert sent["last_sent_at"] is not None


def test_a_rolled_back_notification_is_not_pushed(client, push_service, gen_user, auth):
    alice = gen_user()
    browser = push_service.browser("alice")
    assert subscribe(client, auth(alice), browser).status_code == 201
    notify([alice.id], "appointment.booked", title="Booked")
    db.session.rollback()
    db.session.commit()
    assert push_service.received == []


def test_push_follows_each_recipients_preferences(client, push_service, gen_user, auth):
    alice, bob = gen_user(), gen_user()
    alice_browser, bob_browser = push_service.browser("alice"), push_service.browser("bob")
    assert subscribe(client, auth(alice), alice_browser).status_code == 201
    assert subscribe(client, auth(bob), bob_browser).status_code == 201
    changed = client.put("/api/v1/notifications/preferences", headers=auth(alice),
                              json={"appointments": {"push": False}})
    assert changed.get_json()["appointments"] == {"in_app": True, "email": True, "push": False}

    notify([alice.id, bob.id], "appointment.cancelled", title="Cancelled")
    db.session.commit()
    assert push_service.to(alice_browser) == [] and len(push_service.to(bob_browser)) == 1

    # A deactivated account's browsers hear nothing.
    carol = gen_user()
    carol_browser = push_service.browser("carol")
    assert subscribe(client, auth(carol), carol_browser).status_code == 201
    carol.active = False
    db.session.commit()
    notify([carol.id], "appointment.cancelled", title="Cancelled")
    db.session.commit()
    assert push_service.to(carol_browser) == []

    # Push without the in-app copy: the message still goes, with no notification id to point at.
    client.put("/api/v1/notifications/preferences", headers=auth(bob), json={"messages": {"in_app": False}})
    notify([alice.id, bob.id], "message.digest", title="2 unread messages")
    db.session.commit()
    [alice_message] = push_service.to(alice_browser)
    assert opened(alice_message, alice_browser)["body"] == "You have new messages."
    assert opened(push_service.to(bob_browser)[-1], bob_browser)["notification_id"] is None


@pytest.mark.parametrize("gone", [404, 410])
def test_a_subscription_the_push_service_no_longer_knows_is_removed_and_only_that_one(client, push_service,
                                                                                     gen_user, auth, gone):
    alice, bob = gen_user(), gen_user()
    old_phone, laptop, bobs = (push_service.browser("old-phone"), push_service.browser("laptop"),
                               push_service.browser("bob"))
    for user, browser in ((alice, old_phone), (alice, laptop), (bob, bobs)):
        assert subscribe(client, auth(user), browser).status_code == 201
    push_service.answers[urlsplit(old_phone.endpoint).path] = gone

    notify([alice.id, bob.id], "reminder.1h", title="Your appointment starts in an hour")
    db.session.commit()

    assert len(push_service.to(old_phone)) == 1 and len(push_service.to(laptop)) == 1
    left = db.session.scalars(select(PushSubscription.endpoint)).all()
    assert sorted(left) == sorted([laptop.endpoint, bobs.endpoint])
    notify([alice.id], "reminder.24h", title="Tomorrow")
    db.session.commit()
    assert len(push_service.to(old_phone)) == 1 and len(push_service.to(laptop)) == 2


def test_other_failures_keep_the_subscription(client, push_service, gen_user, auth):
    alice = gen_user()
    busy, refused = push_service.browser("busy"), push_service.browser("refused")
    for browser in (busy, refused):
        assert subscribe(client, auth(alice), browser).status_code == 201
    push_service.answers[urlsplit(busy.endpoint).path] = 503
    push_service.answers[urlsplit(refused.endpoint).path] = 400
    notify([alice.id], "doctor.verified", title="Your profile is verified")
    db.session.commit()
    # A busy push service is asked again (here at once: the embedded Celery runs retries eagerly), a refusal is not.
    assert len(push_service.to(busy)) == 6 and len(push_service.to(refused)) == 1
    assert db.session.scalar(select(db.func.count()).select_from(PushSubscription)) == 2


def test_subscriptions_are_registered_listed_moved_and_deleted(client, push_service, gen_user, auth):
    alice, bob = gen_user(), gen_user()
    browser = push_service.browser("shared")
    first = subscribe(client, auth(alice), browser)
    again = subscribe(client, auth(alice), browser)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.get_json()["id"] == first.get_json()["id"]
    listed = client.get("/api/v1/notifications/push/subscriptions", headers=auth(alice)).get_json()
    assert listed["total"] == 1 and listed["items"][0]["endpoint"] == browser.endpoint
    assert "p256dh" not in listed["items"][0] and "auth" not in listed["items"][0]

    # The same browser signed in as Bob: the device now notifies Bob, not Alice.
    moved = subscribe(client, auth(bob), browser)
    assert moved.status_code == 200
    assert client.get("/api/v1/notifications/push/subscriptions", headers=auth(alice)).get_json()["total"] == 0
    subscription_id = moved.get_json()["id"]
    assert_problem(client.delete(f"/api/v1/notifications/push/subscriptions/{subscription_id}",
                                      headers=auth(alice)), 404)
    assert client.delete(f"/api/v1/notifications/push/subscriptions/{subscription_id}",
                              headers=auth(bob)).status_code == 204
    assert client.get("/api/v1/notifications/push/subscriptions", headers=auth(bob)).get_json()["total"] == 0


def test_each_account_keeps_its_newest_subscriptions(make_app, push_service, gen_user, auth):
    app = make_app(**PUSH_SETTINGS, PUSH_MAX_SUBSCRIPTIONS_PER_USER=2)
    client = app.test_client()
    with app.app_context():
        alice = gen_user()
        for name in ("one", "two", "three"):
            assert subscribe(client, auth(alice), push_service.browser(name)).status_code == 201
        kept = client.get("/api/v1/notifications/push/subscriptions", headers=auth(alice)).get_json()["items"]
        assert [item["endpoint"].rsplit("/", 1)[1] for item in kept] == ["three", "two"]


# The form of the address (https, a host, no credentials) and the keys' alphabet are the document's to state (a
# schema violation); which hosts are push services, and whether the keys are a P-256 point and a 16-byte secret, are
# refusals of their own, which the document lists.
@pytest.mark.parametrize("change, field, code", [
    ({"endpoint": "https://evil.example.com/push/1"}, "endpoint", "unknown_push_service"),
    ({"endpoint": "https://fcm.googleapis.com.evil.example/push"}, "endpoint", "unknown_push_service"),
    ({"endpoint": "file:///etc/passwd"}, "endpoint", "validation_failed"),
    ({"endpoint": "https://[fcm.googleapis.com/push"}, "endpoint", "validation_failed"),
    ({"keys": {"p256dh": b64url(b"\x04" + b"\x01" * 64), "auth": b64url(b"\x00" * 16)}}, "keys.p256dh",
     "invalid_push_keys"),
    ({"keys": {"p256dh": "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4",
               "auth": b64url(b"short")}}, "keys.auth", "invalid_push_keys"),
    ({"keys": {"p256dh": "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4",
               "auth": "AAAA AAAA AAAA AAAA AAAA AA"}}, "keys", "validation_failed"),
])
def test_only_real_push_services_and_keys_are_accepted(make_app, gen_user, auth, change, field, code):
    app = make_app()  # the default allow-list of push services, HTTPS only
    client = app.test_client()
    with app.app_context():
        body = {**Browser("https://fcm.googleapis.com/fcm/send/abc").subscription_json(), **change}
        refused = client.post("/api/v1/notifications/push/subscriptions", headers=auth(gen_user()), json=body)
        assert field in assert_problem(refused, 422, code)["errors"]


def test_the_document_states_the_form_of_a_subscription(client):
    schemas = client.get("/api/v1/openapi.json").get_json()["components"]["schemas"]
    pattern = re.compile(schemas["PushSubscriptionIn"]["properties"]["endpoint"]["pattern"])
    assert pattern.match("https://fcm.googleapis.com/fcm/send/abc")
    assert not any(pattern.match(url) for url in ("http://fcm.googleapis.com/x", "https://user@fcm.googleapis.com/x",
                                                  "file:///etc/passwd", "https://[fcm.googleapis.com/x"))
    assert all(re.compile(key["pattern"]).match("BCVxsr7N_eN-") and not re.compile(key["pattern"]).match("a b")
               for key in schemas["PushKeysIn"]["properties"].values())


def test_a_real_push_service_address_is_accepted(make_app, gen_user, auth):
    app = make_app()
    with app.app_context():
        body = Browser("https://updates.push.services.mozilla.com/wpush/v2/gAAAA").subscription_json()
        assert app.test_client().post("/api/v1/notifications/push/subscriptions", headers=auth(gen_user()),
                                      json=body).status_code == 201


def test_the_development_key_pair_is_generated_once_into_the_instance_folder(make_app, tmp_path):
    first, second = make_app(), make_app()
    key = first.test_client().get("/api/v1/notifications/push/key").get_json()["public_key"]
    assert second.test_client().get("/api/v1/notifications/push/key").get_json()["public_key"] == key
    pem = (tmp_path / "instance" / "vapid_private_key.pem")
    assert pem.stat().st_mode & 0o077 == 0
    loaded = serialization.load_pem_private_key(pem.read_bytes(), password=None)
    assert b64url(loaded.public_key().public_bytes(serialization.Encoding.X962,
                                                   serialization.PublicFormat.UncompressedPoint)) == key


def test_a_configured_key_is_used_and_production_without_one_offers_no_push(make_app, gen_user, auth):
    private = ec.generate_private_key(ec.SECP256R1())
    raw = b64url(private.private_numbers().private_value.to_bytes(32, "big"))  # the form `vapid --gen` tools print
    expected = b64url(private.public_key().public_bytes(serialization.Encoding.X962,
                                                        serialization.PublicFormat.UncompressedPoint))
    configured = make_app(VAPID_PRIVATE_KEY=raw, VAPID_GENERATE_DEV_KEY=False)
    assert configured.test_client().get("/api/v1/notifications/push/key").get_json()["public_key"] == expected

    unconfigured = make_app(VAPID_GENERATE_DEV_KEY=False)
    client = unconfigured.test_client()
    assert_problem(client.get("/api/v1/notifications/push/key"), 503, "push_not_configured")
    with unconfigured.app_context():
        body = Browser("https://fcm.googleapis.com/fcm/send/abc").subscription_json()
        assert_problem(client.post("/api/v1/notifications/push/subscriptions", headers=auth(gen_user()), json=body),
                       503, "push_not_configured")


def test_the_chat_page_offers_push_through_its_own_script_and_service_worker(client):
    page = client.get("/chat").get_data(as_text=True)
    assert '<script src="/push/push.js"></script>' in page and 'id="push-toggle"' in page
    script = client.get("/push/push.js")
    assert script.status_code == 200 and script.mimetype == "text/javascript"
    assert "/notifications/push/subscriptions" in script.get_data(as_text=True)
    worker = client.get("/push/sw.js")
    assert worker.mimetype == "text/javascript" and 'addEventListener("push"' in worker.get_data(as_text=True)
    # The chat page's shared session script announces every new token (sign-in and refresh) to push.js.
    assert "pawmanity:signed-in" in client.get("/chat/assets/session.js").get_data(as_text=True)
