from blueprints.ai.schemas import (
    AnswerIn,
    ConditionListOut,
    DiagnosisIn,
    DiagnosisListQuery,
    DiagnosisOut,
    FeedbackIn,
    FeedbackOut,
    InterviewIn,
    InterviewOut,
    ModelOut,
    SpeciesQuery,
    SymptomListOut,
)
from pawmanity.core.api import API_PREFIX, Blueprint
from pawmanity.core.schemas import page_of
from pawmanity.identity.security import current_actor
from pawmanity.triage import classifier, diagnoses, interviews
from pawmanity.triage.knowledge import knowledge_base

blp = Blueprint("ai", __name__, url_prefix=f"{API_PREFIX}/ai", description="The symptom checker")


@blp.route("/symptoms", methods=["GET"])
@blp.auth_required()
@blp.arguments(SpeciesQuery, location="query")
@blp.response(200, SymptomListOut)
def list_symptoms(query):
    """The symptom codes the checker knows for a species, with readable names."""
    kb = knowledge_base()
    known = sorted(kb.symptoms_for(query["species"]).items())
    symptoms = [{"code": code, "name": entry["name"]} for code, entry in known]
    return {"species": query["species"], "knowledge_base_version": kb.version,
            **_page(symptoms, query["page"], query["per_page"])}


@blp.route("/conditions", methods=["GET"])
@blp.auth_required()
@blp.arguments(SpeciesQuery, location="query")
@blp.response(200, ConditionListOut)
def list_conditions(query):
    """The conditions the checker considers for a species, with urgency, specialist and sources."""
    kb = knowledge_base()
    conditions = sorted(kb.conditions_for(query["species"]).values(), key=lambda c: c.code)
    shown = _page(conditions, query["page"], query["per_page"])
    shown["items"] = [
        {"code": c.code, "name": c.name, "urgency": c.urgency, "urgency_label": kb.urgency_levels[c.urgency],
         "specialist": c.specialist, "sources": [kb.sources[s] for s in c.sources]} for c in shown["items"]]
    return {"species": query["species"], "knowledge_base_version": kb.version, **shown}


def _page(ordered, page, per_page):
    """A computed list paged like a query (the same envelope as pawmanity.core.database.paginate)."""
    start = (page - 1) * per_page
    return {"items": ordered[start:start + per_page], "page": page, "per_page": per_page, "total": len(ordered)}


@blp.route("/model", methods=["GET"])
@blp.auth_required()
@blp.response(200, ModelOut)
@blp.errors(503)
def active_model():
    """The active model version: what it was trained on and how it scored on held-out cases."""
    return classifier.active()[1]


@blp.route("/diagnoses", methods=["POST"])
@blp.auth_required()
@blp.idempotent()
@blp.arguments(DiagnosisIn)
@blp.response(201, DiagnosisOut)
@blp.errors(403, 404, 415, 429, 503)
def create_diagnosis(data):
    """Assess a patient's symptoms: likely conditions, urgency (red flags override the model), what to do."""
    return diagnoses.diagnose(current_actor(), **data)


@blp.route("/diagnoses", methods=["GET"])
@blp.auth_required()
@blp.arguments(DiagnosisListQuery, location="query")
@blp.response(200, page_of(DiagnosisOut))
@blp.errors(404)
def list_diagnoses(query):
    """Past assessments of the patients you may see, newest first."""
    return diagnoses.list_diagnoses(current_actor(), **query)


@blp.route("/diagnoses/<uuid:diagnosis_id>", methods=["GET"])
@blp.auth_required()
@blp.response(200, DiagnosisOut)
@blp.errors(404)
def get_diagnosis(diagnosis_id):
    return diagnoses.get(current_actor(), diagnosis_id)


@blp.route("/diagnoses/<uuid:diagnosis_id>/feedback", methods=["POST"])
@blp.auth_required()
@blp.arguments(FeedbackIn)
@blp.response(200, FeedbackOut)
@blp.errors(403, 404, 415)
def give_feedback(data, diagnosis_id):
    """The doctor of record confirms the condition; confirmed cases feed the next training run."""
    return diagnoses.feedback(current_actor(), diagnosis_id, **data)


@blp.route("/interviews", methods=["POST"])
@blp.auth_required()
@blp.arguments(InterviewIn)
@blp.response(201, InterviewOut)
@blp.errors(403, 404, 415, 503)
def start_interview(data):
    """Start from the first symptoms; the answer carries the next question (red flags first, then the most
    informative), or the final assessment when no question is needed."""
    return interviews.start(current_actor(), **data)


@blp.route("/interviews/<uuid:interview_id>", methods=["GET"])
@blp.auth_required()
@blp.response(200, InterviewOut)
@blp.errors(404)
def get_interview(interview_id):
    return interviews.get(current_actor(), interview_id)


@blp.route("/interviews/<uuid:interview_id>/answers", methods=["POST"])
@blp.auth_required()
@blp.arguments(AnswerIn)
@blp.response(200, InterviewOut)
@blp.errors(404, 409, 415, 503)
def answer_interview(data, interview_id):
    """Answer the current question (yes / no / unsure). The same answer again changes nothing; a different one is
    409. Stops at once on a confirmed red flag, when confident, or after the maximum number of questions."""
    return interviews.answer(current_actor(), interview_id, **data)
