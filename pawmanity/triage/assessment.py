"""One assessment: the model's probabilities, then the safety rules, then what to do and whom to see.

Urgency only goes up from the model's estimate: the final level is the highest of the model's urgency, every red flag
that fires, and the urgency of every condition the model gives more than CONDITION_FLOOR_PROBABILITY. When the
entered symptoms fit no condition well (the knowledge base is a generative model, so "fit" is how plausible the
symptoms are under the best conditions), the result says the pattern is not recognised instead of guessing, and asks
for a clinician at an urgency no lower than the symptoms warrant. Low confidence never yields self-care advice.
"""

import numpy as np

from pawmanity.core.api import API_PREFIX
from pawmanity.core.errors import InvalidInput
from pawmanity.triage import classifier
from pawmanity.triage.knowledge import knowledge_base

TOP_CONDITIONS = 5
LOW_CONFIDENCE = 0.5                # confident: the top condition is likelier than all the others together
CONDITION_FLOOR_PROBABILITY = 0.15
MODEL_URGENCY_QUANTILE = 0.5       # the model's urgency: the level the case reaches with at least this probability
# "Not recognised": the geometric mean of P(symptom | condition) over the entered symptoms, under the best of the
# top conditions, is below this. One symptom none of them explains among three they do still fits (~0.3); two of
# four, or one of two, does not (~0.15). Set a priori; never tuned on the held-out vignettes.
FIT_THRESHOLD = 0.2
FIT_CANDIDATES = 5
NOT_RECOGNISED_MINIMUM = 3         # "see a clinician within 48 hours" at least
# Self-care is advised only for illnesses of less than two weeks: the usual safety-netting advice (see a clinician
# when symptoms last more than 2 weeks) holds even when the best match is a self-care condition.
SELF_CARE_MAX_DAYS = 14
RECOMMENDATIONS = {
    1: "Rest, fluids and watchful waiting are usually enough; book a routine appointment if it lasts or worsens.",
    2: "Book a routine appointment in the coming days.",
    3: "See a clinician within 48 hours.",
    4: "See a clinician within the next few hours.",
    5: "Seek emergency care now.",
}
NOT_RECOGNISED_ADVICE = ("These symptoms do not match a pattern the checker recognises; a clinician should assess "
                         "them rather than an automated guess.")
LOW_CONFIDENCE_ADVICE = "The symptoms do not point clearly to one condition; a clinician should assess them."
DISCLAIMER = ("This is an automated triage suggestion, not a diagnosis. It cannot examine the patient; if you are "
              "worried, or symptoms get worse, contact a clinician or emergency services.")
EMERGENCY_SPECIALTY = "emergency_medicine"
GENERAL_SPECIALTY = "general_practice"


def assess(species, symptoms, *, age_years=None, age_range=None, sex=None, denied=(), model=None):
    """symptoms: [{code, severity 1-10, duration_days}]; denied: codes the patient said they do not have.

    The age is exact (`age_years`) or a range (`age_range`, from an age band). `model`: (bundle, meta) to use instead
    of the active one (evaluating a candidate). Returns the assessment and the raw model outputs.
    """
    kb = knowledge_base()
    known = kb.symptoms_for(species)
    check_symptoms(symptoms, known, species)
    bundle, meta = model or classifier.active()
    species_model = bundle[species]
    reported = {s["code"]: (s["severity"], s["duration_days"]) for s in symptoms}
    if age_range is None and age_years is not None:
        age_range = (age_years, age_years)
    evidence = _evidence(species_model, reported, denied, age_range, sex)
    probabilities = classifier.posterior(species_model, **evidence)
    return _result(kb, species, species_model, meta, probabilities, evidence, reported, age_range, sex)


def _evidence(species_model, reported, denied, age_range, sex):
    index = {code: i for i, code in enumerate(species_model["symptom_codes"])}
    return {"present": [index[code] for code in reported if code in index],
            "denied": [index[code] for code in denied if code in index and code not in reported],
            "age_bins": classifier.age_bins_for(species_model, age_range),
            **classifier.case_evidence(reported, sex=sex)}


