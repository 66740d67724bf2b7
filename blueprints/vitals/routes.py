import uuid

from flask import jsonify, request
from flask_jwt_extended import verify_jwt_in_request

from blueprints.vitals.schemas import (
    AlertOut,
    AlertQuery,
    AlertRuleIn,
    AlertRuleOut,
    AlertRulePatch,
    AlertRuleQuery,
    BatchIn,
    BatchOut,
    DeviceCreatedOut,
    DeviceIn,
    DeviceOut,
    DeviceQuery,
    ObservationOut,
    SeriesOut,
    SeriesQuery,
    SingleReadingIn,
    WindowQuery,
)
from pawmanity.core.api import API_PREFIX, Blueprint
from pawmanity.core.schemas import page_of
from pawmanity.identity.security import current_actor
from pawmanity.vitals import alerts, devices, readings
from pawmanity.vitals.readings import Source

blp = Blueprint("vitals", __name__, url_prefix=f"{API_PREFIX}/vitals",
                description="Vital signs from people and devices, alert rules and alerts")
DEVICE_HEADER = "X-Device-Token"


@blp.route("/batch", methods=["POST"])
@blp.arguments(BatchIn)
@blp.response(200, BatchOut)
@blp.doc(security=[{"bearerAuth": []}, {"deviceToken": []}])
@blp.errors(401, 404, 415, 422)
def ingest_batch(data):
    """Up to 1,000 readings for one patient, from a device (X-Device-Token) or a user. Each item is answered on its
    own; the same sample id again is an idempotent upsert where a higher version replaces."""
    token = request.headers.get(DEVICE_HEADER)
    if token is not None:
        source = Source.of_device(devices.authenticate(token), ip=request.remote_addr)
    else:
        verify_jwt_in_request()
        source = Source(actor=current_actor())
    return readings.ingest(source, data.get("patient_id"), data["readings"])


@blp.route("", methods=["POST"])
@blp.auth_required()
@blp.arguments(SingleReadingIn)
@blp.arguments(DeviceQuery, location="query")
@blp.response(201, ObservationOut)
@blp.errors(404, 415)
def record_reading(reading, query):
    """One reading entered by a doctor or a guardian; an unknown unit is 422."""
    reading.setdefault("sample_id", f"manual-{uuid.uuid4().hex}")
    return readings.record_one(current_actor(), query["patient_id"], reading)


@blp.route("", methods=["GET"])
@blp.auth_required()
@blp.arguments(WindowQuery, location="query")
@blp.response(200, page_of(ObservationOut))
@blp.errors(404)
def query_readings(query):
    """Readings of one measurement in [from, to), raw and oldest first (a page). With `bucket` (1m, 5m, 15m, 1h, 6h,
    1d) the answer is instead the downsampled series, as from GET /vitals/series."""
    bucket = query.pop("bucket", None)
    patient_id = query.pop("patient_id")
    if bucket:
        series = readings.query_buckets(current_actor(), patient_id, measurement=query["measurement"],
                                        start=query["start"], end=query["end"], bucket=bucket)
        # Another shape than the page the decorator dumps, so it leaves as a finished response.
        return jsonify(SeriesOut().dump(series))
    return readings.query_window(current_actor(), patient_id, **query)


@blp.route("/series", methods=["GET"])
@blp.auth_required()
@blp.arguments(SeriesQuery, location="query")
@blp.response(200, SeriesOut)
@blp.errors(404)
def query_series(query):
    """min, max, mean and count per bucket of one measurement in [from, to), for charts."""
    return readings.query_buckets(current_actor(), query.pop("patient_id"), **query)


@blp.route("/devices", methods=["POST"])
@blp.auth_required()
@blp.arguments(DeviceIn)
@blp.response(201, DeviceCreatedOut)
@blp.errors(404, 415)
def register_device(data):
    """Register a device to a patient (guardian or doctor of record); the token is shown in this answer only."""
    device, token = devices.register(current_actor(), data["patient_id"], data["name"])
    device.token = token  # for this answer only; it is not a column
    return device


@blp.route("/devices", methods=["GET"])
@blp.auth_required()
@blp.arguments(DeviceQuery, location="query")
@blp.response(200, page_of(DeviceOut))
@blp.errors(404)
def list_devices(query):
    """A patient's devices, oldest first."""
    return devices.list_devices(current_actor(), query.pop("patient_id"), **query)


@blp.route("/devices/<uuid:device_id>", methods=["DELETE"])
@blp.auth_required()
@blp.response(200, DeviceOut)
@blp.errors(404, 409)
def revoke_device(device_id):
    """Revoke a device's token at once."""
    return devices.revoke(current_actor(), device_id)


@blp.route("/alert-rules", methods=["POST"])
@blp.auth_required("doctor", "admin")
@blp.arguments(AlertRuleIn)
@blp.response(201, AlertRuleOut)
@blp.errors(404, 409, 415)
def create_rule(data):
    """A species-wide rule (admins), or a per-patient override (the patient's doctor of record)."""
    return alerts.create_rule(current_actor(), data)


@blp.route("/alert-rules", methods=["GET"])
@blp.auth_required()
@blp.arguments(AlertRuleQuery, location="query")
@blp.response(200, page_of(AlertRuleOut))
@blp.errors(404)
def list_rules(query):
    """Species rules, or with patient_id the rules in force for that patient."""
    return alerts.list_rules(current_actor(), **query)


@blp.route("/alert-rules/<uuid:rule_id>", methods=["PATCH"])
@blp.auth_required("doctor", "admin")
@blp.arguments(AlertRulePatch)
@blp.response(200, AlertRuleOut)
@blp.errors(404, 415)
def update_rule(changes, rule_id):
    return alerts.update_rule(current_actor(), rule_id, changes)


@blp.route("/alert-rules/<uuid:rule_id>", methods=["DELETE"])
@blp.auth_required("doctor", "admin")
@blp.response(204)
@blp.errors(404)
def delete_rule(rule_id):
    alerts.delete_rule(current_actor(), rule_id)


@blp.route("/alerts", methods=["GET"])
@blp.auth_required()
@blp.arguments(AlertQuery, location="query")
@blp.response(200, page_of(AlertOut))
@blp.errors(404)
def list_alerts(query):
    return alerts.list_alerts(current_actor(), query.pop("patient_id"), **query)


@blp.route("/alerts/<uuid:alert_id>/acknowledge", methods=["POST"])
@blp.auth_required()
@blp.response(200, AlertOut)
@blp.errors(404)
def acknowledge_alert(alert_id):
    return alerts.acknowledge(current_actor(), alert_id)
