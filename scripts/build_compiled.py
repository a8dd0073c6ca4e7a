"""Compile the sans-IO SIP core (onenumber/sip) with mypyc; the .py files stay the source and the fallback.

    .venv/bin/python scripts/build_compiled.py            # in place: `make compiled`
    .venv/bin/python scripts/build_compiled.py --out DIR  # a separate tree: `make test-compiled`
    .venv/bin/python scripts/build_compiled.py --clean    # remove the in-place modules: `make clean-compiled`

In place, the extension modules land beside their sources (onenumber/sip/*.so, and the shared
library onenumber/sip__mypyc*.so) and Python imports them instead of the .py files. With --out,
DIR gets a copy of the onenumber package's sources with the extension modules beside them:
put DIR first on PYTHONPATH to run that copy while the checkout stays pure Python.
Only onenumber/sip is compiled: the profile of the sans-IO core (docs/compiled.md) puts
routing/ at a few per cent, and each package compiled adds to the build time.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ["onenumber/sip"]
GROUP = "onenumber.sip"  # the shared library is onenumber/sip__mypyc*.so: inside the package, found wherever it is


def compiled_files(tree: Path) -> list[Path]:
    return sorted([*tree.glob("onenumber/*__mypyc*.so"), *(p for pkg in PACKAGES for p in (tree / pkg).glob("*.so"))])


def copy_sources(out: Path) -> None:
    """The package's Python files (and py.typed) under out/onenumber, for an out-of-place build."""
    dest = out / "onenumber"
    if dest.exists():
        shutil.rmtree(dest)
    for src in (ROOT / "onenumber").rglob("*"):
        if "node_modules" in src.parts or "__pycache__" in src.parts or not src.is_file():
            continue
        if src.suffix in (".py", ".typed"):
            target = dest / src.relative_to(ROOT / "onenumber")
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, target)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, help="build into this directory instead of in place")
    ap.add_argument("--clean", action="store_true", help="remove the in-place extension modules")
    ap.add_argument("--opt", default="3", help="C optimisation level (default 3, as mypyc)")
    args = ap.parse_args()
    os.chdir(ROOT)  # mypyc reads the mypy configuration and the sources from the checkout
    if args.clean:
        for p in compiled_files(ROOT):
            p.unlink()
            print(f"removed {p.relative_to(ROOT)}")
        shutil.rmtree(ROOT / "build" / "mypyc", ignore_errors=True)
        return 0
    from mypyc.build import mypycify
    from setuptools import setup

    temp = (args.out.resolve() / "build") if args.out else ROOT / "build" / "mypyc"
    # each module but the (empty) __init__.py: compiled, a package's __init__ loses its __path__
    # under the editable install's import hook, and with it every submodule
    sources = [str(p) for pkg in PACKAGES for p in sorted(Path(pkg).glob("*.py")) if p.name != "__init__.py"]
    extensions = mypycify(sources, opt_level=args.opt, group_name=GROUP, target_dir=str(temp / "c"))
    script = ["build_ext", "--build-temp", str(temp / "obj")]
    if args.out:
        out = args.out.resolve()
        copy_sources(out)
        script += ["--build-lib", str(out)]
    else:
        for p in compiled_files(ROOT):  # a stale module of a file since removed must not linger
            p.unlink()
        script.append("--inplace")
    setup(ext_modules=extensions, script_args=script)
    tree = args.out.resolve() if args.out else ROOT
    built = compiled_files(tree)
    print(f"compiled with mypyc: {len(built)} extension modules in {tree}")
    return 0 if built else 1


if __name__ == "__main__":
    sys.exit(main())
