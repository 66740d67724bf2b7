"""The platform every domain stands on, and which knows no domain.

`extensions` creates the Flask extensions (db, jwt, socketio, mail, limiter, the document store, Redis, Celery);
`database` holds the UTC column type, model mixins, after-commit hooks and pagination; `errors` the one problem
shape and the domain errors services raise; `api` and `schemas` adapt flask-smorest and marshmallow; `plugins` the
plugin contract; `live` emits Socket.IO events after the commit; `ratelimits`, `metrics`, `pages`, `offload` (a
thread pool off the event loop), `docstore` (the MongoDB seam), `redis_client` and `readiness` do what they say.
"""
