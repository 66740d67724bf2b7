"""Extension objects, created once without an app and bound in create_app().

Nothing here opens a connection: each object connects lazily, on first use, inside an app.
"""

from flask_jwt_extended import JWTManager
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_mail import Mail
from flask_migrate import Migrate
from flask_socketio import SocketIO
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import MetaData

from pawmanity.api import PawmanityApi
from pawmanity.services.docstore import DocStore
from pawmanity.services.redis_client import RedisClient

# Stable constraint names keep Alembic diffs identical on SQLite and PostgreSQL.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# Objects keep their loaded values after a commit, so a response is serialised without touching the database
# again: a connection lost just after the commit can no longer turn a stored write into a reported failure.
db = SQLAlchemy(metadata=MetaData(naming_convention=NAMING_CONVENTION), session_options={"expire_on_commit": False})
migrate = Migrate()
jwt = JWTManager()
api = PawmanityApi()
socketio = SocketIO()
mail = Mail()
limiter = Limiter(key_func=get_remote_address, default_limits=[])
docstore = DocStore()
redis_client = RedisClient()
