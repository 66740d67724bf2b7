"""Medical history: versioned with ETag / If-Match, and every version kept."""

import threading

import pytest

from tests.support import assert_problem, next_slot, postgres_only


@pytest.fixture
def scene(client, gen_user, gen_patient, auth):
    owner = gen_user()
    pet = gen_patient(owner)
    url = f"/api/v1/patients/{pet.id}/records"
    created = client.post(url, json={"kind": "vaccination", "title": "Rabies booster",
                                     "details": "Nobivac, left shoulder", "recorded_at": "2026-03-01T10:00:00+01:00"},
                          headers=auth(owner))
    assert created.status_code == 201
    return {"owner": owner, "pet": pet, "url": url, "record": created.get_json(), "etag": created.headers["ETag"],
            "record_url": f"{url}/{created.get_json()['id']}"}


def test_record_round_trip(client, auth, scene):
    record = client.get(scene["record_url"], headers=auth(scene["owner"]))
    assert record.headers["ETag"] == '"1"'
    assert record.get_json()["recorded_at"] == "2026-03-01T09:00:00Z"
    listed = client.get(scene["url"], headers=auth(scene["owner"])).get_json()
    assert listed["total"] == 1 and listed["items"][0]["title"] == "Rabies booster"


def test_update_with_if_match_keeps_every_version(client, auth, scene):
    headers = {**auth(scene["owner"]), "If-Match": scene["etag"]}
    first = client.patch(scene["record_url"], json={"title": "Rabies booster (3-year)"}, headers=headers)
    assert first.status_code == 200 and first.headers["ETag"] == '"2"'
    second = client.patch(scene["record_url"], json={"details": "Batch 22A"},
                          headers={**auth(scene["owner"]), "If-Match": first.headers["ETag"]})
    assert second.get_json()["version"] == 3
    versions = client.get(f"{scene['record_url']}/versions", headers=auth(scene["owner"])).get_json()
    assert [(v["version"], v["title"]) for v in versions["items"]] == [
        (3, "Rabies booster (3-year)"), (2, "Rabies booster (3-year)"), (1, "Rabies booster")]
    assert all(v["changed_by"] == str(scene["owner"].id) for v in versions["items"])


def test_update_needs_if_match(client, auth, scene):
    assert_problem(client.patch(scene["record_url"], json={"title": "x"}, headers=auth(scene["owner"])), 428)


def test_stale_if_match_loses_nothing(client, auth, scene):
    headers = {**auth(scene["owner"]), "If-Match": scene["etag"]}
    client.patch(scene["record_url"], json={"title": "Kept"}, headers=headers)
    assert_problem(client.patch(scene["record_url"], json={"title": "Lost?"}, headers=headers), 412, "stale_version")
    assert client.get(scene["record_url"], headers=auth(scene["owner"])).get_json()["title"] == "Kept"


def test_malformed_if_match(client, auth, scene):
    response = client.patch(scene["record_url"], json={"title": "x"},
                            headers={**auth(scene["owner"]), "If-Match": "v1"})
    assert_problem(response, 412, "malformed_if_match")


@pytest.mark.parametrize("body, field", [
    ({"kind": "horoscope", "title": "x", "recorded_at": "2026-01-01T00:00:00Z"}, "kind"),
    ({"kind": "note", "title": "x", "recorded_at": "2026-01-01T00:00:00"}, "recorded_at"),
    ({"kind": "note", "recorded_at": "2026-01-01T00:00:00Z"}, "title"),
])
def test_bad_record_input(client, auth, scene, body, field):
    assert field in assert_problem(client.post(scene["url"], json=body, headers=auth(scene["owner"])), 422)["errors"]


def test_doctor_of_record_adds_history_another_doctor_cannot_see_it(client, auth, scene, gen_doctor,
                                                                    gen_appointment):
    doctor_user, doctor = gen_doctor()
    other_user, _ = gen_doctor()
    gen_appointment(doctor, scene["pet"], next_slot())
    body = {"kind": "condition", "title": "Otitis externa", "recorded_at": "2026-11-20T09:00:00Z"}
    assert client.post(scene["url"], json=body, headers=auth(doctor_user)).status_code == 201
    assert_problem(client.get(scene["url"], headers=auth(other_user)), 404)
    assert_problem(client.get(scene["record_url"], headers=auth(other_user)), 404)


@postgres_only
def test_concurrent_updates_with_the_same_etag_one_wins(make_app, gen_user, gen_patient, tokens_for):
    app = make_app()
    owner = gen_user()
    pet = gen_patient(owner)
    token = tokens_for(owner)["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    client = app.test_client()
    record = client.post(f"/api/v1/patients/{pet.id}/records", headers=headers,
                         json={"kind": "note", "title": "v1", "recorded_at": "2026-01-01T00:00:00Z"}).get_json()
    url = f"/api/v1/patients/{pet.id}/records/{record['id']}"
    barrier, statuses = threading.Barrier(8), []

    def write(n):
        barrier.wait()
        response = app.test_client().patch(url, json={"title": f"writer {n}"}, headers={**headers, "If-Match": '"1"'})
        statuses.append(response.status_code)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [200] + [412] * 7
    versions = client.get(f"{url}/versions", headers=headers).get_json()
    assert [v["version"] for v in versions["items"]] == [2, 1]
