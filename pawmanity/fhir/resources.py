"""Our rows as FHIR R4B resources (plain dicts in FHIR JSON).

R4B (4.3.0) is served: it is what fhir.resources ships beside R5 for the 4.x line most deployed FHIR clients speak,
and it still has the `patient-animal` extension and Media/DocumentReference as R4 defined them.
References are relative (`Patient/<id>`); ids are our UUIDs, which fit FHIR's id pattern.
"""

from pawmanity.core.database import utcnow

FHIR_VERSION = "4.3.0"
ANIMAL_EXTENSION = "http://hl7.org/fhir/StructureDefinition/patient-animal"
SNOMED = "http://snomed.info/sct"
GENDER_STATUS_SYSTEM = "http://terminology.hl7.org/CodeSystem/animal-genderstatus"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
AUDIT_TYPE = "http://terminology.hl7.org/CodeSystem/audit-event-type"
AUDIT_ACTION_SYSTEM = "urn:pawmanity:audit-action"
MICROCHIP_SYSTEM = "urn:pawmanity:microchip"
LOINC, UCUM = "http://loinc.org", "http://unitsofmeasure.org"
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
BODY_WEIGHT = "29463-7"
WEIGHT_ID_PREFIX = "weight-"  # Observation ids name their source, so other vitals can join without clashes

# Only species whose SNOMED CT organism concept we are sure of carry a coding; the others carry text alone.
SPECIES_CODES = {"dog": ("448771007", "Canis lupus familiaris"), "cat": ("448169003", "Felis catus")}

# Our appointment statuses in FHIR's Appointment.status vocabulary; the reverse map drives `status=` searches.
APPOINTMENT_STATUS = {"requested": "pending", "confirmed": "booked", "in_progress": "arrived",
                      "completed": "fulfilled", "cancelled": "cancelled", "no_show": "noshow"}
APPOINTMENT_TYPE_TEXT = {"video": "Video consultation", "chat": "Chat consultation", "in_person": "In person"}


def iso(moment):
    return moment.isoformat().replace("+00:00", "Z") if moment is not None else None


def ref(kind, ident, display=None):
    reference = {"reference": f"{kind}/{ident}"}
    if display:
        reference["display"] = display
    return reference


def _meta(moment):
    return {"lastUpdated": iso(moment or utcnow())}


def patient(row):
    resource = {"resourceType": "Patient", "id": str(row.id), "meta": _meta(row.updated_at),
                "active": row.archived_at is None, "name": [{"text": row.name}],
                "gender": _gender(row.sex)}
    if row.date_of_birth is not None:
        resource["birthDate"] = row.date_of_birth.isoformat()
    if row.microchip_id:
        resource["identifier"] = [{"system": MICROCHIP_SYSTEM, "value": row.microchip_id}]
    if row.species != "human":
        resource["extension"] = [_animal_extension(row)]
    return resource


def _gender(sex):
    if sex.startswith("female"):
        return "female"
    if sex.startswith("male"):
        return "male"
    return "other" if sex == "intersex" else "unknown"


def _animal_extension(row):
    code = SPECIES_CODES.get(row.species)
    species = {"text": row.species}
    if code:
        species["coding"] = [{"system": SNOMED, "code": code[0], "display": code[1]}]
    parts = [{"url": "species", "valueCodeableConcept": species}]
    if row.breed:
        parts.append({"url": "breed", "valueCodeableConcept": {"text": row.breed}})
    status = "neutered" if row.sex in ("female_spayed", "male_neutered") else \
        "intact" if row.sex in ("female", "male") else "unknown"
    parts.append({"url": "genderStatus",
                  "valueCodeableConcept": {"coding": [{"system": GENDER_STATUS_SYSTEM, "code": status}]}})
    return {"url": ANIMAL_EXTENSION, "extension": parts}


def practitioner(row):
    resource = {"resourceType": "Practitioner", "id": str(row.id), "meta": _meta(row.updated_at),
                "active": row.verified and row.user.active, "name": [{"text": row.user.full_name}],
                "qualification": [{"code": {"text": row.specialty.replace("_", " ")}}]}
    return resource


def schedule(row):
    species = ", ".join(row.species_treated)
    return {"resourceType": "Schedule", "id": str(row.id), "meta": _meta(row.updated_at),
            "active": row.verified and row.user.active,
            "serviceType": [{"text": row.specialty.replace("_", " ")}],
            "actor": [ref("Practitioner", row.id, row.user.full_name)],
            "comment": f"Bookable slots of {row.slot_minutes} minutes, {row.timezone} hours; treats {species}."}


def slot_id(doctor_id, start):
    return f"{doctor_id}-{start.strftime('%Y%m%d%H%M')}"


def slot(doctor, free):
    return {"resourceType": "Slot", "id": slot_id(doctor.id, free.start), "schedule": ref("Schedule", doctor.id),
            "status": "free", "start": iso(free.start), "end": iso(free.end)}


