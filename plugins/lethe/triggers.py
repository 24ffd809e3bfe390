"""Triggers, imported by the triggerer by class path (plugins/ is on its sys.path)."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

if TYPE_CHECKING:
    from collections.abc import AsyncIterator


def _count_verified(conn_id: str) -> int:
    from lethe.control.hook import PrivacyControlHook

    hook = PrivacyControlHook(control_conn_id=conn_id)
    try:
        return hook.count_verified()
    finally:
        hook.close()


class SubjectRequestTrigger(BaseTrigger):
    """Waits, without holding a worker slot, until a verified subject request is pending.

    Fires ``{"status": "found", "pending": n}`` as soon as there is one, or
    ``{"status": "none"}`` when ``timeout`` seconds pass without one.

    :param conn_id: connection of the control schema.
    :param poll_interval: seconds between looks.
    :param timeout: seconds to wait in all.
    """

    def __init__(self, *, conn_id: str, poll_interval: float = 30.0, timeout: float = 240.0):
        super().__init__()
        self.conn_id = conn_id
        self.poll_interval = poll_interval
        self.timeout = timeout

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {"conn_id": self.conn_id, "poll_interval": self.poll_interval, "timeout": self.timeout},
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        deadline = time.monotonic() + self.timeout
        while True:
            # The hook is synchronous: look in a worker thread, keep the event loop free.
            pending = await asyncio.to_thread(_count_verified, self.conn_id)
            if pending:
                yield TriggerEvent({"status": "found", "pending": pending})
                return
            if time.monotonic() >= deadline:
                yield TriggerEvent({"status": "none"})
                return
            await asyncio.sleep(self.poll_interval)
