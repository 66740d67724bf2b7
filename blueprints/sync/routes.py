from contextlib import contextmanager

from blueprints.sync.schemas import (
    RECORD_SCHEMAS,
    ConflictOut,
    PullOut,
    PullQuery,
    PushIn,
    PushOut,
    ResolveIn,
    ResolveOut,
)
from pawmanity.core.api import API_PREFIX, Blueprint
from pawmanity.identity.security import current_actor
from pawmanity.sync import pull, push

blp = Blueprint("sync", __name__, url_prefix=f"{API_PREFIX}/sync",
                description="Offline-first sync for mobile apps (WatermelonDB's pull/push protocol)")


@blp.route("/pull", methods=["GET"])
@blp.auth_required()
@blp.arguments(PullQuery, location="query")
@blp.response(200, PullOut)
@blp.errors(410)
def pull_changes(query):
    """What changed since `cursor` among the patients, medical records, appointments, consultation messages, vitals
    and notifications you can see: `{changes: {table: {created, updated, deleted}}, cursor, timestamp}`. Deletions,
    and rows you can no longer see, come as ids. Without a cursor, everything you can see (a full sync). A cursor
    older than the tombstone retention is 410: discard the local copy and pull without one."""
    result = pull.pull(current_actor(), query["cursor"])
    return {**result, "timestamp": result["cursor"]}


@blp.route("/push", methods=["POST"])
@blp.auth_required()
@blp.idempotent()
@blp.arguments(PushIn)
@blp.response(200, PushOut)
@blp.errors(403, 404, 409, 415)
def push_changes(data):
    """Apply a batch of local changes in one transaction: patients (create, update, delete = archive), medical
    records (create, update) and notifications (mark read). Each update carries the `version` you last pulled; if
    the server's has moved on, nothing is applied and 409 lists each conflict with the server's copy. Sending the
    same batch again is safe (creates are keyed by their UUID, an update already applied is `unchanged`); an
    Idempotency-Key replays the first answer."""
    with _conflicts_shown():
        return {"items": push.push(current_actor(), data["changes"])}


@blp.route("/resolve", methods=["POST"])
@blp.auth_required()
@blp.arguments(ResolveIn)
@blp.response(200, ResolveOut)
@blp.errors(403, 404, 409, 415)
def resolve_conflict(data):
    """Resolve one conflict: the merged copy of one patient or medical record against the `server_version` it was
    merged with. 409 again, with the newer copy, if the server moved on meanwhile."""
    with _conflicts_shown():
        result, record = push.resolve(current_actor(), data["table"], data["id"], data["version"], data["record"])
    return {**result, "record": RECORD_SCHEMAS[data["table"]]().dump(record)}


@contextmanager
def _conflicts_shown():
    """A refused batch's conflicts leave with the server's copies, shaped as a pull sends them."""
    try:
        yield
    except push.SyncConflict as conflict:
        conflicts = [{**item, "server": RECORD_SCHEMAS[item["table"]]().dump(item["server"])
                      if item["server"] is not None else None} for item in conflict.conflicts]
        conflict.extra = {"conflicts": ConflictOut(many=True).dump(conflicts)}
        raise
