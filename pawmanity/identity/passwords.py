"""Password hashing (argon2id) and the password policy.

Policy after NIST SP 800-63B: 8 to 128 characters, no composition rules, refuse the most common passwords and the
account's own e-mail address.

Hashing and verifying take about 25 ms of CPU each, by design; they run on the `cpu` offload pool (argon2-cffi
releases the GIL), so a burst of sign-ins never stalls the event loop that carries every chat and call.
"""

from functools import cache
from importlib import resources

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError
from flask import current_app

from pawmanity.core.offload import run_blocking

MIN_LENGTH = 8
MAX_LENGTH = 128


@cache
def _hasher(memory_kib, time_cost, parallelism):
    return PasswordHasher(time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism, type=Type.ID)


def hasher():
    config = current_app.config
    return _hasher(config["ARGON2_MEMORY_KIB"], config["ARGON2_TIME_COST"], config["ARGON2_PARALLELISM"])


@cache
def common_passwords():
    text = resources.files("pawmanity.data").joinpath("common_passwords.txt").read_text(encoding="utf-8")
    return frozenset(line for line in text.splitlines() if line and not line.startswith("#"))


def policy_problems(password, *, email=None):
    """The reasons a password is refused (empty when it is acceptable)."""
    if len(password) < MIN_LENGTH:
        return [f"Use at least {MIN_LENGTH} characters."]
    if len(password) > MAX_LENGTH:
        return [f"Use at most {MAX_LENGTH} characters."]
    if password.lower() in common_passwords():
        return ["This password is too common; choose another."]
    if email and password.lower() == email.lower():
        return ["Do not use your e-mail address as your password."]
    return []


def hash_password(password):
    return run_blocking(hasher().hash, password, pool="cpu")


def verify_password(password_hash, password):
    try:
        return run_blocking(hasher().verify, password_hash, password, pool="cpu")
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash):
    return hasher().check_needs_rehash(password_hash)


@cache
def _dummy_hash(memory_kib, time_cost, parallelism):
    return run_blocking(_hasher(memory_kib, time_cost, parallelism).hash, "not-a-real-password", pool="cpu")


def burn_verification_time(password):
    """Spend the time a real verification takes, so unknown e-mails cannot be told apart by timing."""
    config = current_app.config
    verify_password(_dummy_hash(config["ARGON2_MEMORY_KIB"], config["ARGON2_TIME_COST"],
                                config["ARGON2_PARALLELISM"]), password)
