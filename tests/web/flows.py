"""Running one browser flow (a `frontend-bff/web/e2e/*.mjs` script) and reading its reports.

Every flow speaks the same protocol on stdout, one JSON object per line: `{"step", "ok"}` as a
step passes, `{"axe", "violations"}` per audited screen, `{"fail", "step", "error"}` when one
fails, and `{"need": ...}` when it needs the driver (a TOTP code, a mailed token, a price tick,
an API restart): `answer` gets that request and returns the line to write back on stdin.
Screenshots go to var/screenshots/, the flow's own `prefix` (or prefixes) cleared first, so one
flow's run leaves the others' screenshots to look at.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
WEB = ROOT / "frontend-bff" / "web"
SCREENSHOTS = ROOT / "var" / "screenshots"

Report = dict[str, object]
Answer = Callable[[Report], Awaitable[str]]


def _need(tool: str, hint: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.fail(f"{tool} not found: {hint}")
    return path


async def run_flow(
    script: str,
    args: list[str],
    *,
    prefix: str | tuple[str, ...],
    timeout: float,
    answer: Answer | None = None,
) -> list[Report]:
    """Run `e2e/<script>` with `args` (after `--base-url`-style ones the caller passes);
    return its reports, failing the test at the first failed step, a timeout or a crash."""
    if not (WEB / "dist" / "index.html").is_file():
        pytest.fail("the web client is not built: run scripts/web-build (scripts/test does)")
    node = _need("node", "the web client's browser tests need Node.js 20+")
    chromium = _need(
        "chromium", "scripts/test installs Debian's chromium (apt-get install chromium)"
    )
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for start in (prefix,) if isinstance(prefix, str) else prefix:
        for old in SCREENSHOTS.glob(f"{start}*.png"):
            old.unlink()
    proc = await asyncio.create_subprocess_exec(
        node, f"e2e/{script}", "--out", str(SCREENSHOTS), *args,
        cwd=WEB,
        env={"PATH": "/usr/bin:/bin", "CHROMIUM": chromium, "HOME": str(Path.home())},
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdin
    assert proc.stdout
    assert proc.stderr
    reports: list[Report] = []
    failure: Report | None = None

    async def read() -> None:
        nonlocal failure
        assert proc.stdin
        assert proc.stdout
        async for raw in proc.stdout:
            line = raw.decode().strip()
            if not line.startswith("{"):
                continue
            report: Report = json.loads(line)
            reports.append(report)
            if "need" in report:
                if answer is None:
                    raise AssertionError(f"{script} asked for {report['need']}: no one answers")
                proc.stdin.write(f"{await answer(report)}\n".encode())
                await proc.stdin.drain()
            elif report.get("fail"):
                failure = report

    try:
        await asyncio.wait_for(read(), timeout)
        await asyncio.wait_for(proc.wait(), 30)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        last = next((r["step"] for r in reversed(reports) if "step" in r), "start")
        pytest.fail(f"{script} timed out after step {last!r}")
    stderr = (await proc.stderr.read()).decode()[-4000:]
    if failure is not None:
        pytest.fail(f"{script} failed at step {failure['step']!r}: {failure['error']}")
    assert proc.returncode == 0, f"{script} exited {proc.returncode}: {stderr}"
    return reports


def passed_steps(reports: list[Report]) -> set[str]:
    return {str(r["step"]) for r in reports if r.get("ok")}


def assert_accessible(reports: list[Report]) -> None:
    """No serious or critical axe violation on any audited screen."""
    assert all(not r["violations"] for r in reports if "axe" in r)
