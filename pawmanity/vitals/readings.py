"""Readings: idempotent batch ingest, raw windows and downsampled series.

A reading's identity is (patient, source, client sample id). A batch is one INSERT ... ON CONFLICT DO UPDATE whose
update applies only when the incoming version is higher, so the same batch twice, or its halves in any order, stores
one row per sample and the highest version wins. Each item is answered on its own: created, updated, duplicate (the
same version again), stale (a lower version) or rejected with the reason.

Hourly rollups (count, sum, min, max per patient, measurement and UTC hour) are recomputed from the readings for
every hour a write touches (the new readings' hours and, for an updated sample, its old hour), in the same
transaction, after a per-patient lock that makes writers of one patient's readings take turns: each recomputes after
the others' readings are committed, so a rollup never misses one. Series with buckets of whole hours read the
rollups for the whole hours of the window and the readings only for its partial first and last hours: a year of
minute readings by hour was 2.5 s at p99 (bench/vitals_bench.py). Readings written around the app (a bulk load)
need `flask vitals rebuild-rollups`.

A weight recorded in the patient's profile (the care domain) is stored as a body-weight reading too, in its
transaction (`on_weight_recorded`), with the sample id `weight-<id of the weight measurement>`.
"""

from datetime import datetime, timedelta, timezone

from flask import current_app
from sqlalchemy import BigInteger, Float, cast, delete, func, insert, select, text

from pawmanity.audit import trail
from pawmanity.care import access
from pawmanity.core.database import upsert_into, utcnow
from pawmanity.core.errors import InvalidInput, NotFound
from pawmanity.core.extensions import db
from pawmanity.identity.actor import Actor
from pawmanity.vitals import alerts
from pawmanity.vitals.models import HourlyRollup, Observation
from pawmanity.vitals.units import UnitError, measurement_named, to_canonical

MAX_BATCH = 1000
BUCKETS = {"1m": 60, "5m": 300, "15m": 900, "1h": 3600, "6h": 21600, "1d": 86400}
MAX_BUCKETS = 20_000
HOUR = 3600
SERIES_LOCK = 0x517A15  # pg_advisory_xact_lock(SERIES_LOCK, hashtext(patient id)): one writer per patient's readings
WEIGHT_SAMPLE_PREFIX = "weight-"


class Source:
    """Who sends readings: a device (for its own patient only) or a signed-in user acting through the access policy."""

    def __init__(self, *, actor, device=None):
        self.actor, self.device = actor, device

    @classmethod
    def of_device(cls, device, ip=None):
        return cls(actor=Actor(role="device", ip=ip), device=device)

    @property
    def kind(self):
        return "device" if self.device else "user"

    @property
    def id(self):
        return self.device.id if self.device else self.actor.user_id

    def patient(self, patient_id):
        if self.device is not None:
            if patient_id is not None and patient_id != self.device.patient_id:
                raise NotFound("No such patient.")
            return self.device.patient_id
        patient, _ = access.visible_patient(self.actor, patient_id)
        return patient.id


def ingest(source, patient_id, readings):
    """Store a batch for one patient; returns {patient_id, results: [...]} in the order of `readings`."""
    patient_id = source.patient(patient_id)
    now = utcnow()
    future_limit = now + timedelta(seconds=current_app.config["VITALS_FUTURE_TOLERANCE_SECONDS"])
    results, rows = [None] * len(readings), {}
    for index, reading in enumerate(readings):
        sample_id = reading["sample_id"]
        result = {"index": index, "sample_id": sample_id}
        results[index] = result
        try:
            measurement = measurement_named(reading["measurement"])
            value = to_canonical(measurement, reading["value"], reading["unit"])
        except UnitError as error:
            result.update(status="rejected", error={"status": 422, "code": error.code, "detail": error.detail})
            continue
        if reading["taken_at"] > future_limit:
            result.update(status="rejected", error={"status": 422, "code": "future_reading",
                                                    "detail": "Readings may not be dated in the future."})
            continue
        row = dict(patient_id=patient_id, measurement=measurement.name, loinc=measurement.loinc,
                   unit=measurement.unit, value=value, taken_at=reading["taken_at"], source_kind=source.kind,
                   source_id=source.id, sample_id=sample_id, version=reading.get("version", 1), received_at=now)
        earlier = rows.get(sample_id)
        if earlier is not None and earlier[1]["version"] >= row["version"]:
            result.update(status="superseded", detail="A higher or equal version of this sample is in this batch.")
            continue
        if earlier is not None:
            results[earlier[0]].update(status="superseded",
                                       detail="A higher version of this sample is in this batch.")
        rows[sample_id] = (index, row)
    if rows:
        _upsert(patient_id, source.id, rows, results)
    if source.device is not None:
        source.device.last_seen_at = now
    stored = [row for _, row in rows.values()]
    alerts.evaluate(patient_id, stored)
    trail.record("vitals.ingest", source.actor, object_type="patient", object_id=patient_id,
                 detail={"device_id": str(source.device.id) if source.device else None,
                         "stored": sum(1 for r in results if r.get("status") in ("created", "updated")),
                         "received": len(readings)})
    db.session.commit()
    return {"patient_id": patient_id, "results": results}


