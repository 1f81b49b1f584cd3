"""The house: the import graph has no cycle and few layers, no module is long, and every
implementation record is complete and read by every consumer.

The graph is read from the source (`ast`), not by importing: every ``import`` counts, including
those inside functions (a lazy import still couples two modules); only ``if TYPE_CHECKING:``
blocks are left out (they never run).
"""

from __future__ import annotations

import ast
import graphlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("reference", "harness")
MAX_LINES = 400
MAX_LAYERS = 6
#: The rooms of the house, lowest first (what the docs' architecture page draws).
LAYERS = {
    "reference": 0, "harness": 0, "harness.base": 1, "harness.process": 2, "harness.adapters": 2, "harness.compare": 2,
    "harness.gate": 2, "harness.report": 2, "harness.conformance": 3, "harness.bench": 3, "harness.training": 3,
    "harness.history": 3,
    "harness.cli": 4, "harness.testing": 4,
}


def modules() -> dict[str, Path]:
    out = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            out[name] = path
    return out


def _type_checking(node: ast.AST) -> bool:
    test = getattr(node, "test", None)
    return isinstance(node, ast.If) and (
        (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING")
        or (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"))


def _imports(tree: ast.AST, module: str, is_package: bool) -> list[tuple[str, tuple[str, ...]]]:
    """(module, names imported from it) for every import statement outside ``if TYPE_CHECKING:``
    blocks (``import a.b`` gives ``("a.b", ())``); relative imports resolved."""
    found: list[tuple[str, tuple[str, ...]]] = []

    def visit(node: ast.AST) -> None:
        if _type_checking(node):
            for child in getattr(node, "orelse", []):
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.extend((alias.name, ()) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.split(".") if is_package else module.split(".")[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, *([base] if base else [])])
            found.append((base, tuple(alias.name for alias in node.names)))
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def graph() -> dict[str, set[str]]:
    """module -> the modules of this project it imports: ``from a import b`` names the module a.b
    when there is one, else (an attribute of a) the module a."""
    mods = modules()
    out: dict[str, set[str]] = {}
    for name, path in mods.items():
        edges = set()
        for base, names in _imports(ast.parse(path.read_text()), name, path.name == "__init__.py"):
            subs = {f"{base}.{n}" for n in names if f"{base}.{n}" in mods}
            edges |= subs
            if base in mods and (not names or len(subs) < len(names)):
                edges.add(base)
        out[name] = edges - {name}
    return out


def room(module: str) -> str:
    return max((r for r in LAYERS if module == r or module.startswith(r + ".")), key=len)


def test_the_import_graph_has_no_cycle() -> None:
    try:
        order = list(graphlib.TopologicalSorter(graph()).static_order())
    except graphlib.CycleError as exc:
        pytest.fail(f"import cycle: {' -> '.join(exc.args[1])}")
    assert len(order) == len(modules())


def test_rooms_import_only_downwards_and_there_are_few_layers() -> None:
    g = graph()
    up = sorted(f"{m} -> {t}" for m, ts in g.items() for t in ts if LAYERS[room(t)] > LAYERS[room(m)])
    assert not up, "an import from a lower room into a higher one:\n" + "\n".join(up)
    rooms = {room(m): set() for m in g}
    for m, ts in g.items():
        rooms[room(m)].update(room(t) for t in ts if room(t) != room(m))
    depth: dict[str, int] = {}
    for r in graphlib.TopologicalSorter(rooms).static_order():  # raises on a cycle between rooms
        depth[r] = 1 + max((depth[d] for d in rooms[r]), default=0)
    assert max(depth.values()) <= MAX_LAYERS, depth
    # and at module granularity: the longest chain of imports stays short
    chain: dict[str, int] = {}
    for m in graphlib.TopologicalSorter(g).static_order():
        chain[m] = 1 + max((chain[d] for d in g[m]), default=0)
    assert max(chain.values()) <= 4 * MAX_LAYERS, sorted(chain.items(), key=lambda kv: -kv[1])[:3]


def test_the_graph_reader_sees_lazy_imports_and_skips_type_checking() -> None:
    tree = ast.parse("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import harness.gate\n"
                     "def f():\n    from harness.base import schema\n    from . import sibling\n")
    named = dict(_imports(tree, "harness.cli.run", is_package=False))
    assert named == {"typing": ("TYPE_CHECKING",), "harness.base": ("schema",), "harness.cli": ("sibling",)}


@pytest.mark.parametrize("package", [*PACKAGES, "examples"])
def test_no_module_is_long(package) -> None:
    long = {str(p.relative_to(ROOT)): n for p in sorted((ROOT / package).rglob("*.py"))
            if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines (one concept each): {long}"


def test_no_test_module_is_long() -> None:
    long = {p.name: n for p in sorted((ROOT / "tests").glob("*.py"))
            if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, f"test modules over {MAX_LINES} lines: {long}"
