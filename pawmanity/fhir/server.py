"""What the FHIR API serves: one registry of resource types, each with its visible rows (the same access policy as
the REST API), its search parameters and its sort keys. The plugin registers routes from this registry and the
CapabilityStatement is written from it, so the two cannot drift apart.

Every read and search is audited like the REST API's (`patient.read`, `appointment.list`, ... with `api: fhir`).
"""

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Callable

from sqlalchemy import func, literal, select

from pawmanity.appointments import booking
from pawmanity.audit import trail
from pawmanity.audit.models import AuditEvent
from pawmanity.care import access
from pawmanity.care.models import Patient, Upload, WeightMeasurement
from pawmanity.conversations import consultations
from pawmanity.conversations.models import Consultation, Message
from pawmanity.core.database import utcnow
from pawmanity.core.extensions import db
from pawmanity.fhir import resources
from pawmanity.fhir.search import FhirError, SearchParameter, parse, parse_id
from pawmanity.identity.models import User
from pawmanity.scheduling import availability
from pawmanity.scheduling.models import Appointment, DoctorProfile

MAX_SLOT_WINDOW = timedelta(days=31)
DEFAULT_SLOT_WINDOW = timedelta(days=7)


@dataclass(frozen=True)
class ResourceType:
    name: str
    documentation: str
    parameters: dict
    sort_keys: dict  # FHIR sort key -> column (or slot attribute)
    default_sort: tuple  # ((key, descending), ...)
    audit_object: str
    roles: tuple = ()  # roles allowed at all; empty means any signed-in role
    # SQL-backed types: visible(actor) -> SELECT; id_column; to_resource(row, context)
    visible: Callable | None = None
    id_column: object = None
    to_resource: Callable | None = None
    # Computed types (Slot) replace search and read.
    search_rows: Callable | None = None
    read_row: Callable | None = None
    interactions: tuple = ("read", "search-type")
    operations: tuple = field(default=())
    row_id: Callable = parse_id  # the FHIR id as the row's key; FhirError when it cannot be one


@dataclass(frozen=True)
class Context:
    """What mapping needs from the web layer without reading the request: the REST API's absolute base."""

    api_base: str


def _where(column):
    return lambda query, value: query.where(column == value)


def _date(column):
    return lambda query, bound: query.where(bound.clause(column))


def _id_param(column):
    return SearchParameter("_id", "token", _where(column), "The resource's logical id")


def _reference(name, column, target, documentation):
    return SearchParameter(name, "reference", _where(column), documentation, target=target)


def _status(column, mapping, documentation):
    values = {}
    for ours, theirs in mapping.items():
        values.setdefault(theirs, []).append(ours)
    return SearchParameter("status", "token", lambda query, ours: query.where(column.in_(ours)), documentation,
                           values=values)


def _params(*parameters):
    return {parameter.name: parameter for parameter in parameters}


# --- visibility (the REST API's policy, reused) ---------------------------------------------------------------


def visible_practitioners(actor):
    """Listed (verified, active) doctors for anyone signed in; unverified profiles for their owner and admins."""
    query = select(DoctorProfile).join(User, User.id == DoctorProfile.user_id)
    if actor.is_admin:
        return query
    return query.where(((DoctorProfile.verified_at.is_not(None)) & User.active.is_(True))
                       | (DoctorProfile.user_id == actor.user_id))


def visible_uploads(actor):
    patients = access.visible_patients_query(actor).with_only_columns(Patient.id)
    return select(Upload).where(Upload.deleted_at.is_(None), Upload.patient_id.in_(patients))


def visible_weights(actor):
    patients = access.visible_patients_query(actor).with_only_columns(Patient.id)
    return select(WeightMeasurement).where(WeightMeasurement.patient_id.in_(patients))


def audit_event_id(value):
    if not value.isdigit() or len(value) > 18:
        raise FhirError("An AuditEvent id is a whole number.", code="invalid_id")
    return int(value)