def _upsert(patient_id, source_id, rows, results):
    sample_ids = list(rows)
    _lock_series(patient_id)  # before reading what is stored: an updated sample's old hour must be the latest one
    stored = {sample_id: (version, measurement, taken_at) for sample_id, version, measurement, taken_at in
              db.session.execute(
                  select(Observation.sample_id, Observation.version, Observation.measurement, Observation.taken_at)
                  .where(Observation.patient_id == patient_id, Observation.source_id == source_id,
                         Observation.sample_id.in_(sample_ids))).all()}
    existing = {sample_id: version for sample_id, (version, _, _) in stored.items()}
    table = Observation.__table__
    statement = upsert_into(table)
    excluded = statement.excluded
    statement = statement.on_conflict_do_update(
        index_elements=["patient_id", "source_id", "sample_id"],
        set_={name: excluded[name] for name in ("value", "taken_at", "measurement", "loinc", "unit", "version",
                                                "received_at")},
        where=table.c.version < excluded.version,
    ).returning(table.c.sample_id)
    # Parameters as a list: one compiled (and cached) statement, sent as multi-row VALUES pages by SQLAlchemy's
    # insertmanyvalues, instead of compiling a new 1,000-row statement per batch.
    # Rows go in sample-id order, so concurrent batches of the same samples (in any order) take their row locks in
    # one order and queue rather than deadlock.
    ordered = [rows[sample_id][1] for sample_id in sorted(rows)]
    written = set(db.session.connection().execute(statement, ordered).scalars())
    touched = {(rows[sample_id][1]["measurement"], _hour(rows[sample_id][1]["taken_at"])) for sample_id in written}
    touched |= {(measurement, _hour(taken_at)) for sample_id, (_, measurement, taken_at) in stored.items()
                if sample_id in written}
    refresh_rollups(patient_id, touched)
    for sample_id, (index, row) in rows.items():
        if sample_id in written:
            results[index]["status"] = "updated" if sample_id in existing else "created"
        else:
            # Not written: an equal or higher version is stored (perhaps by a concurrent batch a moment ago).
            known = existing.get(sample_id)
            results[index]["status"] = "stale" if known is not None and known > row["version"] else "duplicate"
    return written


def query_window(actor, patient_id, *, measurement, start, end, page, per_page):
    """Raw readings of one measurement in [start, end), oldest first."""
    patient, _ = access.visible_patient(actor, patient_id)
    measurement = _measurement(measurement)
    _check_window(start, end)
    base = select(Observation).where(Observation.patient_id == patient.id,
                                     Observation.measurement == measurement.name,
                                     Observation.taken_at >= start, Observation.taken_at < end)
    total = db.session.scalar(select(func.count()).select_from(base.subquery()))
    items = db.session.scalars(base.order_by(Observation.taken_at, Observation.id).limit(per_page)
                               .offset((page - 1) * per_page)).all()
    trail.record("vitals.read", actor, object_type="patient", object_id=patient.id,
                 detail={"measurement": measurement.name})
    db.session.commit()
    return {"items": items, "page": page, "per_page": per_page, "total": total}


