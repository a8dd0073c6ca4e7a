"""The sans-IO SIP core: messages, transactions, the stack (docs/architecture.md); compiled
with mypyc by `make compiled` (docs/compiled.md)."""

from __future__ import annotations

from pathlib import Path


def sip_core() -> str:
    """Which SIP core runs: "compiled" (mypyc extension modules, `make compiled`) or "pure"
    (the Python sources). A compiled module older than its source is named: it runs the old
    code until `make compiled` (or `make clean-compiled`). This file itself is never compiled
    (scripts/build_compiled.py leaves __init__.py out)."""
    from . import message

    if (message.__file__ or "").endswith(".py"):
        return "pure"
    package = Path(message.__file__ or "").parent
    stale = [src.name for src in sorted(package.glob("*.py"))
             if any(so.stat().st_mtime < src.stat().st_mtime for so in package.glob(f"{src.stem}.*.so"))]
    return f"compiled (stale: {', '.join(stale)} changed since `make compiled`)" if stale else "compiled"
