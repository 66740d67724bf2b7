"""Redis, when REDIS_URL is configured: one lazily created client per app, keys under one prefix."""

from flask import current_app


class RedisClient:
    def init_app(self, app):
        app.extensions["redis"] = {"url": app.config.get("REDIS_URL"), "client": None}

    @property
    def enabled(self):
        return bool(current_app.extensions["redis"]["url"])

    @property
    def client(self):
        state = current_app.extensions["redis"]
        if state["client"] is None:
            import redis

            state["client"] = redis.Redis.from_url(state["url"], socket_timeout=2, socket_connect_timeout=2)
        return state["client"]

    def key(self, *parts):
        return current_app.config["REDIS_KEY_PREFIX"] + ":".join(parts)
