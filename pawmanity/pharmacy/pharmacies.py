"""Pharmacies, their staff and the medicine catalogue, and the search for the nearest pharmacy that has a medicine.

The search runs as a PostGIS KNN query (`<->` over a GiST index on the pharmacy's geography) where the database has
PostGIS, and as a bounding-box prefilter on (latitude, longitude) plus an exact haversine distance elsewhere (SQLite).
"""

import math

from sqlalchemy import Float, exists, func, literal_column, null, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import contains_eager

from pawmanity.audit import trail
from pawmanity.core.database import paginate
from pawmanity.core.errors import Conflict, InvalidInput, NotFound
from pawmanity.core.extensions import db
from pawmanity.identity.models import User
from pawmanity.pharmacy.models import Medicine, Pharmacy, PharmacyStaff, StockItem, StockLot, StockMovement
from pawmanity.pharmacy.stock import available_expression, get_or_create_item, record_movement, set_reorder_point
from pawmanity.pharmacy.stock import today as stock_today

EARTH_RADIUS_KM = 6371.0088
KM_PER_DEGREE_LATITUDE = 111.32
POSTGIS_SCHEMA_KEY = "pawmanity.postgis_schema"


def _check_opening_hours(hours):
    # Two items of one array compared: JSON Schema cannot say it, so a domain refusal with its own code.
    for day, spans in (hours or {}).items():
        for opens, closes in spans:
            if opens >= closes:
                raise InvalidInput("An opening closes after it opens (HH:MM, the same day).",
                                   code="closes_before_opening",
                                   errors={"opening_hours": [f"{day}: {opens}-{closes} closes before it opens."]})


def create_pharmacy(actor, data):
    _check_opening_hours(data.get("opening_hours"))
    pharmacy = Pharmacy(**data)
    db.session.add(pharmacy)
    db.session.flush()
    trail.record("pharmacy.create", actor, object_type="pharmacy", object_id=pharmacy.id)
    db.session.commit()
    return pharmacy


def get_pharmacy(pharmacy_id):
    pharmacy = db.session.get(Pharmacy, pharmacy_id)
    if pharmacy is None:
        raise NotFound("No such pharmacy.")
    return pharmacy


def update_pharmacy(actor, pharmacy_id, changes):
    pharmacy = staffed_pharmacy(actor, pharmacy_id)
    _check_opening_hours(changes.get("opening_hours"))
    for name, value in changes.items():
        setattr(pharmacy, name, value)
    trail.record("pharmacy.update", actor, object_type="pharmacy", object_id=pharmacy.id,
                 detail={"fields": sorted(changes)})
    db.session.commit()
    return pharmacy


def is_staff(actor, pharmacy_id):
    return bool(db.session.scalar(select(exists().where(PharmacyStaff.pharmacy_id == pharmacy_id,
                                                        PharmacyStaff.user_id == actor.user_id))))


def staffed_pharmacy(actor, pharmacy_id):
    """The pharmacy if the actor works there (or is an admin); 404 otherwise, as for anything not one's own."""
    pharmacy = db.session.get(Pharmacy, pharmacy_id)
    if pharmacy is None or not (actor.is_admin or is_staff(actor, pharmacy_id)):
        raise NotFound("No such pharmacy.")
    return pharmacy


def add_staff(actor, pharmacy_id, user_id):
    pharmacy = get_pharmacy(pharmacy_id)
    user = db.session.get(User, user_id)
    if user is None or not user.active:
        raise NotFound("No such user.")
    try:
        with db.session.begin_nested():
            db.session.add(PharmacyStaff(pharmacy_id=pharmacy.id, user_id=user.id))
    except IntegrityError:
        raise Conflict("This account already works at this pharmacy.", code="already_staff") from None
    trail.record("pharmacy.staff_add", actor, object_type="pharmacy", object_id=pharmacy.id,
                 detail={"user_id": str(user.id)})
    db.session.commit()
    return user


def list_staff(actor, pharmacy_id, *, page=1, per_page=20):
    staffed_pharmacy(actor, pharmacy_id)
    return paginate(select(User).join(PharmacyStaff, PharmacyStaff.user_id == User.id)
                    .where(PharmacyStaff.pharmacy_id == pharmacy_id).order_by(User.full_name, User.id),
                    page=page, per_page=per_page)


def my_pharmacies(actor, *, page=1, per_page=20):
    return paginate(select(Pharmacy).join(PharmacyStaff, PharmacyStaff.pharmacy_id == Pharmacy.id)
                    .where(PharmacyStaff.user_id == actor.user_id).order_by(Pharmacy.name, Pharmacy.id),
                    page=page, per_page=per_page)


