"""The symptom-checker interview: start from the first symptoms, ask one symptom at a time, stop when it is enough.

Next question: first any red-flag symptom that would complete an emergency red flag and is plausible given what is
known (P(symptom | answers so far) >= RED_FLAG_ASK_PROBABILITY); then the symptom with the largest expected
information gain about the condition. The interview stops at once when an emergency red flag is confirmed, when the
top condition is likely enough (CONFIDENT) and no red-flag question is pending, after MAX_QUESTIONS, or when no
question would tell much. The final assessment is logged exactly like a diagnosis (MongoDB log, outbox, audit,
guardians notified of an emergency). Answering a question again with the same answer changes nothing; a different
answer to an answered question is a conflict.
"""

import time
import uuid

import numpy as np
from sqlalchemy import select

from pawmanity.audit import trail
from pawmanity.care import access
from pawmanity.care.access import ADMIN, DOCTOR_OF_RECORD, GUARDIAN
from pawmanity.core.database import utcnow
from pawmanity.core.errors import Conflict, NotFound
from pawmanity.core.extensions import db
from pawmanity.triage import assessment, classifier, diagnoses
from pawmanity.triage.knowledge import knowledge_base
from pawmanity.triage.models import TriageInterview

MAX_QUESTIONS = 8
CONFIDENT = 0.8
RED_FLAG_ASK_PROBABILITY = 0.05
MIN_INFORMATION_GAIN = 0.02     # bits: below this a question is not worth the patient's time
ANSWERS = ("yes", "no", "unsure")
DEFAULT_SEVERITY = 5


def start(actor, *, patient_id, symptoms, age_years=None, age_band=None):
    patient, _ = access.visible_patient(actor, patient_id, allow=(GUARDIAN, DOCTOR_OF_RECORD, ADMIN))
    age_range = diagnoses.patient_age_range(patient, age_years=age_years, age_band=age_band)
    assessment.check_symptoms(symptoms, knowledge_base().symptoms_for(patient.species), patient.species)
    # The id is chosen here, not by a flush: the row is then written once, with its first question, at the commit.
    interview = TriageInterview(id=uuid.uuid4(), patient_id=patient.id, caller_id=actor.user_id,
                                species=patient.species, status="asking", state={
                                    "age_range": list(age_range), "sex": diagnoses.patient_sex(patient),
                                    "present": {s["code"]: [s["severity"], s["duration_days"]] for s in symptoms},
                                    "denied": [], "questions": [], "stop_reason": None, "result": None})
    _advance(actor, interview, patient)
    db.session.add(interview)
    trail.record("interview.start", actor, object_type="interview", object_id=interview.id,
                 detail={"patient_id": str(patient.id)})
    db.session.commit()
    return view(interview)


def answer(actor, interview_id, *, question_id, answer, severity=None, duration_days=None):
    interview = _load(actor, interview_id, lock=True)
    state = interview.state
    question = next((q for q in state["questions"] if q["id"] == question_id), None)
    if question is None:
        raise NotFound("No such question in this interview.")
    if question["answer"] is not None:
        if question["answer"] == answer:
            db.session.rollback()  # releases the row lock; an idempotent repeat changes nothing
            return view(interview)
        raise Conflict(f"Question {question_id} was already answered {question['answer']!r}.")
    if interview.status == "finished":
        raise Conflict("The interview is finished.")
    # Before the state changes: the access query would flush it, an UPDATE of the row that _advance repeats.
    patient = access.visible_patient(actor, interview.patient_id, allow=(GUARDIAN, DOCTOR_OF_RECORD, ADMIN))[0]
    state = {**state, "questions": [dict(q) for q in state["questions"]], "present": dict(state["present"]),
             "denied": list(state["denied"])}
    asked = next(q for q in state["questions"] if q["id"] == question_id)
    asked["answer"] = answer
    if answer == "yes":
        longest = max((days for _, days in state["present"].values()), default=1.0)
        state["present"][asked["code"]] = [severity or DEFAULT_SEVERITY,
                                           duration_days if duration_days is not None else longest]
    elif answer == "no":
        state["denied"].append(asked["code"])
    interview.state = state  # a new dict: JSON columns only notice reassignment
    _advance(actor, interview, patient)
    trail.record("interview.answer", actor, object_type="interview", object_id=interview.id,
                 detail={"question": question_id, "answer": answer})
    db.session.commit()
    return view(interview)


def get(actor, interview_id):
    return view(_load(actor, interview_id))


def view(interview):
    state = interview.state
    pending = next((q for q in state["questions"] if q["answer"] is None), None) \
        if interview.status == "asking" else None
    symptoms = knowledge_base().symptoms
    return {"id": str(interview.id), "patient_id": str(interview.patient_id), "status": interview.status,
            "question": None if pending is None else {
                "id": pending["id"], "code": pending["code"], "name": symptoms[pending["code"]]["name"],
                "reason": pending["reason"]},
            "questions_asked": len(state["questions"]), "max_questions": MAX_QUESTIONS,
            "answers": [{"id": q["id"], "code": q["code"], "answer": q["answer"]} for q in state["questions"]
                        if q["answer"] is not None],
            "stop_reason": state["stop_reason"], "interim": state.get("interim"), "result": state["result"]}


