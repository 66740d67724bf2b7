"""Extension objects, created once without an app and bound in create_app().

Nothing here opens a connection: each object connects lazily, on first use, inside an app.
"""

from celery import Celery, Task
from flask_cors import CORS
from flask_jwt_extended import JWTManager
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_mail import Mail
from flask_migrate import Migrate
from flask_socketio import SocketIO
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import MetaData

from pawmanity.core.api import PawmanityApi
from pawmanity.core.docstore import DocStore
from pawmanity.core.redis_client import RedisClient

# Stable constraint names keep Alembic diffs identical on SQLite and PostgreSQL.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

db = SQLAlchemy(metadata=MetaData(naming_convention=NAMING_CONVENTION))
migrate = Migrate()
jwt = JWTManager()
api = PawmanityApi()
socketio = SocketIO()
cors = CORS()
mail = Mail()
limiter = Limiter(key_func=get_remote_address, default_limits=[])
docstore = DocStore()
redis_client = RedisClient()


def celery_init_app(app):
    """Celery bound to the Flask app: tasks run inside an app context; eager (in-process) in the embedded default.

    The worker finds each domain's tasks through the `include` list in the CELERY setting.
    """
    class FlaskTask(Task):
        def __call__(self, *args, **kwargs):
            with app.app_context():
                return self.run(*args, **kwargs)

    celery = Celery(app.name, task_cls=FlaskTask)
    celery.config_from_object(app.config["CELERY"])
    celery.set_default()
    app.extensions["celery"] = celery
    return celery