def create_medicine(actor, data):
    medicine = Medicine(**data)
    try:
        with db.session.begin_nested():
            db.session.add(medicine)
    except IntegrityError:
        raise Conflict("This medicine, strength and form is already listed.", code="medicine_exists") from None
    trail.record("medicine.create", actor, object_type="medicine", object_id=medicine.id)
    db.session.commit()
    return medicine


def get_medicine(medicine_id):
    medicine = db.session.get(Medicine, medicine_id)
    if medicine is None:
        raise NotFound("No such medicine.")
    return medicine


def list_medicines(*, page, per_page, q=None, code=None, use=None):
    query = select(Medicine).order_by(Medicine.name, Medicine.strength, Medicine.id)
    if q:
        query = query.where(Medicine.name.ilike(f"%{_escape_like(q)}%", escape="\\"))
    if code:
        query = query.where(Medicine.code == code)
    if use:
        query = query.where(Medicine.use.in_((use, "both")))
    return paginate(query, page=page, per_page=per_page)


def _escape_like(value):
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def postgis_schema():
    """The schema PostGIS lives in on this database, or None (SQLite, or PostgreSQL without the extension)."""
    engine = db.engine
    cache = engine.__dict__.setdefault(POSTGIS_SCHEMA_KEY, {})
    if "schema" not in cache:
        schema = None
        if engine.dialect.name == "postgresql":
            schema = db.session.scalar(text(
                "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace "
                "WHERE e.extname = 'postgis'"))
        cache["schema"] = schema
    return cache["schema"]


DEFAULT_RADIUS_KM = 25.0


def search(*, medicine_id=None, near=None, radius_km=None, page=1, per_page=20):
    """Pharmacies with the medicine available now (when one is named), nearest first with `distance_km` when
    `near` is given, else by name. Returns a page envelope of (pharmacy, distance_km, available) tuples."""
    if radius_km is not None and near is None:
        # Two query parameters that go together: OpenAPI cannot say so of parameters, so this is a domain refusal.
        raise InvalidInput("radius_km needs near: a distance is measured from somewhere.", code="radius_needs_near",
                           errors={"radius_km": ["Give near=lat,lon with radius_km."]})
    radius_km = DEFAULT_RADIUS_KM if radius_km is None else radius_km
    if medicine_id is not None:
        get_medicine(medicine_id)
    if near is None:
        return _search_by_name(medicine_id, page, per_page)
    if postgis_schema():
        return _search_postgis(medicine_id, near, radius_km, page, per_page)
    return _search_bounding_box(medicine_id, near, radius_km, page, per_page)


def _stocked(query, medicine_id):
    if medicine_id is None:
        return query.add_columns(null())
    return (query.join(StockItem, (StockItem.pharmacy_id == Pharmacy.id) & (StockItem.medicine_id == medicine_id))
            .where(available_expression() > 0).add_columns(available_expression()))


def _search_by_name(medicine_id, page, per_page):
    query = _stocked(select(Pharmacy), medicine_id).order_by(Pharmacy.name, Pharmacy.id)
    rows = db.session.execute(query.limit(per_page + 1).offset((page - 1) * per_page)).all()
    total = db.session.scalar(select(func.count()).select_from(query.order_by(None).subquery()))
    return {"items": [(pharmacy, None, stock) for pharmacy, stock in rows[:per_page]], "page": page,
            "per_page": per_page, "total": total}


def _search_postgis(medicine_id, near, radius_km, page, per_page):
    gis = getattr(func, postgis_schema())
    latitude, longitude = near
    srid = literal_column("4326")  # a constant, so the expression below is the index's expression exactly
    # The same expression as the GiST index of the migration, so `<->` is answered from the index (KNN).
    place = gis.geography(gis.st_setsrid(gis.st_makepoint(Pharmacy.longitude, Pharmacy.latitude), srid))
    here = gis.geography(gis.st_setsrid(gis.st_makepoint(longitude, latitude), srid))
    distance_km = (gis.st_distance(place, here) / 1000.0).label("distance_km")
    query = (_stocked(select(Pharmacy, distance_km), medicine_id)
             .where(gis.st_dwithin(place, here, radius_km * 1000.0)))
    total = db.session.scalar(select(func.count()).select_from(query.subquery()))
    knn = place.op(f"OPERATOR({postgis_schema()}.<->)", return_type=Float)(here)
    rows = db.session.execute(query.order_by(knn, Pharmacy.id).limit(per_page).offset((page - 1) * per_page)).all()
    return {"items": [(pharmacy, float(km), stock) for pharmacy, km, stock in rows], "page": page,
            "per_page": per_page, "total": total}


def haversine_km(lat1, lon1, lat2, lon2):
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    dphi, dlambda = phi2 - phi1, math.radians(lon2 - lon1)
    a = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlambda / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(a)))


