"""Rooms stand on floors: no module under ``dynaprune/`` or ``benchmarks/`` imports, directly or
through others, a module that imports it back — counting imports inside functions and under
``TYPE_CHECKING`` too, since such an import only hides a circle until someone moves the code.

The graph is read from the source with :mod:`ast` (nothing is imported), one node per file:
``from a.b import c`` points at ``a/b/c.py`` when that file exists, else at ``a/b.py`` or
``a/b/__init__.py``; relative imports are resolved against the importing file's package.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("dynaprune", "benchmarks")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {
        _module_name(path): path
        for package in PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
    }


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The known module that ``name`` (a module or a name in one) refers to, if any."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """Every known module that ``path`` imports, at any depth of its syntax tree."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            # ``from pkg import mod`` imports the submodule; ``from mod import name`` the module.
            targets = [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        for target in targets:
            module = _resolve(target, modules)
            if module is not None and module != name:
                found.add(module)
    return found


def import_graph() -> dict[str, set[str]]:
    """Each module of :data:`PACKAGES` mapped to the modules of :data:`PACKAGES` it imports."""
    modules = _modules()
    return {name: _imports(name, path, modules) for name, path in modules.items()}


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The modules caught in each import circle: the strongly connected components of more than
    one module (Tarjan), each sorted; empty when the graph is layered."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for succ in sorted(graph[node]):
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(component)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(sorted(component) for component in components)


def shortest_circle(graph: dict[str, set[str]], component: list[str]) -> list[str]:
    """The shortest closed path ``[a, ..., a]`` through the component's first module
    (breadth-first), so a failure names one arrow to break."""
    start = component[0]
    parents: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for succ in sorted(graph[node] & set(component)):
                if succ == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(parents[path[-1]])
                    return [*reversed(path), start]
                if succ not in parents:
                    parents[succ] = node
                    following.append(succ)
        frontier = following
    return component


def test_graph_sees_lazy_imports() -> None:
    graph = import_graph()
    assert "benchmarks.grid.bench" in graph["benchmarks.grid.cli"]  # inside main()
    assert "dynaprune" in graph["benchmarks.grid.runs"]  # inside make_sampler()
    assert "benchmarks.grid.data" in graph["benchmarks.grid.loaders"]  # at the top


def test_find_cycles_names_the_circle() -> None:
    graph = {"a": {"b"}, "b": {"c", "a"}, "c": {"a"}, "d": {"a"}, "e": {"d"}}
    assert find_cycles(graph) == [["a", "b", "c"]]
    assert shortest_circle(graph, ["a", "b", "c"]) == ["a", "b", "a"]
    assert shortest_circle(graph, ["b", "c", "a"]) == ["b", "a", "b"]
    assert find_cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles() -> None:
    graph = import_graph()
    cycles = find_cycles(graph)
    message = "\n".join(
        f"{len(members)} modules ({', '.join(members)}), e.g. "
        + " -> ".join(shortest_circle(graph, members))
        for members in cycles
    )
    assert not cycles, f"{len(cycles)} import circle(s); break each at an arrow:\n{message}"
