"""The web phone's SIP credential, bound to the browser session that asked for it.

`GET /api/me/webphone` calls `WebphoneAccess.credential`: the account's `webphone` device
(created on first use when a slot of the 8 is free, else 409), and a session password from
`services.webcreds.SessionCredentials` that the gate accepts only while the session lives.
`on_session_end` (a LoginService hook) revokes it and drops the device's bindings at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from ..routing.model import MAX_DEVICES, Device, DeviceKind
from ..services.directory import Directory
from ..services.location import Location
from ..services.webcreds import SessionCredentials
from ..store import ConflictError, Store
from ..store.logins import WebSession

WS_PATH = "/sip"


class WebphoneAccess:
    def __init__(
        self, store: Store, directory: Directory, location: Location, credentials: SessionCredentials, *,
        realm: str = "onenumber", domain: str | None = None, pump: Callable[[], None] | None = None,
    ) -> None:
        self.store = store
        self.directory = directory
        self.location = location
        self.credentials = credentials
        self.realm = realm
        self.domain = domain
        self.pump = pump
        self._lock = asyncio.Lock()  # two tabs logging in at once must not create two devices

    async def device(self, number: str) -> Device:
        async with self._lock:
            devices = await self.store.admin.list_devices(number)
            for device in devices:
                if device.kind == DeviceKind.WEBPHONE:
                    return device
            if len(devices) >= MAX_DEVICES:
                raise ConflictError(
                    f"account {number} already has {MAX_DEVICES} devices and none is a web phone; "
                    "ask an admin to remove one (or add a web phone) first"
                )
            # a browser is used from anywhere; its credential lives only as long as the session
            device = await self.store.admin.add_device(number, DeviceKind.WEBPHONE.value, label="Web phone",
                                                       internet=True)
            account = await self.store.admin.get_account(number)
            if account.selected_device is None:  # SPEC: the first web phone login selects it
                await self.store.admin.update_account(number, selected_device=device.position)
            return device

    async def credential(self, session: WebSession, host: str) -> dict[str, Any]:
        number = session.subject
        device = await self.device(number)
        password = self.credentials.grant(session.id, number, device.auth_username)
        if device.auth_username not in self.directory.devices_by_auth:
            await self.directory.reload(self.store)  # a new device: the gate must know it before the REGISTER
        account = self.directory.accounts.get(number)
        return {
            "auth_username": device.auth_username,
            "password": password,
            "realm": self.realm,
            "domain": self.domain or self.directory.settings.domain or host,
            "ws_path": WS_PATH,
            "display_name": account.display_name if account else number,
            "number": number,
        }

    def restore(self, sessions: list[WebSession]) -> int:
        """After a restart: accept again the session passwords of live user sessions."""
        restored = 0
        for session in sessions:
            if session.kind != "user":
                continue
            for device in self.directory.devices(session.subject):
                if device.kind == DeviceKind.WEBPHONE:
                    self.credentials.grant(session.id, session.subject, device.auth_username)
                    restored += 1
        return restored

    async def on_session_end(self, session: WebSession) -> None:
        self._revoke(session.id)

    async def reconcile(self, live: set[str]) -> None:
        """Revoke the credentials of sessions that are gone (removed by the CLI)."""
        for session_id in self.credentials.sessions() - live:
            self._revoke(session_id)

    def _revoke(self, session_id: str) -> None:
        for account, username in self.credentials.revoke(session_id):
            if not self.credentials.passwords(username):  # another tab's session still uses the device
                self.location.drop_device(account, username, "session-ended")
        if self.pump is not None:
            self.pump()