def appointment(row):
    participants = [
        {"actor": ref("Patient", row.patient_id), "status": "accepted"},
        {"actor": ref("Practitioner", row.doctor_id),
         "status": "needs-action" if row.status == "requested" else "accepted"},
    ]
    resource = {"resourceType": "Appointment", "id": str(row.id), "meta": _meta(row.updated_at),
                "status": APPOINTMENT_STATUS[row.status],
                "appointmentType": {"text": APPOINTMENT_TYPE_TEXT[row.type]},
                "start": iso(row.start_at), "end": iso(row.end_at),
                "minutesDuration": int((row.end_at - row.start_at).total_seconds() // 60),
                "created": iso(row.created_at), "participant": participants}
    if row.reason:
        resource["reasonCode"] = [{"text": row.reason}]
    if row.status == "cancelled" and row.cancel_reason:
        resource["cancelationReason"] = {"text": row.cancel_reason}
    return resource


def encounter(row):
    period = {"start": iso(row.started_at)}
    if row.ended_at is not None:
        period["end"] = iso(row.ended_at)
    return {"resourceType": "Encounter", "id": str(row.id), "meta": _meta(row.ended_at or row.started_at),
            "status": "in-progress" if row.ended_at is None else "finished",
            "class": {"system": ACT_CODE, "code": "VR", "display": "virtual"},
            "subject": ref("Patient", row.patient_id),
            "participant": [{"individual": ref("Practitioner", row.doctor_id)}],
            "appointment": [ref("Appointment", row.appointment_id)], "period": period}


def communication(row, consultation, sender_doctor_id, sender_name):
    sender = ref("Practitioner", sender_doctor_id) if sender_doctor_id else {"display": sender_name}
    resource = {"resourceType": "Communication", "id": str(row.id), "meta": _meta(row.created_at),
                "status": "completed", "subject": ref("Patient", consultation.patient_id),
                "encounter": ref("Encounter", consultation.id), "sent": iso(row.created_at), "sender": sender,
                "payload": [{"contentString": row.body}]}
    if row.attachment_ids:
        resource["payload"] += [{"contentReference": ref("DocumentReference", ident)}
                                for ident in row.attachment_ids]
    return resource


def document_reference(row, api_base):
    attachment = {"contentType": row.content_type, "url": f"{api_base}/uploads/{row.id}/content",
                  "size": row.size, "title": row.filename, "creation": iso(row.created_at)}
    resource = {"resourceType": "DocumentReference", "id": str(row.id), "meta": _meta(row.created_at),
                "status": "current", "subject": ref("Patient", row.patient_id), "date": iso(row.created_at),
                "identifier": [{"system": "urn:ietf:rfc:3986", "value": f"urn:sha256:{row.sha256}"}],
                "content": [{"attachment": attachment}]}
    if row.description:
        resource["description"] = row.description
    if row.consultation_id:
        resource["context"] = {"encounter": [ref("Encounter", row.consultation_id)]}
    return resource


def audit_event(row):
    verb = row.action.rpartition(".")[2]
    action = {"create": "C", "book": "C", "register": "C", "read": "R", "list": "R", "update": "U",
              "delete": "D", "archive": "D"}.get(verb, "E")
    agent = {"requestor": True, "type": {"text": row.actor_role or "anonymous"}}
    if row.actor_id is not None:
        agent["who"] = {"identifier": {"system": "urn:pawmanity:user", "value": str(row.actor_id)}}
    if row.ip:
        agent["network"] = {"address": row.ip, "type": "2"}
    resource = {"resourceType": "AuditEvent", "id": str(row.id), "meta": _meta(row.occurred_at),
                "type": {"system": AUDIT_TYPE, "code": "rest", "display": "RESTful Operation"},
                "subtype": [{"system": AUDIT_ACTION_SYSTEM, "code": row.action}], "action": action,
                "recorded": iso(row.occurred_at),
                "outcome": {"success": "0", "failure": "4", "denied": "4"}.get(row.outcome, "8"),
                "outcomeDesc": row.outcome, "agent": [agent], "source": {"observer": {"display": "PAWMANITY"}}}
    if row.object_id is not None:
        resource["entity"] = [{"what": {"identifier": {"system": f"urn:pawmanity:{row.object_type or 'object'}",
                                                       "value": row.object_id}}}]
    return resource


def weight_observation(row):
    """A weight measurement as a body-weight Observation (FHIR's vital-signs profile: LOINC code, UCUM unit)."""
    return {"resourceType": "Observation", "id": f"{WEIGHT_ID_PREFIX}{row.id}",
            "meta": {"profile": ["http://hl7.org/fhir/StructureDefinition/bodyweight"],
                     "lastUpdated": iso(row.measured_at)},
            "status": "final",
            "category": [{"coding": [{"system": OBSERVATION_CATEGORY, "code": "vital-signs",
                                      "display": "Vital Signs"}], "text": "Vital Signs"}],
            "code": {"coding": [{"system": LOINC, "code": BODY_WEIGHT, "display": "Body weight"}],
                     "text": "Body weight"},
            "subject": ref("Patient", row.patient_id), "effectiveDateTime": iso(row.measured_at),
            "valueQuantity": {"value": float(row.weight_kg), "unit": "kg", "system": UCUM, "code": "kg"}}


def operation_outcome(detail, issue_code, *, severity="error", code=None):
    issue = {"severity": severity, "code": issue_code, "diagnostics": detail}
    if code:
        issue["details"] = {"coding": [{"system": "urn:pawmanity:problem", "code": code}], "text": detail}
    return {"resourceType": "OperationOutcome", "issue": [issue]}
