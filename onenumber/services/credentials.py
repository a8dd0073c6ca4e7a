"""Scheduled credential rotation: a rare periodic task of the server.

Every `interval` seconds it asks the store to rotate the device secrets older than the
`credential_max_age_days` setting (each keeps working for `credential_overlap_hours`, so
phones are re-provisioned without dropping out) and to forget previous secrets whose
window is over. The directory picks the change up with its usual reload. Off the call
path; a failure is logged and retried at the next round.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..store import Store

log = logging.getLogger("onenumber.credentials")

ROTATION_INTERVAL = 3600.0  # an hour: rotation is counted in days
FIRST_CHECK = 60.0  # soon after a start, once the server is settled


async def rotate_due_once(store: Store, now: float | None = None) -> int:
    """One round; returns how many devices got a new secret."""
    rotated = await store.admin.rotate_due(time.time() if now is None else now)
    for device in rotated:
        log.info("credentials of %s (account %s position %d) rotated: older than credential_max_age_days",
                 device.auth_username, device.account, device.position)
    return len(rotated)


async def rotation_loop(store: Store, interval: float = ROTATION_INTERVAL, first: float = FIRST_CHECK) -> None:
    delay = first
    while True:
        await asyncio.sleep(delay)
        delay = interval
        try:
            await rotate_due_once(store)
        except Exception:
            log.exception("scheduled credential rotation failed; retrying in %.0f s", interval)
