"""Serving the web phone: `/phone` (the page) and `/phone/static/...` (its bundle and stylesheet).

The bundle is built from `onenumber/web/phone/` by `make web` (npm + esbuild) into the
git-ignored `onenumber/web/phone/dist/`; nothing is fetched from a CDN, so the page works
offline. When it has not been built, `/phone` says how to build it. Depends on nothing of ours.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

PHONE_DIR = Path(__file__).parent / "phone"
DIST = PHONE_DIR / "dist"

NOT_BUILT = """<!doctype html><meta charset="utf-8"><title>OneNumber web phone</title>
<p>The web phone has not been built on this server. Run <code>make web</code> (it needs node and npm;
<code>scripts/install-peers.sh</code> installs them), then reload this page.</p>"""

# the page may talk only to this server: no CDN, no third-party script, microphone for this origin
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self' ws: wss:; media-src 'self' blob: mediastream:; frame-ancestors 'none'; base-uri 'none'")


def mount_phone(app: Any, dist: Path = DIST) -> None:
    """Add `/phone` and `/phone/static` to a FastAPI/Starlette app."""
    from starlette.responses import FileResponse, HTMLResponse, Response
    from starlette.staticfiles import StaticFiles

    async def page(request: Any) -> Response:
        index = dist / "index.html"
        if not index.exists():
            return HTMLResponse(NOT_BUILT, status_code=503)
        return FileResponse(index, headers={"Content-Security-Policy": CSP, "Cache-Control": "no-cache",
                                            "X-Content-Type-Options": "nosniff"})

    app.router.add_route("/phone", page, methods=["GET", "HEAD"], include_in_schema=False)
    app.router.add_route("/phone/", page, methods=["GET", "HEAD"], include_in_schema=False)
    app.mount("/phone/static", StaticFiles(directory=dist, check_dir=False), name="phone-static")


def built(dist: Path = DIST) -> bool:
    return (dist / "phone.js").exists() and (dist / "index.html").exists()
