"""Rate limits (Flask-Limiter), applied per endpoint.

Flask-Limiter inspects every request in a before_request hook, even for endpoints with no limit; that bookkeeping
was a fifth of the cost of a cheap request. Endpoints are limited only through `rate_limited`, which marks the view,
and every other request is let through at the first check.
"""

from flask import current_app, request

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
