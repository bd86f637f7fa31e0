"""The compiled core (mypyc, built by scripts/bootstrap) against the pure one: the same bytes.

The bench's and the property tests' loadgen flows run through ``Engine.apply`` here (the
compiled core, as the whole suite runs it) and in a subprocess with ``BOURSE_PURE_CORE=1``;
the canonical JSON of every event, of the snapshots and of the events after a restore from a
snapshot taken halfway must be identical. Then the guard: a build never runs for sources it
was not compiled from.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

import matching.core as core
from matching.core import Engine, dump_engine, load_engine
from matching.loadgen import OrderFlow
from matching.wire import encode_events

ROOT = Path(__file__).resolve().parents[2]
FLOWS = {  # the bench's two mixes and the property / shard tests' flow
    "default": {"seed": 11, "assets": 4, "users": 500},
    "new_types": {"seed": 12, "assets": 4, "users": 500, "new_types": True},
    "extras": {"seed": 42, "assets": 3, "users": 40, "extras": True},
}
COMMANDS = 30_000

needs_build = pytest.mark.skipif(
    os.environ.get("BOURSE_PURE_CORE", "") not in ("", "0"),
    reason="BOURSE_PURE_CORE forces the pure core: nothing compiled to compare",
)


def trace(commands: list[dict[str, Any]]) -> list[str]:
    """Every event as canonical JSON, the snapshot at half and at the end, and the second half
    replayed on an engine restored from the half-way snapshot (through JSON, as the shard)."""
    half = len(commands) // 2
    engine = Engine()
    out: list[str] = []
    for i, c in enumerate(commands):
        out += encode_events(engine.apply(c), f"{i}-0")
        if i + 1 == half:
            snapshot = json.dumps(dump_engine(engine), sort_keys=True)
            out.append(snapshot)
    out.append(json.dumps(dump_engine(engine), sort_keys=True))
    restored = load_engine(json.loads(snapshot))
    for i, c in enumerate(commands[half:], start=half):
        out += encode_events(restored.apply(c), f"{i}-0")
    out.append(json.dumps(dump_engine(restored), sort_keys=True))
    return out


def _python(code: str, *, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=cwd,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


@needs_build
def test_the_suite_runs_the_compiled_core() -> None:
    """scripts/bootstrap built the core for these sources: the tests exercise what runs."""
    suffix = ".cpython-" if sys.implementation.name == "cpython" else "."
    assert core.CORE_KIND == "compiled", "no build for these sources: run scripts/bootstrap"
    for name in core.COMPILED_MODULES:
        module = sys.modules[f"matching.core.{name}"]
        assert suffix in Path(str(module.__file__)).name, module.__file__
        assert str(core.compiled_dir(core.source_digest())) in str(module.__file__)


@needs_build
@pytest.mark.parametrize("flow", sorted(FLOWS))
def test_compiled_and_pure_cores_write_the_same_bytes(flow: str, tmp_path: Path) -> None:
    gen = OrderFlow(**FLOWS[flow])  # type: ignore[arg-type]
    commands = gen.setup(depth=60) + gen.commands(COMMANDS)
    (tmp_path / "commands.json").write_text(json.dumps(commands))
    code = (
        "import json, sys\n"
        "import matching.core as core\n"
        "from tests.matching.test_compiled_core import trace\n"
        "assert core.CORE_KIND == 'pure', core.CORE_KIND\n"
        f"cmds = json.load(open({str(tmp_path / 'commands.json')!r}))\n"
        f"open({str(tmp_path / 'pure.txt')!r}, 'w').write('\\n'.join(trace(cmds)))\n"
    )
    done = _python(code, cwd=ROOT, env={"BOURSE_PURE_CORE": "1", "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr
    pure = (tmp_path / "pure.txt").read_text().split("\n")
    compiled = trace(commands)
    assert len(compiled) > len(commands)  # events, not an empty run
    for i, (a, b) in enumerate(zip(compiled, pure, strict=False)):
        assert a == b, f"line {i} differs:\ncompiled {a[:400]}\npure     {b[:400]}"
    assert len(compiled) == len(pure)


def _copy_checkout(dest: Path) -> None:
    """The core's package and its current build, laid out as a checkout at ``dest``."""
    shutil.copytree(ROOT / "matching" / "core", dest / "matching" / "core")
    shutil.copy(ROOT / "matching" / "__init__.py", dest / "matching" / "__init__.py")
    digest = core.source_digest()
    shutil.copytree(core.builds_root() / digest, dest / "build" / "core" / digest)


PROBE = (
    "import matching.core as core, matching.core.engine as engine\n"
    "print(core.CORE_KIND, engine.__file__, getattr(engine, 'EDITED', False))\n"
)


@needs_build
def test_an_edited_module_never_runs_the_old_build(tmp_path: Path) -> None:
    _copy_checkout(tmp_path)
    env = {"PYTHONPATH": str(tmp_path), "BOURSE_PURE_CORE": ""}
    before = _python(PROBE, cwd=tmp_path, env=env)
    assert before.returncode == 0, before.stderr
    kind, where, edited = before.stdout.split()
    assert (kind, edited) == ("compiled", "False")
    assert where.startswith(str(tmp_path / "build" / "core"))

    engine_py = tmp_path / "matching" / "core" / "engine.py"
    engine_py.write_text(engine_py.read_text() + "\nEDITED = True\n")
    after = _python(PROBE, cwd=tmp_path, env=env)
    assert after.returncode == 0, after.stderr
    kind, where, edited = after.stdout.split()
    assert (kind, where, edited) == ("pure", str(engine_py), "True")  # the new code ran
    assert "no compiled build for these sources" in after.stderr  # and the log says why


@needs_build
def test_an_incomplete_build_is_not_used(tmp_path: Path) -> None:
    _copy_checkout(tmp_path)
    build = tmp_path / "build" / "core" / core.source_digest()
    (build / core.BUILD_MARKER).unlink()  # a build interrupted before its marker
    done = _python(PROBE, cwd=tmp_path, env={"PYTHONPATH": str(tmp_path), "BOURSE_PURE_CORE": ""})
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[0] == "pure"


@needs_build
def test_bourse_pure_core_forces_the_pure_modules() -> None:
    done = _python(PROBE, cwd=ROOT, env={"BOURSE_PURE_CORE": "1", "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr
    kind, where, _ = done.stdout.split()
    assert (kind, where) == ("pure", str(ROOT / "matching" / "core" / "engine.py"))
    assert "no compiled build" not in done.stderr  # asked for: no warning


@needs_build
def test_an_up_to_date_build_is_a_no_op() -> None:
    build = core.builds_root() / core.source_digest()
    mtime = build.stat().st_mtime_ns
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "build_core.py")],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""  # nothing compiled
    assert build.stat().st_mtime_ns == mtime
    assert time.monotonic() - started < 10  # an interpreter start and a hash, even under load
