"""The gate every request from a device passes: digest authentication, throttling, trusted
networks, credential expiry (kamailio's `route(AUTH)`).

The gate answers the challenge or the refusal itself and returns the device whose
credentials were right, or None. It knows nothing of registrations or calls.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Callable

from ..routing.model import Device
from ..sip.auth import Credentials, DigestAuthenticator, LoginThrottle, Verdict
from ..sip.message import Request
from ..sip.stack import ServerTxn
from .directory import Directory
from .replies import Replier
from .webcreds import SessionCredentials

log = logging.getLogger("onenumber.gate")

BLOCKED = "Forbidden (too many failed attempts, try later)"
ROTATED = "Credentials expired (rotated)"
TRUSTED_CACHE_SIZE = 4096


class Gate:
    def __init__(self, directory: Directory, replier: Replier, *, secret: bytes, realm: str) -> None:
        self.directory = directory
        self.replier = replier
        self.secret = secret
        self.realm = realm
        self.auth: DigestAuthenticator
        self.auth_md5: DigestAuthenticator
        self.throttle: LoginThrottle
        self.trusted: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        # address → is_trusted(address) for the current `trusted` list: parsing the address was
        # ~3 % of an authenticated REGISTER for a device not allowed from the internet
        self._trusted_cache: dict[str, bool] = {}
        self.md5_only_agents: tuple[str, ...] = ()
        self._configured = False
        # web phone session passwords, accepted for their device besides its own secret
        self.session_credentials: SessionCredentials | None = None
        # for /metrics: wrong credentials, requests refused while blocked, blocks started
        self.stats = {"auth_failures": 0, "auth_blocked": 0, "auth_blocks": 0}
        # worker processes: told (failed, address, username, now) so every worker counts it
        self.on_login: Callable[[bool, str, str, float], None] | None = None
        self.configure(directory)
        directory.listeners.append(self.configure)

    def configure(self, directory: Directory) -> None:
        s = directory.settings
        # rebuilt only when the offer changes: it holds the nc replay state of live nonces,
        # which a reload for an unrelated setting must not forget
        if not self._configured or self.auth.algorithms != tuple(s.digest_algorithms):
            self.auth = DigestAuthenticator(secret=self.secret, realm=self.realm, algorithms=s.digest_algorithms)
            # same secret and realm: its nonces verify with self.auth, which keeps the nc state
            self.auth_md5 = DigestAuthenticator(secret=self.secret, realm=self.realm, algorithms=("MD5",))
        self.md5_only_agents = s.md5_only_user_agents
        limits = (s.auth_max_failures, s.auth_max_usernames, s.auth_block_seconds)
        if not self._configured or (
            self.throttle.max_failures, self.throttle.max_usernames, self.throttle.block_seconds
        ) != limits:
            self.throttle = LoginThrottle(
                max_failures=s.auth_max_failures, max_usernames=s.auth_max_usernames,
                block_seconds=max(1, s.auth_block_seconds),
            )
        self.trusted = [ipaddress.ip_network(n, strict=False) for n in s.trusted_networks]
        self._trusted_cache = {}
        self._configured = True

    def is_trusted(self, address: str) -> bool:
        known = self._trusted_cache.get(address)
        if known is not None:
            return known
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        trusted = any(ip in net for net in self.trusted)
        if len(self._trusted_cache) >= TRUSTED_CACHE_SIZE:
            self._trusted_cache.clear()  # bounded: source addresses are the peers' to choose
        self._trusted_cache[address] = trusted
        return trusted

    def credentials(self, req: Request, *, proxy: bool) -> Credentials | None:
        """The request's credentials for our realm (others' realms are not ours to check)."""
        for value in req.headers.get_all("proxy-authorization" if proxy else "authorization"):
            try:
                creds = Credentials.parse(value)
            except Exception:
                continue
            if creds.realm == self.realm:
                return creds
        return None

    def authenticate(self, txn: ServerTxn, req: Request, now: float, *, proxy: bool) -> Device | None:
        """Digest-check the request. Answers the challenge/refusal itself and returns None,
        or returns the device whose credentials were valid."""
        creds = self.credentials(req, proxy=proxy)
        if creds is None:
            self.challenge(txn, proxy, now, stale=False)
            return None
        address = txn.source.remote[0]
        throttle = self.throttle
        if throttle.is_blocked(address, creds.username, now):
            self.stats["auth_blocked"] += 1
            self.replier.reply(txn, 403, BLOCKED)
            return None
        device = self.directory.devices_by_auth.get(creds.username)
        verdict = self.auth.verify_any(creds, req.method, valid_secrets(device, now), now)
        if verdict is Verdict.FAILED and device is not None and self.session_credentials is not None:
            # a failed check has no side effect (nc state moves only on a match): try each live one
            passwords = tuple(self.session_credentials.passwords(creds.username))
            if passwords:
                verdict = self.auth.verify_any(creds, req.method, passwords, now)
        if verdict is Verdict.OK and device is not None:
            # shared only when it clears failures: not one Redis message per authenticated request
            if self.on_login is not None and throttle.pairs.failures((address, creds.username), now):
                self.on_login(False, address, creds.username, now)
            throttle.record_success(address, creds.username, now)
            return device
        if verdict is Verdict.STALE:
            self.challenge(txn, proxy, now, stale=True)
            return None
        previous = lapsed_secret(device, now)
        if previous is not None and self.auth.verify_any(creds, req.method, (previous,), now) is Verdict.OK:
            # a phone not re-provisioned in time: a clear refusal it stops on, and no failure
            # counted, so the throttle does not block the phone once it has the new secret
            self.replier.reply(txn, 403, ROTATED)
            return None
        self.stats["auth_failures"] += 1
        if self.on_login is not None:
            self.on_login(True, address, creds.username, now)
        if throttle.record_failure(address, creds.username, now):
            self.stats["auth_blocks"] += 1
            log.warning("authentication failures from %s for %r: blocked", address, creds.username)
            self.replier.reply(txn, 403, BLOCKED)
            return None
        self.challenge(txn, proxy, now, stale=False)
        return None

    def challenge(self, txn: ServerTxn, proxy: bool, now: float, *, stale: bool) -> None:
        name = "Proxy-Authenticate" if proxy else "WWW-Authenticate"
        req = txn.request
        assert req is not None  # challenged before any final response: not released yet
        agent = req.headers.get("user-agent") or ""
        auth = self.auth
        if agent and "MD5" in self.auth.algorithms and any(a in agent for a in self.md5_only_agents):
            auth = self.auth_md5
        headers = [(name, c) for c in auth.challenges(now, stale=stale)]
        if proxy:
            self.replier.reply(txn, 407, "Proxy Authentication Required", headers)
        else:
            self.replier.reply(txn, 401, "Unauthorized", headers)

    def device_allowed(self, txn: ServerTxn, device: Device, now: float) -> bool:
        """Credential expiry and trusted networks, after authentication (no enumeration)."""
        if device.credential_expires_at is not None and device.credential_expires_at <= now:
            self.replier.reply(txn, 403, "Credentials expired")
            return False
        if not device.enabled and (txn.request is None or txn.request.method != "REGISTER"):
            self.replier.reply(txn, 403, "Forbidden (device disabled)")
            return False
        if not device.internet and not self.is_trusted(txn.source.remote[0]):
            self.replier.reply(txn, 403, "Forbidden (device not allowed from this network)")
            return False
        return True

    def admit(self, txn: ServerTxn, req: Request, now: float, *, proxy: bool) -> Device | None:
        """Authenticate and check the device may act now: the whole gate in one call."""
        device = self.authenticate(txn, req, now, proxy=proxy)
        if device is None or not self.device_allowed(txn, device, now):
            return None
        return device


def valid_secrets(device: Device | None, now: float) -> tuple[str, ...]:
    """The secrets a device may authenticate with at `now`: its current one, and during the
    overlap window after a rotation (until `previous_secret_until`) the previous one too, so
    a phone still configured with the old secret keeps working while it is re-provisioned."""
    if device is None:
        return ()
    previous, until = device.previous_secret, device.previous_secret_until
    if previous and until is not None and now < until:
        return (device.secret, previous)
    return (device.secret,)


def lapsed_secret(device: Device | None, now: float) -> str | None:
    """The device's previous secret once its overlap window is over (it answers 403, not 401)."""
    if device is None or not device.previous_secret or device.previous_secret_until is None:
        return None
    return device.previous_secret if now >= device.previous_secret_until else None


def strip_own_credentials(req: Request, realm: str) -> None:
    """Consume our realm's credentials before forwarding (RFC 3261 §22.3, kamailio's
    `consume_credentials()`): the callee must never see a device's auth username or digest.
    Credentials for other realms (a trunk's) are passed on."""
    headers = req.headers
    if "proxy-authorization" not in headers and "authorization" not in headers:
        return
    for name in ("proxy-authorization", "authorization"):
        values = req.headers.get_all(name)
        if not values:
            continue
        keep = []
        for value in values:
            try:
                ours = Credentials.parse(value).realm == realm
            except Exception:
                ours = False
            if not ours:
                keep.append(value)
        if len(keep) != len(values):
            req.headers.remove(name)
            for value in keep:
                req.headers.add(name.title(), value)
