"""Every domain's models, imported once so SQLAlchemy's one metadata, and so Alembic's one history, sees every table.

Nothing is re-exported: code imports a model from the domain that defines it.
"""

import pawmanity.appointments.models  # noqa: F401
import pawmanity.audit.models  # noqa: F401
import pawmanity.care.models  # noqa: F401
import pawmanity.conversations.models  # noqa: F401
import pawmanity.identity.models  # noqa: F401
import pawmanity.notifications.models  # noqa: F401
import pawmanity.scheduling.models  # noqa: F401
import pawmanity.triage.models  # noqa: F401
import pawmanity.webhooks.models  # noqa: F401