def _result(kb, species, species_model, meta, probabilities, evidence, reported, age_range, sex):
    codes = species_model["condition_codes"]
    urgencies = species_model["urgency"]
    conditions = kb.conditions_for(species)
    ranked = np.argsort(-probabilities)
    top = ranked[:TOP_CONDITIONS]
    urgency_probabilities = {level: float(probabilities[urgencies == level].sum()) for level in range(1, 6)}
    model_urgency = _model_urgency(urgency_probabilities)
    fit = symptom_fit(species_model, evidence["present"], ranked[:FIT_CANDIDATES])
    not_recognised = fit < FIT_THRESHOLD
    severities = {code: severity for code, (severity, _) in reported.items()}
    fired = [flag for flag in kb.red_flags
             if flag.fires(species, severities, age_range=age_range or (None, None), sex=sex)]
    likely = [int(urgencies[i]) for i in np.flatnonzero(probabilities > CONDITION_FLOOR_PROBABILITY)]
    urgency = max([model_urgency, *likely, *(flag.urgency for flag in fired)])
    reasons = [flag.reason for flag in fired]
    if likely and max(likely) > model_urgency and max(likely) >= urgency:
        worst = max((i for i in np.flatnonzero(probabilities > CONDITION_FLOOR_PROBABILITY)),
                    key=lambda i: urgencies[i])
        reasons.append(f"{conditions[codes[worst]].name} is possible ({probabilities[worst]:.0%}); its urgency "
                       f"applies until a clinician rules it out.")
    if not_recognised:
        warranted = max(NOT_RECOGNISED_MINIMUM, symptoms_warrant(species_model, evidence["present"]))
        if warranted > urgency:
            reasons.append("The pattern is not recognised; the symptoms on their own warrant a clinician.")
        urgency = max(urgency, warranted)
    low_confidence = bool(probabilities[ranked[0]] < LOW_CONFIDENCE or not_recognised)
    if low_confidence:
        urgency = max(urgency, 2)  # doubt is never self-care
    if urgency == 1 and max((days for _, days in reported.values()), default=0) >= SELF_CARE_MAX_DAYS:
        urgency = 2
        reasons.append(f"Symptoms lasting {SELF_CARE_MAX_DAYS} days or more deserve a clinician's look.")
    if not reasons:
        reasons.append(f"The model estimates urgency {model_urgency} "
                       f"({urgency_probabilities[model_urgency]:.0%} likely).")
    specialist = (EMERGENCY_SPECIALTY if urgency == 5 else GENERAL_SPECIALTY if not_recognised
                  else conditions[codes[ranked[0]]].specialist)
    advice = [flag.advice for flag in fired]
    return {
        "conditions": [] if not_recognised else [
            {"code": codes[i], "name": conditions[codes[i]].name, "probability": round(float(probabilities[i]), 4),
             "urgency": int(urgencies[i])} for i in top],
        "urgency": {"level": urgency, "label": kb.urgency_levels[urgency], "reasons": reasons,
                    "red_flags": [flag.code for flag in fired]},
        "recommendations": advice + [RECOMMENDATIONS[urgency]]
        + ([NOT_RECOGNISED_ADVICE] if not_recognised else [LOW_CONFIDENCE_ADVICE] if low_confidence else []),
        "specialist": specialist,
        "booking": booking_links(specialist, species),
        "low_confidence": low_confidence,
        "not_recognised": bool(not_recognised),
        "model": {"name": meta["name"], "version": meta["version"]},
        "disclaimer": DISCLAIMER,
        # Document-store keys must be strings (BSON), so urgency levels are written as "1".."5".
        "raw": {"condition_probabilities": {str(codes[i]): float(probabilities[i]) for i in ranked},
                "urgency_probabilities": {str(level): p for level, p in urgency_probabilities.items()},
                "model_urgency": model_urgency, "red_flags": [flag.code for flag in fired],
                "fit": round(float(fit), 4)},
    }


def _model_urgency(urgency_probabilities):
    """The highest level the case reaches with probability >= MODEL_URGENCY_QUANTILE."""
    reached = 0.0
    for level in range(5, 0, -1):
        reached += urgency_probabilities[level]
        if reached >= MODEL_URGENCY_QUANTILE:
            return level
    return 1


def symptom_fit(species_model, present, candidates):
    """How plausible the entered symptoms are under the best candidates: max over them of the geometric mean of
    P(symptom | condition). 1.0 with no symptoms (nothing to explain)."""
    if not present:
        return 1.0
    log_p = species_model["log_p"][np.ix_(list(candidates), list(present))]
    return float(np.exp(log_p.mean(axis=1)).max())


def symptoms_warrant(species_model, present):
    """The urgency each entered symptom warrants on its own (the CONDITION_FLOOR rule applied to P(condition |
    that symptom)), highest over the symptoms."""
    warranted = 1
    prior = np.exp(species_model["log_prior"])
    for index in present:
        given = prior * species_model["p_symptom"][:, index]
        given /= given.sum()
        possible = species_model["urgency"][given > CONDITION_FLOOR_PROBABILITY]
        if len(possible):
            warranted = max(warranted, int(possible.max()))
    return warranted


def booking_links(specialty, species):
    """Where the result leads: the directory filtered to the specialty and species, and the earliest booking."""
    return {"specialty": specialty, "species": species,
            "doctors_url": f"{API_PREFIX}/doctors?specialty={specialty}&species={species}",
            "earliest_appointment": {"method": "POST", "url": f"{API_PREFIX}/appointments/earliest",
                                     "body": {"specialty": specialty}}}


def check_symptoms(symptoms, known, species):
    if not symptoms:
        raise InvalidInput("Give at least one symptom.", errors={"symptoms": ["At least one symptom."]})
    codes = [s["code"] for s in symptoms]
    duplicates = sorted({code for code in codes if codes.count(code) > 1})
    if duplicates:
        raise InvalidInput("Each symptom once, please.", errors={"symptoms": [f"Repeated: {', '.join(duplicates)}"]})
    unknown = [code for code in codes if code not in known]
    if unknown:
        raise InvalidInput(f"Unknown symptoms for a {species} patient.",
                           errors={"symptoms": [f"Not a {species} symptom: {code}" for code in unknown]})
