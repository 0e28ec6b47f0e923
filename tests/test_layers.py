"""hpo's import graph: layers point only down, no cycle, no module over 400 lines, no `_name` across packages.

The graph is built with `ast` over hpo/**/*.py and counts every import: at module level, inside functions
(the imports that keep `hpo --help` fast hide cycles just as well as they hide heavy libraries) and under
`if TYPE_CHECKING:`. Type-only imports count because a type names a dependency of the design: a lower layer
that types an upper one's object knows about it, mypy follows the import, and a cycle through it is one
the next refactor turns into a runtime cycle (typing the object as `Any` instead only hides it). Nothing
here imports hpo: the whole file runs in well under a second and needs no library beyond pytest.

Run as a script (`python tests/test_layers.py`) to print the graph between hpo's top-level modules and
packages, with the file:line of every edge.
"""

from __future__ import annotations

import ast
import importlib.util
import os
from collections import defaultdict
from dataclasses import dataclass
from functools import cache
from itertools import pairwise
from pathlib import Path

import pytest

# Top to bottom: a module may import from its own layer or a layer below it, never above. An entry names
# a top-level module or package of hpo, or a module inside one that sits in another layer than its
# package (the longest entry that prefixes a module wins). Within a layer imports go either way, but the
# cycle test still refuses a cycle between top-level modules and packages.
LAYERS: list[tuple[str, set[str]]] = [
    ("cli", {"hpo", "hpo.__main__", "hpo.cli"}),
    (
        "chores",
        {"hpo.studies", "hpo.export", "hpo.delete", "hpo.dashboard", "hpo.scratch", "hpo.sweep", "hpo.launch"},
    ),
    ("verbs", {"hpo.run", "hpo.analyze", "hpo.promote"}),
    ("study set-up", {"hpo.prepare", "hpo.samplers", "hpo.warm_start", "hpo.ledger"}),
    ("stores", {"hpo.storage", "hpo.tracking"}),
    ("space", {"hpo.space"}),
    ("models", {"hpo.models"}),
    ("data", {"hpo.data"}),
    (
        "leaves",
        {
            "hpo.errors",
            "hpo.schema",
            "hpo.provenance",
            "hpo.features",
            "hpo.metrics",
            "hpo.secrets",
            "hpo.workspace",
            "hpo.version",
        },
    ),
]
MAX_LINES = 400


def _source_root() -> Path:
    """The folder of the hpo package: $HPO_SOURCE/hpo when set, else where Python would import hpo from."""
    if os.environ.get("HPO_SOURCE"):
        return Path(os.environ["HPO_SOURCE"]) / "hpo"
    spec = importlib.util.find_spec("hpo")  # finds the package without running its __init__
    assert spec is not None and spec.origin is not None, "hpo is not importable"
    return Path(spec.origin).parent


@dataclass(frozen=True)
class Import:
    """One `import` or `from ... import` of an hpo module, resolved to the module it reaches."""

    source: str  # dotted name of the importing module
    path: Path  # relative to the folder that holds hpo/, as messages show it
    line: int
    target: str  # dotted name of the imported hpo module
    name: str | None  # the name taken from `target` (None for `import target`, or a submodule)
    where: str  # "module", "function" or "type_checking"


