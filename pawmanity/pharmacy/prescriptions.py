"""Prescriptions written when a consultation ends, reserved at a pharmacy by a guardian and dispensed there.

A guardian (or admin) of the patient reserves; the reservation holds the units for
PAWMANITY_PHARMACY_RESERVATION_MINUTES and is then released by the beat task (or found expired at the counter).
The pharmacist of that pharmacy dispenses. Anyone else is told "not found".
"""

from sqlalchemy import exists, select
from sqlalchemy.exc import IntegrityError

from pawmanity.audit import trail
from pawmanity.care import access
from pawmanity.care.access import ADMIN, GUARDIAN
from pawmanity.care.models import Guardianship
from pawmanity.core.database import paginate, utcnow
from pawmanity.core.errors import Conflict, InvalidInput, NotFound
from pawmanity.core.extensions import db
from pawmanity.notifications.notifier import notify
from pawmanity.pharmacy import stock
from pawmanity.pharmacy.models import Medicine, Pharmacy, PharmacyStaff, Prescription, Reservation, StockItem


def on_consultation_ended(consultation, *, actor, prescriptions):
    """Subscribed to conversations' `consultation_ended` by the app factory: each prescription that names a
    catalogue medicine (or whose medication matches exactly one by name) becomes reservable at pharmacies."""
    for record, prescribed in prescriptions:
        medicine_id = prescribed.get("medicine_id")
        if medicine_id is not None and db.session.get(Medicine, medicine_id) is None:
            raise InvalidInput("No such medicine.", errors={"prescriptions": ["An unknown medicine_id was given."]})
        if medicine_id is None:
            matches = db.session.scalars(select(Medicine.id).where(
                db.func.lower(Medicine.name) == prescribed["medication"].strip().lower()).limit(2)).all()
            medicine_id = matches[0] if len(matches) == 1 else None
        db.session.add(Prescription(patient_id=consultation.patient_id, consultation_id=consultation.id,
                                    record_id=record.id, medicine_id=medicine_id,
                                    medication=prescribed["medication"][:200],
                                    quantity=prescribed.get("quantity") or 1, prescribed_by=actor.user_id))


def visible_prescription(actor, prescription_id, *, allow=(GUARDIAN, access.DOCTOR_OF_RECORD, ADMIN)):
    prescription = db.session.get(Prescription, prescription_id)
    if prescription is None:
        raise NotFound("No such prescription.")
    access.visible_patient(actor, prescription.patient_id, allow=allow)
    return prescription


def list_prescriptions(actor, patient_id, *, page, per_page):
    patient, _ = access.visible_patient(actor, patient_id)
    result = paginate(select(Prescription).where(Prescription.patient_id == patient.id)
                      .order_by(Prescription.created_at.desc(), Prescription.id), page=page, per_page=per_page)
    trail.record("prescription.list", actor, object_type="patient", object_id=patient.id,
                 detail={"ids": [str(item.id) for item in result["items"]]})
    db.session.commit()
    return result


def get_prescription(actor, prescription_id):
    prescription = visible_prescription(actor, prescription_id)
    trail.record("prescription.read", actor, object_type="prescription", object_id=prescription.id)
    db.session.commit()
    return prescription


def reserve(actor, prescription_id, pharmacy_id):
    """Hold the prescribed quantity at a pharmacy for the time limit; 409 insufficient_stock when it is not there."""
    prescription = visible_prescription(actor, prescription_id, allow=(GUARDIAN, ADMIN))
    if prescription.dispensed_at is not None:
        raise Conflict("This prescription has been dispensed.", code="already_dispensed")
    if prescription.medicine_id is None:
        raise Conflict("This prescription names no medicine from the catalogue; ask the doctor to link one.",
                       code="prescription_unlinked")
    if db.session.get(Pharmacy, pharmacy_id) is None:
        raise NotFound("No such pharmacy.")
    item = db.session.scalar(select(StockItem).where(StockItem.pharmacy_id == pharmacy_id,
                                                     StockItem.medicine_id == prescription.medicine_id))
    if item is None:
        raise Conflict("This pharmacy does not stock this medicine.", code="insufficient_stock")
    reservation = Reservation(prescription_id=prescription.id, pharmacy_id=pharmacy_id, stock_item_id=item.id,
                              quantity=prescription.quantity, expires_at=stock.reservation_deadline(),
                              created_by=actor.user_id)
    try:
        with db.session.begin_nested():
            db.session.add(reservation)
    except IntegrityError:
        raise Conflict("This prescription is already reserved; cancel that reservation first.",
                       code="already_reserved") from None
    stock.reserve_units(reservation, actor)
    trail.record("reservation.create", actor, object_type="reservation", object_id=reservation.id,
                 detail={"prescription_id": str(prescription.id), "pharmacy_id": str(pharmacy_id)})
    db.session.commit()
    return reservation