def weight_id(value):
    number = value.removeprefix(resources.WEIGHT_ID_PREFIX)
    if not value.startswith(resources.WEIGHT_ID_PREFIX) or not number.isdigit() or len(number) > 18:
        raise FhirError(f"'{value}' is not an Observation id this server issues.", code="invalid_id")
    return int(number)


def visible_messages(actor):
    return select(Message).join(Consultation, Consultation.id == Message.consultation_id) \
        .where(Consultation.id.in_(consultations.visible_query(actor).with_only_columns(Consultation.id)))


def _communication(row, context):
    consultation = db.session.get(Consultation, row.consultation_id)
    sender = db.session.get(User, row.sender_id)
    doctor_id = db.session.scalar(select(DoctorProfile.id).where(DoctorProfile.user_id == row.sender_id)) \
        if sender is not None and sender.role == "doctor" else None
    return resources.communication(row, consultation, doctor_id, sender.full_name if sender else None)


# --- slots: computed from the doctors' rules, never stored -----------------------------------------------------


def _slot_window(request):
    start, end = utcnow(), None
    for parameter, bound in request.filters:
        if parameter.name != "start":
            continue
        if bound.prefix in ("ge", "gt", "eq"):
            start = max(start, bound.start if bound.prefix == "ge" else bound.end if bound.prefix == "gt"
                        else bound.start)
        if bound.prefix in ("lt", "le", "eq"):
            limit = bound.start if bound.prefix == "lt" else bound.end
            end = limit if end is None else min(end, limit)
    end = end or start + DEFAULT_SLOT_WINDOW
    if end - start > MAX_SLOT_WINDOW:
        raise FhirError("Ask for free slots over at most 31 days (start=ge...&start=lt...).", code="window_too_long",
                        issue_code="too-costly")
    return start, end


def search_slots(actor, request):
    start, end = _slot_window(request)
    doctors = select(DoctorProfile).join(User, User.id == DoctorProfile.user_id).where(
        DoctorProfile.verified_at.is_not(None), User.active.is_(True))
    for parameter, value in request.filters:
        if parameter.name == "schedule":
            doctors = doctors.where(DoctorProfile.id == value)
    rows = [(doctor, free) for doctor in db.session.scalars(doctors)
            for free in availability.free_slots(doctor, start, end)] if start < end else []
    return rows


def read_slot(actor, ident):
    doctor_part, _, moment = ident.rpartition("-")
    try:
        doctor_id = uuid.UUID(doctor_part)
        start = datetime.strptime(moment, "%Y%m%d%H%M").replace(tzinfo=timezone.utc)
    except ValueError:
        raise FhirError("No such Slot.", status=404, issue_code="not-found", code="not_found") from None
    doctor = db.session.get(DoctorProfile, doctor_id)
    if doctor is None or not doctor.verified:
        raise FhirError("No such Slot.", status=404, issue_code="not-found", code="not_found")
    for free in availability.free_slots(doctor, start, start + timedelta(minutes=doctor.slot_minutes)):
        if free.start == start:
            return doctor, free
    raise FhirError("That slot is not free (or never was one).", status=404, issue_code="not-found",
                    code="not_found")


# --- the registry ----------------------------------------------------------------------------------------------

APPOINTMENT_PARAMETERS = _params(
    _id_param(Appointment.id),
    _reference("patient", Appointment.patient_id, "Patient", "The patient the appointment is for"),
    _reference("practitioner", Appointment.doctor_id, "Practitioner", "The practitioner seeing the patient"),
    SearchParameter("date", "date", _date(Appointment.start_at), "When the appointment starts"),
    _status(Appointment.status, resources.APPOINTMENT_STATUS, "pending | booked | arrived | fulfilled | "
                                                              "cancelled | noshow"),
)

ENCOUNTER_PARAMETERS = _params(
    _id_param(Consultation.id),
    _reference("patient", Consultation.patient_id, "Patient", "The patient seen"),
    _reference("subject", Consultation.patient_id, "Patient", "The patient seen"),
    _reference("practitioner", Consultation.doctor_id, "Practitioner", "The practitioner of the consultation"),
    SearchParameter("date", "date", _date(Consultation.started_at), "When the consultation started"),
    SearchParameter("status", "token",
                    lambda query, active: query.where(Consultation.ended_at.is_(None) if active
                                                      else Consultation.ended_at.is_not(None)),
                    "in-progress | finished", values={"in-progress": True, "finished": False}),
)