def query_buckets(actor, patient_id, *, measurement, start, end, bucket):
    """min, max, mean and count per bucket of one measurement in [start, end), computed in the database."""
    patient, _ = access.visible_patient(actor, patient_id)
    measurement = _measurement(measurement)
    _check_window(start, end)
    seconds = BUCKETS[bucket]
    if (end - start).total_seconds() / seconds > MAX_BUCKETS:
        raise InvalidInput(f"That window has more than {MAX_BUCKETS} buckets; choose a wider bucket.",
                           errors={"bucket": ["Too fine for this window."]})
    points = series(patient.id, measurement.name, start, end, seconds)
    trail.record("vitals.read", actor, object_type="patient", object_id=patient.id,
                 detail={"measurement": measurement.name, "bucket": bucket})
    db.session.commit()
    return {"patient_id": patient.id, "measurement": measurement.name, "loinc": measurement.loinc,
            "unit": measurement.unit, "bucket": bucket,
            "points": [{"start": _at(at), "min": low, "max": high, "mean": round(total / count, 4), "count": count}
                       for at, (low, high, total, count) in sorted(points.items())]}


def series(patient_id, measurement, start, end, seconds, *, rollups=True):
    """{bucket start (epoch seconds): (min, max, sum, count)} of the readings in [start, end). Buckets of whole hours
    come from the rollups for the window's whole hours, and from the readings for its partial first and last hours;
    rollups=False reads only the readings."""
    first_hour, last_hour = -(-int(start.timestamp()) // HOUR) * HOUR, _hour(end)  # whole hours: [first, last)
    if not rollups or seconds % HOUR or first_hour >= last_hour:
        return _bucket_readings(patient_id, measurement, [(start, end)], seconds)
    points = _bucket_readings(patient_id, measurement, [(start, _at(first_hour)), (_at(last_hour), end)], seconds)
    slot = HourlyRollup.hour // seconds * seconds
    for at, low, high, total, count in db.session.execute(
            select(slot, func.min(HourlyRollup.minimum), func.max(HourlyRollup.maximum),
                   func.sum(HourlyRollup.total), func.sum(HourlyRollup.count))
            .where(HourlyRollup.patient_id == patient_id, HourlyRollup.measurement == measurement,
                   HourlyRollup.hour >= first_hour, HourlyRollup.hour < last_hour)
            .group_by(slot)):
        _merge(points, int(at), low, high, total, int(count))
    return points


def _bucket_readings(patient_id, measurement, windows, seconds):
    slot = cast(func.floor(_epoch_seconds(Observation.taken_at) / seconds), BigInteger) * seconds
    points = {}
    for start, end in windows:
        if start >= end:
            continue
        for at, low, high, total, count in db.session.execute(
                select(slot, func.min(Observation.value), func.max(Observation.value), func.sum(Observation.value),
                       func.count())
                .where(Observation.patient_id == patient_id, Observation.measurement == measurement,
                       Observation.taken_at >= start, Observation.taken_at < end)
                .group_by(slot)):
            _merge(points, int(at), low, high, total, count)
    return points


def _merge(points, at, low, high, total, count):
    if at in points:
        was_low, was_high, was_total, was_count = points[at]
        low, high, total, count = min(low, was_low), max(high, was_high), total + was_total, count + was_count
    points[at] = (low, high, float(total), count)


def _lock_series(patient_id):
    if db.engine.dialect.name == "postgresql":  # SQLite has one writer at a time anyway
        db.session.execute(text("SELECT pg_advisory_xact_lock(:space, hashtext(:patient))"),
                           {"space": SERIES_LOCK, "patient": str(patient_id)})


def _hour(moment):
    return int(moment.timestamp()) // HOUR * HOUR


def _hour_of(column):
    return cast(func.floor(_epoch_seconds(column) / HOUR), BigInteger) * HOUR


def _at(epoch_seconds):
    return datetime.fromtimestamp(epoch_seconds, timezone.utc)


def refresh_rollups(patient_id, touched):
    """Recompute the rollups of the (measurement, hour) pairs in `touched` from the readings (an hour left empty
    loses its rollup). The caller holds the patient's series lock."""
    by_measurement = {}
    for measurement, hour in touched:
        by_measurement.setdefault(measurement, set()).add(hour)
    for measurement, hours in by_measurement.items():
        hours = sorted(hours)
        db.session.execute(delete(HourlyRollup).where(
            HourlyRollup.patient_id == patient_id, HourlyRollup.measurement == measurement,
            HourlyRollup.hour.in_(hours)))
        hour = _hour_of(Observation.taken_at)
        db.session.execute(_rollup_insert(
            select(Observation.patient_id, Observation.measurement, hour, func.count(), func.sum(Observation.value),
                   func.min(Observation.value), func.max(Observation.value))
            .where(Observation.patient_id == patient_id, Observation.measurement == measurement,
                   Observation.taken_at >= _at(hours[0]), Observation.taken_at < _at(hours[-1] + HOUR),
                   hour.in_(hours))
            .group_by(Observation.patient_id, Observation.measurement, hour)))


def rebuild_rollups(patient_id=None):
    """Recompute every rollup (of one patient, or of all) from the readings: after readings were written around
    the app. Returns the number of rollups."""
    clear, scope = delete(HourlyRollup), select(Observation.patient_id).distinct()
    if patient_id is not None:
        clear, scope = clear.where(HourlyRollup.patient_id == patient_id), scope.where(
            Observation.patient_id == patient_id)
    for patient in db.session.scalars(scope).all():
        _lock_series(patient)
    db.session.execute(clear)
    hour = _hour_of(Observation.taken_at)
    readings = select(Observation.patient_id, Observation.measurement, hour, func.count(),
                      func.sum(Observation.value), func.min(Observation.value), func.max(Observation.value))
    if patient_id is not None:
        readings = readings.where(Observation.patient_id == patient_id)
    db.session.execute(_rollup_insert(readings.group_by(Observation.patient_id, Observation.measurement, hour)))
    counting = select(func.count()).select_from(HourlyRollup)
    if patient_id is not None:
        counting = counting.where(HourlyRollup.patient_id == patient_id)
    count = db.session.scalar(counting)
    db.session.commit()
    return count


def _rollup_insert(readings):
    return insert(HourlyRollup).from_select(["patient_id", "measurement", "hour", "count", "total", "minimum",
                                             "maximum"], readings)


def on_weight_recorded(sender, *, measurement):
    """Subscribed to care's `weight_recorded` by the app factory: a weight in the patient's profile is a body-weight
    reading too (LOINC 29463-7, kg), stored in its transaction and evaluated against the alert rules. The sample id
    names the weight measurement; a hand-entered weight's source is the user who entered it."""
    body_weight = measurement_named("body_weight")
    row = dict(patient_id=measurement.patient_id, measurement=body_weight.name, loinc=body_weight.loinc,
               unit=body_weight.unit, value=float(measurement.weight_kg), taken_at=measurement.measured_at,
               source_kind="user", source_id=measurement.recorded_by or measurement.patient_id,
               sample_id=f"{WEIGHT_SAMPLE_PREFIX}{measurement.id}", version=1, received_at=utcnow())
    _upsert(measurement.patient_id, row["source_id"], {row["sample_id"]: (0, row)}, [{}])
    alerts.evaluate(measurement.patient_id, [row])


def _epoch_seconds(column):
    if db.engine.dialect.name == "postgresql":
        return func.date_part("epoch", column)  # double precision; extract() gives slower numeric
    return cast(func.strftime("%s", column), Float)


def _measurement(name):
    try:
        return measurement_named(name)
    except UnitError as error:
        raise InvalidInput(error.detail, code=error.code, errors={"measurement": [error.detail]}) from None


def _check_window(start, end):
    if end <= start:
        raise InvalidInput("`to` must be after `from`.", errors={"to": ["Must be after from."]})
    if end - start > timedelta(days=366 * 2):
        raise InvalidInput("A window is at most two years.", errors={"to": ["Window too long."]})


def record_one(actor, patient_id, reading):
    """A reading entered by hand (doctor or guardian): the batch path with one item; unknown units are 422."""
    outcome = ingest(Source(actor=actor), patient_id, [reading])["results"][0]
    if outcome["status"] == "rejected":
        error = outcome["error"]
        raise InvalidInput(error["detail"], code=error["code"], errors={"unit": [error["detail"]]}
                           if error["code"] == "unknown_unit" else None)
    return db.session.scalar(select(Observation).where(
        Observation.patient_id == patient_id, Observation.source_id == actor.user_id,
        Observation.sample_id == reading["sample_id"]))