def _module_name(path: Path, root: Path) -> str:
    parts = ["hpo", *path.relative_to(root).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


class _Collector:
    """Every import in one file, with the scope it sits in; module aliases for `alias._name` uses.

    Imports are statements, so only statement bodies are walked (expressions are skipped: it is
    most of the tree, and the time the tests take).
    """

    def __init__(self, module: str, is_package: bool, path: Path, modules: set[str]) -> None:
        self.module, self.is_package, self.path, self.modules = module, is_package, path, modules
        self.imports: list[Import] = []
        self.aliases: dict[str, str] = {}  # local name -> hpo module it is bound to

    def walk(self, body: list[ast.stmt], where: str) -> None:
        for node in body:
            if isinstance(node, ast.Import):
                self._import(node, where)
            elif isinstance(node, ast.ImportFrom):
                self._import_from(node, where)
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                self.walk(node.body, "type_checking" if where == "type_checking" else "function")
            elif isinstance(node, ast.If) and _is_type_checking(node.test):
                self.walk(node.body, "type_checking")
                self.walk(node.orelse, where)
            else:  # class bodies, if/for/while/with/try blocks, match cases: same scope
                for field in ("body", "orelse", "finalbody"):
                    self.walk(getattr(node, field, []), where)
                for inner in getattr(node, "handlers", []) + getattr(node, "cases", []):
                    self.walk(inner.body, where)

    def _add(self, line: int, target: str, name: str | None, where: str) -> None:
        self.imports.append(Import(self.module, self.path, line, target, name, where))

    def _import(self, node: ast.Import, where: str) -> None:
        for alias in node.names:
            if alias.name == "hpo" or alias.name.startswith("hpo."):
                self._add(node.lineno, alias.name, None, where)
                if alias.asname:
                    self.aliases[alias.asname] = alias.name

    def _import_from(self, node: ast.ImportFrom, where: str) -> None:
        if node.level:  # relative: resolve against this module's package
            package = self.module if self.is_package else self.module.rpartition(".")[0]
            base_parts = package.split(".")[: len(package.split(".")) - (node.level - 1)]
            base = ".".join(base_parts + ([node.module] if node.module else []))
        else:
            base = node.module or ""
        if base != "hpo" and not base.startswith("hpo."):
            return
        for alias in node.names:
            submodule = f"{base}.{alias.name}"
            if submodule in self.modules:  # `from hpo.x import _mod` imports a module, not a name
                self._add(node.lineno, submodule, None, where)
                self.aliases[alias.asname or alias.name] = submodule
            else:
                self._add(node.lineno, base, alias.name, where)


@dataclass(frozen=True)
class Graph:
    root: Path
    modules: dict[str, Path]  # dotted name -> file
    imports: list[Import]
    private_uses: list[tuple[Path, int, str, str, str]]  # (file, line, importer, module, attribute)


@cache
def graph(root: Path | None = None) -> Graph:
    """Parse every module of hpo once and resolve its hpo imports."""
    root = root or _source_root()
    files = sorted(root.rglob("*.py"))
    modules = {_module_name(path, root): path for path in files}
    imports: list[Import] = []
    private_uses: list[tuple[Path, int, str, str, str]] = []
    for name, path in modules.items():
        shown = path.relative_to(root.parent)
        collector = _Collector(name, path.name == "__init__.py", shown, set(modules))
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        collector.walk(tree.body, "module")
        imports += collector.imports
        if collector.aliases:  # `alias._name` on a module bound to a name: the one place expressions matter
            for node in ast.walk(tree):
                if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and _private(node.attr):
                    if node.value.id in collector.aliases:
                        private_uses.append((shown, node.lineno, name, collector.aliases[node.value.id], node.attr))
    return Graph(root, modules, imports, private_uses)


def unit(module: str) -> str:
    """The top-level module or package a module belongs to: hpo.run._worker -> hpo.run."""
    return ".".join(module.split(".")[:2])


def layer_of(module: str) -> int:
    """Index of the layer a module sits in (0 is the top); the longest entry that prefixes it wins."""
    best, index = "", -1
    for i, (_, entries) in enumerate(LAYERS):
        for entry in entries:
            inside = module == entry or (entry != "hpo" and module.startswith(entry + "."))  # "hpo" is the API
            if inside and len(entry) > len(best):
                best, index = entry, i
    return index


def unit_edges(g: Graph) -> dict[tuple[str, str], list[Import]]:
    """Imports between different top-level modules/packages, grouped by (importer, imported)."""
    edges: dict[tuple[str, str], list[Import]] = defaultdict(list)
    for imp in g.imports:
        a, b = unit(imp.source), unit(imp.target)
        if a != b:
            edges[(a, b)].append(imp)
    return edges


def sibling_edges(g: Graph) -> dict[str, dict[tuple[str, str], list[Import]]]:
    """Inside each package below the top: imports between its children (modules or subpackages).

    An import reaching the package's own `__init__` (a child taking what its package re-exports) is
    not between siblings, so it is left out, as import-linter's acyclic_siblings contract does.
    """
    found: dict[str, dict[tuple[str, str], list[Import]]] = defaultdict(lambda: defaultdict(list))
    for imp in g.imports:
        a, b = imp.source.split("."), imp.target.split(".")
        common = 0
        while common < min(len(a), len(b)) and a[common] == b[common]:
            common += 1
        if common >= 2 and common < len(a) and common < len(b):
            parent = ".".join(a[:common])
            found[parent][(f"{parent}.{a[common]}", f"{parent}.{b[common]}")].append(imp)
    return found


def components(edges: dict[tuple[str, str], list[Import]]) -> list[set[str]]:
    """Strongly connected components with more than one member: the groups of packages caught in cycles."""
    succ: dict[str, set[str]] = defaultdict(set)
    for a, b in edges:
        succ[a].add(b)
    nodes = sorted({n for edge in edges for n in edge})
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[set[str]] = []

    def visit(node: str) -> None:  # Tarjan; the graph has a few dozen nodes, so recursion is fine
        index[node] = low[node] = len(index)
        stack.append(node)
        for child in sorted(succ[node]):
            if child not in index:
                visit(child)
                low[node] = min(low[node], low[child])
            elif child in stack:
                low[node] = min(low[node], index[child])
        if low[node] == index[node]:
            group = set()
            while True:
                member = stack.pop()
                group.add(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(group)

    for node in nodes:
        if node not in index:
            visit(node)
    return found


def cycles(edges: dict[tuple[str, str], list[Import]]) -> list[list[str]]:
    """One shortest cycle through each edge that closes a cycle without pointing down a layer.

    Every cycle holds at least one such edge (an edge up, or one within a layer), so these are the
    imports to move; edges that point down are only shown as the path back.
    """
    succ: dict[str, set[str]] = defaultdict(set)
    for a, b in edges:
        succ[a].add(b)

    def shortest_path(start: str, goal: str) -> list[str] | None:
        previous: dict[str, str] = {}
        frontier = [start]
        while frontier:
            following = []
            for node in frontier:
                for child in sorted(succ[node]):
                    if child in previous or child == start:
                        continue
                    previous[child] = node
                    if child == goal:
                        path = [child]
                        while path[-1] != start:
                            path.append(previous[path[-1]])
                        return path[::-1]
                    following.append(child)
            frontier = following
        return None

    found: dict[tuple[str, ...], list[str]] = {}
    for group in components(edges):
        for a, b in sorted(edges):
            if a in group and b in group and layer_of(b) <= layer_of(a):
                back = shortest_path(b, a)
                if back is not None:
                    cycle = [a, *back][:-1]
                    start = cycle.index(min(cycle))  # one rotation per cycle: a -> b -> a once, not twice
                    cycle = cycle[start:] + cycle[:start]
                    found.setdefault(tuple(cycle), [*cycle, cycle[0]])
    return sorted(found.values(), key=lambda c: (len(c), c))


def _lines(imports: list[Import]) -> list[str]:
    """Imports as `file:line: from X import a, b`, one line per statement."""
    merged: dict[tuple[str, int, str, str], list[str]] = defaultdict(list)
    for imp in imports:
        merged[(str(imp.path), imp.line, imp.target, imp.where)].append(imp.name or "")
    out = []
    for (path, line, target, where), names in sorted(merged.items()):
        what = f"from {target} import {', '.join(names)}" if any(names) else f"import {target}"
        note = "" if where == "module" else f"  [{where.replace('_', ' ')}]"
        out.append(f"{path}:{line}: {what}{note}")
    return out


def _describe(cycle: list[str], edges: dict[tuple[str, str], list[Import]]) -> str:
    lines = [" -> ".join(name.removeprefix("hpo.") or name for name in cycle)]
    for a, b in pairwise(cycle):
        lines += [f"    {line}" for line in _lines(edges[(a, b)])]
    return "\n".join(lines)


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


# --- the tests ---------------------------------------------------------------------------------------


def test_every_module_sits_in_a_layer_and_every_entry_exists() -> None:
    g = graph()
    unplaced = sorted(m for m in g.modules if layer_of(m) < 0)
    stale = sorted(e for _, entries in LAYERS for e in entries if e not in g.modules)
    assert not unplaced, "modules in no layer (add them to LAYERS):\n" + "\n".join(unplaced)
    assert not stale, "LAYERS names modules that do not exist:\n" + "\n".join(stale)


def test_imports_point_only_down() -> None:
    g = graph()
    upward: dict[tuple[str, str], list[Import]] = defaultdict(list)
    for imp in g.imports:
        if layer_of(imp.target) < layer_of(imp.source):
            upward[(LAYERS[layer_of(imp.source)][0], LAYERS[layer_of(imp.target)][0])].append(imp)
    if upward:
        lines = [f"{line}   ({low} -> {high})" for (low, high), imps in upward.items() for line in _lines(imps)]
        pytest.fail(f"{len(lines)} imports point up a layer:\n" + "\n".join(sorted(lines)), pytrace=False)


def test_no_cycle_between_packages() -> None:
    edges = unit_edges(graph())
    groups = components(edges)
    found = cycles(edges)
    names = "; ".join(", ".join(sorted(n.removeprefix("hpo.") for n in group)) for group in groups)
    if groups:
        pytest.fail(
            f"{len(groups)} group(s) of packages import each other in a cycle ({names}); {len(found)} cycles, "
            "one through each edge that does not point down (cut one such edge of each):\n"
            + "\n".join(_describe(c, edges) for c in found),
            pytrace=False,
        )


def test_no_cycle_inside_a_package() -> None:
    messages = [_describe(cycle, edges) for edges in sibling_edges(graph()).values() for cycle in cycles(edges)]
    if messages:
        pytest.fail(f"{len(messages)} cycles between modules of one package:\n" + "\n".join(messages), pytrace=False)


def test_no_module_over_400_lines() -> None:
    g = graph()
    sizes = {path: len(path.read_text(encoding="utf-8").splitlines()) for path in g.modules.values()}
    big = sorted((n, str(p.relative_to(g.root.parent))) for p, n in sizes.items() if n > MAX_LINES)
    if big:
        pytest.fail(f"modules over {MAX_LINES} lines:\n" + "\n".join(f"{p}: {n} lines" for n, p in big), pytrace=False)


def test_no_private_name_imported_across_packages() -> None:
    g = graph()
    crossing = _lines([imp for imp in g.imports if imp.name and _private(imp.name) and unit(imp.source) != unit(imp.target)])
    crossing += [
        f"{path}:{line}: {module}.{attribute} (through the module's name)"
        for path, line, importer, module, attribute in g.private_uses
        if unit(importer) != unit(module)
    ]
    if crossing:
        pytest.fail(f"{len(crossing)} imports take private names across packages:\n" + "\n".join(sorted(crossing)), pytrace=False)


# MLflow is tracking's alone, like Optuna's private API is storage's: hpo.features is shipped inside the
# promoted model and subclasses MLflow's PythonModel there.
MLFLOW_OUTSIDE_TRACKING_ALLOWED = {"hpo/features.py"}


def mlflow_uses(path: Path, client_methods: frozenset[str]) -> list[str]:
    """Where a file imports mlflow (in any scope) or calls an MlflowClient method by name."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import) and any(a.name.split(".")[0] == "mlflow" for a in node.names):
            out.append(f"{node.lineno}: import mlflow")
        elif isinstance(node, ast.ImportFrom) and not node.level and (node.module or "").split(".")[0] == "mlflow":
            out.append(f"{node.lineno}: from {node.module} import ...")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in client_methods:
            out.append(f"{node.lineno}: .{node.func.attr}(...)")
    return out


def test_mlflow_only_in_tracking() -> None:
    from mlflow import MlflowClient

    methods = frozenset(m for m in dir(MlflowClient) if not m.startswith("_")) - _GENERIC_METHODS
    g = graph()
    found: dict[str, list[str]] = {}
    for module, path in g.modules.items():
        shown = str(path.relative_to(g.root.parent))
        if module == "hpo.tracking" or module.startswith("hpo.tracking."):
            continue
        uses = mlflow_uses(path, methods)
        if uses:
            found[shown] = uses
    unexpected = {f: u for f, u in found.items() if f not in MLFLOW_OUTSIDE_TRACKING_ALLOWED}
    stale = sorted(MLFLOW_OUTSIDE_TRACKING_ALLOWED - set(found))
    lines = [f"{f}:{u}" for f, uses in sorted(unexpected.items()) for u in uses]
    lines += [f"{f}: allowed MLflow, but it no longer uses it: take it off MLFLOW_OUTSIDE_TRACKING_ALLOWED" for f in stale]
    if lines:
        pytest.fail("MLflow outside hpo.tracking:\n" + "\n".join(lines), pytrace=False)


# Method names MLflow's client shares with everyday Python (dict.get, ...): not evidence of MLflow.
_GENERIC_METHODS = frozenset({"get"})


def test_the_graph_sees_imports_inside_functions_and_type_checking(tmp_path: Path) -> None:
    """The collector itself: a cycle hidden in a function and a type-only import both count."""
    package = tmp_path / "hpo"
    (package / "low").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "low" / "__init__.py").write_text("from ._impl import f\n")
    (package / "low" / "_impl.py").write_text("def f():\n    from hpo.high import g\n    return g\n")
    (package / "high.py").write_text(
        "from typing import TYPE_CHECKING\nfrom hpo.low import f\nif TYPE_CHECKING:\n    from hpo.low._impl import _x\n"
    )
    g = graph(package)
    where = {(unit(i.source), unit(i.target), i.where) for i in g.imports}
    assert ("hpo.low", "hpo.low._impl", "module") in {(i.source, i.target, i.where) for i in g.imports}  # relative
    assert ("hpo.low", "hpo.high", "function") in where
    assert ("hpo.high", "hpo.low", "type_checking") in where
    assert components(unit_edges(g)) == [{"hpo.high", "hpo.low"}]


if __name__ == "__main__":
    g = graph()
    edges = unit_edges(g)
    for (a, b), imps in sorted(edges.items()):
        kinds = sorted({i.where for i in imps})
        flag = "UP " if layer_of(b) < layer_of(a) else "   "
        print(f"{flag}{a.removeprefix('hpo.')} -> {b.removeprefix('hpo.')}  ({len(imps)}: {', '.join(kinds)})")
        for line in _lines(imps):
            print(f"      {line}")
    print(f"\n{len(g.modules)} modules, {len(g.imports)} hpo imports, {len(edges)} edges between packages")
    print("components:", components(edges))
    for c in cycles(edges):
        print("cycle:", _describe(c, edges))
