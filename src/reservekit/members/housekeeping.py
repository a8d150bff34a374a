"""Expired dashboard sessions and old spent-form rows, deleted by the worker once an hour.

An expired session is already refused (and deleted when its cookie comes back); one whose browser
never returns would otherwise stay forever, as would every spent one-shot form id.
"""

from __future__ import annotations

import structlog
from sqlalchemy.exc import SQLAlchemyError

from reservekit.background import PeriodicTask
from reservekit.db import DatabaseUnavailable
from reservekit.members.directory import SqlMemberDirectory

log = structlog.get_logger(__name__)


class DashboardHousekeeping(PeriodicTask):
    name = "dashboard_housekeeping"
    retried = (DatabaseUnavailable, SQLAlchemyError, OSError)

    def __init__(self, directory: SqlMemberDirectory, *, interval: float = 3600.0) -> None:
        super().__init__(interval=interval)
        self._directory = directory

    async def run_once(self) -> tuple[int, int]:
        sessions, forms = await self._directory.purge_expired()
        if sessions or forms:
            log.info("dashboard_housekeeping", sessions_deleted=sessions, spent_forms_deleted=forms)
        return sessions, forms
