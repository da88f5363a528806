"""The package's import graph: no cycle between modules or between packages, and every import points down the layers
below (type-only imports under ``TYPE_CHECKING`` aside). A function-level import counts: hiding a cycle inside a
function leaves it a cycle."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "ftaudit"

# Bottom first: a unit (a top-level module or a sub-package of ftaudit) may import only units of lower layers or its
# own layer's units that the graph check allows (no cycle).
LAYERS = [
    {"errors"},
    {"files", "paths", "metrics", "config", "progress", "quiet", "resume"},
    {"hardware", "hub", "models", "report", "resources"},
    {"probes"},
    {"methods"},
    {"tasks"},
    {"tracking", "trainer"},
    {"session"},
    {"run"},
    {"sweep"},
    {"api", "cli"},
    {"__init__", "__main__"},
]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in SRC.rglob("*.py")}


def imported(path: Path) -> set[str]:
    """The ftaudit modules ``path`` imports anywhere in it, except under ``if TYPE_CHECKING:``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    type_only = {
        id(node)
        for block in ast.walk(tree)
        if isinstance(block, ast.If) and "TYPE_CHECKING" in ast.unparse(block.test)
        for node in ast.walk(block)
    }
    found = set()
    for node in ast.walk(tree):
        if id(node) in type_only:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("ftaudit"):
            found |= {
                f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in MODULES else node.module for a in node.names
            }
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("ftaudit")}
    return found & MODULES.keys()


GRAPH = {name: imported(path) for name, path in MODULES.items()}


def unit(module: str) -> str:
    """``ftaudit.probes.cka`` -> ``probes``; ``ftaudit`` (its ``__init__``) -> ``__init__``."""
    return module.split(".")[1] if "." in module else "__init__"


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one node (Tarjan), each a cycle or several."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while not component or component[-1] != node:
                component.append(stack.pop())
                on_stack.discard(component[-1])
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_layers_name_every_unit_once():
    named = [name for layer in LAYERS for name in layer]
    assert len(named) == len(set(named))
    assert {unit(module) for module in MODULES} == set(named)


def test_no_module_imports_itself_round_a_cycle():
    assert cycles(GRAPH) == []


def test_no_package_imports_itself_round_a_cycle():
    packages = {}
    for module, targets in GRAPH.items():
        packages.setdefault(unit(module), set()).update(unit(t) for t in targets if unit(t) != unit(module))
    assert cycles(packages) == []


def test_every_import_points_down_the_layers():
    layer_of = {name: depth for depth, layer in enumerate(LAYERS) for name in layer}
    upward = [
        f"{module} -> {target}"
        for module, targets in sorted(GRAPH.items())
        for target in sorted(targets)
        if layer_of[unit(target)] > layer_of[unit(module)]
    ]
    assert upward == []


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("from ftaudit.files import file_sha256\n", {"ftaudit.files"}),
        ("def f():\n    from ftaudit.probes import cka\n", {"ftaudit.probes.cka"}),
        ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ftaudit.session import Session\n", set()),
    ],
)
def test_the_check_sees_function_level_imports_and_skips_type_only_ones(tmp_path, source, expected):
    path = tmp_path / "example.py"
    path.write_text(source)
    assert imported(path) == expected


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
