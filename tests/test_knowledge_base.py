"""The triage knowledge base: complete for the required conditions, consistent, and served per species."""

import re

import pytest

from pawmanity.triage.knowledge import KnowledgeBaseError, knowledge_base, parse
from tests.support import assert_problem

REQUIRED = {
    "human": "common_cold influenza covid_19 strep_pharyngitis sinusitis acute_bronchitis pneumonia "
             "asthma_exacerbation allergic_rhinitis migraine tension_headache gastroenteritis appendicitis "
             "urinary_tract_infection kidney_stones myocardial_infarction stroke panic_attack conjunctivitis "
             "otitis_media contact_dermatitis cellulitis",
    "dog": "parvovirus kennel_cough gastroenteritis gastric_dilatation_volvulus pancreatitis otitis_externa "
           "atopic_dermatitis flea_allergy_dermatitis osteoarthritis cruciate_ligament_injury urinary_tract_infection "
           "diabetes_mellitus toxin_ingestion heatstroke",
    "cat": "urethral_obstruction feline_idiopathic_cystitis upper_respiratory_infection chronic_kidney_disease "
           "hyperthyroidism diabetes_mellitus gastroenteritis dental_disease feline_asthma toxin_ingestion",
}
REQUIRED_SYMPTOMS = ("fever cough vomiting diarrhea bloody_stool lethargy loss_of_appetite chest_pain "
                     "shortness_of_breath sweating facial_drooping slurred_speech arm_weakness unproductive_retching "
                     "distended_abdomen straining_to_urinate no_urine_output frequent_urination painful_urination "
                     "increased_thirst weight_loss itching head_shaking ear_odor limping sneezing nasal_discharge "
                     "eye_discharge seizure collapse excessive_panting drooling").split()


@pytest.mark.parametrize("species", REQUIRED)
def test_every_required_condition_is_there_with_its_exact_code(species):
    assert set(REQUIRED[species].split()) <= set(knowledge_base().conditions[species])


def test_every_required_symptom_is_defined():
    assert set(REQUIRED_SYMPTOMS) <= set(knowledge_base().symptoms)


def test_emergencies_are_urgency_five():
    kb = knowledge_base()
    for species, code in [("human", "myocardial_infarction"), ("human", "stroke"), ("dog", "parvovirus"),
                          ("dog", "gastric_dilatation_volvulus"), ("dog", "toxin_ingestion"),
                          ("dog", "heatstroke"), ("cat", "urethral_obstruction"), ("cat", "toxin_ingestion")]:
        assert kb.conditions[species][code].urgency == 5


def test_every_condition_names_its_sources():
    kb = knowledge_base()
    for conditions in kb.conditions.values():
        for condition in conditions.values():
            assert condition.sources and all(source in kb.sources for source in condition.sources)


@pytest.mark.parametrize("breakage, message", [
    (lambda raw: raw["conditions"]["dog"]["heatstroke"]["symptoms"].update(telepathy=0.5), "not defined"),
    (lambda raw: raw["conditions"]["dog"]["heatstroke"]["symptoms"].update(chest_pain=0.5), "not listed for dog"),
    (lambda raw: raw["conditions"]["cat"]["dental_disease"].update(urgency=7), "not 1-5"),
    (lambda raw: raw["conditions"]["cat"]["dental_disease"]["symptoms"].update(bad_breath=1.5), "not in (0, 1]"),
    (lambda raw: raw["conditions"]["cat"]["dental_disease"].update(sources=["hearsay"]), "sources"),
])
def test_a_contradictory_file_is_refused(breakage, message):
    import copy
    from importlib import resources

    import yaml

    raw = yaml.safe_load(resources.files("pawmanity.data").joinpath("knowledge_base.yaml").read_text())
    broken = copy.deepcopy(raw)
    breakage(broken)
    with pytest.raises(KnowledgeBaseError, match=re.escape(message)):
        parse(broken)


def test_symptoms_are_listed_per_species_with_names(client, auth, gen_user):
    body = client.get("/api/v1/ai/symptoms?species=dog&per_page=100", headers=auth(gen_user())).get_json()
    assert body["total"] == len(body["items"]) == len(knowledge_base().symptoms_for("dog"))
    codes = {item["code"]: item["name"] for item in body["items"]}
    assert codes["unproductive_retching"] == "Retching without bringing anything up"
    assert "chest_pain" not in codes and body["knowledge_base_version"] == knowledge_base().version


def test_conditions_are_listed_with_urgency_and_sources(client, auth, gen_user):
    body = client.get("/api/v1/ai/conditions?species=cat&per_page=100", headers=auth(gen_user())).get_json()
    blocked = next(item for item in body["items"] if item["code"] == "urethral_obstruction")
    assert blocked["urgency"] == 5 and blocked["urgency_label"] == "emergency now"
    assert blocked["specialist"] == "emergency_medicine" and blocked["sources"]


