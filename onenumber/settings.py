"""Server-wide settings and trunks: the values, their parsing and their validation.

Settings are stored as text key/value rows (the `settings` table); this module turns those
rows into a typed, frozen `Settings` and validates what an admin sets, so the store, the
CLI and the API all give the same one-line messages. No I/O here, no database, no clock.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

DEFAULT_TRUSTED_NETWORKS = (
    "127.0.0.0/8",
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "::1/128",
    "fc00::/7",
)
DIGEST_ALGORITHMS = ("MD5", "SHA-256")
# JsSIP (the web phone) reads only the last WWW-Authenticate and answers MD5 only
DEFAULT_MD5_ONLY_AGENTS = ("baresip v0.", "baresip v1.", "JsSIP")
TRUNK_TRANSPORTS = ("udp", "tcp", "tls")


@dataclass(frozen=True, slots=True)
class Settings:
    """Server-wide settings; every field has a default so an empty table is a valid setup."""

    domain: str | None = None  # SIP domain; None = the server's own address
    trusted_networks: tuple[str, ...] = DEFAULT_TRUSTED_NETWORKS
    digest_algorithms: tuple[str, ...] = DIGEST_ALGORITHMS  # challenge order
    min_expires: int = 60
    max_expires: int = 3600
    default_expires: int = 3600
    auth_max_failures: int = 5
    auth_block_seconds: int = 30
    # failures for this many different usernames from one address block the whole address
    # (a scan); one username failing blocks only that (address, username) pair
    auth_max_usernames: int = 5
    history_retention_days: int = 365
    # User-Agent substrings of phones that give up when a challenge offers SHA-256 next to MD5
    # (libre/baresip before 2.x; JsSIP 3.x, which keeps the last challenge): challenged with MD5 only.
    md5_only_user_agents: tuple[str, ...] = DEFAULT_MD5_ONLY_AGENTS
    # a WebSocket (web phone) that stops answering pings is closed, and its bindings dropped,
    # within this many seconds (a ping every half of it, each given the other half to answer)
    ws_ping_seconds: int = 20
    # the media relay for WebRTC <-> RTP calls: "auto" (start our own rtpengine when installed),
    # "off", or the "host:port" of a running rtpengine's ng control socket
    rtpengine: str = "auto"
    # device credentials: secrets older than this are rotated by the server (0 = never); after
    # a rotation the old secret keeps working for the overlap window so a phone being
    # re-provisioned never drops out
    credential_max_age_days: int = 0
    credential_overlap_hours: float = 24.0
    # one-time provisioning links: how long one stays usable, and the base URL it starts with
    # ("" = the address the admin reached, or http://<server address>:8080 from the CLI)
    provisioning_link_hours: float = 72.0
    provisioning_base_url: str = ""
    # presence and voicemail (issue 10)
    # who may watch whom (BLF, presence) and pick up whose calls: "everyone" (every local
    # account), "nobody" (only oneself), or WATCHER:TARGET pairs ("1001:1000,*:1002")
    presence_watch: str = "everyone"
    mwi_unsolicited: bool = False  # message waiting NOTIFYs also to devices that never subscribe
    voicemail_dir: str = ""  # where recordings live; "" = <data dir>/voicemail
    voicemail_max_seconds: int = 120  # longest message recorded
    voicemail_access: str = "*98"  # dialled to listen to one's messages (+ a number: another box, PIN)
    voicemail_pin: str = ""  # asked of a caller not recognised by its device; "" = such callers refused
    # overload control (issue 11): past any bound new INVITEs and REGISTERs get 503 + Retry-After
    # (0 switches a bound off); calls and transactions already accepted are still served
    overload_max_lag_ms: int = 100  # how late the event loop may run its callbacks
    overload_max_transactions: int = 10000  # requests accepted and not answered yet (ringing calls count)
    overload_max_queue_ms: int = 100  # the UDP receive queue, in milliseconds of work at the current rate
    overload_max_queue_kb: int = 4096  # KiB waiting in the UDP receive queue (~1,800 datagrams)
    overload_retry_after: int = 5  # Retry-After is drawn from [this, 2 × this] seconds
    # OPTIONS keepalive of UDP bindings: a phone that misses this many pings in a row is dropped
    # (30 s × 2 misses: a dead phone is gone within 90 s); 0 switches the pings off
    keepalive_interval: int = 30
    keepalive_max_misses: int = 2

    @classmethod
    def from_rows(cls, rows: Mapping[str, str]) -> Settings:
        """Build from stored rows. Unknown keys are ignored and a bad stored value falls back
        to the default, so a hand-edited database never stops the server."""
        values: dict[str, Any] = {}
        for key, text in rows.items():
            spec = _SPECS.get(key)
            if spec is None:
                continue
            try:
                values[key] = spec.parse(spec.normalise(text))
            except ValueError:
                continue
        return replace(cls(), **values)

    def to_rows(self) -> dict[str, str]:
        """Every setting as its stored text form (for display and export)."""
        return {f.name: _SPECS[f.name].render(getattr(self, f.name)) for f in fields(self)}

    def check(self) -> None:
        """Cross-field rules; raises ValueError with a one-line message."""
        if not self.min_expires <= self.default_expires <= self.max_expires:
            raise ValueError(
                f"expires settings must satisfy min_expires <= default_expires <= max_expires "
                f"(now {self.min_expires} <= {self.default_expires} <= {self.max_expires}); "
                "set them in an order that keeps this true"
            )


@dataclass(frozen=True, slots=True)
class Trunk:
    """A SIP gateway that external numbers are sent to; `prefix` is dialled before the number."""

    name: str
    host: str
    port: int = 5060
    transport: str = "udp"
    prefix: str = ""


# --- per-key validation ---------------------------------------------------------------------------

_HOST_RE = re.compile(
    r"^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$"
)


def is_host(text: str) -> bool:
    """A DNS name or an IPv4/IPv6 address (IPv6 without brackets)."""
    try:
        ipaddress.ip_address(text)
        return True
    except ValueError:
        return bool(_HOST_RE.match(text))


def _domain(text: str) -> str:
    text = text.strip().lower()
    if text in ("", "none", "auto"):
        return ""
    if not is_host(text):
        raise ValueError(f"domain {text!r} is not a host name or IP address; e.g. 'pbx.example.com'")
    return text.rstrip(".")


def _networks(text: str) -> str:
    items = [item.strip() for item in text.split(",") if item.strip()]
    out = []
    for item in items:
        try:
            out.append(str(ipaddress.ip_network(item, strict=False)))
        except ValueError:
            raise ValueError(
                f"trusted_networks: {item!r} is not a network; give CIDRs separated by commas, "
                "e.g. 127.0.0.1/32,10.0.0.0/8"
            ) from None
    return ",".join(out)


def _algorithms(text: str) -> str:
    items = [item.strip().upper() for item in text.split(",") if item.strip()]
    if not items:
        raise ValueError("digest_algorithms needs at least one of MD5, SHA-256, e.g. 'MD5,SHA-256'")
    for item in items:
        if item not in DIGEST_ALGORITHMS:
            raise ValueError(f"digest_algorithms: unknown algorithm {item!r}; use MD5 and/or SHA-256")
    if len(set(items)) != len(items):
        raise ValueError("digest_algorithms: each algorithm may appear once")
    return ",".join(items)


def _agents(text: str) -> str:
    items = [item.strip() for item in text.split(",") if item.strip()]
    if any(len(item) < 3 for item in items):
        raise ValueError("md5_only_user_agents: give User-Agent substrings of 3+ characters, separated by commas")
    return ",".join(items)


def _rtpengine(text: str) -> str:
    text = text.strip().lower()
    if text in ("auto", "off"):
        return text
    host, sep, port = text.rpartition(":")
    if sep and is_host(host.strip("[]")) and port.isdigit() and 0 < int(port) < 65536:
        return text
    raise ValueError(f"rtpengine must be 'auto', 'off' or the host:port of rtpengine's ng socket (got {text!r}); "
                     "e.g. 127.0.0.1:2223")


def rtpengine_address(value: str) -> tuple[str, int] | None:
    """The ng address a `host:port` setting names; None for `auto` and `off`."""
    if value in ("auto", "off"):
        return None
    host, _, port = value.rpartition(":")
    return host.strip("[]"), int(port)


def _watch_rule(text: str) -> str:
    text = text.strip()
    low = text.lower()
    if low in ("", "everyone", "all"):
        return "everyone"
    if low in ("nobody", "none"):
        return "nobody"
    pairs = []
    for item in text.split(","):
        watcher, sep, target = (part.strip() for part in item.strip().partition(":"))
        for who in (watcher, target):
            if not sep or not (who == "*" or (who.isalnum() and len(who) <= 32)):
                raise ValueError(
                    f"presence_watch: {item.strip()!r} is not WATCHER:TARGET; use 'everyone', 'nobody' or "
                    "pairs of numbers (or *) separated by commas, e.g. 1001:1000,*:1002"
                )
        if (watcher, target) not in pairs:
            pairs.append((watcher, target))
    return ",".join(f"{w}:{t}" for w, t in pairs)


_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


def _bool(key: str) -> Callable[[str], str]:
    def check(text: str) -> str:
        low = text.strip().lower()
        if low in _TRUE:
            return "true"
        if low in _FALSE:
            return "false"
        raise ValueError(f"{key} must be true or false (got {text.strip()!r})")

    return check


def _path(text: str) -> str:
    text = text.strip()
    if "\0" in text:
        raise ValueError("voicemail_dir must be a directory path")
    if text and not text.startswith("/"):
        raise ValueError(f"voicemail_dir must be an absolute path or empty for <data dir>/voicemail (got {text!r})")
    return text.rstrip("/") or ("/" if text else "")


PICKUP_PREFIX = "*8"  # as routing.pickup (settings depend on nothing of ours)


def _access(text: str) -> str:
    text = text.strip()
    if not 2 <= len(text) <= 16 or text[0] not in "*#" or any(c not in "0123456789*#" for c in text):
        raise ValueError(f"voicemail_access must be 2-16 keys of 0-9 * # starting with * or # (got {text!r}), "
                         "e.g. *98")
    if text.startswith(PICKUP_PREFIX):
        raise ValueError(f"voicemail_access must not start with the pickup code {PICKUP_PREFIX} (got {text!r})")
    return text


def _pin(text: str) -> str:
    text = text.strip()
    if text and not (text.isdigit() and text.isascii() and 4 <= len(text) <= 12):
        raise ValueError("voicemail_pin must be 4-12 digits, or empty to refuse callers not recognised by device")
    return text


def _int_range(key: str, low: int, high: int) -> Callable[[str], str]:
    def check(text: str) -> str:
        try:
            value = int(text.strip())
        except ValueError:
            raise ValueError(f"{key} must be a whole number between {low} and {high}") from None
        if not low <= value <= high:
            raise ValueError(f"{key} must be between {low} and {high} (got {value})")
        return str(value)

    return check


def _float_range(key: str, low: float, high: float) -> Callable[[str], str]:
    def check(text: str) -> str:
        try:
            value = float(text.strip())
        except ValueError:
            raise ValueError(f"{key} must be a number between {low:g} and {high:g}") from None
        if not low <= value <= high:  # also refuses nan
            raise ValueError(f"{key} must be between {low:g} and {high:g} (got {value:g})")
        return f"{value:g}"

    return check


def _base_url(text: str) -> str:
    text = text.strip().rstrip("/")
    if not text:
        return ""
    scheme, sep, rest = text.partition("://")
    host = rest.split("/", 1)[0].rsplit("@", 1)[-1]
    if host.startswith("["):
        host = host[1:].split("]", 1)[0]
    elif host.count(":") == 1:
        host, _, port = host.partition(":")
        if not port.isdigit():
            host = ""
    if not sep or scheme.lower() not in ("http", "https") or not host or not is_host(host) or CONTROL.search(text):
        raise ValueError(f"provisioning_base_url must be an http(s) URL such as https://pbx.example.com:8443 "
                         f"(got {text!r})")
    return text


CONTROL = re.compile(r"[\x00-\x20\x7f]")


def _split(text: str) -> tuple[str, ...]:
    return tuple(item for item in text.split(",") if item)


@dataclass(frozen=True, slots=True)
class _Spec:
    normalise: Callable[[str], str]  # admin text -> stored text (raises ValueError)
    parse: Callable[[str], Any]  # stored text -> typed value
    render: Callable[[Any], str]  # typed value -> stored text
    help: str


_SPECS: dict[str, _Spec] = {
    "domain": _Spec(_domain, lambda s: s or None, lambda v: v or "", "SIP domain (empty: the server's address)"),
    "trusted_networks": _Spec(_networks, _split, ",".join, "CIDRs non-internet devices may register from"),
    "digest_algorithms": _Spec(_algorithms, _split, ",".join, "digest challenge order, e.g. MD5,SHA-256"),
    "min_expires": _Spec(_int_range("min_expires", 1, 86400), int, str, "shortest registration accepted"),
    "max_expires": _Spec(_int_range("max_expires", 1, 86400 * 7), int, str, "longest registration granted"),
    "default_expires": _Spec(_int_range("default_expires", 1, 86400 * 7), int, str, "when none is asked"),
    "auth_max_failures": _Spec(_int_range("auth_max_failures", 1, 1000), int, str,
                               "failures for one username from one address before that pair is blocked"),
    "auth_max_usernames": _Spec(_int_range("auth_max_usernames", 1, 1000), int, str,
                                "different usernames failing from one address before the address is blocked"),
    "history_retention_days": _Spec(_int_range("history_retention_days", 1, 36500), int, str,
                                    "days call history rows are kept"),
    "md5_only_user_agents": _Spec(_agents, _split, ",".join, "User-Agents challenged with MD5 only"),
    "ws_ping_seconds": _Spec(_int_range("ws_ping_seconds", 2, 3600), int, str,
                             "seconds before a silent WebSocket (web phone) is closed and its binding dropped"),
    "rtpengine": _Spec(_rtpengine, str, str, "media relay for WebRTC calls: auto, off or host:port (ng socket)"),
    "credential_max_age_days": _Spec(_int_range("credential_max_age_days", 0, 3650), int, str,
                                     "days before the server rotates a device secret (0: never)"),
    "credential_overlap_hours": _Spec(_float_range("credential_overlap_hours", 0, 720), float, lambda v: f"{v:g}",
                                      "hours the old secret still works after a rotation"),
    "provisioning_link_hours": _Spec(_float_range("provisioning_link_hours", 0.001, 720), float,
                                     lambda v: f"{v:g}", "hours a one-time provisioning link stays usable"),
    "provisioning_base_url": _Spec(_base_url, str, str, "base URL of provisioning links (empty: the server's)"),
    "overload_max_lag_ms": _Spec(_int_range("overload_max_lag_ms", 0, 60000), int, str,
                                 "event loop lag (ms) past which new calls/registrations get 503 (0: off)"),
    "overload_max_transactions": _Spec(_int_range("overload_max_transactions", 0, 10_000_000), int, str,
                                       "requests in progress past which new calls/registrations get 503 (0: off)"),
    "overload_max_queue_ms": _Spec(_int_range("overload_max_queue_ms", 0, 60000), int, str,
                                   "UDP receive queue (ms of work at the current rate) past which new "
                                   "calls/registrations get 503 (0: off)"),
    "overload_max_queue_kb": _Spec(_int_range("overload_max_queue_kb", 0, 1_000_000), int, str,
                                   "UDP receive queue (KiB) past which new calls/registrations get 503 (0: off)"),
    "overload_retry_after": _Spec(_int_range("overload_retry_after", 1, 3600), int, str,
                                  "Retry-After of an overload 503: between this and twice this (seconds)"),
    "keepalive_interval": _Spec(_int_range("keepalive_interval", 0, 3600), int, str,
                                "seconds between OPTIONS pings to each UDP binding (0: off)"),
    "keepalive_max_misses": _Spec(_int_range("keepalive_max_misses", 1, 100), int, str,
                                  "unanswered pings in a row before a UDP binding is dropped"),
    "auth_block_seconds": _Spec(_int_range("auth_block_seconds", 0, 86400), int, str, "block duration"),
    "presence_watch": _Spec(_watch_rule, str, str,
                            "who may watch (BLF/presence) and pick up whom: everyone, nobody or W:T pairs"),
    "mwi_unsolicited": _Spec(_bool("mwi_unsolicited"), lambda s: s == "true", lambda v: "true" if v else "false",
                             "send message waiting to devices that do not subscribe (true/false)"),
    "voicemail_dir": _Spec(_path, str, str, "directory of voicemail recordings (empty: <data dir>/voicemail)"),
    "voicemail_max_seconds": _Spec(_int_range("voicemail_max_seconds", 5, 3600), int, str,
                                   "longest voicemail message, in seconds"),
    "voicemail_access": _Spec(_access, str, str, "number dialled to listen to voicemail, e.g. *98"),
    "voicemail_pin": _Spec(_pin, str, str, "voicemail PIN for callers not recognised by device (empty: refused)"),
}

SETTING_KEYS: tuple[str, ...] = tuple(_SPECS)


def setting_help(key: str) -> str:
    return _SPECS[key].help


def validate_setting(key: str, value: str) -> str:
    """Check one admin-given setting and return its stored (normalised) text form.

    Raises ValueError with one line saying what is wrong and what to do.
    """
    spec = _SPECS.get(key)
    if spec is None:
        raise ValueError(f"unknown setting {key!r}; known settings: {', '.join(SETTING_KEYS)}")
    return spec.normalise(value)
