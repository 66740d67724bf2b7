"""One assessment: model probabilities, red flags that only ever raise urgency, and honest uncertainty."""

import pytest

from pawmanity.core.errors import InvalidInput
from pawmanity.triage.assessment import assess
from pawmanity.triage.knowledge import knowledge_base


def symptoms(*codes, severity=6, days=1.0):
    return [{"code": code, "severity": severity, "duration_days": days} for code in codes]


@pytest.mark.parametrize("species, codes, flag", [
    ("human", ("chest_pain", "sweating"), "cardiac_chest_pain"),
    ("human", ("chest_pain", "shortness_of_breath"), "cardiac_chest_pain"),
    ("human", ("facial_drooping",), "stroke_signs"),
    ("human", ("slurred_speech", "headache"), "stroke_signs"),
    ("dog", ("unproductive_retching", "distended_abdomen"), "bloat"),
    ("cat", ("straining_to_urinate", "no_urine_output"), "blocked_bladder"),
    ("dog", ("toxin_exposure",), "poisoning"),
    ("cat", ("seizure",), "seizure"),
    ("human", ("collapse",), "collapse"),
])
def test_red_flags_make_it_an_emergency(app, species, codes, flag):
    result = assess(species, symptoms(*codes, severity=3, days=4), age_years=50, sex="male")
    assert result["urgency"]["level"] == 5 and flag in result["urgency"]["red_flags"]
    assert result["urgency"]["reasons"] and "now" in " ".join(result["recommendations"])
    assert result["specialist"] == "emergency_medicine"


def test_chest_pain_alone_is_no_red_flag(app):
    result = assess("human", symptoms("chest_pain"), age_years=30, sex="female")
    assert "cardiac_chest_pain" not in result["urgency"]["red_flags"]


@pytest.mark.parametrize("species, codes, expected", [
    ("human", ("nasal_discharge", "sneezing", "sore_throat"), "common_cold"),
    ("human", ("painful_urination", "frequent_urination"), "urinary_tract_infection"),
    ("dog", ("head_shaking", "ear_odor"), "otitis_externa"),
    ("cat", ("increased_thirst", "weight_loss", "increased_appetite", "hyperactivity"), "hyperthyroidism"),
])
def test_textbook_cases_rank_the_right_condition_in_the_top_three(app, species, codes, expected):
    result = assess(species, symptoms(*codes, severity=4, days=3), age_years=12, sex="female")
    assert expected in [c["code"] for c in result["conditions"][:3]]
    assert abs(sum(result["raw"]["condition_probabilities"].values()) - 1) < 1e-6
    assert result["model"]["version"] and "not a diagnosis" in result["disclaimer"]


def test_a_vague_picture_says_it_is_uncertain_and_is_never_self_care(app):
    result = assess("human", symptoms("fatigue", severity=2, days=2), age_years=40, sex="female")
    assert result["low_confidence"] is True and result["not_recognised"] is False
    assert any("do not point clearly" in line for line in result["recommendations"])
    assert result["urgency"]["level"] >= 2  # the best guess (a cold) is self-care; doubt is not


def test_self_care_only_for_short_illnesses(app):
    short = assess("human", symptoms("sneezing", "nasal_discharge", "itching", severity=3, days=3), age_years=25,
                   sex="male")
    long = assess("human", symptoms("sneezing", "nasal_discharge", "itching", severity=3, days=20), age_years=25,
                  sex="male")
    assert short["conditions"][0]["code"] == long["conditions"][0]["code"] == "allergic_rhinitis"
    assert short["urgency"]["level"] == 1 and long["urgency"]["level"] == 2


def test_a_likely_serious_condition_sets_the_urgency(app):
    """Chest pain alone at 30: chest-wall pain is likeliest, but angina is above the floor, so 'within hours'."""
    result = assess("human", symptoms("chest_pain", severity=4, days=1), age_years=30, sex="male")
    likely = {c["code"]: c for c in result["conditions"] if c["probability"] > 0.15}
    assert result["urgency"]["level"] >= max(c["urgency"] for c in likely.values()) >= 4
    assert result["raw"]["model_urgency"] < result["urgency"]["level"]
    assert any("applies until a clinician rules it out" in reason for reason in result["urgency"]["reasons"])


