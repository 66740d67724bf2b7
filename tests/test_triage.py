"""One assessment: model probabilities, red flags that only ever raise urgency, and honest uncertainty."""

import pytest

from pawmanity.core.errors import InvalidInput
from pawmanity.triage.assessment import assess


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
    assert result["specialist"].startswith("emergency")


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


def test_a_vague_picture_says_it_is_uncertain(app):
    result = assess("human", symptoms("fatigue", severity=2, days=2), age_years=40, sex="female")
    assert result["low_confidence"] is True
    assert any("do not point clearly" in line for line in result["recommendations"])


@pytest.mark.parametrize("given, message", [
    ([], "At least one"),
    (symptoms("cough", "cough"), "Repeated"),
    (symptoms("unproductive_retching"), "Not a human symptom"),
])
def test_bad_symptom_lists(app, given, message):
    with pytest.raises(InvalidInput) as raised:
        assess("human", given, age_years=40, sex="male")
    assert message in str(raised.value.errors)
