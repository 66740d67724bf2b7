"""Every domain's models, imported once so SQLAlchemy's one metadata, and so Alembic's one history, sees every table.

Nothing is re-exported: code imports a model from the domain that defines it.
"""

import pawmanity.appointments.models  # noqa: F401
import pawmanity.audit.models  # noqa: F401
import pawmanity.care.models  # noqa: F401
import pawmanity.conversations.models  # noqa: F401
import pawmanity.core.encryption.rotation  # noqa: F401  (progress of field key rotations)
import pawmanity.core.idempotency  # noqa: F401  (idempotency keys)
import pawmanity.identity.models  # noqa: F401
import pawmanity.notifications.models  # noqa: F401
import pawmanity.pharmacy.models  # noqa: F401
import pawmanity.privacy.models  # noqa: F401
import pawmanity.scheduling.models  # noqa: F401
import pawmanity.sync.models  # noqa: F401
import pawmanity.triage.models  # noqa: F401
import pawmanity.vitals.models  # noqa: F401
import pawmanity.webhooks.models  # noqa: F401
from pawmanity.core.extensions import db


def include_object(object_, name, type_, reflected, compare_to):
    """Alembic's autogenerate filter: indexes a migration creates by hand for one database only (PostGIS
    expression indexes) are named in their table's `info["database_only_indexes"]` and left alone."""
    if type_ == "index" and reflected and compare_to is None:
        model_table = db.metadata.tables.get(object_.table.name)  # the reflected table carries no `info`
        return model_table is None or name not in model_table.info.get("database_only_indexes", ())
    return True
