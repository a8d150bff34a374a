"""With RESERVEKIT_SMTP_* set, an invitation is also mailed: a real SMTP sink (aiosmtpd) on loopback
receives it. A mail server that does not answer leaves the invitation standing and says so."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from email import message_from_bytes
from email.message import Message
from pathlib import Path

import msgspec
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from reservekit.clock import FakeClock
from reservekit.settings import Settings, load_settings
from reservekit.web.app import create_app
from tests.web.conftest import event_count, serving
from tests.web.dashboard_helpers import sign_up, submit
from tests.web.test_dashboard_team import LINK


class Sink:
    def __init__(self) -> None:
        self.received: list[tuple[str, list[str], Message]] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        del server, session
        content = envelope.original_content or b""
        self.received.append((str(envelope.mail_from), list(envelope.rcpt_tos), message_from_bytes(content)))
        return "250 OK"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def sink() -> Iterator[tuple[Sink, int]]:
    handler = Sink()
    port = _free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    yield handler, port
    controller.stop()


async def test_an_invitation_is_mailed_when_smtp_is_configured(
    settings: Settings, clock: FakeClock, sink: tuple[Sink, int]
) -> None:
    handler, port = sink
    mailing = msgspec.structs.replace(
        settings, smtp_host="127.0.0.1", smtp_port=port, smtp_starttls=False, smtp_from="keys@acme.example"
    )
    async with serving(create_app(mailing, clock=clock)) as client:
        await sign_up(client)
        response = await submit(
            client,
            "/dashboard/team/",
            "/dashboard/team/invitations",
            {"email": "dev@example.com", "role": "developer"},
        )
        assert response.status_code == 201
        assert "It was also mailed to dev@example.com" in response.text
        link = LINK.search(response.text).group(1)  # type: ignore[union-attr]
    [(sender, recipients, message)] = handler.received
    assert sender == "keys@acme.example"
    assert recipients == ["dev@example.com"]
    assert message["Subject"] == "You are invited to a ReserveKit account"
    body = message.get_payload(decode=True).decode()  # type: ignore[union-attr]
    assert link in body
    assert "ada@example.com invited you" in body
    assert "as developer" in body


async def test_a_mail_server_that_does_not_answer_leaves_the_invitation_and_says_so(
    settings: Settings, clock: FakeClock
) -> None:
    unreachable = msgspec.structs.replace(
        settings, smtp_host="127.0.0.1", smtp_port=_free_port(), smtp_starttls=False
    )
    app = create_app(unreachable, clock=clock)
    async with serving(app) as client:
        await sign_up(client)
        before = await event_count(app.state.runtime)
        response = await submit(
            client,
            "/dashboard/team/",
            "/dashboard/team/invitations",
            {"email": "dev@example.com", "role": "auditor"},
        )
        assert response.status_code == 201
        assert "Mailing it failed" in response.text
        assert LINK.search(response.text)
        assert await event_count(app.state.runtime) == before + 1


def test_smtp_settings_are_read_from_the_environment(tmp_path: Path) -> None:
    loaded = load_settings(
        {
            "RESERVEKIT_SMTP_HOST": "smtp.acme.example",
            "RESERVEKIT_SMTP_PORT": "2525",
            "RESERVEKIT_SMTP_USERNAME": "keys",
            "RESERVEKIT_SMTP_PASSWORD": "pw",
            "RESERVEKIT_SMTP_FROM": "keys@acme.example",
            "RESERVEKIT_SMTP_STARTTLS": "false",
        }
    )
    assert (loaded.smtp_host, loaded.smtp_port, loaded.smtp_username, loaded.smtp_password) == (
        "smtp.acme.example",
        2525,
        "keys",
        "pw",
    )
    assert loaded.smtp_from == "keys@acme.example"
    assert loaded.smtp_starttls is False
    assert load_settings({}).smtp_host is None
