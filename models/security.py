"""Credentials: argon2id password hashes, random tokens, encrypted TOTP secrets."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from datetime import UTC, datetime
from functools import lru_cache

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from cryptography.fernet import Fernet, InvalidToken

TOTP_ISSUER = "Bourse"


@lru_cache(maxsize=8)
def password_hasher(memory_kib: int, time_cost: int, parallelism: int) -> PasswordHasher:
    # argon2-cffi's PasswordHasher uses argon2id.
    return PasswordHasher(memory_cost=memory_kib, time_cost=time_cost, parallelism=parallelism)


def hash_password(hasher: PasswordHasher, password: str) -> str:
    return hasher.hash(password)


def verify_password(hasher: PasswordHasher, stored_hash: str, password: str) -> bool:
    try:
        return hasher.verify(stored_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def new_token() -> str:
    """256 bits from the OS CSPRNG, URL-safe."""
    return secrets.token_urlsafe(32)


def token_digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


class SecretBox:
    """Symmetric encryption for secrets at rest (TOTP seeds), keyed from the platform key."""

    def __init__(self, secret_key: str) -> None:
        key = base64.urlsafe_b64encode(
            hashlib.sha256(b"bourse-fernet:" + secret_key.encode()).digest()
        )
        self._fernet = Fernet(key)

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode()

    def decrypt(self, ciphertext: str) -> str:
        try:
            return self._fernet.decrypt(ciphertext.encode()).decode()
        except InvalidToken as exc:  # key rotated without re-encryption: a config error
            raise RuntimeError("cannot decrypt a stored secret: wrong BOURSE_SECRET_KEY?") from exc


def new_totp_secret() -> str:
    return pyotp.random_base32()


def totp_uri(secret: str, account: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=account, issuer_name=TOTP_ISSUER)


def totp_step(secret: str, code: str, *, at: datetime | None = None) -> int | None:
    """The time step (RFC 6238 counter) whose code ``code`` is, within one step of clock drift
    either way as authenticator apps expect; None when it is none of them. The caller accepts
    it only for a step after the last one accepted (a code is good once)."""
    code = code.strip().replace(" ", "")
    if not (code.isascii() and code.isdigit() and len(code) == 6):
        return None
    totp = pyotp.TOTP(secret)
    now = totp.timecode(at or datetime.now(UTC))
    for step in (now - 1, now, now + 1):
        if hmac.compare_digest(totp.generate_otp(step), code):
            return step
    return None


def new_recovery_codes(count: int = 10) -> list[str]:
    alphabet = "abcdefghjkmnpqrstuvwxyz23456789"  # no look-alikes (0/o, 1/l/i)
    return [
        "-".join("".join(secrets.choice(alphabet) for _ in range(4)) for _ in range(3))
        for _ in range(count)
    ]


def normalize_recovery_code(code: str) -> str:
    return code.strip().lower().replace(" ", "")