RESOURCE_TYPES = {rt.name: rt for rt in (
    ResourceType(
        name="Patient", documentation="People and animals under care (animals carry the patient-animal extension).",
        parameters=_params(
            _id_param(Patient.id),
            SearchParameter("name", "string", lambda query, text: query.where(
                func.lower(Patient.name).contains(text.lower(), autoescape=True)), "Part of the name"),
        ),
        sort_keys={"_id": Patient.id, "name": Patient.name, "_lastUpdated": Patient.updated_at},
        default_sort=(("name", False),), audit_object="patient", visible=access.visible_patients_query,
        id_column=Patient.id, to_resource=lambda row, context: resources.patient(row), operations=("everything",)),
    ResourceType(
        name="Practitioner", documentation="Doctors and vets (listed ones; unverified ones to themselves and admins).",
        parameters=_params(
            _id_param(DoctorProfile.id),
            SearchParameter("name", "string", lambda query, text: query.where(
                func.lower(User.full_name).contains(text.lower(), autoescape=True)), "Part of the name"),
        ),
        sort_keys={"_id": DoctorProfile.id, "name": User.full_name}, default_sort=(("name", False),),
        audit_object="doctor", visible=visible_practitioners, id_column=DoctorProfile.id,
        to_resource=lambda row, context: resources.practitioner(row)),
    ResourceType(
        name="Schedule", documentation="One schedule per practitioner: their weekly hours.",
        parameters=_params(
            _id_param(DoctorProfile.id),
            _reference("actor", DoctorProfile.id, "Practitioner", "The practitioner whose schedule it is"),
        ),
        sort_keys={"_id": DoctorProfile.id}, default_sort=(("_id", False),), audit_object="doctor",
        visible=visible_practitioners, id_column=DoctorProfile.id,
        to_resource=lambda row, context: resources.schedule(row)),
    ResourceType(
        name="Slot", documentation="Free slots, computed from the practitioners' hours, time off and bookings "
                                   "(at most 31 days per search; 7 by default).",
        parameters=_params(
            _reference("schedule", None, "Schedule", "The schedule (practitioner) the slot belongs to"),
            SearchParameter("start", "date", None, "When the slot starts"),
            SearchParameter("status", "token", None, "Only free slots are served", values={"free": "free"}),
        ),
        sort_keys={"start": "start"}, default_sort=(("start", False),), audit_object="slot",
        search_rows=search_slots, read_row=read_slot),
    ResourceType(
        name="Appointment", documentation="Appointments, as the REST API shows them to the same caller.",
        parameters=APPOINTMENT_PARAMETERS,
        sort_keys={"_id": Appointment.id, "date": Appointment.start_at, "status": Appointment.status},
        default_sort=(("date", False),), audit_object="appointment", visible=booking.visible_appointments_query,
        id_column=Appointment.id, to_resource=lambda row, context: resources.appointment(row)),
    ResourceType(
        name="Encounter", documentation="Consultations.", parameters=ENCOUNTER_PARAMETERS,
        sort_keys={"_id": Consultation.id, "date": Consultation.started_at}, default_sort=(("date", True),),
        audit_object="consultation", visible=consultations.visible_query, id_column=Consultation.id,
        to_resource=lambda row, context: resources.encounter(row)),
    ResourceType(
        name="Communication", documentation="Chat messages of consultations.",
        parameters=_params(
            _id_param(Message.id),
            _reference("patient", Consultation.patient_id, "Patient", "The patient the conversation is about"),
            _reference("subject", Consultation.patient_id, "Patient", "The patient the conversation is about"),
            _reference("encounter", Message.consultation_id, "Encounter", "The consultation"),
            SearchParameter("sent", "date", _date(Message.created_at), "When the message was sent"),
        ),
        sort_keys={"_id": Message.id, "sent": Message.created_at}, default_sort=(("sent", False),),
        audit_object="message", visible=visible_messages, id_column=Message.id, to_resource=_communication),
    ResourceType(
        name="Observation", documentation="Body weights (vital-signs profile, LOINC 29463-7, UCUM kg).",
        parameters=_params(
            SearchParameter("_id", "token", _where(WeightMeasurement.id), "The observation's id", parse=weight_id),
            _reference("patient", WeightMeasurement.patient_id, "Patient", "The patient measured"),
            _reference("subject", WeightMeasurement.patient_id, "Patient", "The patient measured"),
            SearchParameter("date", "date", _date(WeightMeasurement.measured_at), "When it was measured"),
            # Weights are the only observations so far: a search for another code or category finds nothing.
            SearchParameter("code", "token", lambda query, code: query.where(literal(code == resources.BODY_WEIGHT)),
                            "LOINC code (29463-7, body weight)"),
            SearchParameter("category", "token",
                            lambda query, category: query.where(literal(category == "vital-signs")), "vital-signs"),
        ),
        sort_keys={"_id": WeightMeasurement.id, "date": WeightMeasurement.measured_at},
        default_sort=(("date", True),), audit_object="weight", visible=visible_weights,
        id_column=WeightMeasurement.id, to_resource=lambda row, context: resources.weight_observation(row),
        row_id=weight_id),
    ResourceType(
        name="DocumentReference", documentation="Uploaded files (images, PDFs, DICOM); the attachment URL is the "
                                                "REST API's download, which checks access again.",
        parameters=_params(
            _id_param(Upload.id),
            _reference("patient", Upload.patient_id, "Patient", "The patient the document is about"),
            _reference("subject", Upload.patient_id, "Patient", "The patient the document is about"),
            _reference("encounter", Upload.consultation_id, "Encounter", "The consultation it was shared in"),
            SearchParameter("date", "date", _date(Upload.created_at), "When it was uploaded"),
        ),
        sort_keys={"_id": Upload.id, "date": Upload.created_at}, default_sort=(("date", True),),
        audit_object="upload", visible=visible_uploads, id_column=Upload.id,
        to_resource=lambda row, context: resources.document_reference(row, context.api_base)),
    ResourceType(
        name="AuditEvent", documentation="The audit trail (admins only).",
        parameters=_params(
            SearchParameter("_id", "token", _where(AuditEvent.id), "The event's id", parse=audit_event_id),
            SearchParameter("date", "date", _date(AuditEvent.occurred_at), "When it happened"),
            SearchParameter("subtype", "token", _where(AuditEvent.action), "Our action name, e.g. patient.read"),
        ),
        sort_keys={"_id": AuditEvent.id, "date": AuditEvent.occurred_at}, default_sort=(("date", True),),
        audit_object="audit", roles=("admin",), visible=lambda actor: select(AuditEvent), id_column=AuditEvent.id,
        to_resource=lambda row, context: resources.audit_event(row), row_id=audit_event_id),
)}