@pytest.mark.parametrize("species, codes, sex, floor", [
    ("human", ("ear_pain", "blood_in_urine"), "female", 3),
    ("human", ("toothache", "flank_pain", "eye_discharge"), "male", 4),  # flank pain alone: a kidney stone is likely
    ("dog", ("scooting", "honking_cough", "eye_pain"), "male", 3),
])
def test_a_pattern_that_fits_no_condition_is_not_recognised(app, species, codes, sex, floor):
    result = assess(species, symptoms(*codes, severity=5, days=2), age_years=5 if species != "human" else 35, sex=sex)
    assert result["not_recognised"] is True and result["low_confidence"] is True
    assert result["conditions"] == [] and result["raw"]["fit"] < 0.2
    assert result["urgency"]["level"] >= floor and result["specialist"] == "general_practice"
    assert any("does not match a pattern" in line or "do not match a pattern" in line
               for line in result["recommendations"])


def test_not_recognised_keeps_the_red_flags(app):
    result = assess("human", symptoms("toothache", "facial_drooping", "painful_urination"), age_years=35, sex="male")
    assert result["not_recognised"] is True and result["urgency"]["level"] == 5
    assert "stroke_signs" in result["urgency"]["red_flags"] and result["specialist"] == "emergency_medicine"


def test_a_textbook_pattern_is_recognised(app):
    result = assess("dog", symptoms("unproductive_retching", "distended_abdomen", "restlessness"), age_years=7,
                    sex="male")
    assert result["not_recognised"] is False and result["raw"]["fit"] > 0.5
    assert result["conditions"][0]["code"] == "gastric_dilatation_volvulus"


def test_conditions_are_weighted_by_age(app):
    chest = symptoms("chest_pain", "sweating", "shortness_of_breath", severity=7, days=0.1)
    newborn = assess("human", chest, age_years=0.05, sex="male")["raw"]["condition_probabilities"]
    sixty = assess("human", chest, age_years=60, sex="male")["raw"]["condition_probabilities"]
    assert sixty["myocardial_infarction"] > 0.3 and newborn["myocardial_infarction"] < sixty["myocardial_infarction"] / 20
    parvo = symptoms("vomiting", "bloody_stool", "diarrhea", "lethargy", "loss_of_appetite", severity=7, days=1)
    puppy = assess("dog", parvo, age_range=knowledge_base().age_range("dog", age_band="puppy"), sex="male")
    senior = assess("dog", parvo, age_years=11, sex="male")
    assert puppy["conditions"][0]["code"] == "parvovirus" and puppy["urgency"]["level"] == 5
    assert senior["raw"]["condition_probabilities"]["parvovirus"] < puppy["raw"]["condition_probabilities"]["parvovirus"] / 10


@pytest.mark.parametrize("species, given, field", [
    ("dog", {}, "age_years"),
    ("dog", {"age_years": 30}, "age_years"),
    ("cat", {"age_years": 31}, "age_years"),
    ("human", {"age_years": 121}, "age_years"),
    ("dog", {"age_band": "toddler"}, "age_band"),
])
def test_ages_a_species_does_not_live_are_refused(app, species, given, field):
    with pytest.raises(InvalidInput) as raised:
        knowledge_base().age_range(species, **given)
    assert field in raised.value.errors


def test_ages_a_species_lives_are_accepted(app):
    kb = knowledge_base()
    assert kb.age_range("human", age_years=119) == (119, 119)
    assert kb.age_range("cat", age_band="senior") == (10, 30)
    assert kb.age_range("dog", age_years=0) == (0, 0)


def test_the_result_leads_to_the_directory(app):
    result = assess("dog", symptoms("head_shaking", "ear_odor", severity=4, days=5), age_years=4, sex="male")
    assert result["specialist"] in knowledge_base().specialties
    assert result["booking"]["doctors_url"] == f"/api/v1/doctors?specialty={result['specialist']}&species=dog"
    assert result["booking"]["earliest_appointment"]["body"] == {"specialty": result["specialist"]}


@pytest.mark.parametrize("given, message", [
    ([], "At least one"),
    (symptoms("cough", "cough"), "Repeated"),
    (symptoms("unproductive_retching"), "Not a human symptom"),
])
def test_bad_symptom_lists(app, given, message):
    with pytest.raises(InvalidInput) as raised:
        assess("human", given, age_years=40, sex="male")
    assert message in str(raised.value.errors)
