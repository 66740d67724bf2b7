"""POST /ai/interviews and /answers: red-flag questions first, then the most informative; the stop rules; idempotent
answers; the final assessment logged like a diagnosis."""

from datetime import date, timedelta

import pytest

from pawmanity.core.extensions import docstore
from pawmanity.triage import diagnoses, interviews
from tests.support import assert_problem

URL = "/api/v1/ai/interviews"


def start_body(patient, *codes, severity=5, days=1.0, **extra):
    return {"patient_id": str(patient.id),
            "symptoms": [{"code": c, "severity": severity, "duration_days": days} for c in codes], **extra}


@pytest.fixture
def owner(gen_user):
    return gen_user()


@pytest.fixture
def pet(owner, gen_patient):
    def make(species="dog", sex="male_neutered", years=5):
        return gen_patient(owner, species=species, sex=sex, date_of_birth=date.today() - timedelta(days=years * 365))
    return make


def start(client, auth, owner, patient, *codes, **extra):
    response = client.post(URL, headers=auth(owner), json=start_body(patient, *codes, **extra))
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def reply(client, auth, owner, interview, answer, question=None):
    question = question or interview["question"]["id"]
    return client.post(f"{URL}/{interview['id']}/answers", headers=auth(owner),
                       json={"question_id": question, "answer": answer})


def logs():
    return list(docstore.db[diagnoses.COLLECTION].find({}))


def test_red_flag_questions_come_first_and_a_yes_stops_at_once(client, auth, owner, pet):
    cat = pet("cat", sex="male_neutered")
    interview = start(client, auth, owner, cat, "straining_to_urinate")
    assert interview["status"] == "asking"
    assert interview["question"] == {"id": "q1", "code": "no_urine_output", "name": "Little or no urine",
                                     "reason": "red_flag"}
    finished = reply(client, auth, owner, interview, "yes").get_json()
    assert finished["status"] == "finished" and finished["stop_reason"] == "red_flag"
    assert finished["result"]["urgency"]["level"] == 5 and finished["question"] is None
    assert "blocked_bladder" in finished["result"]["urgency"]["red_flags"]
    log, = logs()  # logged like a diagnosis, with the interview attached
    assert log["_id"] == finished["result"]["id"] and log["interview"]["stop_reason"] == "red_flag"
    assert [q["code"] for q in log["interview"]["questions"]] == ["no_urine_output"]


def test_an_emergency_at_the_start_needs_no_question(client, auth, owner, pet):
    interview = start(client, auth, owner, pet("dog"), "unproductive_retching")
    assert interview["status"] == "finished" and interview["stop_reason"] == "red_flag"
    assert interview["questions_asked"] == 0 and interview["result"]["urgency"]["level"] == 5


def test_questions_follow_information_gain_and_stop_when_confident(client, auth, owner, pet):
    dog = pet("dog")
    interview = start(client, auth, owner, dog, "itching")
    reasons = []
    while interview["status"] == "asking":
        reasons.append(interview["question"]["reason"])
        code = interview["question"]["code"]
        interview = reply(client, auth, owner, interview,
                          "yes" if code in ("head_shaking", "ear_odor", "skin_redness") else "no").get_json()
    assert "information_gain" in reasons
    assert interview["stop_reason"] in ("confident", "max_questions", "no_useful_question")
    assert interview["questions_asked"] <= interviews.MAX_QUESTIONS
    if interview["stop_reason"] == "confident":
        assert interview["result"]["conditions"][0]["probability"] >= interviews.CONFIDENT


def test_it_stops_after_the_maximum_number_of_questions(client, auth, owner, pet, monkeypatch):
    monkeypatch.setattr(interviews, "MAX_QUESTIONS", 2)
    monkeypatch.setattr(interviews, "CONFIDENT", 1.01)  # never confident: only the cap can stop it
    monkeypatch.setattr(interviews, "MIN_INFORMATION_GAIN", -1)
    interview = start(client, auth, owner, pet("dog"), "lethargy")
    interview = reply(client, auth, owner, interview, "unsure").get_json()
    interview = reply(client, auth, owner, interview, "unsure").get_json()
    assert interview["status"] == "finished" and interview["stop_reason"] == "max_questions"
    assert interview["questions_asked"] == 2 and interview["result"]["id"]


