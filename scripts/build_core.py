"""Compile the matching core with mypyc: ``.venv/bin/python scripts/build_core.py [--force]``.

Run by ``scripts/bootstrap`` in every mode. The build goes to ``build/core/<digest>/`` (the
digest of the core's sources and the interpreter's ABI, ``matching.core.source_digest``),
which ``matching/core/__init__.py`` puts first on the package's path when it matches the
sources it finds: nothing is ever written beside the sources, so an edited module can never
run an old extension. A build whose directory is there is a no-op (a hash of ~120 KB).

It compiles into a temporary directory renamed into place when complete, so a process using
an older build keeps its files, and a concurrent build of the same digest loses nothing.
Drives ``mypyc.build.mypycify`` (mypyc's documented setuptools entry point) with a bare
setuptools ``Distribution``, so the project's own ``pyproject.toml`` is not involved.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from importlib.metadata import version
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
KEEP = 3  # builds kept (newest first): switching between branches need not recompile


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--force", action="store_true", help="rebuild even if up to date")
    args = parser.parse_args()
    if os.environ.get("BOURSE_PURE_CORE", "") not in ("", "0"):
        print("matching core: BOURSE_PURE_CORE is set, not compiling")
        return 0

    os.environ["BOURSE_PURE_CORE"] = "1"  # the digest, not the (maybe broken) build
    sys.path.insert(0, str(ROOT))
    import matching.core as core

    digest = core.source_digest()
    final = core.builds_root() / digest
    mypy_version = version("mypy")
    marker = final / core.BUILD_MARKER
    if (
        not args.force
        and marker.is_file()
        and json.loads(marker.read_text()).get("mypy") == mypy_version
    ):
        return 0
    started = time.monotonic()
    print(f"matching core: compiling with mypyc {mypy_version} into build/core/{digest}")
    tmp = core.builds_root() / f".tmp-{digest}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        _compile(core.COMPILED_MODULES, core.NATIVE_GROUP, tmp)
        info = {"digest": digest, "mypy": mypy_version, "python": sys.version.split()[0]}
        (tmp / core.BUILD_MARKER).write_text(json.dumps(info, sort_keys=True) + "\n")
        shutil.rmtree(tmp / "c")
        shutil.rmtree(tmp / "obj")
        if final.exists():  # --force, or an outdated mypy: out of the way (still mapped: fine)
            final.rename(core.builds_root() / f".old-{digest}-{os.getpid()}")
        try:
            tmp.rename(final)
        except OSError:  # a concurrent build of the same sources got there first
            if not (final / core.BUILD_MARKER).is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    _prune(core.builds_root(), keep=final)
    print(f"matching core: compiled in {time.monotonic() - started:.0f} s")
    return 0


def _compile(modules: tuple[str, ...], group: str, out: Path) -> None:
    import setuptools  # before mypyc.build: it picks setuptools over distutils if imported
    from mypyc.build import mypycify

    cwd = Path.cwd()
    os.chdir(ROOT)  # module names come from the paths: matching/core/book.py is matching.core.book
    try:
        extensions = mypycify(
            [f"matching/core/{name}.py" for name in modules],
            opt_level="3",
            target_dir=str(out / "c"),
            group_name=group,
        )
        dist = setuptools.Distribution({"name": "bourse-core", "ext_modules": extensions})
        build_ext = dist.get_command_obj("build_ext")
        build_ext.build_lib = str(out)
        build_ext.build_temp = str(out / "obj")
        dist.run_command("build_ext")
    finally:
        os.chdir(cwd)


def _prune(root: Path, keep: Path) -> None:
    """Drop temporary leftovers and all but the newest ``KEEP`` builds (``keep`` among them)."""
    builds = sorted(
        (p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")),
        key=lambda p: p.stat().st_mtime,
        reverse=True,
    )
    stale = [p for p in builds if p != keep][KEEP - 1 :]
    stale += [p for p in root.iterdir() if p.name.startswith(".old-")]
    for path in stale:
        shutil.rmtree(path, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
