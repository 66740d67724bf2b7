"""Stock: the append-only movement ledger, reservations, dispensing and expiry.

Every change to a stock item's `on_hand` or `reserved` is one ledger row written in the same transaction, so the
sums of the ledger's deltas always equal the item's counters. Reserving is one conditional UPDATE (the row lock it
takes serialises racing reservations, and the database's CHECK (0 <= reserved <= on_hand) backs it up); units in
lots past their expiry date are subtracted from what is available until the expiry sweep writes them off.
"""

import hashlib
import json
from datetime import timedelta

from flask import current_app
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from pawmanity.core.database import utcnow
from pawmanity.core.errors import Conflict, InvalidInput, NotFound
from pawmanity.core.extensions import db
from pawmanity.notifications.notifier import notify
from pawmanity.pharmacy.models import (
    Medicine,
    PharmacyStaff,
    Reservation,
    StockItem,
    StockLot,
    StockMovement,
)


def today():
    return utcnow().date()


def expired_units(stock_item_id, on_day=None):
    """A scalar subquery: units still counted in on_hand that sit in lots past their last day."""
    on_day = on_day or today()
    return (select(func.coalesce(func.sum(StockLot.remaining), 0))
            .where(StockLot.stock_item_id == stock_item_id, StockLot.expires_on < on_day, StockLot.remaining > 0)
            .scalar_subquery())


def available_expression(on_day=None):
    """on_hand - reserved - expired units, as a SQL expression over StockItem (for searches and conditions)."""
    return StockItem.on_hand - StockItem.reserved - expired_units(StockItem.id, on_day)


def available(item):
    return db.session.scalar(select(available_expression()).where(StockItem.id == item.id))


def fingerprint(payload):
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def _append(item, kind, *, on_hand_delta=0, reserved_delta=0, key, lot=None, reservation=None, actor=None,
            reason=None, request_print=None):
    movement = StockMovement(pharmacy_id=item.pharmacy_id, stock_item_id=item.id, lot_id=lot.id if lot else None,
                             reservation_id=reservation.id if reservation else None, kind=kind,
                             on_hand_delta=on_hand_delta, reserved_delta=reserved_delta, idempotency_key=key,
                             fingerprint=request_print, reason=reason, actor_id=actor.user_id if actor else None)
    db.session.add(movement)
    return movement


def _locked_item(item_id):
    return db.session.scalar(select(StockItem).where(StockItem.id == item_id).with_for_update()
                             .execution_options(populate_existing=True))


def get_or_create_item(pharmacy_id, medicine_id):
    item = db.session.scalar(select(StockItem).where(StockItem.pharmacy_id == pharmacy_id,
                                                     StockItem.medicine_id == medicine_id))
    if item is not None:
        return item
    if db.session.get(Medicine, medicine_id) is None:
        raise InvalidInput("No such medicine.", errors={"medicine_id": ["No such medicine."]})
    try:
        with db.session.begin_nested():
            item = StockItem(pharmacy_id=pharmacy_id, medicine_id=medicine_id)
            db.session.add(item)
    except IntegrityError:  # created by a concurrent request a moment ago
        item = db.session.scalar(select(StockItem).where(StockItem.pharmacy_id == pharmacy_id,
                                                         StockItem.medicine_id == medicine_id))
    return item


def record_movement(actor, pharmacy_id, data):
    """A staff movement (receive or adjust), once per idempotency key. Returns (movement, replayed)."""
    key = data["idempotency_key"]
    request_print = fingerprint({name: value for name, value in data.items() if name != "idempotency_key"})
    earlier = _movement_by_key(pharmacy_id, key)
    if earlier is not None:
        return _replay(earlier, request_print), True
    try:
        movement = _apply_movement(actor, pharmacy_id, data, key, request_print)
        db.session.flush()
    except IntegrityError:
        db.session.rollback()
        earlier = _movement_by_key(pharmacy_id, key)
        if earlier is None:
            raise
        return _replay(earlier, request_print), True
    return movement, False


def _movement_by_key(pharmacy_id, key):
    return db.session.scalar(select(StockMovement).where(StockMovement.pharmacy_id == pharmacy_id,
                                                         StockMovement.idempotency_key == key))


def _replay(movement, request_print):
    if movement.fingerprint != request_print:
        raise Conflict("This idempotency key was used for a different movement.", code="idempotency_key_reused")
    return movement


