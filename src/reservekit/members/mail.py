"""Mail an invitation link, when SMTP is configured (``RESERVEKIT_SMTP_*``); otherwise do nothing.

No mail server is assumed: the owner always sees the link and copies it. With ``RESERVEKIT_SMTP_HOST``
set, the link is also mailed with ``smtplib`` (in a worker thread, so a slow server never stalls other
requests). A mail that fails is reported to the owner on the page and logged; the invitation stands.
"""

from __future__ import annotations

import asyncio
import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage

import structlog

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int = 587
    username: str | None = None
    password: str | None = None
    sender: str = "reservekit@localhost"
    starttls: bool = True
    timeout_seconds: float = 10.0


@dataclass(frozen=True)
class MailResult:
    """``attempted``: SMTP is configured; ``sent``: the server accepted it; ``error``: why not."""

    attempted: bool
    sent: bool = False
    error: str | None = None


class InvitationMailer:
    def __init__(self, config: SmtpConfig | None = None) -> None:
        self.config = config

    async def send_invitation(
        self, *, to: str, link: str, role: str, inviter: str, expires: str
    ) -> MailResult:
        if self.config is None:
            return MailResult(attempted=False)
        message = EmailMessage()
        message["From"] = self.config.sender
        message["To"] = to
        message["Subject"] = "You are invited to a ReserveKit account"
        message.set_content(
            f"{inviter} invited you to their ReserveKit account as {role}.\n\n"
            f"Open this link to set your password and join (it works once, until {expires}):\n\n{link}\n\n"
            "If you did not expect this, ignore this message.\n"
        )
        try:
            await asyncio.to_thread(self._send, message)
        except (OSError, smtplib.SMTPException) as exc:
            log.warning("invitation mail failed", to=to, error=str(exc))
            return MailResult(attempted=True, error=str(exc) or type(exc).__name__)
        return MailResult(attempted=True, sent=True)

    def _send(self, message: EmailMessage) -> None:
        config = self.config
        assert config is not None
        with smtplib.SMTP(config.host, config.port, timeout=config.timeout_seconds) as smtp:
            if config.starttls:
                smtp.starttls(context=ssl.create_default_context())
            if config.username:
                smtp.login(config.username, config.password or "")
            smtp.send_message(message)
