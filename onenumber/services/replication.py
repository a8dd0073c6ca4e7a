"""What worker processes share, as plain messages (the Redis glue is transport/cluster.py).

- bindings: one hash field per binding (`field` → `encode_binding`), and a change message
  (`encode_changes`) published after every batch, which the other workers apply to their
  local `Location` copy;
- failed logins: `encode_auth` / `decode_auth`, applied to every worker's `LoginThrottle`,
  so a brute force spread over workers is counted once;
- flows: a connection id names the worker that holds it (`flow_worker`).
"""

from __future__ import annotations

import json
from typing import Any

from ..model import Binding

SEP = "\x1f"  # between account and key in a hash field: never in a number or a URI


def field(account: str, key: str) -> str:
    return f"{account}{SEP}{key}"


def split_field(value: str) -> tuple[str, str]:
    account, _, key = value.partition(SEP)
    return account, key


def binding_dict(b: Binding) -> dict[str, Any]:
    return {
        "a": b.account, "u": b.auth_username, "c": b.contact, "e": b.expires_at, "t": b.transport,
        "s": list(b.source), "l": list(b.local), "i": b.instance, "r": b.reg_id, "f": b.flow,
        "p": list(b.path), "ua": b.user_agent, "ci": b.call_id, "cs": b.cseq, "q": b.q,
        "o": b.outbound, "pa": b.params,
    }


def binding_from(d: dict[str, Any]) -> Binding:
    return Binding(
        account=str(d["a"]), auth_username=str(d["u"]), contact=str(d["c"]), expires_at=float(d["e"]),
        transport=str(d["t"]), source=(str(d["s"][0]), int(d["s"][1])), local=(str(d["l"][0]), int(d["l"][1])),
        instance=d.get("i"), reg_id=d.get("r"), flow=d.get("f"), path=tuple(d.get("p") or ()),
        user_agent=str(d.get("ua") or ""), call_id=str(d.get("ci") or ""), cseq=int(d.get("cs") or 0),
        q=d.get("q"), outbound=bool(d.get("o")), params=str(d.get("pa") or ""),
    )


def encode_binding(b: Binding) -> str:
    return json.dumps(binding_dict(b), separators=(",", ":"))


def decode_binding(data: str | bytes) -> Binding:
    return binding_from(json.loads(data))


Sender = int | str  # who published: a worker's index (one node), or "index@node" (several nodes)


def sender_id(worker: int, node: str | None) -> Sender:
    """How a worker names itself in what it publishes: its index, qualified by its node when
    several nodes share the Redis (every node has a worker 0)."""
    return f"{worker}@{node}" if node else worker


def _sender(value: object) -> Sender:
    text = str(value)
    return int(text) if text.isdigit() else text


def encode_changes(worker: Sender, upserts: list[Binding], removes: list[tuple[str, str]]) -> str:
    return json.dumps({"w": worker, "up": [binding_dict(b) for b in upserts], "del": [list(r) for r in removes]},
                      separators=(",", ":"))


def decode_changes(data: str | bytes) -> tuple[Sender, list[Binding], list[tuple[str, str]]]:
    d = json.loads(data)
    return _sender(d["w"]), [binding_from(b) for b in d["up"]], [(str(a), str(k)) for a, k in d["del"]]


def encode_auth(worker: Sender, failed: bool, address: str, username: str, now: float) -> str:
    return SEP.join((str(worker), "f" if failed else "s", address, username, repr(now)))


def decode_auth(data: str | bytes) -> tuple[Sender, bool, str, str, float]:
    text = data.decode() if isinstance(data, bytes) else data
    worker, kind, address, username, now = text.split(SEP, 4)
    return _sender(worker), kind == "f", address, username, float(now)


def flow_prefix(worker: int) -> str:
    """Connection ids of worker N start with this (transport/driver.py `id_prefix`)."""
    return f"w{worker}."


def flow_worker(flow: str | None) -> int | None:
    """The worker holding a connection, from its id (`w1.3f2a.tcp-7` → 1); None for one process."""
    if not flow or not flow.startswith("w"):
        return None
    head, dot, _ = flow.partition(".")
    if not dot or not head[1:].isdigit():
        return None
    return int(head[1:])