def _apply_movement(actor, pharmacy_id, data, key, request_print):
    item = _locked_item(get_or_create_item(pharmacy_id, data["medicine_id"]).id)
    lot = db.session.scalar(select(StockLot).where(StockLot.stock_item_id == item.id,
                                                   StockLot.lot_number == data["lot_number"]).with_for_update())
    quantity = data["quantity"]
    if data["kind"] == "receive":
        if quantity <= 0:
            raise InvalidInput("A delivery adds at least one unit.", errors={"quantity": ["Must be positive."]})
        expires_on = data.get("expires_on")
        if expires_on is None:
            raise InvalidInput("A delivery needs the lot's expiry date.", errors={"expires_on": ["Required."]})
        if expires_on < today():
            raise InvalidInput("This lot has already expired.", errors={"expires_on": ["In the past."]})
        if lot is None:
            lot = StockLot(stock_item_id=item.id, lot_number=data["lot_number"], expires_on=expires_on, remaining=0)
            db.session.add(lot)
            db.session.flush()
        elif lot.expires_on != expires_on:
            raise Conflict("This lot number is already stocked with another expiry date.", code="lot_mismatch")
    else:  # adjust: a count correction, breakage, loss -- of one lot
        if quantity == 0:
            raise InvalidInput("An adjustment changes at least one unit.", errors={"quantity": ["Must not be 0."]})
        if lot is None:
            raise NotFound("No such lot of this medicine at this pharmacy.")
        if lot.remaining + quantity < 0:
            raise Conflict("The lot does not hold that many units.", code="insufficient_stock")
        if quantity < 0 and item.on_hand + quantity < item.reserved:
            raise Conflict("Those units are reserved; release reservations first.", code="insufficient_stock")
    lot.remaining += quantity
    item.on_hand += quantity
    movement = _append(item, data["kind"], on_hand_delta=quantity, key=key, lot=lot, actor=actor,
                       reason=data.get("reason"), request_print=request_print)
    db.session.flush()
    check_reorder_point(item)
    return movement


def set_reorder_point(item, reorder_point):
    item = _locked_item(item.id)
    item.reorder_point = reorder_point
    db.session.flush()
    check_reorder_point(item)
    return item


