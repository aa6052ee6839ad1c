"""The package's import rules, checked on the source text (no module is imported).

Import cycles make start-up order matter and hide which layer owns what, and a lower room
that reaches up into a front end drags the web server into the library. These rules are the
ones docs/architecture.md promises; an import inside a function counts like one at the top.
"""

import ast
import graphlib
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "m2fp"

# Rooms no other room may import: the entry points sit on top of everything else.
FRONT_ENDS = {"cli": {"__main__"}, "server": {"cli"}, "scan": {"cli"}}
# Modules of the root every room may use, which themselves use at most each other.
BASE_MODULES = {"errors", "defaults", "labels", "task", "url_policy"}


def module_name(package: Path, path: Path) -> str:
    parts = list(path.relative_to(package.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(package: Path, path: Path, known: set[str]) -> set[str]:
    """The package's modules that `path` imports, each resolved to the longest known name."""
    name = module_name(package, path)
    base_package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:
                anchor = base_package.split(".")[: len(base_package.split(".")) - node.level + 1]
                module = ".".join(anchor + ([module] if module else []))
            targets = [module] + [f"{module}.{alias.name}" for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            # A package's __init__ is where its children live, not a cycle partner of them.
            if target and target != name and not name.startswith(target + "."):
                found.add(target)
    return found


def import_graph(package: Path) -> dict[str, set[str]]:
    files = {module_name(package, path): path for path in package.rglob("*.py")}
    return {name: imported_modules(package, path, set(files)) for name, path in files.items()}


def room(module: str) -> str:
    """`m2fp.server.parse.queue` -> `server`; a root module is its own room."""
    return module.split(".")[1] if "." in module else "<package>"


def cycle_in(graph: dict[str, set[str]]) -> list[str] | None:
    try:
        tuple(graphlib.TopologicalSorter(graph).static_order())
    except graphlib.CycleError as error:
        return list(error.args[1])
    return None


def test_the_package_has_no_import_cycle() -> None:
    assert cycle_in(import_graph(PACKAGE)) is None


def test_the_cycle_check_finds_a_cycle_through_a_function_level_import(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "sub" / "__init__.py").write_text("")
    (package / "a.py").write_text("from pkg.sub import b\n")
    (package / "sub" / "b.py").write_text("def f():\n    from ..a import thing\n")
    cycle = cycle_in(import_graph(package))
    assert cycle is not None and {"pkg.a", "pkg.sub.b"} <= set(cycle)


def test_modeling_holds_only_its_own_modules() -> None:
    graph = import_graph(PACKAGE)
    outside = {
        (name, target)
        for name, targets in graph.items()
        if room(name) == "modeling"
        for target in targets
        if room(target) != "modeling"
    }
    assert outside == set()


@pytest.mark.parametrize("front_end", sorted(FRONT_ENDS))
def test_a_front_end_is_imported_only_from_above(front_end: str) -> None:
    graph = import_graph(PACKAGE)
    allowed = FRONT_ENDS[front_end] | {front_end}
    importers = {
        name
        for name, targets in graph.items()
        if room(name) not in allowed
        for target in targets
        if room(target) == front_end
    }
    assert importers == set()


def test_base_modules_import_only_each_other() -> None:
    graph = import_graph(PACKAGE)
    for base in BASE_MODULES:
        assert {room(target) for target in graph[f"m2fp.{base}"]} <= BASE_MODULES, base