def _load(actor, interview_id, *, lock=False):
    query = select(TriageInterview).where(TriageInterview.id == interview_id)
    interview = db.session.scalar(query.with_for_update() if lock else query)
    if interview is None or (interview.caller_id != actor.user_id and not actor.is_admin):
        raise NotFound("No such interview.")
    return interview


def _advance(actor, interview, patient):
    """Assess what is known; either ask the next question or finish and log the final assessment."""
    state = dict(interview.state)
    started = time.perf_counter()
    model = classifier.active()
    symptoms = [{"code": code, "severity": severity, "duration_days": days}
                for code, (severity, days) in state["present"].items()]
    age_range = tuple(state["age_range"])
    result = assessment.assess(interview.species, symptoms, age_range=age_range, sex=state["sex"],
                           denied=state["denied"], model=model)
    kb = knowledge_base()
    emergency_flags = [code for code in result["urgency"]["red_flags"]
                       if next(f for f in kb.red_flags if f.code == code).urgency == 5]
    question, stop = None, None
    if emergency_flags:
        stop = "red_flag"
    else:
        asked = {q["code"] for q in state["questions"]} | set(state["present"]) | set(state["denied"])
        question = _red_flag_question(kb, interview.species, model[0][interview.species], result, state, asked)
        if question is None:
            top = result["raw"]["condition_probabilities"]
            if not result["not_recognised"] and next(iter(top.values())) >= CONFIDENT:
                stop = "confident"
            elif len(state["questions"]) >= MAX_QUESTIONS:
                stop = "max_questions"
            else:
                question = _most_informative(model[0][interview.species], result, asked)
                if question is None:
                    stop = "no_useful_question"
        elif len(state["questions"]) >= MAX_QUESTIONS:
            question, stop = None, "max_questions"
    if stop is None:
        state["questions"] = [*state["questions"], {"id": f"q{len(state['questions']) + 1}", "answer": None,
                                                    **question}]
        state["interim"] = {"conditions": result["conditions"][:3], "urgency": result["urgency"]}
    else:
        latency_ms = round((time.perf_counter() - started) * 1000, 3)
        public = diagnoses.log_assessment(
            actor, patient, result, age_range=age_range, latency_ms=latency_ms,
            request={"symptoms": symptoms, "denied": state["denied"], "notes": None},
            extra={"interview": {"id": str(interview.id), "questions": state["questions"], "stop_reason": stop}},
            commit=False)
        state.update(stop_reason=stop, result=public, interim=None)
        interview.status, interview.diagnosis_id = "finished", uuid.UUID(public["id"])
    interview.state = state
    interview.updated_at = utcnow()


def _red_flag_question(kb, species, model, result, state, asked):
    """The plausible symptom that would complete an emergency red flag, likeliest first."""
    predictive = _predictive(model, result)
    index = {code: i for i, code in enumerate(model["symptom_codes"])}
    severities = {code: severity for code, (severity, _) in state["present"].items()}
    best = None
    for flag in kb.red_flags:
        if flag.urgency < 5 or species not in flag.species:
            continue
        for code in flag.all_of + flag.any_of:
            if code in asked or code not in index:
                continue
            if not flag.fires(species, {**severities, code: 10}, age_range=tuple(state["age_range"]),
                              sex=state["sex"]):
                continue
            probability = predictive[index[code]]
            if probability >= RED_FLAG_ASK_PROBABILITY and (best is None or probability > best[0]):
                best = (probability, {"code": code, "reason": "red_flag", "red_flag": flag.code})
    return None if best is None else best[1]


def _most_informative(model, result, asked):
    """The unasked symptom whose answer is expected to reduce the uncertainty about the condition the most."""
    posterior = _posterior(model, result)
    p = model["p_symptom"].astype(np.float64)
    weight = classifier.UNMENTIONED_WEIGHT
    yes = posterior[:, None] * p / (1 - p) ** weight      # unmentioned -> present
    no = posterior[:, None] * (1 - p) ** (1 - weight)      # unmentioned -> denied
    p_yes = yes.sum(axis=0) / (yes.sum(axis=0) + no.sum(axis=0))
    gain = _entropy(posterior[:, None]) - p_yes * _entropy(yes / yes.sum(axis=0)) \
        - (1 - p_yes) * _entropy(no / no.sum(axis=0))
    for code in asked:
        if code in model["symptom_codes"]:
            gain[model["symptom_codes"].index(code)] = -np.inf
    best = int(np.argmax(gain))
    if gain[best] < MIN_INFORMATION_GAIN:
        return None
    return {"code": model["symptom_codes"][best], "reason": "information_gain",
            "expected_gain_bits": round(float(gain[best]), 4)}


def _posterior(model, result):
    probabilities = result["raw"]["condition_probabilities"]
    return np.array([probabilities[code] for code in model["condition_codes"]])


def _predictive(model, result):
    """P(symptom present | what is known so far), per symptom."""
    return _posterior(model, result) @ model["p_symptom"].astype(np.float64)


def _entropy(distribution):
    safe = np.clip(distribution, 1e-12, 1)
    return -(distribution * np.log2(safe)).sum(axis=0)