@pytest.mark.parametrize("catalogue", ["symptoms", "conditions"])
def test_catalogues_are_paged_in_code_order(client, auth, gen_user, catalogue):
    headers = auth(gen_user())
    pages = [client.get(f"/api/v1/ai/{catalogue}?species=dog&per_page=7&page={n}", headers=headers).get_json()
             for n in (1, 2)]
    everything = client.get(f"/api/v1/ai/{catalogue}?species=dog&per_page=100", headers=headers).get_json()
    assert [len(page["items"]) for page in pages] == [7, 7] and pages[1]["page"] == 2 and pages[1]["per_page"] == 7
    assert pages[0]["total"] == everything["total"] > 14
    assert [item["code"] for page in pages for item in page["items"]] == [
        item["code"] for item in everything["items"]][:14] == sorted(item["code"] for item in everything["items"])[:14]


@pytest.mark.parametrize("query, status", [("", 422), ("?species=dragon", 422), ("?species=rabbit", 422)])
def test_species_the_checker_does_not_cover(client, auth, gen_user, query, status):
    assert_problem(client.get(f"/api/v1/ai/symptoms{query}", headers=auth(gen_user())), status)


def test_the_document_offers_only_the_species_the_checker_covers(client):
    # A client generated from the document must not offer a rabbit to a checker that refuses one.
    paths = client.get("/api/v1/openapi.json").get_json()["paths"]
    for catalogue in ("symptoms", "conditions"):
        species, = (parameter for parameter in paths[f"/api/v1/ai/{catalogue}"]["get"]["parameters"]
                    if parameter["name"] == "species")
        assert species["schema"]["enum"] == list(knowledge_base().species)


@pytest.fixture
def model_app(make_app, tmp_path):
    # Small and fast; the shipped artefact is trained on the full 10,000 cases per species.
    # No shipped artefact either: these tests train their own, small models.
    return make_app(AI_MODEL_DIR=str(tmp_path / "models"), AI_SHIPPED_MODEL_DIR=str(tmp_path / "shipped"),
                    AI_TRAINING_CASES=600)


def invoke(app, *args):
    # The test's default app context is already pushed; commands must run against this app instead.
    with app.app_context():
        return app.test_cli_runner().invoke(args=list(args))


@pytest.fixture
def gate_passes(monkeypatch):
    # Small test models are not what ships; the gate itself is tested on the shipped model (test_release_gate.py).
    from pawmanity.triage import evaluation

    monkeypatch.setattr(evaluation, "gate", lambda report: (True, []))


def test_train_reports_metrics_and_activates(model_app, auth, gen_user, gate_passes):
    result = invoke(model_app, "ai", "train", "--seed", "7")
    assert result.exit_code == 0, result.output
    assert "top-1" in result.output and "urgency recall by level" in result.output
    body = model_app.test_client().get("/api/v1/ai/model", headers=auth(gen_user())).get_json()
    assert body["name"] == "pawmanity-triage" and body["training"]["cases_per_species"] == 600
    for species in ("human", "dog", "cat"):
        metrics = body["metrics"][species]
        assert 0 < metrics["top1_accuracy"] <= metrics["top3_accuracy"] <= 1
        assert len(body["training"]["data_sha256"][species]) == 64


def test_the_same_seed_gives_the_same_data(model_app):
    from pawmanity.triage.cases import dataset_hash, generate

    kb = knowledge_base()
    first, second = generate(kb, "dog", 300, seed=5), generate(kb, "dog", 300, seed=5)
    assert (first.present == second.present).all() and list(first.conditions) == list(second.conditions)
    assert (first.duration_bin == second.duration_bin).all() and (first.age_bin == second.age_bin).all()
    assert dataset_hash(kb, "dog", 300, 5) != dataset_hash(kb, "dog", 300, 6)


def test_a_new_version_is_picked_up_without_a_restart(model_app, auth, gen_user, gate_passes):
    from pawmanity.triage import classifier

    client, headers = model_app.test_client(), auth(gen_user())
    invoke(model_app, "ai", "train", "--seed", "1")
    first = client.get("/api/v1/ai/model", headers=headers).get_json()["version"]
    import time

    time.sleep(1.1)  # versions are named to the second
    invoke(model_app, "ai", "train", "--seed", "2", "--no-activate")
    assert client.get("/api/v1/ai/model", headers=headers).get_json()["version"] == first
    with model_app.app_context():
        second = sorted(p.name for p in classifier.model_dir().iterdir() if p.is_dir())[-1]
        classifier.set_active(second)
    assert client.get("/api/v1/ai/model", headers=headers).get_json()["version"] == second


