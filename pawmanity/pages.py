"""The small browser pages plugins serve (chat, video call): static files with a strict policy."""

from flask import send_from_directory

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
