"""One assessment: the models' probabilities, then the red-flag rules, then what to do.

The models rank conditions and estimate urgency; red flags written from the knowledge base can only raise urgency,
never lower it. When the top condition is not clearly ahead the result says so instead of pretending.
"""

from pawmanity.core.errors import InvalidInput
from pawmanity.triage import classifier
from pawmanity.triage.cases import Encoder
from pawmanity.triage.knowledge import knowledge_base

TOP_CONDITIONS = 5
LOW_CONFIDENCE = 0.35
RECOMMENDATIONS = {
    1: "Rest, fluids and watchful waiting are usually enough; book a routine appointment if it lasts or worsens.",
    2: "Book a routine appointment in the coming days.",
    3: "See a clinician within 48 hours.",
    4: "See a clinician within the next few hours.",
    5: "Seek emergency care now.",
}
DISCLAIMER = ("This is an automated triage suggestion, not a diagnosis. It cannot examine the patient; if you are "
              "worried, or symptoms get worse, contact a clinician or emergency services.")


def assess(species, symptoms, *, age_years, sex):
    """symptoms: [{code, severity 1-10, duration_days}]. Returns the assessment and the raw model outputs."""
    kb = knowledge_base()
    known = kb.symptoms_for(species)
    _check_symptoms(symptoms, known, species)
    bundle, meta = classifier.active()
    models = bundle[species]
    encoder = Encoder(species=species, symptom_codes=tuple(models["symptom_codes"]))
    row = encoder.encode({s["code"]: (s["severity"], s["duration_days"]) for s in symptoms}, age_years, sex)
    condition_probabilities = dict(zip(models["condition_model"].classes_,
                                       models["condition_model"].predict_proba([row])[0].tolist()))
    urgency_probabilities = dict(zip((int(level) for level in models["urgency_model"].classes_),
                                     models["urgency_model"].predict_proba([row])[0].tolist()))
    model_urgency = max(urgency_probabilities, key=urgency_probabilities.get)
    present = {s["code"] for s in symptoms}
    fired = [flag for flag in kb.red_flags if flag.fires(species, present)]
    urgency = max([model_urgency, *(flag.urgency for flag in fired)])
    ranked = sorted(condition_probabilities.items(), key=lambda item: -item[1])[:TOP_CONDITIONS]
    conditions = kb.conditions_for(species)
    top_code, top_probability = ranked[0]
    low_confidence = top_probability < LOW_CONFIDENCE
    reasons = [flag.reason for flag in fired] or [f"The model estimates urgency {model_urgency} "
                                                  f"({urgency_probabilities[model_urgency]:.0%} likely)."]
    return {
        "conditions": [{"code": code, "name": conditions[code].name, "probability": round(p, 4)}
                       for code, p in ranked],
        "urgency": {"level": urgency, "label": kb.urgency_levels[urgency], "reasons": reasons,
                    "red_flags": [flag.code for flag in fired]},
        "recommendations": [flag.advice for flag in fired] + [RECOMMENDATIONS[urgency]]
        + (["The symptoms do not point clearly to one condition; a clinician should assess them."]
           if low_confidence else []),
        "specialist": "emergency_medicine" if urgency == 5 and species == "human"
        else "emergency_veterinary" if urgency == 5 else conditions[top_code].specialist,
        "low_confidence": low_confidence,
        "model": {"name": meta["name"], "version": meta["version"]},
        "disclaimer": DISCLAIMER,
        # Document-store keys must be strings (BSON), so urgency levels are written as "1".."5".
        "raw": {"condition_probabilities": {str(code): p for code, p in condition_probabilities.items()},
                "urgency_probabilities": {str(level): p for level, p in urgency_probabilities.items()},
                "model_urgency": model_urgency, "red_flags": [flag.code for flag in fired]},
    }


def _check_symptoms(symptoms, known, species):
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
