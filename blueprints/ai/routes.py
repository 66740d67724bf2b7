from blueprints.ai.schemas import ConditionListOut, ModelOut, SpeciesQuery, SymptomListOut
from pawmanity.api import API_PREFIX, Blueprint
from pawmanity.services import triage_model
from pawmanity.services.knowledge import knowledge_base

blp = Blueprint("ai", __name__, url_prefix=f"{API_PREFIX}/ai", description="The symptom checker")


@blp.route("/symptoms", methods=["GET"])
@blp.auth_required()
@blp.arguments(SpeciesQuery, location="query")
@blp.response(200, SymptomListOut)
def list_symptoms(query):
    """The symptom codes the checker knows for a species, with readable names."""
    kb = knowledge_base()
    symptoms = kb.symptoms_for(query["species"])
    return {"species": query["species"], "knowledge_base_version": kb.version,
            "items": [{"code": code, "name": entry["name"]} for code, entry in sorted(symptoms.items())]}


@blp.route("/conditions", methods=["GET"])
@blp.auth_required()
@blp.arguments(SpeciesQuery, location="query")
@blp.response(200, ConditionListOut)
def list_conditions(query):
    """The conditions the checker considers for a species, with urgency, specialist and sources."""
    kb = knowledge_base()
    conditions = kb.conditions_for(query["species"])
    return {"species": query["species"], "knowledge_base_version": kb.version, "items": [
        {"code": c.code, "name": c.name, "urgency": c.urgency, "urgency_label": kb.urgency_levels[c.urgency],
         "specialist": c.specialist, "sources": [kb.sources[s] for s in c.sources]}
        for c in sorted(conditions.values(), key=lambda c: c.code)]}


@blp.route("/model", methods=["GET"])
@blp.auth_required()
@blp.response(200, ModelOut)
@blp.errors(503)
def active_model():
    """The active model version: what it was trained on and how it scored on held-out cases."""
    return triage_model.active()[1]
