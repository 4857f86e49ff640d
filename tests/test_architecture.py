"""The import graph of ``medgan``: no cycle, and no arrow up the layers (docs/architecture.md).

Every ``import`` / ``from ... import`` node anywhere in a file counts, function-level and
``TYPE_CHECKING`` imports included (an import inside a function is still a dependency). Relative
imports are resolved; ``from medgan.x import y`` counts as importing ``medgan.x.y`` when ``y`` is a
submodule, else ``medgan.x``.

Package ``__init__`` files: importing ``medgan.a.b`` runs ``medgan/a/__init__.py`` first, but that
implicit step is not an edge here; only the module named in the import is. An ``__init__`` that
re-exports from its own package is then an ordinary module of that package's layer: its imports
are checked like any other, so a re-export can neither hide a cycle nor an upward arrow.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "medgan"

# Lower numbers lie underneath; a module may import its own layer or any lower one.
LAYERS: dict[str, int] = {
    "errors": 0, "utils": 0, "device": 0, "configio": 0, "data": 0, "version": 0,
    "networks": 1,
    "training": 2,
    "synth": 3,
    "metrics": 4,
    "benchmark": 5,
    "api": 6,
    "pipeline": 7,
    "__init__": 8,
    "cli": 9, "__main__": 9,
}


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    is_pkg = path.name == "__init__.py"
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_pkg else name.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                out.add(sub if sub in modules else target)
    return {m for m in out if m in modules and m != name}


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(name, path, modules) for name, path in modules.items()}


def _layer(module: str) -> int:
    parts = module.split(".")
    key = parts[1] if len(parts) > 1 else "__init__"
    assert key in LAYERS, f"{module} is on no layer: add it to LAYERS and to docs/architecture.md"
    return LAYERS[key]


def test_the_graph_is_read() -> None:
    graph = _graph()
    # Sanity: the walk sees function-level imports and resolves "from package import submodule".
    assert "medgan.training.distributed" in graph["medgan.training.loop"]
    assert "medgan.synth.sampling" in graph["medgan.cli.augment"]  # imported inside the command function


def test_no_import_cycle() -> None:
    graph = _graph()
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    cycles: list[list[str]] = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append([*path[path.index(nxt):], nxt])
            elif nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for start in sorted(graph):
        if start not in state:
            visit(start, [start])
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_no_upward_import() -> None:
    upward = [
        f"{src} ({_layer(src)}) -> {dst} ({_layer(dst)})"
        for src, targets in sorted(_graph().items())
        for dst in sorted(targets)
        if _layer(dst) > _layer(src)
    ]
    assert not upward, "imports up the layers: " + "; ".join(upward)