def test_the_best_question_is_the_most_informative(app):
    """Among all unasked symptoms, the chosen one has the largest expected gain (checked by brute force)."""
    import numpy as np

    from pawmanity.triage import assessment, classifier

    bundle, _ = classifier.active()
    model = bundle["human"]
    result = assessment.assess("human", [{"code": "headache", "severity": 5, "duration_days": 1}], age_years=30,
                           sex="female")
    chosen = interviews._most_informative(model, result, {"headache"})
    posterior = interviews._posterior(model, result)

    def gain(index):
        p = model["p_symptom"][:, index].astype(float)
        yes = posterior * p / (1 - p) ** classifier.UNMENTIONED_WEIGHT
        no = posterior * (1 - p) ** (1 - classifier.UNMENTIONED_WEIGHT)
        p_yes = yes.sum() / (yes.sum() + no.sum())
        return _entropy(posterior) - p_yes * _entropy(yes / yes.sum()) - (1 - p_yes) * _entropy(no / no.sum())

    def _entropy(d):
        return -(d[d > 0] * np.log2(d[d > 0])).sum()

    gains = {code: gain(i) for i, code in enumerate(model["symptom_codes"]) if code != "headache"}
    assert chosen["code"] == max(gains, key=gains.get)


def test_answers_are_idempotent_per_question(client, auth, owner, pet):
    interview = start(client, auth, owner, pet("dog"), "itching")
    first = reply(client, auth, owner, interview, "no")
    again = reply(client, auth, owner, interview, "no", question="q1")
    assert first.status_code == again.status_code == 200
    assert first.get_json() == again.get_json()
    assert_problem(reply(client, auth, owner, interview, "yes", question="q1"), 409)
    assert_problem(reply(client, auth, owner, interview, "no", question="q99"), 404)


def test_a_finished_interview_takes_no_new_answers_but_repeats_are_fine(client, auth, owner, pet):
    cat = pet("cat")
    interview = start(client, auth, owner, cat, "straining_to_urinate")
    finished = reply(client, auth, owner, interview, "yes").get_json()
    assert reply(client, auth, owner, interview, "yes", question="q1").get_json() == finished
    assert len(logs()) == 1  # the repeat logged nothing more


def test_only_the_caller_sees_the_interview(client, auth, owner, pet, gen_user):
    interview = start(client, auth, owner, pet("dog"), "itching")
    stranger = gen_user()
    assert_problem(client.get(f"{URL}/{interview['id']}", headers=auth(stranger)), 404)
    assert_problem(reply(client, auth, stranger, interview, "no"), 404)
    assert client.get(f"{URL}/{interview['id']}", headers=auth(owner)).get_json()["id"] == interview["id"]


def test_an_interview_needs_an_age_without_a_date_of_birth(client, auth, owner, gen_patient):
    puppy = gen_patient(owner, species="dog", sex="male")
    assert_problem(client.post(URL, headers=auth(owner), json=start_body(puppy, "vomiting")), 422)
    started = client.post(URL, headers=auth(owner), json=start_body(puppy, "vomiting", age_band="puppy"))
    assert started.status_code == 201


@pytest.mark.parametrize("payload, field", [
    ({"question_id": "q1", "answer": "maybe"}, "answer"),
    ({"answer": "yes"}, "question_id"),
])
def test_bad_answers_are_422(client, auth, owner, pet, payload, field):
    interview = start(client, auth, owner, pet("dog"), "itching")
    response = client.post(f"{URL}/{interview['id']}/answers", headers=auth(owner), json=payload)
    assert_problem(response, 422)
    assert field in response.get_json()["errors"]
