"""Rate limits, two kinds.

Per address, on anonymous endpoints (sign-in, registration): Flask-Limiter, applied per endpoint. Flask-Limiter
inspects every request in a before_request hook, even for endpoints with no limit; that bookkeeping was a fifth of
the cost of a cheap request. Endpoints are limited only through `rate_limited`, which marks the view, and every
other request is let through at the first check.

Per account, on actions that are cheap to ask for and dear to serve (AI diagnoses, uploads by count and bytes,
guardian invitations, wrong current passwords and MFA codes, chat messages and typing events): `spend` and
`check`, called by the services. Each limit is a config key holding a `limits` string ("30 per hour"), counted
with a sliding window (two counters per key whatever the amount, so a byte budget costs no more storage than a
count). Counters live where
RATELIMIT_STORAGE_URI says (Redis in production, shared by every process). When that storage cannot be reached
they are kept in this process's memory for RATELIMIT_STORAGE_RETRY_SECONDS and Redis is tried again: a Redis
outage loosens limits to per-process ones for a while, it never turns a request into an error.
"""

import math
import time

from flask import current_app, request
from limits import parse
from limits.errors import StorageError
from limits.storage import MemoryStorage, storage_from_string
from limits.strategies import SlidingWindowCounterRateLimiter

from pawmanity.core.errors import DomainError
from pawmanity.core.extensions import limiter


def rate_limited(limit_value, **kwargs):
    """`limiter.limit` for one view; stack several for several buckets."""

    def decorator(view):
        view = limiter.limit(limit_value, **kwargs)(view)
        view.rate_limited = True
        return view

    return decorator


@limiter.request_filter
def skip_unlimited_endpoints():
    view = current_app.view_functions.get(request.endpoint)
    return not getattr(view, "rate_limited", False)


# name -> the config key holding its limit
LIMITS = {
    "chat_message": "CHAT_RATE_LIMIT",
    "typing": "TYPING_RATE_LIMIT",
    "diagnosis": "DIAGNOSIS_RATE_LIMIT",
    "upload": "UPLOAD_RATE_LIMIT",
    "upload_bytes": "UPLOAD_BYTES_RATE_LIMIT",
    "invitation": "INVITATION_RATE_LIMIT",
    "password_check": "PASSWORD_CHECK_RATE_LIMIT",
    "mfa_code": "MFA_CODE_RATE_LIMIT",
}

MESSAGES = {
    "chat_message": "You are sending messages too fast; wait a moment.",
    "typing": "Typing indicators are coming too fast; wait a moment.",
    "diagnosis": "Too many symptom checks for now; try again later.",
    "upload": "Too many uploads for now; try again later.",
    "upload_bytes": "You have uploaded too much data for now; try again later.",
    "invitation": "Too many guardian invitations for now; try again later.",
    "password_check": "Too many wrong current passwords; try again later.",
    "mfa_code": "Too many wrong authentication codes; try again later.",
}


class RateLimited(DomainError):
    status, code = 429, "rate_limited"


def spend(name, key, cost=1):
    """Count `cost` against the named limit for `key`, or raise RateLimited (429 with Retry-After) if it would go
    over; a refused attempt spends nothing."""
    item = _item(name)
    if not _call(lambda limiter: limiter.hit(item, *_identifiers(name, key), cost=cost)):
        _refuse(name, item, key)


def check(name, key, cost=1):
    """Raise RateLimited if the named limit for `key` has no room for `cost`; spends nothing. With `spend` on
    failure only, this limits failed attempts (wrong passwords) without counting successful ones."""
    item = _item(name)
    if not _call(lambda limiter: limiter.test(item, *_identifiers(name, key), cost=cost)):
        _refuse(name, item, key)


def _refuse(name, item, key):
    reset_at, _remaining = _call(lambda limiter: limiter.get_window_stats(item, *_identifiers(name, key)))
    retry_after = max(1, math.ceil(reset_at - time.time()))
    raise RateLimited(MESSAGES[name], headers={"Retry-After": str(retry_after)},
                      extra={"retry_after": retry_after, "limit": name})


def _item(name):
    return parse(current_app.config[LIMITS[name]])


def _identifiers(name, key):
    return current_app.config["RATELIMIT_KEY_PREFIX"], name, str(key)


def _call(operation):
    """Run against the configured storage, or memory while it is unreachable."""
    state = _state()
    shared = state["shared"]
    if shared is not None and time.monotonic() >= state["shared_down_until"]:
        try:
            result = operation(shared)
        except StorageError as error:
            retry = current_app.config["RATELIMIT_STORAGE_RETRY_SECONDS"]
            state["shared_down_until"] = time.monotonic() + retry
            state["degraded"] = True
            current_app.logger.warning("rate-limit storage unreachable (%s); counting in memory, retrying in %ss",
                                       type(error.storage_error).__name__, retry)
        else:
            if state["degraded"]:
                state["degraded"] = False
                current_app.logger.info("rate-limit storage reachable again")
            return result
    return operation(state["memory"])


def _state():
    state = current_app.extensions.get("throttles")
    if state is None:
        uri = current_app.config["RATELIMIT_STORAGE_URI"]
        shared = None
        if not uri.startswith("memory://"):
            storage = storage_from_string(uri, wrap_exceptions=True,
                                          **current_app.config.get("RATELIMIT_STORAGE_OPTIONS", {}))
            shared = SlidingWindowCounterRateLimiter(storage)
        state = current_app.extensions["throttles"] = {
            "shared": shared,
            "memory": SlidingWindowCounterRateLimiter(MemoryStorage()),
            "shared_down_until": 0.0,
            "degraded": False,
        }
    return state
