"""Email delivery: real SMTP to SMTP_URL, or .eml files under var/mail/ when none is set."""

from __future__ import annotations

import uuid
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

import aiosmtplib
import structlog

from bourse.clock import utcnow
from bourse.settings import Settings
from models.security import SecretBox
from models.services import Services

log = structlog.get_logger("bourse.email")


def build_message(
    settings: Settings,
    to: str,
    subject: str,
    body: str,
    *,
    html: str | None = None,
    headers: dict[str, str] | None = None,
) -> EmailMessage:
    """A plain-text message, with an HTML alternative when ``html`` is given."""
    msg = EmailMessage()
    msg["From"] = settings.mail_from
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = format_datetime(utcnow())
    msg["Message-ID"] = make_msgid(domain="bourse.local")
    for name, value in (headers or {}).items():
        msg[name] = value
    msg.set_content(body)
    if html is not None:
        msg.add_alternative(html, subtype="html")
    return msg


async def deliver(settings: Settings, msg: EmailMessage) -> str:
    """Send one message; returns where it went (for logs)."""
    if settings.smtp_url:
        url = urlsplit(settings.smtp_url)
        implicit_tls = url.scheme == "smtps"
        await aiosmtplib.send(
            msg,
            hostname=url.hostname or "127.0.0.1",
            port=url.port or (465 if implicit_tls else 25),
            username=unquote(url.username) if url.username else None,
            password=unquote(url.password) if url.password else None,
            use_tls=implicit_tls,
            start_tls=None if not implicit_tls else False,  # STARTTLS when offered
            timeout=30,
        )
        return f"smtp://{url.hostname}:{url.port}"
    mail_dir = Path(settings.var_dir) / "mail"
    mail_dir.mkdir(parents=True, exist_ok=True)
    stamp = utcnow().strftime("%Y%m%dT%H%M%S")
    path = mail_dir / f"{stamp}-{uuid.uuid4().hex[:8]}.eml"
    path.write_bytes(bytes(msg))
    return str(path)


async def send_email(ctx: dict[str, object], to: str, subject: str, sealed_body: str) -> None:
    """arq job. arq may run a job twice; enqueuers pass a job id so a retry is the only repeat.
    The body comes sealed with the platform key (``Services.send_email``): what arq keeps in
    Redis is ciphertext."""
    settings = ctx["settings"]
    assert isinstance(settings, Settings)
    body = SecretBox(settings.resolved_secret_key()).decrypt(sealed_body)
    where = await deliver(settings, build_message(settings, to, subject, body))
    log.info("email sent", to=to, subject=subject, via=where)


async def password_reset_email(ctx: dict[str, object], address: str) -> None:
    """arq job: one per reset request, for known and unknown addresses alike
    (``Accounts.request_password_reset``). The link comes from settings only: a request's Host
    header is the attacker's to choose (reset-link poisoning)."""
    settings = ctx["settings"]
    services = ctx["services"]
    assert isinstance(settings, Settings)
    assert isinstance(services, Services)
    base = settings.link_base_url()

    def link(token: str) -> str:
        return f"{base}/reset-password?token={quote(token)}"

    await services.accounts.send_password_reset(address, link)
