"""Agora RTC tokens in the AccessToken2 scheme (version "007").

Written for PAWMANITY from the format of Agora's open-source reference implementation (AgoraIO/Tools,
DynamicKey/AgoraDynamicKey/python3/src/AccessToken2.py, MIT licence, "Copyright (c) 2014-2017 Agora.io, Inc."); no
code is copied from it, and tests/test_video_agora.py checks this module against the reference's published test
vectors. Only the RTC service is built (the one a video call needs); `agora-token-builder` on PyPI was considered and
not taken: it builds the older AccessToken ("006") only.

A token is "007" + base64(zlib(signature + signed content)), where the signed content is, little-endian:
    string app_id, uint32 issued_at, uint32 expire (seconds after issued_at), uint32 salt, uint16 service count,
    then per service: uint16 type, map<uint16 privilege, uint32 expire>, and for RTC: string channel, string uid
(a string is a uint16 length and its bytes; the uid is its decimal text, empty for uid 0). The signature is
HMAC-SHA256(signing key, content) with signing key = HMAC-SHA256(uint32 salt, HMAC-SHA256(uint32 issued_at,
app_certificate)). Expiry is relative to the issue time, so clocks only need to agree on the issue time.
"""

import base64
import hashlib
import hmac
import secrets
import struct
import zlib

VERSION = "007"
SERVICE_RTC = 1
# RTC privileges
JOIN_CHANNEL, PUBLISH_AUDIO, PUBLISH_VIDEO, PUBLISH_DATA = 1, 2, 3, 4
PUBLISHER_PRIVILEGES = (JOIN_CHANNEL, PUBLISH_AUDIO, PUBLISH_VIDEO, PUBLISH_DATA)


def _u16(value):
    return struct.pack("<H", value)


def _u32(value):
    return struct.pack("<I", value)


def _string(value):
    data = value.encode() if isinstance(value, str) else value
    if len(data) > 0xFFFF:
        raise ValueError("A string in an AccessToken2 is at most 65535 bytes.")
    return _u16(len(data)) + data


def _is_hex32(value):
    return isinstance(value, str) and len(value) == 32 and all(c in "0123456789abcdefABCDEF" for c in value)


def rtc_token(app_id, app_certificate, channel, uid, *, token_seconds, privilege_seconds=None,
              privileges=PUBLISHER_PRIVILEGES, issued_at, salt=None):
    """An AccessToken2 for one RTC channel and one uid. `token_seconds` and `privilege_seconds` are relative to
    `issued_at` (Unix seconds); the privileges last no longer than the token."""
    if not (_is_hex32(app_id) and _is_hex32(app_certificate)):
        raise ValueError("An Agora App ID and App Certificate are 32 hexadecimal characters each.")
    if not 0 <= uid <= 0xFFFFFFFF:
        raise ValueError("An Agora uid is a 32-bit unsigned integer.")
    privilege_seconds = token_seconds if privilege_seconds is None else min(privilege_seconds, token_seconds)
    salt = secrets.randbelow(99_999_999) + 1 if salt is None else salt
    service = _u16(SERVICE_RTC) + _u16(len(privileges)) + b"".join(
        _u16(privilege) + _u32(privilege_seconds) for privilege in sorted(privileges))
    service += _string(channel) + _string(str(uid) if uid else b"")
    content = _string(app_id) + _u32(issued_at) + _u32(token_seconds) + _u32(salt) + _u16(1) + service
    signing_key = hmac.new(_u32(issued_at), app_certificate.encode(), hashlib.sha256).digest()
    signing_key = hmac.new(_u32(salt), signing_key, hashlib.sha256).digest()
    signature = hmac.new(signing_key, content, hashlib.sha256).digest()
    return VERSION + base64.b64encode(zlib.compress(_string(signature) + content)).decode()
