"""The one pagination helper: a SELECT in, a page envelope out."""

from sqlalchemy import func, select

from pawmanity.extensions import db


def paginate(statement, *, page, per_page):
    total = db.session.scalar(select(func.count()).select_from(statement.order_by(None).subquery()))
    items = db.session.scalars(statement.limit(per_page).offset((page - 1) * per_page)).all()
    return {"items": items, "page": page, "per_page": per_page, "total": total}
