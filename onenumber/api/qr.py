"""QR codes of provisioning links (segno): SVG and PNG for the API and portal, text for a terminal."""

from __future__ import annotations

import io

import segno


def _code(text: str) -> segno.QRCode:
    return segno.make(text, error="m", micro=False)


def qr_svg(text: str, *, scale: int = 4) -> str:
    """A standalone SVG document (black on white, with a quiet zone)."""
    out = io.BytesIO()
    _code(text).save(out, kind="svg", scale=scale, border=4, title="Provisioning link", xmldecl=False)
    return out.getvalue().decode()


def qr_png(text: str, *, scale: int = 6) -> bytes:
    out = io.BytesIO()
    _code(text).save(out, kind="png", scale=scale, border=4)
    return out.getvalue()


def qr_terminal(text: str) -> str:
    """The code drawn with Unicode half blocks, dark on light, for `onenumber device provision --qr`."""
    out = io.StringIO()
    _code(text).terminal(out=out, compact=True, border=2)
    return out.getvalue()
