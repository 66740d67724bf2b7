"""Alert rules and alerts.

Rules are set per species (a dog's resting heart rate is not a person's) and overridden per patient by a doctor of
record (or an admin). A rule opens an alert once readings have stayed beyond its threshold for its minimum duration,
and resolves it only when a reading is back past its clear threshold, so a value hovering at the line does not flap.
Evaluation walks each batch's new readings in time order under a lock on the rule's state for the patient; readings
older than what was already evaluated are stored but do not rewrite history. At most one alert per rule and patient
is open at a time (a partial unique index backs this). Opening and resolving notify the guardians and the patient's
doctors.
"""

from blinker import Namespace
from sqlalchemy import exists, or_, select
from sqlalchemy.exc import IntegrityError

from pawmanity.audit import trail
from pawmanity.care import access
from pawmanity.care.access import ADMIN, DOCTOR_OF_RECORD
from pawmanity.care.models import Guardianship, Patient
from pawmanity.core.database import paginate, utcnow
from pawmanity.core.errors import Conflict, Forbidden, InvalidInput, NotFound
from pawmanity.core.extensions import db
from pawmanity.notifications.notifier import notify
from pawmanity.scheduling.models import Appointment, DoctorProfile
from pawmanity.vitals.models import Alert, AlertRule, AlertState
from pawmanity.vitals.units import MEASUREMENTS

# Sent inside the transaction that opens or resolves an alert (event: "opened" or "resolved"); webhooks listen.
alert_changed = Namespace().signal("vitals-alert-changed")


def create_rule(actor, data):
    """A species rule (admins) or a patient override (the patient's doctor of record, or an admin)."""
    if data["measurement"] not in MEASUREMENTS:
        raise InvalidInput("Unknown measurement.", errors={"measurement": ["Unknown measurement."]})
    if ("species" in data) == ("patient_id" in data):
        raise InvalidInput("Give either species or patient_id.", errors={"species": ["Give species or patient_id."]})
    _check_hysteresis(data["direction"], data["threshold"], data["clear_threshold"])
    if "patient_id" in data:
        access.visible_patient(actor, data["patient_id"], allow=(DOCTOR_OF_RECORD, ADMIN))
    elif not actor.is_admin:
        raise Forbidden("Only admins set species-wide rules; doctors override them per patient.")
    rule = AlertRule(**data, created_by=actor.user_id)
    try:
        with db.session.begin_nested():
            db.session.add(rule)
    except IntegrityError:
        raise Conflict("A rule for this measurement and direction exists already; change it instead.",
                       code="rule_exists") from None
    trail.record("alert_rule.create", actor, object_type="alert_rule", object_id=rule.id)
    db.session.commit()
    return rule


def update_rule(actor, rule_id, changes):
    rule = _rule_for_change(actor, rule_id)
    merged = {"threshold": rule.threshold, "clear_threshold": rule.clear_threshold, **changes}
    _check_hysteresis(rule.direction, merged["threshold"], merged["clear_threshold"])
    for name, value in changes.items():
        setattr(rule, name, value)
    trail.record("alert_rule.update", actor, object_type="alert_rule", object_id=rule.id, detail=changes)
    db.session.commit()
    return rule


def _check_hysteresis(direction, threshold, clear_threshold):
    # A relation between two numbers of the body (and, for a change, the stored rule): JSON Schema cannot state it,
    # so it is a domain refusal with its own code, which the OpenAPI document lists.
    if (clear_threshold > threshold) if direction == "above" else (clear_threshold < threshold):
        raise InvalidInput("The clear threshold must be on the normal side of the threshold.",
                           code="clear_threshold_on_wrong_side",
                           errors={"clear_threshold": ["On the wrong side of threshold."]})


def delete_rule(actor, rule_id):
    rule = _rule_for_change(actor, rule_id)
    db.session.delete(rule)
    trail.record("alert_rule.delete", actor, object_type="alert_rule", object_id=rule_id)
    db.session.commit()


def _rule_for_change(actor, rule_id):
    rule = db.session.get(AlertRule, rule_id)
    if rule is None:
        raise NotFound("No such rule.")
    if rule.patient_id is not None:
        access.visible_patient(actor, rule.patient_id, allow=(DOCTOR_OF_RECORD, ADMIN))
    elif not actor.is_admin:
        raise Forbidden("Only admins change species-wide rules.")
    return rule


def list_rules(actor, *, patient_id=None, species=None, page=1, per_page=20):
    """A page of species rules, or of the rules in force for a patient (its overrides replacing its species' rules)."""
    if patient_id is not None:
        patient, _ = access.visible_patient(actor, patient_id)
        in_force = effective_rules(patient)  # computed (overrides win): paged in memory, like list_diagnoses
        start = (page - 1) * per_page
        return {"items": in_force[start:start + per_page], "page": page, "per_page": per_page,
                "total": len(in_force)}
    query = select(AlertRule).where(AlertRule.patient_id.is_(None))
    if species:
        query = query.where(AlertRule.species == species)
    return paginate(query.order_by(AlertRule.species, AlertRule.measurement, AlertRule.direction, AlertRule.id),
                    page=page, per_page=per_page)


