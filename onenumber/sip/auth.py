"""Digest authentication (RFC 3261 §22, RFC 7616, RFC 8760) and failed-login throttling.

Holds: the Authorization/Proxy-Authorization parser (`Credentials`), the server side
(`DigestAuthenticator`: challenges, stateless HMAC nonces, verification with replay
protection), a client-side helper (`authorize`, for registering to a trunk), and
`Throttle` (per-source blocking after repeated failures).

Sans-IO: no sockets, no asyncio, no clock, no store. Time comes in as `now`; for nonces
to verify across workers sharing the secret, `now` must be wall-clock time. Depends only
on the standard library and `.errors`.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
from collections import OrderedDict, deque
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from urllib.parse import unquote

from .errors import SipError

__all__ = [
    "ALGORITHMS",
    "SUPPORTED_ALGORITHMS",
    "AuthError",
    "Credentials",
    "DigestAuthenticator",
    "Throttle",
    "Verdict",
    "authorize",
    "expected_response",
    "ha1",
    "normalise_algorithm",
    "parse_challenge",
]

ALGORITHMS = ("MD5", "SHA-256")  # the default offer, in the order challenges are sent


def _sha512_256(data: bytes) -> hashlib._Hash:
    return hashlib.new("sha512_256", data)


_HASHES: dict[str, Callable[[bytes], hashlib._Hash]] = {"MD5": hashlib.md5, "SHA-256": hashlib.sha256}
try:  # RFC 8760 also names SHA-512-256; OpenSSL builds without it simply do not offer it
    _sha512_256(b"")
    _HASHES["SHA-512-256"] = _sha512_256
except ValueError:  # pragma: no cover - depends on the OpenSSL build
    pass

# canonical spellings, keyed by the upper-cased name a peer may send
_CANONICAL: dict[str, str] = {}
for _base in _HASHES:
    _CANONICAL[_base.upper()] = _base
    _CANONICAL[_base.upper() + "-SESS"] = _base + "-sess"
SUPPORTED_ALGORITHMS: tuple[str, ...] = tuple(_CANONICAL.values())

_TOKEN = r"[A-Za-z0-9\-.!%*_+`'~]+"
_SCHEME_RE = re.compile(rf"\s*({_TOKEN})(?:\s+|$)")
# runs of plain characters in one step (possessive: a quoted value has one way to match)
_PARAM_RE = re.compile(rf'[\s,]*+({_TOKEN})\s*+=\s*+(?:"((?:[^"\\]++|\\.)*+)"|([^\s,"]++))\s*+(?:,|$)', re.S)
_UNESCAPE_RE = re.compile(r"\\(.)", re.S)
_NC_RE = re.compile(r"[0-9A-Fa-f]{8}")
_NONCE_RE = re.compile(r"[0-9a-f]{60}")  # hex of 8-byte ms timestamp + 6-byte salt + 16-byte MAC

_MAX_VALUE = 1024  # longest parameter value we keep (a nonce or URI is far shorter)
_FUTURE_SKEW = 30.0  # a nonce stamped this far ahead of `now` (another worker's clock) is still fresh
_REPLAY_WINDOW = 64  # nc values below the highest seen that may still arrive once (reordering)
_UNKNOWN_USER_PASSWORD = "\x00" * 24  # hashed for unknown users so their cost is the same


class AuthError(SipError):
    """An Authorization header that is not a usable Digest response: answer 400."""

    def __init__(self, reason: str) -> None:
        super().__init__(400, reason)


class Verdict(StrEnum):
    OK = "ok"
    STALE = "stale"  # right password, nonce too old (or no longer tracked): challenge with stale=TRUE
    FAILED = "failed"


def normalise_algorithm(name: str | None) -> str:
    """Canonical spelling of a digest algorithm (absent means MD5); unknown names come back as given."""
    if name is None:
        return "MD5"
    return _CANONICAL.get(name.upper(), name)


def _parse_params(value: str) -> tuple[str, dict[str, str]]:
    """`Digest a=b, c="d"` → ("Digest", {"a": "b", "c": "d"}): names lower-cased, quotes removed.

    Strict: tabs/folding after the scheme, empty list elements, duplicate names and junk
    between parameters are handled or rejected.
    """
    m = _SCHEME_RE.match(value)
    if not m:
        raise AuthError("missing authentication scheme")
    scheme = m.group(1)
    params: dict[str, str] = {}
    pos = m.end()
    # one scan of the value: each match must start where the previous one ended (a gap is junk,
    # unless only separators are left); every REGISTER and INVITE pays for this
    for pm in _PARAM_RE.finditer(value, pos):
        if pm.start() != pos:
            break
        name, raw, val = pm.groups()
        name = name.lower()
        if raw is not None:
            val = _UNESCAPE_RE.sub(r"\1", raw) if "\\" in raw else raw
        if name in params:
            raise AuthError(f"duplicate authentication parameter {name!r}")
        if len(val) > _MAX_VALUE:
            raise AuthError(f"authentication parameter {name!r} too long")
        params[name] = val
        pos = pm.end()
    if pos < len(value) and value[pos:].strip(" \t\r\n,"):
        raise AuthError(f"invalid authentication parameter near {value[pos:pos + 30]!r}")
    return scheme, params


def parse_challenge(value: str) -> dict[str, str]:
    """Parameters of a `Digest` WWW-Authenticate/Proxy-Authenticate value (client side)."""
    scheme, params = _parse_params(value)
    if scheme.lower() != "digest":
        raise AuthError(f"unsupported authentication scheme {scheme[:20]!r}")
    if "realm" not in params or "nonce" not in params:
        raise AuthError("Digest challenge without realm or nonce")
    return params


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


_CREDENTIALS_CACHE: dict[str, Credentials] = {}
_CREDENTIALS_CACHE_SIZE = 64


@dataclass(frozen=True, slots=True)
class Credentials:
    """A parsed Authorization / Proxy-Authorization value (RFC 3261 §25 `credentials`)."""

    username: str
    realm: str
    nonce: str
    uri: str
    response: str
    algorithm: str  # canonical: "MD5", "SHA-256", "SHA-512-256", optionally "-sess"; unknown kept as sent
    qop: str | None = None
    nc: str | None = None
    cnonce: str | None = None
    opaque: str | None = None

    @classmethod
    def parse(cls, value: str) -> Credentials:
        # the gate reads a request's credentials and the proxy then strips them (§22.3): the
        # same value parsed twice per authenticated INVITE, ~20 µs each; the result is frozen
        cached = _CREDENTIALS_CACHE.get(value)
        if cached is not None:
            return cached
        creds = cls._parse(value)
        if len(_CREDENTIALS_CACHE) >= _CREDENTIALS_CACHE_SIZE:
            _CREDENTIALS_CACHE.clear()  # bounded: each value is a fresh nonce/nc, read twice at most
        _CREDENTIALS_CACHE[value] = creds
        return creds

    @classmethod
    def _parse(cls, value: str) -> Credentials:
        scheme, p = _parse_params(value)
        if scheme.lower() != "digest":
            raise AuthError(f"unsupported authentication scheme {scheme[:20]!r}")
        if "username*" in p:  # RFC 7616 §3.4.4: UTF-8''percent-encoded, instead of username
            if "username" in p:
                raise AuthError("both username and username* present")
            charset, _, rest = p["username*"].partition("'")
            _lang, sep, encoded = rest.partition("'")
            if not sep or charset.upper() != "UTF-8":
                raise AuthError("invalid username* parameter")
            p["username"] = unquote(encoded, encoding="utf-8", errors="strict")
        missing = [k for k in ("username", "realm", "nonce", "uri", "response") if k not in p]
        if missing:
            raise AuthError(f"Digest credentials without {', '.join(missing)}")
        return cls(
            username=p["username"],
            realm=p["realm"],
            nonce=p["nonce"],
            uri=p["uri"],
            response=p["response"],
            algorithm=normalise_algorithm(p.get("algorithm")),
            qop=p.get("qop"),
            nc=p.get("nc"),
            cnonce=p.get("cnonce"),
            opaque=p.get("opaque"),
        )

    def __str__(self) -> str:
        parts = [
            f"username={_quote(self.username)}",
            f"realm={_quote(self.realm)}",
            f"nonce={_quote(self.nonce)}",
            f"uri={_quote(self.uri)}",
            f"response={_quote(self.response)}",
            f"algorithm={self.algorithm}",
        ]
        if self.cnonce is not None:
            parts.append(f"cnonce={_quote(self.cnonce)}")
        if self.opaque is not None:
            parts.append(f"opaque={_quote(self.opaque)}")
        if self.qop is not None:
            parts.append(f"qop={self.qop}")
        if self.nc is not None:
            parts.append(f"nc={self.nc}")
        return "Digest " + ", ".join(parts)


def _hash_for(algorithm: str) -> Callable[[bytes], hashlib._Hash]:
    base = algorithm[:-5] if algorithm.endswith("-sess") else algorithm
    try:
        return _HASHES[base]
    except KeyError:
        raise ValueError(f"unsupported digest algorithm {algorithm!r}") from None


def ha1(username: str, realm: str, password: str, algorithm: str = "MD5") -> str:
    """H(username:realm:password) in lower-case hex (the stored-secret form of a password).

    For "-sess" algorithms this is the base value; the session key also needs nonce and cnonce.
    """
    h = _hash_for(normalise_algorithm(algorithm))
    return h(f"{username}:{realm}:{password}".encode()).hexdigest()


def _response(
    h: Callable[[bytes], hashlib._Hash],
    a1: str,
    nonce: str,
    method: str,
    uri: str,
    qop: str | None,
    nc: str | None,
    cnonce: str | None,
) -> str:
    a2 = h(f"{method}:{uri}".encode()).hexdigest()
    if qop is None:  # RFC 2069 compatibility
        return h(f"{a1}:{nonce}:{a2}".encode()).hexdigest()
    return h(f"{a1}:{nonce}:{nc}:{cnonce}:{qop}:{a2}".encode()).hexdigest()


def expected_response(creds: Credentials, method: str, password: str) -> str:
    """The `response` a client knowing `password` would send for these credentials (lower-case hex)."""
    h = _hash_for(creds.algorithm)
    a1 = h(f"{creds.username}:{creds.realm}:{password}".encode()).hexdigest()
    if creds.algorithm.endswith("-sess"):
        a1 = h(f"{a1}:{creds.nonce}:{creds.cnonce or ''}".encode()).hexdigest()
    return _response(h, a1, creds.nonce, method, creds.uri, creds.qop, creds.nc, creds.cnonce)


def authorize(
    challenge: str,
    *,
    method: str,
    uri: str,
    username: str,
    password: str,
    cnonce: str,
    nc: int = 1,
) -> str:
    """Authorization value answering a Digest challenge (client side, e.g. registering to a trunk).

    `cnonce` is supplied by the caller (random, sans-IO); `nc` counts uses of this nonce.
    Uses qop=auth when offered, else the RFC 2069 form.
    """
    p = parse_challenge(challenge)
    algorithm = normalise_algorithm(p.get("algorithm"))
    offered = [q.strip().lower() for q in p.get("qop", "").split(",") if q.strip()]
    if offered and "auth" not in offered:
        raise AuthError("challenge offers no qop we support")
    qop = "auth" if offered else None
    creds = Credentials(
        username=username,
        realm=p["realm"],
        nonce=p["nonce"],
        uri=uri,
        response="",
        algorithm=algorithm,
        qop=qop,
        nc=f"{nc:08x}" if qop else None,
        cnonce=cnonce if qop else None,
        opaque=p.get("opaque"),
    )
    return str(replace(creds, response=expected_response(creds, method, password)))


# The replay memory keeps, per nonce, one int: `top << _REPLAY_WINDOW | mask`, where `top` is the
# highest nc accepted and bit i of `mask` says nc == top - i was accepted. Its key is the nonce's
# first 14 bytes (issue time and salt; the MAC was checked) as an int, which also gives its expiry.
# A nonce used once with nc 1, the usual case, shares one value object: an entry costs ~100 bytes
# (it was ~300 with a str key, a state object and a float), and nothing the GC must track.
_SINGLE_USE = 0  # the value of a nonce already used without qop (RFC 2069): it may not be used again
_FIRST_USE = (1 << _REPLAY_WINDOW) | 1  # top 1, mask 1 (nc 1 accepted)
_WINDOW_MASK = (1 << _REPLAY_WINDOW) - 1


class DigestAuthenticator:
    """Server side of Digest: challenges and verification, for one realm.

    Nonces are stateless: hex(8-byte ms timestamp | 6 random bytes | HMAC-SHA256(secret,
    timestamp|random|realm)[:16]), so any worker holding the same secret verifies them.
    The only state is a bounded map nonce → nc values already accepted (replay protection);
    it is per process, so a replay sent to another worker is not caught there.

    Replay rules: with qop=auth, each nc value is accepted once; values up to 64 below the
    highest seen are still accepted once (requests sent in parallel arrive out of order).
    Without qop (RFC 2069 clients), a nonce is single-use: its second use is answered STALE,
    which makes the client fetch a fresh nonce without asking its user.
    """

    def __init__(
        self,
        *,
        secret: bytes,
        realm: str,
        algorithms: Sequence[str] = ALGORITHMS,
        nonce_ttl: float = 300.0,
        max_nonces: int = 200_000,
        opaque: str | None = None,
        allow_rfc2069: bool = True,
        random_bytes: Callable[[int], bytes] = os.urandom,
    ) -> None:
        if not secret:
            raise ValueError("an authentication secret is required")
        if not realm or any(c in realm for c in "\r\n\x00"):
            raise ValueError(f"invalid realm {realm!r}")
        algos = tuple(normalise_algorithm(a) for a in algorithms)
        if not algos or len(set(algos)) != len(algos):
            raise ValueError("algorithms must be a non-empty list without duplicates")
        for a in algos:
            if a not in SUPPORTED_ALGORITHMS:
                raise ValueError(f"unsupported digest algorithm {a!r}")
        if nonce_ttl <= 0 or max_nonces < 1:
            raise ValueError("nonce_ttl and max_nonces must be positive")
        self.realm = realm
        self.algorithms = algos
        self.nonce_ttl = float(nonce_ttl)
        self.max_nonces = max_nonces
        self.allow_rfc2069 = allow_rfc2069
        self._secret = bytes(secret)
        self._realm_bytes = realm.encode()
        self._random = random_bytes
        self._hashes = {a: _hash_for(a) for a in algos}
        # everything of a challenge but the nonce and stale flag, per algorithm
        op = f", opaque={_quote(opaque)}" if opaque is not None else ""
        self._tails = [f'{op}, algorithm={a}, qop="auth"' for a in algos]
        self._head = f"Digest realm={_quote(realm)}, nonce="
        self._seen: dict[int, int] = {}  # nonce key → nc state (see _FIRST_USE)
        self._order: deque[int] = deque()  # the keys in the order they came: the oldest leave first
        self._ttl_ms = int(self.nonce_ttl * 1000)
        # expiry of the newest still-fresh nonce evicted for room: older untracked nonces are STALE
        self._evicted_until = float("-inf")

    # -- nonces --------------------------------------------------------------------------

    def _mac(self, stamp: bytes) -> bytes:
        return hmac.digest(self._secret, stamp + self._realm_bytes, "sha256")[:16]

    def new_nonce(self, now: float) -> str:
        stamp = max(0, int(now * 1000)).to_bytes(8, "big") + self._random(6)
        return (stamp + self._mac(stamp)).hex()

    def _nonce_time(self, nonce: str) -> float | None:
        """Issue time of one of our nonces; None if it is not ours (forged, other realm, garbage)."""
        if len(nonce) != 60 or not _NONCE_RE.fullmatch(nonce):
            return None
        raw = bytes.fromhex(nonce)
        if not hmac.compare_digest(self._mac(raw[:14]), raw[14:]):
            return None
        return int.from_bytes(raw[:8], "big") / 1000.0

    # -- challenges ----------------------------------------------------------------------

    def challenges(self, now: float, *, stale: bool = False) -> list[str]:
        """WWW-Authenticate / Proxy-Authenticate values, one per algorithm in configured order."""
        head = self._head + '"' + self.new_nonce(now) + '"'
        flag = ", stale=TRUE" if stale else ""
        return [head + tail + flag for tail in self._tails]

    # -- verification --------------------------------------------------------------------

    def verify(self, creds: Credentials, method: str, password: str | None, now: float) -> Verdict:
        """Check a Digest response. `password` None means unknown user: same work, always FAILED."""
        return self.verify_any(creds, method, () if password is None else (password,), now)

    def verify_any(self, creds: Credentials, method: str, passwords: Sequence[str], now: float) -> Verdict:
        """Check a Digest response against each of `passwords` (a device's current secret and,
        during a rotation's overlap window, its previous one); the nonce and nc checks run once,
        for whichever matched. No passwords means unknown user: same work, always FAILED."""
        h = self._hashes.get(creds.algorithm)
        if h is None or creds.realm != self.realm:
            return Verdict.FAILED
        issued = self._nonce_time(creds.nonce)
        if issued is None:
            return Verdict.FAILED
        nc: int | None = None
        if creds.qop is not None:
            text = creds.nc
            if creds.qop.lower() != "auth" or not creds.cnonce or text is None or not _NC_RE.fullmatch(text):
                return Verdict.FAILED
            nc = int(text, 16)
            if nc == 0:
                return Verdict.FAILED
        elif not self.allow_rfc2069:
            return Verdict.FAILED

        # the digest is always computed, also for unknown users, so timing and answer do not differ
        known = bool(passwords)
        got = creds.response.lower().encode()
        match = False
        for secret in passwords or (_UNKNOWN_USER_PASSWORD,):
            a1 = h(f"{creds.username}:{self.realm}:{secret}".encode()).hexdigest()
            if creds.algorithm.endswith("-sess"):
                a1 = h(f"{a1}:{creds.nonce}:{creds.cnonce or ''}".encode()).hexdigest()
            want = _response(h, a1, creds.nonce, method, creds.uri, creds.qop, creds.nc, creds.cnonce)
            match = hmac.compare_digest(want.encode(), got) or match
        if not (match and known):
            return Verdict.FAILED

        expires = issued + self.nonce_ttl
        if now >= expires or issued > now + _FUTURE_SKEW:
            return Verdict.STALE
        return self._accept_nc(creds.nonce, nc, expires, now)

    def _accept_nc(self, nonce: str, nc: int | None, expires: float, now: float) -> Verdict:
        key = int(nonce[:28], 16)  # issue time and salt: unique per nonce (the MAC was checked)
        seen = self._seen
        state = seen.get(key)
        if state is None:
            if expires <= self._evicted_until:
                return Verdict.STALE  # we may have forgotten its nc values: safer to renew it
            if nc is None:
                new = _SINGLE_USE
            elif nc == 1:
                new = _FIRST_USE
            else:
                new = nc << _REPLAY_WINDOW | 1
            self._remember(key, new, now)
            return Verdict.OK
        if nc is None or state == _SINGLE_USE:
            return Verdict.STALE if nc is None else Verdict.FAILED
        top, mask = state >> _REPLAY_WINDOW, state & _WINDOW_MASK
        if nc > top:
            shift = nc - top
            mask = ((mask << shift) | 1) & _WINDOW_MASK if shift < _REPLAY_WINDOW else 1
            seen[key] = nc << _REPLAY_WINDOW | mask
            return Verdict.OK
        back = top - nc
        if back >= _REPLAY_WINDOW or mask >> back & 1:
            return Verdict.FAILED  # replayed, or too far behind to tell
        seen[key] = state | (1 << back)
        return Verdict.OK

    def _expires(self, key: int) -> float:
        return ((key >> 48) + self._ttl_ms) / 1000.0  # the issue time in ms is the key's top 8 bytes

    def _remember(self, key: int, state: int, now: float) -> None:
        seen, order = self._seen, self._order
        # keys come roughly in issue order: drop expired ones from the front (amortised O(1))
        while order and self._expires(order[0]) <= now:
            del seen[order.popleft()]
        while len(seen) >= self.max_nonces:
            old = order.popleft()
            del seen[old]
            expires = self._expires(old)
            if expires > now:
                self._evicted_until = max(self._evicted_until, expires)
        seen[key] = state
        order.append(key)

    @property
    def tracked_nonces(self) -> int:
        return len(self._seen)


@dataclass(slots=True)
class _Offender:
    times: deque[float]  # the latest failures, at most max_failures of them
    blocked_until: float = float("-inf")
    offences: int = 0  # blocks so far: each one doubles the next


class Throttle:
    """Failed authentication per source address: after `max_failures` within `window` seconds the
    address is blocked for `block_seconds` (doubling on repeat offences up to `max_block`).

    Repeat offences are forgiven once an address has been quiet for `max_block` after its
    last block ended. Failures while blocked are not counted (the caller should not even
    verify them). Memory is bounded: least recently active addresses are forgotten first.
    """

    def __init__(
        self,
        *,
        max_failures: int = 5,
        window: float = 60.0,
        block_seconds: float = 30.0,
        max_block: float = 900.0,
        max_tracked: int = 100_000,
    ) -> None:
        if max_failures < 1 or window <= 0 or block_seconds <= 0 or max_block < block_seconds:
            raise ValueError("invalid throttle settings")
        if max_tracked < 1:
            raise ValueError("max_tracked must be positive")
        self.max_failures = max_failures
        self.window = float(window)
        self.block_seconds = float(block_seconds)
        self.max_block = float(max_block)
        self.max_tracked = max_tracked
        self._entries: OrderedDict[Hashable, _Offender] = OrderedDict()

    def _idle(self, e: _Offender, now: float) -> bool:
        """Nothing worth remembering: not blocked, no recent failure, offences forgiven."""
        if e.blocked_until > now or (e.times and e.times[-1] > now - self.window):
            return False
        return e.offences == 0 or now - e.blocked_until > self.max_block

    def record_failure(self, address: Hashable, now: float) -> bool:
        """Count a failed authentication; True if the key (an address) is (now) blocked."""
        entries = self._entries
        e = entries.get(address)
        if e is None:
            # opportunistic cleanup of a couple of forgotten entries, then make room
            for _ in range(2):
                if not entries:
                    break
                key, first = next(iter(entries.items()))
                if not self._idle(first, now):
                    break
                del entries[key]
            while len(entries) >= self.max_tracked:
                entries.popitem(last=False)
            e = entries[address] = _Offender(deque(maxlen=self.max_failures))
        else:
            entries.move_to_end(address)
        if e.blocked_until > now:
            return True
        if e.offences and now - e.blocked_until > self.max_block:
            e.offences = 0
        e.times.append(now)
        if len(e.times) >= self.max_failures and e.times[0] > now - self.window:
            e.blocked_until = now + min(self.block_seconds * 2.0 ** min(e.offences, 60), self.max_block)
            e.offences += 1
            e.times.clear()
            return True
        return False

    def record_success(self, address: Hashable, now: float) -> None:
        """A successful authentication resets the failure count (not the offence history)."""
        e = self._entries.get(address)
        if e is None:
            return
        e.times.clear()
        if self._idle(e, now):
            del self._entries[address]

    def is_blocked(self, address: Hashable, now: float) -> bool:
        e = self._entries.get(address)
        if e is None or e.blocked_until <= now:
            return False
        self._entries.move_to_end(address)  # an address still knocking stays remembered
        return True

    def failures(self, address: Hashable, now: float) -> int:
        """Failures within the window (0 while blocked: the count restarts with each block)."""
        e = self._entries.get(address)
        if e is None:
            return 0
        horizon = now - self.window
        return sum(1 for t in e.times if t > horizon)

    def blocked_until(self, address: Hashable) -> float | None:
        """When the current or last block of the address ends (for Retry-After), None if never."""
        e = self._entries.get(address)
        return None if e is None or e.blocked_until == float("-inf") else e.blocked_until

    @property
    def tracked(self) -> int:
        return len(self._entries)


class LoginThrottle:
    """Failed logins counted two ways, so one guessed username cannot lock out an office NAT.

    - per (address, username): `max_failures` wrong answers for one username from one address
      block that pair (a phone behind the same NAT with its own right credentials goes on);
    - per address across usernames: failures for `max_usernames` different usernames within the
      window block the whole address (a scan or spray over many extensions).

    The username is the one the request claims, known or not, so the answers never differ
    between existing and unknown users (no enumeration).
    """

    def __init__(
        self,
        *,
        max_failures: int = 5,
        max_usernames: int = 5,
        window: float = 60.0,
        block_seconds: float = 30.0,
        max_block: float = 900.0,
        max_tracked: int = 100_000,
    ) -> None:
        self.max_failures = max_failures
        self.max_usernames = max_usernames
        self.block_seconds = block_seconds
        self.pairs = Throttle(max_failures=max_failures, window=window, block_seconds=block_seconds,
                              max_block=max(max_block, block_seconds), max_tracked=max_tracked)
        self.addresses = Throttle(max_failures=max_usernames, window=window, block_seconds=block_seconds,
                                  max_block=max(max_block, block_seconds), max_tracked=max_tracked)

    def is_blocked(self, address: str, username: str, now: float) -> bool:
        return self.addresses.is_blocked(address, now) or self.pairs.is_blocked((address, username), now)

    def record_failure(self, address: str, username: str, now: float) -> bool:
        """Count a failure; True when the pair or the whole address is (now) blocked."""
        pair = (address, username)
        first = self.pairs.failures(pair, now) == 0 and not self.pairs.is_blocked(pair, now)
        blocked = self.pairs.record_failure(pair, now)
        if first:  # each username counts once towards the address-wide limit
            blocked = self.addresses.record_failure(address, now) or blocked
        return blocked or self.addresses.is_blocked(address, now)

    def record_success(self, address: str, username: str, now: float) -> None:
        self.pairs.record_success((address, username), now)
