"""Response headers every answer should carry: no MIME sniffing, no caching of API data, no framing of pages; and
the small browser pages plugins serve (chat, video call), as static files under a strict policy."""

import base64
import hashlib
import re

from flask import request, send_from_directory

from pawmanity.core.api import API_PREFIX

# Swagger UI sets style attributes from JavaScript, so styles need 'unsafe-inline'; scripts do not: the page's one
# inline script is allowed by its hash.
DOCS_POLICY = ("default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
               "script-src 'self' {hashes}; connect-src 'self'; object-src 'none'; base-uri 'none'; "
               "form-action 'none'; frame-ancestors 'none'")
INLINE_SCRIPT = re.compile(rb"<script>(.*?)</script>", re.S)


def register_security_headers(app):
    app.after_request(add_security_headers)


def add_security_headers(response):
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    if request.path.startswith(API_PREFIX) or response.mimetype in ("application/json", "application/problem+json"):
        # Patient data must not linger in browser, proxy or CDN caches. Validators (ETag) still work without a cache.
        if "Cache-Control" not in response.headers:
            response.headers["Cache-Control"] = "no-store"
    if (request.endpoint or "").endswith(".openapi_swagger_ui") and response.status_code == 200:
        response.headers["Content-Security-Policy"] = DOCS_POLICY.format(hashes=_inline_script_hashes(response))
        response.headers["X-Frame-Options"] = "DENY"
    return response


def _inline_script_hashes(response):
    body = response.get_data()
    hashes = [base64.b64encode(hashlib.sha256(script).digest()).decode() for script in INLINE_SCRIPT.findall(body)]
    return " ".join(f"'sha256-{digest}'" for digest in hashes) or "'none'"


# Scripts, styles and sockets from this origin only; the pages need nothing else, and no other site may frame them
# (clickjacking a call or a chat).
BASE_POLICY = ("default-src 'self'; connect-src 'self' ws: wss:; style-src 'self'; object-src 'none'; "
               "base-uri 'none'; frame-ancestors 'none'")


def serve_page(folder, filename, *, extra_policy=""):
    response = send_from_directory(folder, filename)
    response.headers["Content-Security-Policy"] = BASE_POLICY + (f"; {extra_policy}" if extra_policy else "")
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["X-Frame-Options"] = "DENY"  # frame-ancestors for browsers without CSP level 2
    return response