def reserve_units(reservation, actor):
    """Hold `reservation.quantity` units of its stock item, or 409 insufficient_stock. One conditional UPDATE."""
    quantity = reservation.quantity
    result = db.session.execute(
        update(StockItem)
        .where(StockItem.id == reservation.stock_item_id, available_expression() >= quantity)
        .values(reserved=StockItem.reserved + quantity)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        raise Conflict("Not enough of this medicine is available at this pharmacy.", code="insufficient_stock")
    item = db.session.get(StockItem, reservation.stock_item_id, populate_existing=True)
    _append(item, "reserve", reserved_delta=quantity, key=f"reserve:{reservation.id}", reservation=reservation,
            actor=actor)
    db.session.flush()
    check_reorder_point(item)
    return item


def release_units(reservation, actor, *, status="released", reason=None):
    item = _locked_item(reservation.stock_item_id)
    item.reserved -= reservation.quantity
    reservation.status, reservation.closed_at = status, utcnow()
    reservation.closed_by = actor.user_id if actor else None
    _append(item, "release", reserved_delta=-reservation.quantity, key=f"release:{reservation.id}",
            reservation=reservation, actor=actor, reason=reason)
    db.session.flush()
    check_reorder_point(item)


def dispense_units(reservation, actor):
    """Hand over a reservation's units, first-expiring lot first; expired lots are never used."""
    item = _locked_item(reservation.stock_item_id)
    lots = db.session.scalars(select(StockLot).where(StockLot.stock_item_id == item.id, StockLot.remaining > 0,
                                                     StockLot.expires_on >= today())
                              .order_by(StockLot.expires_on, StockLot.received_at).with_for_update()).all()
    needed, taken = reservation.quantity, []
    for lot in lots:
        if needed == 0:
            break
        take = min(needed, lot.remaining)
        taken.append((lot, take))
        needed -= take
    if needed:
        raise Conflict("The reserved units are no longer in date; nothing was dispensed.", code="insufficient_stock")
    for lot, take in taken:
        lot.remaining -= take
        item.on_hand -= take
        item.reserved -= take
        _append(item, "dispense", on_hand_delta=-take, reserved_delta=-take, key=f"dispense:{reservation.id.hex}:{lot.id.hex}",
                lot=lot, reservation=reservation, actor=actor)
    reservation.status, reservation.closed_at, reservation.closed_by = "dispensed", utcnow(), actor.user_id
    db.session.flush()
    check_reorder_point(item)
    return taken


def expire_lots(on_day=None):
    """Write off every lot past its last day (ledger `expire` rows). Where reservations held more units than
    are left in date, the newest reservations are released first. Returns the number of lots written off."""
    on_day = on_day or today()
    item_ids = db.session.scalars(select(StockLot.stock_item_id).where(StockLot.expires_on < on_day,
                                                                       StockLot.remaining > 0).distinct()).all()
    written_off = 0
    for item_id in item_ids:
        item = _locked_item(item_id)
        lots = db.session.scalars(select(StockLot).where(StockLot.stock_item_id == item_id,
                                                         StockLot.expires_on < on_day, StockLot.remaining > 0)
                                  .with_for_update()).all()
        expiring = sum(lot.remaining for lot in lots)
        excess = item.reserved - (item.on_hand - expiring)
        if excess > 0:
            for reservation in db.session.scalars(
                    select(Reservation).where(Reservation.stock_item_id == item_id, Reservation.status == "active")
                    .order_by(Reservation.created_at.desc()).with_for_update()):
                if excess <= 0:
                    break
                release_units(reservation, None, reason="stock expired")
                notify([reservation.created_by], "pharmacy.reservation_released",
                       title="A pharmacy reservation was released",
                       body="The reserved medicine passed its expiry date; please reserve again.",
                       data={"reservation_id": str(reservation.id)})
                excess -= reservation.quantity
            item = _locked_item(item_id)
        for lot in lots:
            item.on_hand -= lot.remaining
            _append(item, "expire", on_hand_delta=-lot.remaining, key=f"expire:{lot.id}", lot=lot,
                    reason=f"expired after {lot.expires_on.isoformat()}")
            lot.remaining = 0
            written_off += 1
        db.session.flush()
        check_reorder_point(item)
    db.session.commit()
    return written_off


def check_reorder_point(item):
    """Tell the pharmacy's staff once when available stock falls to the reorder point; re-arm above it.

    Both flips are conditional UPDATEs on the row this transaction already holds, so however many movements cross
    the point at once, exactly one of them sends the notification.
    """
    crossed = db.session.execute(
        update(StockItem)
        .where(StockItem.id == item.id, StockItem.low_stock_notified.is_(False),
               available_expression() <= StockItem.reorder_point)
        .values(low_stock_notified=True).execution_options(synchronize_session=False)
    ).rowcount
    if crossed:
        medicine = db.session.get(Medicine, item.medicine_id)
        staff = db.session.scalars(select(PharmacyStaff.user_id)
                                   .where(PharmacyStaff.pharmacy_id == item.pharmacy_id)).all()
        notify(staff, "pharmacy.low_stock", title=f"Low stock: {medicine.name} {medicine.strength}",
               data={"pharmacy_id": str(item.pharmacy_id), "medicine_id": str(item.medicine_id)})
        return True
    db.session.execute(
        update(StockItem)
        .where(StockItem.id == item.id, StockItem.low_stock_notified.is_(True),
               available_expression() > StockItem.reorder_point)
        .values(low_stock_notified=False).execution_options(synchronize_session=False)
    )
    return False


def reservation_deadline():
    return utcnow() + timedelta(minutes=current_app.config["PHARMACY_RESERVATION_MINUTES"])


def release_expired_reservations(now=None):
    """Release reservations whose time limit passed (Celery beat, every minute). Returns how many."""
    now = now or utcnow()
    released = 0
    while True:
        reservation = db.session.scalar(
            select(Reservation).where(Reservation.status == "active", Reservation.expires_at <= now)
            .order_by(Reservation.expires_at).limit(1).with_for_update(skip_locked=True))
        if reservation is None:
            break
        release_units(reservation, None, status="expired", reason="time limit passed")
        notify([reservation.created_by], "pharmacy.reservation_expired", title="A pharmacy reservation expired",
               data={"reservation_id": str(reservation.id)})
        db.session.commit()
        released += 1
    return released


def ledger_totals(item_id):
    """(sum of on_hand deltas, sum of reserved deltas): what the counters must equal."""
    return tuple(db.session.execute(
        select(func.coalesce(func.sum(StockMovement.on_hand_delta), 0),
               func.coalesce(func.sum(StockMovement.reserved_delta), 0))
        .where(StockMovement.stock_item_id == item_id)).one())