def resource_type(name, actor):
    kind = RESOURCE_TYPES.get(name)
    if kind is None:
        raise FhirError(f"This server serves no '{name}' resources.", status=404, issue_code="not-supported",
                        code="unknown_resource_type")
    if kind.roles and actor.role not in kind.roles:
        raise FhirError("Your role does not allow this.", status=403, issue_code="forbidden", code="forbidden")
    return kind


def _row_id(kind, ident):
    try:
        return kind.row_id(ident)
    except FhirError:
        raise FhirError(f"No such {kind.name}.", status=404, issue_code="not-found", code="not_found") from None


def read(actor, name, ident, context):
    kind = resource_type(name, actor)
    if kind.read_row is not None:
        doctor, free = kind.read_row(actor, ident)
        return resources.slot(doctor, free)
    row = db.session.scalar(kind.visible(actor).where(kind.id_column == _row_id(kind, ident)))
    if row is None:
        raise FhirError(f"No such {kind.name}.", status=404, issue_code="not-found", code="not_found")
    trail.record(f"{kind.audit_object}.read", actor, object_type=kind.audit_object, object_id=ident,
                 detail={"api": "fhir"})
    resource = kind.to_resource(row, context)
    db.session.commit()
    return resource


def search(actor, name, args, context):
    """(total, resources, search request) for one page of a search."""
    kind = resource_type(name, actor)
    request = parse(args, kind.parameters, kind.sort_keys)
    sort = request.sort or list(kind.default_sort)
    if kind.search_rows is not None:
        rows = kind.search_rows(actor, request)
        rows.sort(key=lambda pair: (pair[1].start, str(pair[0].id)), reverse=sort[0][1])
        page = rows[request.offset:request.offset + request.count]
        return len(rows), [resources.slot(doctor, free) for doctor, free in page], request
    query = kind.visible(actor)
    for parameter, value in request.filters:
        query = parameter.apply(query, value)
    total = db.session.scalar(select(func.count()).select_from(query.order_by(None).subquery()))
    order = [kind.sort_keys[key].desc() if descending else kind.sort_keys[key].asc() for key, descending in sort]
    query = query.order_by(*order, kind.id_column).limit(request.count).offset(request.offset)
    rows = db.session.scalars(query).all()
    trail.record(f"{kind.audit_object}.list", actor, object_type=kind.audit_object,
                 detail={"api": "fhir", "ids": [str(row.id) for row in rows]})
    found = [kind.to_resource(row, context) for row in rows]
    db.session.commit()
    return total, found, request


