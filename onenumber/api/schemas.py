"""Request and response models of the HTTP API (pydantic), shared with the CLI's `--json`.

Field names are the API's; validation messages name these fields. Building a response
from the value types goes through the `*_out` helpers so the API and the CLI print the
same shape. Depends on pydantic and the value types only (no HTTP).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ..routing.model import Account, Device
from ..store.logins import ApiToken


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


# ---------------------------------------------------------------------------------------- login


class LoginRequest(Model):
    username: str = Field(min_length=1, max_length=64, description="Admin username or account number")
    password: str = Field(min_length=1, max_length=1024)


class LoginResponse(Model):
    kind: Literal["user", "admin"]
    account: str | None
    name: str
    csrf: str


class ErrorBody(Model):
    error: str
    message: str
    field: str | None = None


# ---------------------------------------------------------------------------------------- me


class DeviceOut(Model):
    position: int
    kind: str
    label: str
    auth_username: str
    order: int
    enabled: bool
    internet: bool
    call_waiting: bool
    credential_expires_at: float | None
    registered: bool = False


class AccountOut(Model):
    number: str
    name: str
    dids: list[str]
    ring_mode: str
    stage_seconds: int
    no_answer_seconds: int
    forward_unconditional: str | None
    forward_busy: str | None
    forward_no_answer: str | None
    decline: str
    dnd: bool
    selected_device: int | None
    cli: str | None
    devices: list[DeviceOut] = []


class WebphoneCredential(Model):
    auth_username: str
    password: str
    realm: str
    domain: str
    ws_path: str
    display_name: str
    number: str


class HistoryOut(Model):
    direction: Literal["incoming", "outgoing"]
    other_number: str
    other_name: str
    started_at: str
    answered_at: str | None
    ended_at: str | None
    duration: float
    device: str | None
    device_position: int | None = None
    outcome: str
    forwarded_to: str | None = None
    forward_reason: str | None = None


class SelectedDevice(Model):
    position: int | None = Field(ge=0, le=7, description="Device position 0-7, or null for none")


class TokenOut(Model):
    id: int
    name: str
    role: Literal["admin", "user"]
    account: str | None
    created_at: float
    revoked_at: float | None


class TokenCreated(TokenOut):
    token: str = Field(description="The token itself; shown only in this answer")


class TokenCreate(Model):
    name: str = Field(min_length=1, max_length=100)
    role: Literal["admin", "user"] = "admin"
    account: str | None = Field(default=None, description="For a user token: the account it acts for")


def token_out(token: ApiToken) -> TokenOut:
    return TokenOut(id=token.id, name=token.name, role=token.role, account=token.account,
                    created_at=token.created_at, revoked_at=token.revoked_at)


def device_out(device: Device, registered: bool = False) -> DeviceOut:
    return DeviceOut(
        position=device.position, kind=str(device.kind), label=device.label, auth_username=device.auth_username,
        order=device.ring_order, enabled=device.enabled, internet=device.internet, call_waiting=device.call_waiting,
        credential_expires_at=device.credential_expires_at, registered=registered,
    )


def account_out(account: Account, devices: list[Device] | None = None,
                registered: set[str] | None = None) -> AccountOut:
    return AccountOut(
        number=account.number, name=account.display_name, dids=list(account.dids), ring_mode=str(account.ring_mode),
        stage_seconds=account.stage_seconds, no_answer_seconds=account.no_answer_seconds,
        forward_unconditional=account.forwarding.unconditional, forward_busy=account.forwarding.busy,
        forward_no_answer=account.forwarding.no_answer, decline=str(account.decline), dnd=account.dnd,
        selected_device=account.selected_device, cli=account.custom_cli,
        devices=[device_out(d, d.auth_username in (registered or set())) for d in devices or []],
    )


def _iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


def history_out(row: dict[str, Any], labels: dict[int, str] | None = None) -> HistoryOut:
    """A call_history row as the API shows it (ISO times, 'incoming'/'outgoing', the device label)."""
    position = row.get("device_position")
    device = row.get("device")
    if labels and position is not None and labels.get(position):
        device = labels[position]
    return HistoryOut(
        direction="incoming" if row["direction"] == "in" else "outgoing",
        other_number=row["other_number"], other_name=row["other_name"],
        started_at=_iso(row["started_at"]) or "", answered_at=_iso(row.get("answered_at")),
        ended_at=_iso(row.get("ended_at")), duration=float(row.get("duration") or 0), device=device,
        device_position=position, outcome=row["outcome"], forwarded_to=row.get("forwarded_to"),
        forward_reason=row.get("forward_reason"),
    )
