"""Pharmacies, their staff, medicines, stock per pharmacy and medicine with its lots, the append-only movement ledger,
prescriptions written when a consultation ends, and the reservations guardians make against them."""

import uuid
from datetime import date, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    Uuid,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from pawmanity.core.database import IdMixin, TimestampMixin, UTCDateTime, utcnow
from pawmanity.core.encryption.fields import EncryptedField
from pawmanity.core.extensions import db

MEDICINE_USES = ("human", "veterinary", "both")
MOVEMENT_KINDS = ("receive", "dispense", "adjust", "expire", "reserve", "release")
RESERVATION_STATUSES = ("active", "dispensed", "released", "expired")


class Pharmacy(IdMixin, TimestampMixin, db.Model):
    __tablename__ = "pharmacies"
    __table_args__ = (
        CheckConstraint("latitude BETWEEN -90 AND 90", name="latitude_range"),
        CheckConstraint("longitude BETWEEN -180 AND 180", name="longitude_range"),
        # The bounding-box prefilter of the search where PostGIS is not there (SQLite).
        Index("ix_pharmacies_lat_lon", "latitude", "longitude"),
        # On PostgreSQL with PostGIS the migration adds a GiST index over the position as a geography.
        {"info": {"database_only_indexes": ("ix_pharmacies_geography",)}},
    )

    name: Mapped[str] = mapped_column(String(160), nullable=False)
    address: Mapped[str] = mapped_column(String(500), nullable=False)
    # {"mon": [["08:00", "18:00"]], ...}: wall-clock hours, shown as given.
    opening_hours: Mapped[dict | None] = mapped_column(JSON)
    latitude: Mapped[float] = mapped_column(Float, nullable=False)
    longitude: Mapped[float] = mapped_column(Float, nullable=False)
    phone = EncryptedField()
    email = EncryptedField()


class PharmacyStaff(db.Model):
    """Membership: the accounts that work at a pharmacy (receive stock, dispense)."""

    __tablename__ = "pharmacy_staff"

    pharmacy_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("pharmacies.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True,
                                               index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)


class Medicine(IdMixin, db.Model):
    __tablename__ = "medicines"
    __table_args__ = (
        UniqueConstraint("name", "strength", "form", name="uq_medicines_name_strength_form"),
        CheckConstraint(f"use IN {MEDICINE_USES}", name="use_known"),
    )

    name: Mapped[str] = mapped_column(String(160), nullable=False, index=True)
    strength: Mapped[str] = mapped_column(String(60), nullable=False)
    form: Mapped[str] = mapped_column(String(40), nullable=False)
    code: Mapped[str | None] = mapped_column(String(32), index=True)  # ATC or an RxNorm-style code
    use: Mapped[str] = mapped_column(String(12), nullable=False, default="both")


class StockItem(IdMixin, db.Model):
    """One medicine at one pharmacy. `on_hand` and `reserved` move only together with a ledger row."""

    __tablename__ = "stock_items"
    __table_args__ = (
        UniqueConstraint("pharmacy_id", "medicine_id", name="uq_stock_items_pharmacy_medicine"),
        CheckConstraint("reserved >= 0 AND reserved <= on_hand", name="reserved_within_on_hand"),
        CheckConstraint("reorder_point >= 0", name="reorder_point_not_negative"),
    )

    pharmacy_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("pharmacies.id", ondelete="CASCADE"), nullable=False)
    medicine_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("medicines.id", ondelete="RESTRICT"), nullable=False,
                                                   index=True)
    on_hand: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    reserved: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    reorder_point: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    # Set when available stock fell to the reorder point and staff were told; cleared once it is above again.
    low_stock_notified: Mapped[bool] = mapped_column(default=False, nullable=False)

    medicine = relationship("Medicine")


class StockLot(IdMixin, db.Model):
    __tablename__ = "stock_lots"
    __table_args__ = (
        UniqueConstraint("stock_item_id", "lot_number", name="uq_stock_lots_item_lot"),
        CheckConstraint("remaining >= 0", name="remaining_not_negative"),
    )

    stock_item_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("stock_items.id", ondelete="CASCADE"),
                                                     nullable=False)
    lot_number: Mapped[str] = mapped_column(String(40), nullable=False)
    # The last day the lot may be used; from the next day on it is expired and never available.
    expires_on: Mapped[date] = mapped_column(Date, nullable=False, index=True)
    remaining: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)


class StockMovement(db.Model):
    """The ledger. Rows are only appended (database triggers refuse UPDATE and DELETE); the sums of the deltas are
    the stock item's on_hand and reserved."""

    __tablename__ = "stock_movements"
    __table_args__ = (
        UniqueConstraint("pharmacy_id", "idempotency_key", name="uq_stock_movements_idempotency"),
        CheckConstraint(f"kind IN {MOVEMENT_KINDS}", name="kind_known"),
        Index("ix_stock_movements_item_id", "stock_item_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    pharmacy_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("pharmacies.id", ondelete="RESTRICT"), nullable=False)
    stock_item_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("stock_items.id", ondelete="RESTRICT"),
                                                     nullable=False)
    lot_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("stock_lots.id", ondelete="RESTRICT"))
    reservation_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    kind: Mapped[str] = mapped_column(String(12), nullable=False)
    on_hand_delta: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    reserved_delta: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    idempotency_key: Mapped[str] = mapped_column(String(80), nullable=False)
    # SHA-256 of what was asked, so a key reused for a different request is told apart from a retry.
    fingerprint: Mapped[str | None] = mapped_column(String(64))
    reason: Mapped[str | None] = mapped_column(String(200))
    actor_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)


class Prescription(IdMixin, db.Model):
    """A medicine prescribed when a consultation ended; `medicine_id` links it to the catalogue for pharmacies."""

    __tablename__ = "prescriptions"
    __table_args__ = (CheckConstraint("quantity > 0", name="quantity_positive"),)

    patient_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"), nullable=False,
                                                  index=True)
    consultation_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("consultations.id", ondelete="SET NULL"),
                                                              index=True)
    record_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("medical_records.id", ondelete="SET NULL"))
    medicine_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("medicines.id", ondelete="RESTRICT"))
    medication: Mapped[str] = mapped_column(String(200), nullable=False)
    quantity: Mapped[int] = mapped_column(Integer, nullable=False, default=1)
    prescribed_by: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    dispensed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Reservation(IdMixin, db.Model):
    __tablename__ = "pharmacy_reservations"
    __table_args__ = (
        CheckConstraint(f"status IN {RESERVATION_STATUSES}", name="status_known"),
        CheckConstraint("quantity > 0", name="quantity_positive"),
        # One live reservation per prescription, however many requests race for it.
        Index("uq_pharmacy_reservations_active", "prescription_id", unique=True,
              sqlite_where=text("status = 'active'"), postgresql_where=text("status = 'active'")),
        Index("ix_pharmacy_reservations_status_expires", "status", "expires_at"),
    )

    prescription_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("prescriptions.id", ondelete="CASCADE"),
                                                       nullable=False)
    pharmacy_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("pharmacies.id", ondelete="CASCADE"), nullable=False,
                                                   index=True)
    stock_item_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("stock_items.id", ondelete="CASCADE"),
                                                     nullable=False)
    quantity: Mapped[int] = mapped_column(Integer, nullable=False)
    status: Mapped[str] = mapped_column(String(12), nullable=False, default="active")
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    created_by: Mapped[uuid.UUID] = mapped_column(Uuid, nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_by: Mapped[uuid.UUID | None] = mapped_column(Uuid)

    prescription = relationship("Prescription")
    pharmacy = relationship("Pharmacy")
