"""The import contract: layers import only downwards (docs/architecture.md).

    model, settings, config  ←  sip  ←  routing  ←  store, media  ←  services  ←  transport, api, demo  ←  main  ←  cli

A module may import its own package and any package of a lower rank; nothing else. Checked over
the whole import graph of `onenumber/` (every import statement, also those inside functions and
under TYPE_CHECKING), so a wrong-way import fails here instead of in review. The call path
(`services.core` and what it imports) must not load SQLAlchemy either.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "onenumber"
RANK = {
    "model": 0, "settings": 0, "config": 0, "frozen": 0,  # frozen: quick_init, a helper with no imports of ours
    "sip": 1,
    "routing": 2,
    "store": 3, "media": 3,
    "services": 4,
    "transport": 5, "api": 5, "demo": 5, "web": 5,
    "main": 6,
    "cli": 7,
    "__init__": 0,
}


def _component(module: Path) -> str:
    rel = module.relative_to(PACKAGE)
    return rel.parts[0].removesuffix(".py")


def _imports(module: Path) -> list[tuple[int, str]]:
    """(line, first component under onenumber) of every import of our own package."""
    tree = ast.parse(module.read_text(), str(module))
    package_parts = module.relative_to(PACKAGE).parts[:-1]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == "onenumber" and len(parts) > 1:
                    found.append((node.lineno, parts[1]))
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                parts = (node.module or "").split(".")
                if parts[0] != "onenumber":
                    continue
                if len(parts) > 1:
                    found.append((node.lineno, parts[1]))
                else:
                    found += [(node.lineno, alias.name) for alias in node.names]
                continue
            base = list(package_parts[: len(package_parts) - (node.level - 1)])
            target = base + (node.module.split(".") if node.module else [])
            if target:
                found.append((node.lineno, target[0]))
            else:  # `from .. import x` at the top of the package
                found += [(node.lineno, alias.name) for alias in node.names]
    return found


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "migrations" not in p.parts)


def test_every_component_has_a_rank() -> None:
    missing = {_component(m) for m in _modules()} - set(RANK)
    assert not missing, f"give these a layer in RANK (and docs/architecture.md): {sorted(missing)}"


@pytest.mark.parametrize("module", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_point_down(module: Path) -> None:
    own = _component(module)
    wrong = [
        f"line {line}: {own} (layer {RANK[own]}) imports {target} (layer {RANK.get(target, '?')})"
        for line, target in _imports(module)
        if target != own and target in RANK and RANK[target] >= RANK[own]
    ]
    assert not wrong, f"{module.relative_to(PACKAGE)} imports upwards or sideways:\n" + "\n".join(wrong)


def test_the_call_path_does_not_load_the_database_layer() -> None:
    code = (
        "import sys, onenumber.services.core\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] == 'sqlalchemy' or m.startswith('onenumber.store'))\n"
        "print(bad); raise SystemExit(1 if bad else 0)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, f"the SIP core imports the store: {proc.stdout}{proc.stderr}"
