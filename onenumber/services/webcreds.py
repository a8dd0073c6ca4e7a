"""SIP credentials that live as long as a web session (the web phone's login).

When a logged-in browser asks for its SIP credential (`GET /api/me/webphone`), it gets the
auth username of the account's `webphone` device and a password that is derived from the
server secret and the session id: stable for the session (a reload gets the same one), never
stored, and accepted by the gate only while the session is granted here. Ending the session
revokes it; the caller then drops the device's bindings (`Location.drop_device`).

Pure and in memory (no I/O): the gate reads it on the call path.
"""

from __future__ import annotations

import base64
import hashlib
import hmac


class SessionCredentials:
    def __init__(self, secret: bytes) -> None:
        self._key = hmac.new(secret, b"onenumber webphone session credentials", hashlib.sha256).digest()
        self._by_username: dict[str, dict[str, str]] = {}  # auth username -> session id -> password
        self._by_session: dict[str, set[tuple[str, str]]] = {}  # session id -> {(account, auth username)}

    def password(self, session_id: str, auth_username: str) -> str:
        mac = hmac.new(self._key, f"{session_id}\x00{auth_username}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac[:18]).decode()  # 144 bits, 24 characters

    def grant(self, session_id: str, account: str, auth_username: str) -> str:
        """Accept a session password for the device from now on; returns it."""
        password = self.password(session_id, auth_username)
        self._by_username.setdefault(auth_username, {})[session_id] = password
        self._by_session.setdefault(session_id, set()).add((account, auth_username))
        return password

    def revoke(self, session_id: str) -> list[tuple[str, str]]:
        """Stop accepting the session's passwords; returns the (account, auth username) it had."""
        granted = self._by_session.pop(session_id, set())
        for _account, username in granted:
            per = self._by_username.get(username)
            if per is not None:
                per.pop(session_id, None)
                if not per:
                    del self._by_username[username]
        return sorted(granted)

    def passwords(self, auth_username: str) -> list[str]:
        """The live session passwords of a device (usually none or one)."""
        per = self._by_username.get(auth_username)
        return list(per.values()) if per else []

    def sessions(self) -> set[str]:
        return set(self._by_session)

    def granted(self, session_id: str) -> bool:
        return session_id in self._by_session
