"""Who is acting, as plain data: services take an Actor instead of reading the request."""

import uuid
from dataclasses import dataclass


@dataclass(frozen=True)
class Actor:
    user_id: uuid.UUID | None = None
    role: str | None = None
    ip: str | None = None
    user_agent: str | None = None

    @property
    def is_admin(self):
        return self.role == "admin"

    def acting_as(self, user):
        return Actor(user_id=user.id, role=user.role, ip=self.ip, user_agent=self.user_agent)


SYSTEM = Actor(role="system")
