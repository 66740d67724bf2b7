from marshmallow import fields, validate

from pawmanity.core.schemas import JSONBoolean, PageQuery, Schema
from pawmanity.triage.classifier import SPECIES as COVERED_SPECIES


class SpeciesQuery(PageQuery):
    # The species the symptom checker covers, not every species a record may have: the document says what is served.
    species = fields.String(required=True, validate=validate.OneOf(COVERED_SPECIES))


class SymptomOut(Schema):
    code = fields.String(required=True)
    name = fields.String(required=True)


class ConditionOut(Schema):
    code = fields.String(required=True)
    name = fields.String(required=True)
    urgency = fields.Integer(required=True, metadata={"description": "1 self-care ... 5 emergency now"})
    urgency_label = fields.String(required=True)
    specialist = fields.String(required=True)
    sources = fields.List(fields.String(), required=True)


class CatalogueOut(Schema):
    """A page of a knowledge-base catalogue: the list envelope plus the species and the knowledge base version."""
    species = fields.String(required=True)
    knowledge_base_version = fields.String(required=True)
    page = fields.Integer(required=True)
    per_page = fields.Integer(required=True)
    total = fields.Integer(required=True)


class SymptomListOut(CatalogueOut):
    items = fields.List(fields.Nested(SymptomOut), required=True)


class ConditionListOut(CatalogueOut):
    items = fields.List(fields.Nested(ConditionOut), required=True)


class ModelOut(Schema):
    name = fields.String(required=True)
    version = fields.String(required=True)
    created_at = fields.String(required=True)
    knowledge_base_version = fields.String(required=True)
    training = fields.Dict(required=True, metadata={"description": "cases per species, seed, hold-out share, "
                                                                   "SHA-256 of each species' training data"})
    metrics = fields.Dict(required=True, metadata={"description": "held-out top-1/top-3 accuracy and urgency "
                                                                  "recall per level, per species"})
    kind = fields.String(metadata={"description": "the model family (naive-bayes-1)"})
    vignettes = fields.Dict(metadata={"description": "the release gate on the held-out clinical vignettes: verdict, "
                                                     "failures and figures per species"})


class SymptomIn(Schema):
    code = fields.String(required=True, validate=validate.Length(min=1, max=64))
    severity = fields.Integer(required=True, validate=validate.Range(min=1, max=10))
    duration_days = fields.Float(required=True, validate=validate.Range(min=0, max=3650))


class PatientAgeIn(Schema):
    age_years = fields.Float(validate=validate.Range(min=0, max=200), metadata={
        "description": "Required (or age_band) when the record has no date of birth; refused outside what the "
                       "species lives"})
    age_band = fields.String(validate=validate.Length(min=1, max=32), metadata={
        "description": "human: infant, toddler, child, adolescent, young_adult, middle_aged, older_adult; "
                       "dog/cat: puppy or kitten, young_adult, adult, senior"})


class DiagnosisIn(PatientAgeIn):
    patient_id = fields.UUID(required=True)
    symptoms = fields.List(fields.Nested(SymptomIn), required=True, validate=validate.Length(min=1, max=30))
    notes = fields.String(validate=validate.Length(max=2000))
    store_notes = JSONBoolean(load_default=False, metadata={"description": "Consent to keep the free-text notes "
                                                                           "in the diagnosis log"})


class RankedConditionOut(Schema):
    code = fields.String(required=True)
    name = fields.String(required=True)
    probability = fields.Float(required=True)
    urgency = fields.Integer()


class EarliestBookingOut(Schema):
    method = fields.String(required=True)
    url = fields.String(required=True)
    body = fields.Dict(required=True)


class BookingOut(Schema):
    specialty = fields.String(required=True)
    species = fields.String(required=True)
    doctors_url = fields.String(required=True, metadata={"description": "GET /doctors filtered to the specialty "
                                                                        "and the patient's species"})
    earliest_appointment = fields.Nested(EarliestBookingOut, required=True)


class UrgencyOut(Schema):
    level = fields.Integer(required=True)
    label = fields.String(required=True)
    reasons = fields.List(fields.String(), required=True)
    red_flags = fields.List(fields.String(), required=True)


class ModelRefOut(Schema):
    name = fields.String(required=True)
    version = fields.String(required=True)


class DiagnosisOut(Schema):
    id = fields.String(required=True)
    patient_id = fields.String(required=True)
    created_at = fields.String(required=True)
    conditions = fields.List(fields.Nested(RankedConditionOut), required=True)
    urgency = fields.Nested(UrgencyOut, required=True)
    recommendations = fields.List(fields.String(), required=True)
    specialist = fields.String(required=True, metadata={"description": "A doctor-directory specialty code"})
    booking = fields.Nested(BookingOut)
    low_confidence = fields.Boolean(required=True)
    not_recognised = fields.Boolean(metadata={"description": "The symptoms fit no condition the checker knows "
                                                             "well; no condition is named"})
    model = fields.Nested(ModelRefOut, required=True)
    disclaimer = fields.String(required=True)


class DiagnosisListQuery(PageQuery):
    patient_id = fields.UUID()


class FeedbackIn(Schema):
    confirmed_condition = fields.String(required=True, validate=validate.Length(min=1, max=64))
    comment = fields.String(validate=validate.Length(max=2000))


class FeedbackOut(Schema):
    diagnosis_id = fields.String(required=True)
    confirmed_condition = fields.String(required=True)
    comment = fields.String(allow_none=True)
    created_at = fields.String(required=True)


class InterviewIn(PatientAgeIn):
    patient_id = fields.UUID(required=True)
    symptoms = fields.List(fields.Nested(SymptomIn), required=True, validate=validate.Length(min=1, max=30))


class AnswerIn(Schema):
    question_id = fields.String(required=True, validate=validate.Length(min=1, max=16))
    answer = fields.String(required=True, validate=validate.OneOf(("yes", "no", "unsure")))
    severity = fields.Integer(validate=validate.Range(min=1, max=10))
    duration_days = fields.Float(validate=validate.Range(min=0, max=3650))


class QuestionOut(Schema):
    id = fields.String(required=True)
    code = fields.String(required=True)
    name = fields.String(required=True)
    reason = fields.String(required=True, metadata={"description": "red_flag or information_gain"})


class AnswerOut(Schema):
    id = fields.String(required=True)
    code = fields.String(required=True)
    answer = fields.String(required=True)


class InterimOut(Schema):
    conditions = fields.List(fields.Nested(RankedConditionOut), required=True)
    urgency = fields.Nested(UrgencyOut, required=True)


class InterviewOut(Schema):
    id = fields.String(required=True)
    patient_id = fields.String(required=True)
    status = fields.String(required=True, metadata={"description": "asking or finished"})
    question = fields.Nested(QuestionOut, allow_none=True, metadata={"description": "The next question, while asking"})
    questions_asked = fields.Integer(required=True)
    max_questions = fields.Integer(required=True)
    answers = fields.List(fields.Nested(AnswerOut), required=True)
    stop_reason = fields.String(allow_none=True, metadata={
        "description": "red_flag, confident, max_questions or no_useful_question"})
    interim = fields.Nested(InterimOut, allow_none=True)
    result = fields.Nested(DiagnosisOut, allow_none=True, metadata={"description": "The final assessment, logged "
                                                                                  "as a diagnosis"})
