"""Input rules for account data. Each returns a normalised value or raises DomainError."""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal, InvalidOperation

from email_validator import EmailNotValidError, validate_email

from bourse.money import SUPPORTED_CURRENCIES
from models.errors import DomainError, ErrorCode

USERNAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{2,31}$")
PHONE_RE = re.compile(r"^\+[1-9]\d{6,14}$")  # E.164
LANGUAGE_RE = re.compile(r"^[a-z]{2,3}(-[A-Z][a-z]{3})?(-([A-Z]{2}|\d{3}))?$")  # BCP 47 subset
MIN_PASSWORD = 8
MAX_PASSWORD = 128
MIN_AGE_YEARS = 18
# The handful of passwords every credential-stuffing list starts with.
# Plain ASCII decimal notation; Decimal() alone would also take '1_000', 'NaN' and other digits.
AMOUNT_RE = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?", re.ASCII)
MAX_DECIMAL_TEXT = 64
MAX_VALUE = Decimal(10) ** 12  # no amount, price or quantity a person types is this large
COMMON_PASSWORDS = frozenset(
    {
        "password",
        "password1",
        "password123",
        "12345678",
        "123456789",
        "1234567890",
        "qwerty123",
        "qwertyuiop",
        "iloveyou",
        "11111111",
        "abc12345",
        "letmein1",
        "welcome1",
        "admin123",
        "passw0rd",
        "p@ssw0rd",
        "football1",
        "baseball1",
    }
)


def username(value: str, field: str = "username") -> str:
    value = value.strip()
    if not USERNAME_RE.fullmatch(value):
        raise DomainError.one(
            ErrorCode.INVALID_USERNAME,
            "Usernames are 3-32 letters, digits, '.', '_' or '-', starting with a letter or digit.",
            field,
        )
    return value


def email(value: str, field: str = "email") -> str:
    """The address as stored: ASCII only, so look-alikes cannot pass for another account.
    A local part outside ASCII (fullwidth or Cyrillic letters looking like Latin ones) is
    INVALID_EMAIL (SMTPUTF8 addresses are refused); a domain is stored in its IDNA form, so a
    fullwidth "example.com" is stored as plain ``example.com`` and a Cyrillic look-alike becomes its
    visibly different ``xn--…`` name (issue 17)."""
    try:
        result = validate_email(value.strip(), check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError as exc:
        raise DomainError.one(
            ErrorCode.INVALID_EMAIL, f"Invalid email address: {exc}", field
        ) from exc
    return result.ascii_email or result.normalized


def password(
    value: str, *, username: str | None = None, email: str | None = None, field: str = "password"
) -> str:
    def weak(reason: str) -> DomainError:
        return DomainError.one(ErrorCode.WEAK_PASSWORD, reason, field)

    if len(value) < MIN_PASSWORD:
        raise weak(f"Passwords need at least {MIN_PASSWORD} characters.")
    if len(value) > MAX_PASSWORD:
        raise weak(f"Passwords are at most {MAX_PASSWORD} characters.")
    lowered = value.lower()
    if lowered in COMMON_PASSWORDS:
        raise weak("This password is one of the most commonly used; choose another.")
    has_letter = any(c.isalpha() for c in value)
    has_other = any(not c.isalpha() for c in value)
    if not (has_letter and has_other):
        raise weak("Use letters and at least one digit or symbol.")
    if len(set(value)) < 5:
        raise weak("The password repeats too few distinct characters.")
    if lowered in {(username or "").lower(), (email or "").lower()} or (
        email and email.lower() in lowered
    ):
        raise weak("The password must not be your username or email.")
    return value


def phone_number(value: str, field: str = "phoneNumber") -> str:
    compact = re.sub(r"[\s().-]", "", value)
    if not PHONE_RE.fullmatch(compact):
        raise DomainError.one(
            ErrorCode.INVALID_PHONE_NUMBER,
            "Phone numbers are in international form, e.g. +14155550123.",
            field,
        )
    return compact


def date_of_birth(value: date, today: date, field: str = "dateOfBirth") -> date:
    if value >= today or value.year < 1900:
        raise DomainError.one(ErrorCode.INVALID_DATE_OF_BIRTH, "Not a plausible birth date.", field)
    years = today.year - value.year - ((today.month, today.day) < (value.month, value.day))
    if years < MIN_AGE_YEARS:
        raise DomainError.one(
            ErrorCode.INVALID_DATE_OF_BIRTH,
            f"Account holders must be at least {MIN_AGE_YEARS} years old.",
            field,
        )
    return value


def language(value: str, field: str = "preferredLanguage") -> str:
    if not LANGUAGE_RE.fullmatch(value.strip()):
        raise DomainError.one(
            ErrorCode.INVALID_LANGUAGE, "Use a language tag such as 'en' or 'en-US'.", field
        )
    return value.strip()


def currency(value: str, field: str = "baseCurrency") -> str:
    code = value.strip().upper()
    if code not in SUPPORTED_CURRENCIES:
        raise DomainError.one(
            ErrorCode.UNSUPPORTED_CURRENCY,
            f"Supported currencies: {', '.join(sorted(SUPPORTED_CURRENCIES))}.",
            field,
        )
    return code


def bounded_text(value: str, max_len: int, field: str) -> str:
    value = value.strip()
    if len(value) > max_len:
        raise DomainError.one(ErrorCode.INVALID_INPUT, f"At most {max_len} characters.", field)
    # Control characters (NUL above all: PostgreSQL text cannot hold it) are refused; line
    # breaks and tabs are fine (addresses).
    if any(not ch.isprintable() and ch not in "\n\r\t" for ch in value):
        raise DomainError.one(ErrorCode.INVALID_INPUT, "Control characters are not allowed.", field)
    return value


def parse_decimal(
    raw: str | Decimal | None,
    *,
    field: str,
    code: ErrorCode,
    what: str,
    max_decimals: int,
    allow_zero: bool = False,
) -> Decimal:
    """A positive (or >= 0) plain decimal with at most `max_decimals` decimals, below 10^12."""

    def bad(message: str) -> DomainError:
        return DomainError.one(code, message, field)

    if isinstance(raw, Decimal):
        value = raw
    else:
        text_value = (raw or "").strip()
        if (
            not text_value
            or len(text_value) > MAX_DECIMAL_TEXT
            or not AMOUNT_RE.fullmatch(text_value)
        ):
            raise bad(f'{what} must be a decimal number, e.g. "12.5".')
        try:
            value = Decimal(text_value)
        except (InvalidOperation, ValueError):
            raise bad(f'{what} must be a decimal number, e.g. "12.5".') from None
    if not value.is_finite():
        raise bad(f"{what} must be a finite number.")
    if value < 0 or (value == 0 and not allow_zero):
        raise bad(f"{what} must be {'zero or more' if allow_zero else 'greater than zero'}.")
    if value.adjusted() >= 12 or value >= MAX_VALUE:
        raise bad(f"{what} must be below {MAX_VALUE:,}.")
    if value != 0 and value.adjusted() < -max_decimals:
        raise bad(f"{what} has more than {max_decimals} decimals.")
    if value != value.quantize(Decimal(1).scaleb(-max_decimals)):
        raise bad(f"{what} has more than {max_decimals} decimals.")
    return value
