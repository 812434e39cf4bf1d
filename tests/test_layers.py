"""The package's layering, read from the source's own imports (ast): core under image/tess/simulate under
pipeline, siblings that never import each other, and no import cycle between modules."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "skycut"

# layer -> layers it may import ("top" is skycut/__init__.py and skycut/exceptions.py)
ALLOWED = {
    "top": {"top"},
    "core": {"top", "core"},
    "image": {"top", "core", "image"},
    "tess": {"top", "core", "tess"},
    "simulate": {"top", "core", "simulate"},
    "pipeline": {"top", "core", "image", "tess", "simulate", "pipeline"},
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in ALLOWED else "top"


def _imports(path: Path) -> set[str]:
    """skycut modules imported by one file (module level and inside functions; TYPE_CHECKING included)."""
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "skycut"}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "skycut":
                continue
            for alias in node.names:  # "from . import x" names a module when x is one
                sub = f"{target}.{alias.name}"
                found.add(sub if _exists(sub) else target)
    found.discard(module)
    return found


def _exists(module: str) -> bool:
    rel = Path(*module.split(".")[1:])
    return (PACKAGE / rel).with_suffix(".py").exists() or (PACKAGE / rel / "__init__.py").exists()


GRAPH = {_module_name(p): _imports(p) for p in sorted(PACKAGE.rglob("*.py"))}


def test_the_graph_was_read():
    assert {
        "skycut.core.geometry",
        "skycut.image.fits_cutout",
        "skycut.tess.cube_cutout",
        "skycut.pipeline.plan",
        "skycut.simulate",
    } <= set(GRAPH)
    assert "skycut.core.atomic" in GRAPH["skycut.tess.cube_factory"]


@pytest.mark.parametrize("module", sorted(GRAPH))
def test_layers(module):
    layer = _layer(module)
    bad = sorted(m for m in GRAPH[module] if _layer(m) not in ALLOWED[layer])
    assert not bad, f"{module} ({layer}) imports {bad}: {layer} may import only {sorted(ALLOWED[layer])}"


def test_no_import_cycles():
    # depth-first search for a back edge; skycut/__init__.py's lazy table (import_module) is not an import
    state: dict[str, int] = {}
    cycle: list[str] = []

    def visit(node: str, stack: list[str]) -> bool:
        state[node] = 1
        for nxt in sorted(GRAPH.get(node, ())):
            if state.get(nxt) == 1:
                cycle.extend(stack[stack.index(nxt) :] + [nxt])
                return True
            if state.get(nxt) is None and visit(nxt, stack + [nxt]):
                return True
        state[node] = 2
        return False

    for node in sorted(GRAPH):
        if state.get(node) is None and visit(node, [node]):
            break
    assert not cycle, " -> ".join(cycle)