def _reservation_for_patient_side(actor, reservation_id):
    reservation = db.session.get(Reservation, reservation_id)
    if reservation is None:
        raise NotFound("No such reservation.")
    if not actor.is_admin and not db.session.scalar(select(exists().where(
            Guardianship.patient_id == reservation.prescription.patient_id, Guardianship.user_id == actor.user_id))):
        if not _works_at(actor, reservation.pharmacy_id):
            raise NotFound("No such reservation.")
    return reservation


def _works_at(actor, pharmacy_id):
    return bool(db.session.scalar(select(exists().where(PharmacyStaff.pharmacy_id == pharmacy_id,
                                                        PharmacyStaff.user_id == actor.user_id))))


def get_reservation(actor, reservation_id):
    reservation = _reservation_for_patient_side(actor, reservation_id)
    trail.record("reservation.read", actor, object_type="reservation", object_id=reservation.id)
    db.session.commit()
    return reservation


def cancel(actor, reservation_id):
    reservation = _locked(_reservation_for_patient_side(actor, reservation_id).id)
    if reservation.status != "active":
        raise Conflict(f"This reservation is {reservation.status}.", code="reservation_closed")
    stock.release_units(reservation, actor, reason="cancelled")
    trail.record("reservation.cancel", actor, object_type="reservation", object_id=reservation.id)
    db.session.commit()
    return reservation


def _locked(reservation_id):
    return db.session.scalar(select(Reservation).where(Reservation.id == reservation_id).with_for_update()
                             .execution_options(populate_existing=True))


def dispense(actor, reservation_id):
    """The pharmacist hands the medicine over. A reservation past its time limit is released instead (409)."""
    found = db.session.get(Reservation, reservation_id)
    if found is None or not (actor.is_admin or _works_at(actor, found.pharmacy_id)):
        raise NotFound("No such reservation.")
    reservation = _locked(found.id)
    if reservation.status != "active":
        raise Conflict(f"This reservation is {reservation.status}.", code="reservation_closed")
    if reservation.expires_at <= utcnow():
        stock.release_units(reservation, actor, status="expired", reason="time limit passed")
        db.session.commit()
        raise Conflict("This reservation's time limit has passed; it was released.", code="reservation_expired")
    stock.dispense_units(reservation, actor)
    reservation.prescription.dispensed_at = utcnow()
    trail.record("reservation.dispense", actor, object_type="reservation", object_id=reservation.id)
    notify([reservation.created_by], "pharmacy.dispensed", title="Your medicine was handed over",
           data={"reservation_id": str(reservation.id)})
    db.session.commit()
    return reservation


def pharmacy_reservations(actor, pharmacy_id, *, page, per_page, status=None):
    if not (actor.is_admin or _works_at(actor, pharmacy_id)):
        raise NotFound("No such pharmacy.")
    query = select(Reservation).where(Reservation.pharmacy_id == pharmacy_id)
    if status:
        query = query.where(Reservation.status == status)
    result = paginate(query.order_by(Reservation.created_at.desc(), Reservation.id), page=page, per_page=per_page)
    trail.record("reservation.list", actor, object_type="pharmacy", object_id=pharmacy_id,
                 detail={"ids": [str(item.id) for item in result["items"]]})
    db.session.commit()
    return result
