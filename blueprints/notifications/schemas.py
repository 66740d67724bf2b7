from marshmallow import fields

from pawmanity.core.schemas import PageQuery, Schema, UTCDateTime
from pawmanity.notifications.models import NOTIFICATION_CATEGORIES, NOTIFICATION_CHANNELS


class NotificationOut(Schema):
    id = fields.String(required=True)
    kind = fields.String(required=True)
    title = fields.String(required=True)
    body = fields.String(allow_none=True)
    data = fields.Dict(allow_none=True)
    created_at = UTCDateTime(required=True)
    read_at = UTCDateTime(allow_none=True)


class NotificationListQuery(PageQuery):
    unread = fields.Boolean()


class ReadAllOut(Schema):
    marked = fields.Integer(required=True)


def _channels_schema(required):
    return Schema.from_dict({channel: fields.Boolean(required=required) for channel in NOTIFICATION_CHANNELS},
                            name=f"NotificationChannels{'Out' if required else 'In'}")


ChannelsOut, ChannelsIn = _channels_schema(True), _channels_schema(False)
PreferencesOut = Schema.from_dict(
    {category: fields.Nested(ChannelsOut, required=True) for category in NOTIFICATION_CATEGORIES},
    name="NotificationPreferencesOut")
PreferencesIn = Schema.from_dict(
    {category: fields.Nested(ChannelsIn) for category in NOTIFICATION_CATEGORIES},
    name="NotificationPreferencesIn")