def bounding_box(latitude, longitude, radius_km):
    """(south, north, [(west, east), ...]): a box holding every point within the radius; two longitude ranges
    where it crosses the antimeridian, the whole circle of longitudes near a pole."""
    dlat = radius_km / KM_PER_DEGREE_LATITUDE
    south, north = max(-90.0, latitude - dlat), min(90.0, latitude + dlat)
    cos_lat = math.cos(math.radians(max(abs(south), abs(north))))
    if north >= 90.0 or south <= -90.0 or cos_lat < 1e-9:
        return south, north, [(-180.0, 180.0)]
    dlon = radius_km / (KM_PER_DEGREE_LATITUDE * cos_lat)
    if dlon >= 180.0:
        return south, north, [(-180.0, 180.0)]
    west, east = longitude - dlon, longitude + dlon
    if west < -180.0:
        return south, north, [(west + 360.0, 180.0), (-180.0, east)]
    if east > 180.0:
        return south, north, [(west, 180.0), (-180.0, east - 360.0)]
    return south, north, [(west, east)]


def _search_bounding_box(medicine_id, near, radius_km, page, per_page):
    latitude, longitude = near
    south, north, ranges = bounding_box(latitude, longitude, radius_km)
    in_box = Pharmacy.latitude.between(south, north) & db.or_(
        *[Pharmacy.longitude.between(west, east) for west, east in ranges])
    rows = db.session.execute(_stocked(select(Pharmacy), medicine_id).where(in_box)).all()
    found = sorted(((pharmacy, haversine_km(latitude, longitude, pharmacy.latitude, pharmacy.longitude), stock)
                    for pharmacy, stock in rows), key=lambda row: (row[1], str(row[0].id)))
    found = [row for row in found if row[1] <= radius_km]
    start = (page - 1) * per_page
    return {"items": found[start:start + per_page], "page": page, "per_page": per_page, "total": len(found)}


def list_stock(actor, pharmacy_id, *, page=1, per_page=20):
    """A page of the pharmacy's stock items with their lots (staff)."""
    staffed_pharmacy(actor, pharmacy_id)
    shown = paginate(select(StockItem).where(StockItem.pharmacy_id == pharmacy_id)
                     .join(Medicine, Medicine.id == StockItem.medicine_id)
                     .options(contains_eager(StockItem.medicine))  # in the one query, not one per item
                     .order_by(Medicine.name, Medicine.strength, StockItem.id), page=page, per_page=per_page)
    shown["items"] = _stock_rows(shown["items"])
    return shown


def _stock_rows(items):
    """Stock items as shown: their available count (expired lots taken off) and lots, two queries for any number."""
    today = stock_today()
    ids = [item.id for item in items]
    if not ids:
        return []
    available = dict(db.session.execute(select(StockItem.id, available_expression()).where(StockItem.id.in_(ids)))
                     .all())
    lots = {}
    for lot in db.session.scalars(select(StockLot).where(StockLot.stock_item_id.in_(ids))
                                  .order_by(StockLot.expires_on, StockLot.lot_number)):
        lots.setdefault(lot.stock_item_id, []).append({"id": str(lot.id), "lot_number": lot.lot_number,
                                                       "expires_on": lot.expires_on, "remaining": lot.remaining,
                                                       "expired": lot.expires_on < today})
    return [{"id": str(item.id), "medicine": item.medicine, "on_hand": item.on_hand, "reserved": item.reserved,
             "available": max(0, available[item.id]), "reorder_point": item.reorder_point,
             "lots": lots.get(item.id, [])} for item in items]


def configure_stock(actor, pharmacy_id, medicine_id, reorder_point):
    staffed_pharmacy(actor, pharmacy_id)
    get_medicine(medicine_id)
    item = set_reorder_point(get_or_create_item(pharmacy_id, medicine_id), reorder_point)
    trail.record("stock.configure", actor, object_type="stock_item", object_id=item.id,
                 detail={"reorder_point": reorder_point})
    db.session.commit()
    return _stock_rows([item])[0]  # the item alone, wherever it falls in the pages of list_stock


def add_movement(actor, pharmacy_id, data):
    staffed_pharmacy(actor, pharmacy_id)
    movement, replayed = record_movement(actor, pharmacy_id, data)
    if not replayed:
        trail.record("stock.movement", actor, object_type="stock_item", object_id=movement.stock_item_id,
                     detail={"kind": movement.kind, "movement_id": movement.id})
    db.session.commit()
    return movement, replayed


def list_movements(actor, pharmacy_id, *, page, per_page, medicine_id=None):
    staffed_pharmacy(actor, pharmacy_id)
    query = select(StockMovement).where(StockMovement.pharmacy_id == pharmacy_id)
    if medicine_id:
        query = query.join(StockItem, StockItem.id == StockMovement.stock_item_id) \
            .where(StockItem.medicine_id == medicine_id)
    return paginate(query.order_by(StockMovement.id.desc()), page=page, per_page=per_page)
