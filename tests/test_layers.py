"""Imports point one way (docs/ARCHITECTURE.md, "Layers"): a module may import its own layer
and the layers below it, never one above. Checked on the source, including imports inside
functions, so a lazy import cannot hide an upward dependency."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Lowest first. A module belongs to the first layer whose prefix matches its name.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("matching core", ("matching.core",)),
    ("base", ("bourse",)),
    ("matching", ("matching",)),
    ("models", ("models",)),
    ("workers", ("workers",)),
    ("resolvers", ("resolvers",)),
    ("edge", ("bff",)),
    ("application", ("bourse.app",)),
]
# What each layer may import (besides itself); the matching core imports nothing of ours.
ALLOWED: dict[str, set[str]] = {
    "matching core": set(),
    "base": set(),
    "matching": {"base", "matching core"},
    "models": {"base", "matching core", "matching"},
    "workers": {"base", "matching core", "matching", "models"},
    "resolvers": {"base", "matching core", "matching", "models"},
    "edge": {"base", "matching core", "matching", "models", "resolvers"},
    "application": {"base", "matching core", "matching", "models", "workers", "resolvers", "edge"},
}
OURS = ("bourse", "matching", "models", "workers", "resolvers", "bff")


def layer_of(module: str) -> str | None:
    best: tuple[int, str] | None = None
    for name, prefixes in LAYERS:
        for prefix in prefixes:
            inside = module == prefix or module.startswith(prefix + ".")
            if inside and (best is None or len(prefix) > best[0]):
                best = (len(prefix), name)
    return None if best is None else best[1]


def modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for top in ("bourse", "matching", "models", "workers", "resolvers", "frontend-bff/bff"):
        for path in (ROOT / top).rglob("*.py"):
            rel = path.relative_to(ROOT / ("frontend-bff" if top.startswith("frontend") else ""))
            name = ".".join(rel.with_suffix("").parts)
            found[name.removesuffix(".__init__")] = path
    return found


def imported(path: Path, module: str) -> set[str]:
    names: set[str] = set()
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            names.add(target)
            names.update(f"{target}.{alias.name}" for alias in node.names)
    return {n for n in names if n.split(".")[0] in OURS}


def test_imports_point_down_the_layers() -> None:
    found = modules()
    assert "bourse.settings" in found
    assert "bff.app" in found
    assert "matching.core.engine" in found
    violations: list[str] = []
    for module, path in sorted(found.items()):
        own = layer_of(module)
        assert own is not None, module
        for target in sorted(imported(path, module)):
            other = layer_of(target)
            if other is None or other == own or other in ALLOWED[own]:
                continue
            violations.append(f"{module} ({own}) imports {target} ({other})")
    assert not violations, "\n".join(violations)


def _resolve(name: str, found: dict[str, Path]) -> str | None:
    while name and name not in found:
        name = name.rpartition(".")[0]
    return name or None


def test_no_import_cycles() -> None:
    """No module reaches itself through imports, lazy ones included (a lazy import that closes
    a cycle only hides it). ``from package import submodule`` counts as the submodule."""
    found = modules()
    graph: dict[str, set[str]] = {}
    for module, path in found.items():
        targets = {_resolve(name, found) for name in imported(path, module)}
        graph[module] = {t for t in targets if t is not None and t != module}
    # A package's __init__ importing its table modules (for the metadata) is not a cycle with
    # those modules importing a sibling through the package: count `from models import x` as x.
    for module, path in found.items():
        for name in imported(path, module):
            parent = name.rpartition(".")[0]
            if name in found and parent in graph[module] and parent in found:
                graph[module].discard(parent)
    cycles: list[list[str]] = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append([*stack[stack.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    assert not cycles, "\n".join(" -> ".join(c) for c in cycles)


def test_the_checker_sees_an_upward_import(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("from bff.app import create_app\n\ndef f():\n    import workers.jobs\n")
    seen = imported(bad, "models.bad")
    assert {"bff.app", "workers.jobs"} <= seen
    assert layer_of("bff.app") not in ALLOWED["models"]
    assert layer_of("workers.jobs") not in ALLOWED["models"]
