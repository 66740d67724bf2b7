from marshmallow import fields, validate

from pawmanity.core.schemas import JSONBoolean, PageQuery, Schema, UTCDateTime
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
    return Schema.from_dict({channel: JSONBoolean(required=required) for channel in NOTIFICATION_CHANNELS},
                            name=f"NotificationChannels{'Out' if required else 'In'}")


ChannelsOut, ChannelsIn = _channels_schema(True), _channels_schema(False)
PreferencesOut = Schema.from_dict(
    {category: fields.Nested(ChannelsOut, required=True) for category in NOTIFICATION_CATEGORIES},
    name="NotificationPreferencesOut")
PreferencesIn = Schema.from_dict(
    {category: fields.Nested(ChannelsIn) for category in NOTIFICATION_CATEGORIES},
    name="NotificationPreferencesIn")


class VapidKeyOut(Schema):
    public_key = fields.String(required=True, metadata={
        "description": "The VAPID public key (RFC 8292): pass it as `applicationServerKey` to "
                       "PushManager.subscribe(); an uncompressed P-256 point, base64url without padding."})


# base64url, as PushSubscription.toJSON() gives it (unpadded; padding is tolerated).
BASE64URL = validate.Regexp("^[A-Za-z0-9_-]+={0,2}$")
# What push.check_endpoint accepts of a URL's form: https, a host name, no credentials. (Whether the host is a
# known push service is the deployment's list: 422 `unknown_push_service`.)
PUSH_ENDPOINT_PATTERN = r"^https://[A-Za-z0-9.-]+(:[0-9]{0,5})?([/?#][^\s]*)?$"


class PushKeysIn(Schema):
    p256dh = fields.String(required=True, validate=[validate.Length(min=1, max=100), BASE64URL],
                           metadata={"description": "The browser's P-256 public key (base64url)"})
    auth = fields.String(required=True, validate=[validate.Length(min=1, max=32), BASE64URL],
                         metadata={"description": "The 16-byte authentication secret (base64url)"})


class PushSubscriptionIn(Schema):
    """What the browser's PushSubscription.toJSON() gives, as it is."""

    endpoint = fields.String(required=True, validate=validate.Length(min=1, max=2000),
                             metadata={"pattern": PUSH_ENDPOINT_PATTERN})
    keys = fields.Nested(PushKeysIn, required=True)
    expirationTime = fields.Integer(allow_none=True, load_default=None, validate=validate.Range(min=0),
                                    metadata={"description": "Ignored: the push service's 404/410 tells us"})


class PushSubscriptionOut(Schema):
    id = fields.String(required=True)
    endpoint = fields.String(required=True)
    user_agent = fields.String(allow_none=True)
    created_at = UTCDateTime(required=True)
    last_sent_at = UTCDateTime(allow_none=True)
