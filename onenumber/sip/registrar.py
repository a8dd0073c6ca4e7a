"""REGISTER processing (RFC 3261 §10.3, RFC 5626, RFC 3327): a request in, binding changes out.

`process_register` is pure: it gets the authenticated device, the account's current
bindings and `now`, and returns what to add, refresh and remove, or the error to answer.
It stores nothing; `services.location` applies the changes.

Choices beyond the RFC, for accounts with several devices:
- a device's REGISTER only touches its own bindings (`Contact: *` removes that device's
  bindings, not its colleagues' devices on the same account);
- a binding is identified by `+sip.instance` and `reg-id` when present, else by contact
  URI, so a phone that re-registers with a new contact but the same instance replaces
  its old binding instead of piling up;
- when a device already has `max_per_device` bindings, the oldest is evicted rather than
  the registration refused (stale contacts must never block a phone);
- a refresh whose Call-ID matches but whose CSeq is not newer is ignored (a reordered
  retransmission), not failed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from ..model import Binding
from .errors import ParseError
from .headers import NameAddr, get_param, parse_contacts, unquote_value
from .message import Request
from .uri import SipUri


@dataclass(frozen=True, slots=True)
class RegistrarPolicy:
    min_expires: int = 60
    max_expires: int = 3600
    default_expires: int = 3600
    max_per_device: int = 10


@dataclass(frozen=True, slots=True)
class RegisterOrigin:
    """What the transport knows about the REGISTER."""

    transport: str
    source: tuple[str, int]
    local: tuple[str, int]
    flow: str | None


@dataclass(slots=True)
class RegisterResult:
    status: int
    reason: str
    headers: list[tuple[str, str]] = field(default_factory=list)
    upserts: list[Binding] = field(default_factory=list)
    removes: list[Binding] = field(default_factory=list)
    bindings: list[Binding] = field(default_factory=list)  # the account's bindings afterwards


def process_register(
    req: Request,
    *,
    account: str,
    auth_username: str,
    existing: Sequence[Binding],
    origin: RegisterOrigin,
    policy: RegistrarPolicy,
    now: float,
) -> RegisterResult:
    try:
        contacts = parse_contacts(req.headers.get_all("contact")) if "contact" in req.headers else []
    except ParseError as exc:
        return RegisterResult(400, f"Bad Request ({exc.reason})")
    header_expires = req.headers.get("expires")
    default = policy.default_expires
    if header_expires is not None:
        default = int(header_expires)  # validated by the parser
    cseq = req.cseq.number
    call_id = req.call_id
    mine = [b for b in existing if b.auth_username == auth_username]

    if contacts is None:  # Contact: *
        if header_expires != "0":
            return RegisterResult(400, "Bad Request (Contact: * needs Expires: 0)")
        after = [b for b in existing if b.auth_username != auth_username]
        return RegisterResult(200, "OK", removes=mine, bindings=after)

    if not contacts:  # a fetch: list what is there
        return RegisterResult(200, "OK", bindings=list(existing))

    current = {b.key: b for b in existing}
    upserts: list[Binding] = []
    removes: list[Binding] = []
    path = tuple(req.headers.get_all("path"))
    user_agent = (req.headers.get("user-agent") or "")[:200]
    for contact in contacts:
        uri = contact.uri
        if not isinstance(uri, SipUri):
            return RegisterResult(400, "Bad Request (Contact must be a SIP URI)")
        expires = _contact_expires(contact, default)
        if expires is None:
            return RegisterResult(400, "Bad Request (invalid expires parameter)")
        if 0 < expires < policy.min_expires:
            return RegisterResult(
                423, "Interval Too Brief", headers=[("Min-Expires", str(policy.min_expires))]
            )
        expires = min(expires, policy.max_expires)
        instance_raw = contact.param("+sip.instance")
        instance = unquote_value(instance_raw) if instance_raw else None
        reg_id_raw = contact.param("reg-id")
        reg_id = int(reg_id_raw) if reg_id_raw and reg_id_raw.isdigit() else None
        q_raw = contact.param("q")
        try:
            q = float(q_raw) if q_raw else None
        except ValueError:
            return RegisterResult(400, "Bad Request (invalid q parameter)")
        contact_text = str(uri)
        binding = Binding(
            account=account,
            auth_username=auth_username,
            contact=contact_text,
            expires_at=now + expires,
            transport=origin.transport,
            source=origin.source,
            local=origin.local,
            instance=instance,
            reg_id=reg_id,
            flow=origin.flow,
            path=path,
            user_agent=user_agent,
            call_id=call_id,
            cseq=cseq,
            q=q,
            outbound=uri.has_param("ob") or reg_id is not None,
            params=_other_params(contact),
        )
        old = current.get(binding.key)
        if old is not None and old.call_id == call_id and old.cseq >= cseq:
            continue  # reordered or retransmitted refresh: keep what is there
        if expires == 0:
            if old is not None and old.auth_username == auth_username:
                removes.append(old)
                del current[old.key]
            continue
        if old is not None and old.auth_username != auth_username:
            removes.append(old)  # the contact moved to this device
        upserts.append(binding)
        current[binding.key] = binding

    # keep each device under its limit: evict the bindings that expire first
    mine_after = sorted(
        (b for b in current.values() if b.auth_username == auth_username), key=lambda b: b.expires_at
    )
    while len(mine_after) > policy.max_per_device:
        victim = mine_after.pop(0)
        removes.append(victim)
        del current[victim.key]
        upserts = [b for b in upserts if b.key != victim.key]
    return RegisterResult(200, "OK", upserts=upserts, removes=removes, bindings=list(current.values()))


def _contact_expires(contact: NameAddr, default: int) -> int | None:
    raw = get_param(contact.params, "expires")
    if raw is None:
        return default
    if not raw.isdigit() or len(raw) > 10:
        return None
    return min(int(raw), 0xFFFFFFFF)


def _other_params(contact: NameAddr) -> str:
    kept = [(k, v) for k, v in contact.params if k.lower() not in ("expires", "q")]
    return "".join(f";{k}" if v is None else f";{k}={v}" for k, v in kept)


def contact_header(binding: Binding, now: float) -> str:
    """A Contact value for the 200 OK: the URI with its remaining expiry (§10.3 step 8)."""
    left = max(0, int(binding.expires_at - now + 0.5))
    return f"<{binding.contact}>;expires={left}{binding.params}"