def effective_rules(patient, measurements=None):
    query = select(AlertRule).where(or_(AlertRule.patient_id == patient.id, AlertRule.species == patient.species))
    if measurements is not None:
        query = query.where(AlertRule.measurement.in_(measurements))
    chosen = {}
    for rule in db.session.scalars(query):
        key = (rule.measurement, rule.direction)
        if key not in chosen or rule.patient_id is not None:
            chosen[key] = rule
    return sorted(chosen.values(), key=lambda rule: (rule.measurement, rule.direction))


def evaluate(patient_id, readings):
    """Run the patient's rules over freshly stored readings (dicts with measurement, value, taken_at)."""
    if not readings:
        return
    patient = db.session.get(Patient, patient_id)
    by_measurement = {}
    for reading in readings:
        by_measurement.setdefault(reading["measurement"], []).append(reading)
    for rule in effective_rules(patient, by_measurement):
        series = sorted(by_measurement[rule.measurement], key=lambda reading: reading["taken_at"])
        _evaluate_rule(rule, patient, series)


def _state(rule, patient_id):
    query = select(AlertState).where(AlertState.rule_id == rule.id, AlertState.patient_id == patient_id) \
        .with_for_update().execution_options(populate_existing=True)
    state = db.session.scalar(query)
    if state is None:
        try:
            with db.session.begin_nested():
                db.session.add(AlertState(rule_id=rule.id, patient_id=patient_id))
        except IntegrityError:
            pass  # a concurrent batch made it; lock theirs
        state = db.session.scalar(query)
    return state


def _evaluate_rule(rule, patient, series):
    state = _state(rule, patient.id)
    open_alert = db.session.scalar(select(Alert).where(Alert.rule_id == rule.id, Alert.patient_id == patient.id,
                                                       Alert.resolved_at.is_(None)))
    above = rule.direction == "above"
    for reading in series:
        taken_at, value = reading["taken_at"], reading["value"]
        if state.evaluated_until is not None and taken_at <= state.evaluated_until:
            continue
        state.evaluated_until = taken_at
        beyond = value > rule.threshold if above else value < rule.threshold
        cleared = value <= rule.clear_threshold if above else value >= rule.clear_threshold
        if open_alert is None:
            if not beyond:
                state.breach_since = None
                continue
            state.breach_since = state.breach_since or taken_at
            if (taken_at - state.breach_since).total_seconds() >= rule.min_duration_seconds:
                open_alert = Alert(rule_id=rule.id, patient_id=patient.id, measurement=rule.measurement,
                                   direction=rule.direction, threshold=rule.threshold, opened_at=taken_at,
                                   opening_value=value)
                db.session.add(open_alert)
                db.session.flush()
                _tell(patient, open_alert, "vitals.alert_opened",
                      f"Vital sign alert for {patient.name}: {rule.measurement.replace('_', ' ')} "
                      f"{rule.direction} {rule.threshold:g}")
        elif cleared:
            open_alert.resolved_at = taken_at
            state.breach_since = None
            db.session.flush()
            _tell(patient, open_alert, "vitals.alert_resolved",
                  f"Vital sign alert resolved for {patient.name}: {rule.measurement.replace('_', ' ')}")
            open_alert = None


def _tell(patient, alert, kind, title):
    notify(recipients(patient.id), kind, title=title,
           data={"alert_id": str(alert.id), "patient_id": str(patient.id)})
    alert_changed.send(alert, event=kind.removeprefix("vitals.alert_"))


def recipients(patient_id):
    guardians = db.session.scalars(select(Guardianship.user_id).where(Guardianship.patient_id == patient_id)).all()
    doctors = db.session.scalars(select(DoctorProfile.user_id).where(exists().where(
        Appointment.doctor_id == DoctorProfile.id, Appointment.patient_id == patient_id))).all()
    return [*guardians, *doctors]


def list_alerts(actor, patient_id, *, page, per_page, status=None):
    patient, _ = access.visible_patient(actor, patient_id)
    query = select(Alert).where(Alert.patient_id == patient.id)
    if status == "open":
        query = query.where(Alert.resolved_at.is_(None))
    elif status == "resolved":
        query = query.where(Alert.resolved_at.is_not(None))
    result = paginate(query.order_by(Alert.opened_at.desc(), Alert.id), page=page, per_page=per_page)
    trail.record("vitals.alerts.read", actor, object_type="patient", object_id=patient.id)
    db.session.commit()
    return result


def acknowledge(actor, alert_id):
    alert = db.session.get(Alert, alert_id)
    if alert is None:
        raise NotFound("No such alert.")
    access.visible_patient(actor, alert.patient_id)
    if alert.acknowledged_at is None:
        alert.acknowledged_at, alert.acknowledged_by = utcnow(), actor.user_id
        trail.record("vitals.alert.acknowledge", actor, object_type="alert", object_id=alert.id)
        db.session.commit()
    return alert
