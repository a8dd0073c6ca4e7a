"""Admin endpoints for operations: CSV import/export, credential rotation, provisioning links.

`build_ops_router(require_admin)` takes the admin dependency from outside (the login system
provides the real one: `api/app.py` mounts it with `require_admin`), and reads the
Store from `request.app.state.store`. Every error is a 4xx whose JSON names the problem;
one database transaction per request (the store layer's), never half-written.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from pydantic import BaseModel, Field

from ..settings import validate_setting
from ..store import AdminError, Store
from ..store.csvio import CsvImportError, export_csv, export_rows, import_csv
from ..store.provisioning import create_link, link_url
from ..store.views import device_view
from .qr import qr_png, qr_svg
from .schemas import ErrorBody

MAX_CSV_BYTES = 50 * 1024 * 1024

Number = Annotated[str, Path(description="The account's number.", pattern=r"^[0-9]{1,20}$")]
Position = Annotated[int, Path(description="The device's position (0-7).", ge=0, le=7)]


class RowErrorOut(BaseModel):
    line: int = Field(description="Line of the file (1 is the header).")
    column: str | None = Field(description="Column name, when the problem is in one cell.")
    message: str


class ImportErrorOut(BaseModel):
    detail: str
    errors: list[RowErrorOut]


class Counts(BaseModel):
    created: int
    updated: int
    unchanged: int
    removed: int


class NewDeviceOut(BaseModel):
    account: str
    position: int
    auth_username: str
    url: str | None = Field(default=None, description="Its one-time provisioning link (with links=true).")
    link_expires_at: float | None = None


class ImportReportOut(BaseModel):
    dry_run: bool
    changed: bool = Field(description="False when the file matched the database: nothing was written.")
    accounts: Counts
    devices: Counts
    new_devices: list[NewDeviceOut] = Field(
        description="Devices created with a generated secret; give each its settings with a provisioning link."
    )


class DeviceOut(BaseModel):
    account: str
    position: int
    kind: str
    auth_username: str
    order: int
    enabled: bool
    label: str
    internet: bool
    call_waiting: bool
    credential_expires_at: float | None


class RotateIn(BaseModel):
    overlap_hours: float | None = Field(
        default=None, ge=0, le=720,
        description="Hours the old secret keeps working (default: the credential_overlap_hours setting; "
                    "0 revokes it at once, e.g. for a lost phone).",
    )
    expires_days: float | None = Field(
        default=None, ge=0, le=36500, description="New credentials expire after this many days; 0: never."
    )


class RotateOut(BaseModel):
    device: DeviceOut
    previous_secret_valid_until: float | None = Field(
        description="Unix time until which the old secret still works; null: revoked at once."
    )


class ProvisioningIn(BaseModel):
    rotate: bool = Field(default=False, description="Give the device a new secret first (with the overlap window).")
    hours: float | None = Field(
        default=None, gt=0, le=720, description="How long the link stays usable (default: provisioning_link_hours)."
    )
    base_url: str | None = Field(
        default=None, description="Start of the link, e.g. https://pbx.example.com:8443 "
                                  "(default: the provisioning_base_url setting, else this API's address).",
    )


class ProvisioningOut(BaseModel):
    url: str = Field(description="The one-time link; it works once, until expires_at.")
    expires_at: float
    rotated: bool
    device: DeviceOut
    qr_svg: str = Field(description="The link as a QR code, an SVG document.")
    qr_png_data_uri: str = Field(description="The link as a QR code, a PNG data: URI (for an <img>).")


def _store(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


StoreDep = Annotated[Store, Depends(_store)]


def _http(error: AdminError) -> HTTPException:
    return HTTPException(error.status, detail=str(error))


def build_ops_router(require_admin: Callable[..., Any]) -> APIRouter:
    router = APIRouter(prefix="/api", dependencies=[Depends(require_admin)], tags=["operations"])

    @router.get(
        "/export",
        summary="Every account and device as CSV (secrets are never exported)",
        responses={200: {"content": {"text/csv": {"schema": {"type": "string"}}, "application/json": {}}}},
        response_model=None,
    )
    async def export(store: StoreDep, format: Literal["csv", "json"] = "csv") -> Response:
        if format == "json":
            return JSONResponse(await export_rows(store))
        return PlainTextResponse(
            await export_csv(store), media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": 'attachment; filename="onenumber-accounts.csv"'},
        )

    @router.post(
        "/import",
        summary="Create or update accounts and devices from CSV, all or nothing",
        response_model=ImportReportOut,
        # 422: the file's problems (ImportErrorOut), or bad query parameters (the app's ErrorBody)
        responses={422: {"model": ImportErrorOut | ErrorBody,
                         "description": "the file has problems, or a parameter is wrong; nothing was changed"},
                   413: {"description": "the file is too large"}},
        openapi_extra={"requestBody": {"required": True,
                                       "content": {"text/csv": {"schema": {"type": "string"}}}}},
    )
    async def import_(
        request: Request,
        store: StoreDep,
        dry_run: Annotated[bool, Query(description="Check and report, change nothing.")] = False,
        prune: Annotated[bool, Query(description="Also remove the accounts and devices the file does not list.")]
        = False,
        links: Annotated[bool, Query(description="Make a one-time provisioning link for each new device.")]
        = False,
    ) -> Any:
        body = await request.body()
        if len(body) > MAX_CSV_BYTES:
            raise HTTPException(413, detail=f"the file is larger than {MAX_CSV_BYTES // 1024 // 1024} MB")
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            detail = f"the file is not UTF-8 text (byte {exc.start}); save it as UTF-8 CSV"
            raise HTTPException(422, detail=detail) from None
        try:
            report = await import_csv(store, text, dry_run=dry_run, prune=prune, links=links)
            base = (await store.admin.get_settings()).provisioning_base_url or str(request.base_url)
        except CsvImportError as exc:
            return JSONResponse({"detail": str(exc), "errors": [e.view() for e in exc.errors]}, status_code=422)
        except AdminError as exc:
            raise _http(exc) from None
        view = report.view()
        for device in view["new_devices"]:
            if "token" in device:
                device["url"] = link_url(base, device.pop("token"))
        return view

    @router.post(
        "/accounts/{number}/devices/{position}/rotate",
        summary="Give a device a new generated secret; the old one works for the overlap window",
        response_model=RotateOut,
        responses={404: {"description": "no such account or device"}},
    )
    async def rotate(number: Number, position: Position, store: StoreDep, body: RotateIn | None = None) -> Any:
        body = body or RotateIn()
        try:
            device = await store.admin.rotate_secret(
                number, position, overlap_hours=body.overlap_hours, expires_days=body.expires_days
            )
        except AdminError as exc:
            raise _http(exc) from None
        return {"device": device_view(device), "previous_secret_valid_until": device.previous_secret_until}

    @router.post(
        "/accounts/{number}/devices/{position}/provisioning",
        summary="A new one-time provisioning link for a device (JSON with QR codes, or the QR as SVG/PNG)",
        response_model=ProvisioningOut,
        responses={200: {"content": {"image/svg+xml": {}, "image/png": {}}},
                   404: {"description": "no such account or device"}},
    )
    async def provisioning(
        number: Number,
        position: Position,
        request: Request,
        store: StoreDep,
        body: ProvisioningIn | None = None,
        format: Annotated[Literal["json", "svg", "png"], Query(description="json, or the QR code alone.")] = "json",
    ) -> Any:
        body = body or ProvisioningIn()
        try:
            base = body.base_url
            if base is not None:
                base = validate_setting("provisioning_base_url", base)
            if not base:
                base = (await store.admin.get_settings()).provisioning_base_url or str(request.base_url)
            link = await create_link(store, number, position, hours=body.hours, rotate=body.rotate)
        except ValueError as exc:
            raise HTTPException(422, detail=f"base_url: {exc}") from None
        except AdminError as exc:
            raise _http(exc) from None
        url = link.url(base)
        headers = {"Cache-Control": "no-store"}
        if format == "svg":
            return Response(qr_svg(url), media_type="image/svg+xml", headers=headers)
        if format == "png":
            return Response(qr_png(url), media_type="image/png", headers=headers)
        png = base64.b64encode(qr_png(url)).decode()
        return JSONResponse(
            {"url": url, "expires_at": link.expires_at, "rotated": link.rotated, "device": device_view(link.device),
             "qr_svg": qr_svg(url), "qr_png_data_uri": f"data:image/png;base64,{png}"},
            headers=headers,
        )

    return router
