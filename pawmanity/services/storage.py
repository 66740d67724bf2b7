"""Where uploaded bytes live: content-addressed blobs behind a registry of storage backends.

Keys are made from the SHA-256 of the content (`ab/cd/abcdef...`), never from anything a client sent, so no name can
reach outside the store, and identical files are stored once. `local` (a folder, by default `uploads/`) ships here;
another backend (an S3-compatible store, say) registers under its own name and is chosen with UPLOAD_STORAGE.
"""

import hashlib
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

    def read(self, key):
        return self.path(key).read_bytes()

    def sha256(self, key):
        digest = hashlib.sha256()
        with open(self.path(key), "rb") as stored:
            for chunk in iter(lambda: stored.read(1 << 20), b""):
                digest.update(chunk)
        return digest.hexdigest()


BACKENDS = {"local": lambda app: LocalStorage(app.config["UPLOAD_DIR"])}


def backend(name=None):
    name = name or current_app.config["UPLOAD_STORAGE"]
    instances = current_app.extensions.setdefault("upload_storage", {})
    if name not in instances:
        instances[name] = BACKENDS[name](current_app)
    return instances[name]