def everything(actor, patient_id, context):
    """The patient's compartment: the patient and everything about them this caller may see."""
    try:
        patient_uuid = parse_id(patient_id)
    except FhirError:
        raise FhirError("No such Patient.", status=404, issue_code="not-found", code="not_found") from None
    patient = db.session.scalar(access.visible_patients_query(actor).where(Patient.id == patient_uuid))
    if patient is None:
        raise FhirError("No such Patient.", status=404, issue_code="not-found", code="not_found")
    found = [resources.patient(patient)]
    compartment = (
        ("Appointment", Appointment.patient_id, Appointment.start_at),
        ("Encounter", Consultation.patient_id, Consultation.started_at),
        ("Communication", Consultation.patient_id, Message.created_at),
        ("DocumentReference", Upload.patient_id, Upload.created_at),
        ("Observation", WeightMeasurement.patient_id, WeightMeasurement.measured_at),
    )
    for name, column, order in compartment:
        kind = RESOURCE_TYPES[name]
        rows = db.session.scalars(kind.visible(actor).where(column == patient.id).order_by(order)).all()
        found += [kind.to_resource(row, context) for row in rows]
    trail.record("patient.everything", actor, object_type="patient", object_id=patient.id,
                 detail={"api": "fhir", "count": len(found)})
    db.session.commit()
    return found


def capability_statement(base_url):
    """Written from the registry the routes are registered from: it lists exactly what is served."""
    rest_resources = []
    for kind in RESOURCE_TYPES.values():
        entry = {
            "type": kind.name,
            "documentation": kind.documentation,
            "interaction": [{"code": code} for code in kind.interactions],
            "searchParam": [{"name": parameter.name, "type": parameter.type,
                             "documentation": parameter.documentation}
                            for parameter in kind.parameters.values()],
        }
        if kind.operations:
            entry["operation"] = [{"name": operation,
                                   "definition": f"http://hl7.org/fhir/OperationDefinition/{kind.name}-{operation}"}
                                  for operation in kind.operations]
        rest_resources.append(entry)
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": resources.iso(utcnow()),
        "kind": "instance",
        "software": {"name": "PAWMANITY"},
        "implementation": {"description": "PAWMANITY FHIR API (read and search)", "url": base_url},
        "fhirVersion": resources.FHIR_VERSION,
        "format": ["application/fhir+json", "json"],
        "rest": [{
            "mode": "server",
            "documentation": "Read and search only. _count (at most 100), _sort and _offset on every search; "
                             "unknown parameters are refused with 400.",
            "security": {"cors": False, "description": "The REST API's bearer access tokens (Authorization: "
                                                       "Bearer <token>) and its access policy."},
            "resource": rest_resources,
        }],
    }
