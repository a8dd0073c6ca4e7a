"""JSON-ready views of accounts, devices, bindings, settings and trunks.

One shape for the CLI's `--json` output and the REST API, so scripts see the same
fields everywhere. Device views carry the secret only when asked (`device add`,
`rotate-secret`). Pure functions over the value types; no I/O.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from onenumber.routing.model import Account, Binding, Device
from onenumber.settings import Settings, Trunk


def account_view(account: Account, devices: list[Device] | None = None) -> dict[str, Any]:
    view: dict[str, Any] = {
        "number": account.number,
        "name": account.display_name,
        "dids": list(account.dids),
        "ring_mode": str(account.ring_mode),
        "stage_seconds": account.stage_seconds,
        "no_answer_seconds": account.no_answer_seconds,
        "forward_unconditional": account.forwarding.unconditional,
        "forward_busy": account.forwarding.busy,
        "forward_no_answer": account.forwarding.no_answer,
        "decline": str(account.decline),
        "dnd": account.dnd,
        "selected_device": account.selected_device,
        "cli": account.custom_cli,
        "voicemail_pin_set": account.voicemail_pin is not None,
    }
    if devices is not None:
        view["devices"] = [device_view(d) for d in devices]
    return view


def device_view(device: Device, *, secret: bool = False) -> dict[str, Any]:
    view: dict[str, Any] = {
        "account": device.account,
        "position": device.position,
        "kind": str(device.kind),
        "auth_username": device.auth_username,
        "order": device.ring_order,
        "enabled": device.enabled,
        "label": device.label,
        "internet": device.internet,
        "call_waiting": device.call_waiting,
        "credential_expires_at": device.credential_expires_at,
    }
    if secret:
        view["secret"] = device.secret
    return view


def binding_view(binding: Binding, now: float) -> dict[str, Any]:
    return {
        "account": binding.account,
        "auth_username": binding.auth_username,
        "contact": binding.contact,
        "transport": binding.transport,
        "expires": max(0, int(binding.expires_at - now)),
        "expires_at": binding.expires_at,
        "source": f"{_hostport(*binding.source)}",
        "local": _hostport(*binding.local) if binding.local[0] else "",
        "instance": binding.instance,
        "reg_id": binding.reg_id,
        "user_agent": binding.user_agent,
        "path": list(binding.path),
        "outbound": binding.outbound,
        "q": binding.q,
        "flow": binding.flow,
    }


def settings_view(settings: Settings) -> dict[str, Any]:
    view = asdict(settings)
    for key, value in view.items():
        if isinstance(value, tuple):
            view[key] = list(value)
    return view


def trunk_view(trunk: Trunk) -> dict[str, Any]:
    return asdict(trunk)


def _hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
