"""What field-level encryption costs per operation, in process (no server): CPU microseconds per blind index,
per seal and per open of an e-mail address, and the CPU of an argon2id password check (production parameters) for
scale: sign-in adds one blind index to a login whose cost is the password check.

Run from the repository root:

    .venv/bin/python bench/field_encryption_bench.py [--rounds 20000]

For the whole sign-in before and after, run bench/auth_bench.py on both trees: it prints the server's CPU time
per login.
"""

import argparse
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repository, for `pawmanity`

from pawmanity import create_app  # noqa: E402
from pawmanity.core.encryption.fields import decrypt_value, encrypt_value  # noqa: E402
from pawmanity.identity import passwords  # noqa: E402
from pawmanity.identity.models import User  # noqa: E402


def cpu_us_per_call(function, rounds):
    start = time.process_time()
    for _ in range(rounds):
        function()
    return (time.process_time() - start) / rounds * 1e6


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20000)
    args = parser.parse_args()
    instance = tempfile.mkdtemp(prefix="pawmanity-field-bench-")
    # The development configuration's argon2 parameters are production's (m=19 MiB, t=2).
    app = create_app("development", plugins=(), settings={
        "INSTANCE_DIR": instance, "SQLALCHEMY_DATABASE_URI": f"sqlite:///{os.path.join(instance, 'db.sqlite3')}"})
    address, row_id = "bench.patient@example.com", uuid.uuid4()
    with app.app_context():
        sealed = encrypt_value(address, table="users", column="email", row_id=row_id)
        figures = {
            "blind index (HMAC-SHA256)": cpu_us_per_call(lambda: User.email.blind_index_of(address), args.rounds),
            "seal (AES-256-GCM)": cpu_us_per_call(
                lambda: encrypt_value(address, table="users", column="email", row_id=row_id), args.rounds),
            "open (AES-256-GCM)": cpu_us_per_call(
                lambda: decrypt_value(sealed, table="users", column="email", row_id=row_id), args.rounds),
        }
        hashed = passwords.hash_password("bench passphrase 2026")
        figures["argon2id password check"] = cpu_us_per_call(
            lambda: passwords.verify_password(hashed, "bench passphrase 2026"), 20)
    for name, microseconds in figures.items():
        print(f"{name:28} {microseconds:10.1f} us CPU per call")
    share = figures["blind index (HMAC-SHA256)"] / figures["argon2id password check"]
    print(f"sign-in's added work (one blind index) is {share:.5%} of its password check")


if __name__ == "__main__":
    main()
