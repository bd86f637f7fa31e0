"""A real SMTP server for tests (aiosmtpd), collecting what it receives."""

from __future__ import annotations

import email
import email.policy
import threading
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller

from tests.support.polling import eventually


class Inbox:
    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self._lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(msg, EmailMessage)
        with self._lock:
            self.messages.append(msg)
        return "250 Message accepted for delivery"

    def to(self, address: str) -> list[EmailMessage]:
        with self._lock:
            return [m for m in self.messages if m["To"] == address]

    async def wait_for(
        self, address: str, count: int = 1, timeout: float = 10
    ) -> list[EmailMessage]:
        async def mail() -> list[EmailMessage]:
            return self.to(address)

        return await eventually(
            mail, lambda found: len(found) >= count, timeout=timeout, what=f"email for {address}"
        )

    async def wait_for_subject(
        self, address: str, subject: str, timeout: float = 10
    ) -> EmailMessage:
        """The latest email to `address` whose subject contains `subject` (others, such as
        security notices, may arrive beside it)."""

        async def mail() -> EmailMessage | None:
            found = [m for m in self.to(address) if subject in str(m["Subject"])]
            return found[-1] if found else None

        return await eventually(mail, timeout=timeout, what=f"{subject!r} email for {address}")


def text_of(message: EmailMessage) -> str:
    """The plain-text body, of a single-part message or of a text-and-HTML one."""
    part = message.get_body(preferencelist=("plain",))
    assert part is not None, message
    return str(part.get_content())


class SmtpServer:
    def __init__(self, port: int) -> None:
        self.inbox = Inbox()
        self.port = port
        self._controller = Controller(self.inbox, hostname="127.0.0.1", port=port)

    def start(self) -> None:
        self._controller.start()

    def stop(self) -> None:
        self._controller.stop()

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"
