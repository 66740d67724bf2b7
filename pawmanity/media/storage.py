"""Where uploaded bytes live: content-addressed blobs behind a registry of storage backends.

Keys are made from the SHA-256 of the content (`ab/cd/abcdef...`), never from anything a client sent, so no name can
reach outside the store, and identical files are stored once. Backends: `local` (a folder, by default `uploads/`) and
`s3` (any S3-compatible store, through boto3: UPLOAD_S3_BUCKET, UPLOAD_S3_ENDPOINT_URL and the usual AWS_*
credentials); UPLOAD_STORAGE chooses. Each offers put(key, data), open(key) -> a seekable binary file, and name.
"""

import io
import os
import tempfile
from pathlib import Path

from flask import current_app


def content_key(sha256, suffix):
    return f"{sha256[:2]}/{sha256[2:4]}/{sha256}{suffix}"


class LocalStorage:
    name = "local"

    def __init__(self, root):
        self.root = Path(root)

    def path(self, key):
        return self.root / key

    def put(self, key, data):
        target = self.path(key)
        if target.exists():  # same content, same key: already stored
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        # Write to a temporary file and rename, so a reader never sees half a file.
        handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=".incoming-")
        try:
            with os.fdopen(handle, "wb") as out:
                out.write(data)
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    def open(self, key):
        return open(self.path(key), "rb")


class S3Storage:
    name = "s3"

    def __init__(self, bucket, *, endpoint_url=None, region=None, prefix=""):
        import boto3

        self.bucket, self.prefix = bucket, prefix
        self.client = boto3.client("s3", endpoint_url=endpoint_url, region_name=region)

    def put(self, key, data):
        self.client.put_object(Bucket=self.bucket, Key=self.prefix + key, Body=data,
                               ServerSideEncryption="AES256")

    def open(self, key):
        # Files are at most UPLOAD_MAX_BYTES; reading one into memory keeps it seekable for range requests.
        body = self.client.get_object(Bucket=self.bucket, Key=self.prefix + key)["Body"]
        return io.BytesIO(body.read())


BACKENDS = {
    "local": lambda app: LocalStorage(app.config["UPLOAD_DIR"]),
    "s3": lambda app: S3Storage(app.config["UPLOAD_S3_BUCKET"], endpoint_url=app.config["UPLOAD_S3_ENDPOINT_URL"],
                                region=app.config["UPLOAD_S3_REGION"], prefix=app.config["UPLOAD_S3_PREFIX"]),
}


def backend(name=None):
    name = name or current_app.config["UPLOAD_STORAGE"]
    instances = current_app.extensions.setdefault("upload_storage", {})
    if name not in instances:
        instances[name] = BACKENDS[name](current_app)
    return instances[name]
