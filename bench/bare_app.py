"""The ceiling for bench/auth_bench.py: a bare Flask app with one route that returns a constant JSON body.

It is served exactly like PAWMANITY (gunicorn, one gevent worker), so the difference between the two is the cost of
PAWMANITY's own request path:

    .venv/bin/gunicorn -k gevent -w 1 -b 127.0.0.1:8001 --chdir bench bare_app:app
"""

from flask import Flask

app = Flask(__name__)


@app.get("/")
def status():
    return {"status": "ok"}