def test_no_model_or_a_corrupt_one_is_a_503(model_app, auth, gen_user, gate_passes):
    from pawmanity.triage import classifier

    client, headers = model_app.test_client(), auth(gen_user())
    assert_problem(client.get("/api/v1/ai/model", headers=headers), 503, "model_unavailable")
    invoke(model_app, "ai", "train")
    with model_app.app_context():
        active = (classifier.model_dir() / "ACTIVE").read_text().strip()
        (classifier.model_dir() / active / "models.joblib").write_bytes(b"not a model")
    model_app.extensions.pop("triage_model", None)  # as a fresh server process would start
    assert_problem(client.get("/api/v1/ai/model", headers=headers), 503, "model_unavailable")


ISSUE_11_CONDITIONS = {
    "human": "meningitis sepsis pulmonary_embolism deep_vein_thrombosis anaphylaxis asthma_exacerbation "
             "copd_exacerbation pneumothorax appendicitis cholecystitis pancreatitis bowel_obstruction gi_bleed "
             "diabetic_ketoacidosis ectopic_pregnancy testicular_torsion pyelonephritis kidney_stones cellulitis "
             "shingles malaria dengue typhoid_fever travellers_diarrhoea hepatitis_a",
    "dog": "gastric_dilatation_volvulus foreign_body_obstruction pyometra intervertebral_disc_disease trauma "
           "urinary_obstruction anticoagulant_rodenticide chocolate_toxicity xylitol_toxicity grape_toxicity "
           "heatstroke dystocia addisons_crisis immune_mediated_haemolytic_anaemia",
    "cat": "urethral_obstruction congestive_heart_failure aortic_thromboembolism hepatic_lipidosis lily_toxicity "
           "permethrin_toxicity",
}


@pytest.mark.parametrize("species, at_least", [("human", 80), ("dog", 45), ("cat", 35)])
def test_the_knowledge_base_is_broad(species, at_least):
    conditions = knowledge_base().conditions[species]
    assert len(conditions) >= at_least and set(ISSUE_11_CONDITIONS[species].split()) <= set(conditions)


@pytest.mark.parametrize("species", ["human", "dog", "cat"])
def test_every_symptom_offered_is_used_by_a_condition_of_that_species(species):
    kb = knowledge_base()
    used = set().union(*(condition.symptoms for condition in kb.conditions[species].values()))
    assert set(kb.symptoms_for(species)) - used == set()


def test_every_condition_has_a_sourced_course_and_a_directory_specialty():
    kb = knowledge_base()
    for conditions in kb.conditions.values():
        for condition in conditions.values():
            assert condition.specialist in kb.specialties
            assert condition.course_sources and set(condition.course_sources) <= set(kb.sources)
            assert 0 < condition.duration_days[0] <= condition.duration_days[1]
            assert 1 <= condition.severity[0] <= condition.severity[1] <= 10
    from pawmanity.scheduling.doctors import normalize_specialty

    assert all(normalize_specialty(code) == code for code in kb.specialties)


def test_severity_and_duration_come_from_the_course_not_the_urgency():
    """Two emergencies with different courses: a meningitis of days, a heart attack of hours."""
    from pawmanity.triage.cases import generate

    kb = knowledge_base()
    cases = generate(kb, "human", 0, seed=4)
    meningitis = cases.duration_bin[cases.conditions == "meningitis"]
    infarction = cases.duration_bin[cases.conditions == "myocardial_infarction"]
    assert kb.conditions["human"]["meningitis"].urgency == kb.conditions["human"]["myocardial_infarction"].urgency
    assert meningitis.mean() > infarction.mean() + 0.5  # duration bins: <6 h, <1 d, <3 d, <7 d, <30 d, longer


@pytest.mark.parametrize("breakage, message", [
    (lambda raw: raw["conditions"]["dog"]["heatstroke"].update(specialist="veterinary_wizardry"), "directory"),
    (lambda raw: raw["conditions"]["dog"]["heatstroke"]["course"].update(days=[3, 1]), "course"),
    (lambda raw: raw["red_flags"]["trauma"].update(sources=[]), "cites"),
])
def test_a_knowledge_base_without_sources_or_codes_is_refused(breakage, message):
    import copy
    from importlib import resources

    import yaml

    raw = yaml.safe_load(resources.files("pawmanity.data").joinpath("knowledge_base.yaml").read_text())
    broken = copy.deepcopy(raw)
    breakage(broken)
    with pytest.raises(KnowledgeBaseError, match=re.escape(message)):
        parse(broken)


def test_a_model_failing_the_gate_is_stored_but_not_activated(model_app, monkeypatch):
    from pawmanity.triage import classifier, evaluation

    monkeypatch.setattr(evaluation, "gate", lambda report: (False, ["dog: emergencies not at level 5: D01"]))
    result = invoke(model_app, "ai", "train", "--seed", "3")
    assert result.exit_code != 0 and "release gate: FAIL" in result.output and "D01" in result.output
    with model_app.app_context():
        assert not (classifier.model_dir() / "ACTIVE").exists()
        assert len([p for p in classifier.model_dir().iterdir() if p.is_dir()]) == 1
