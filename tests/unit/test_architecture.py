"""The project's boundaries, read from the source with `ast` (nothing is imported): no import cycle
between modules of the apps and `shopcart/`, and apps use each other only through `services`/`selectors`.
Imports inside functions count too: a function-local import is how a cycle gets hidden, not removed."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
APPS = ("accounts", "catalog", "cart")
PACKAGES = (*APPS, "shopcart")
# What one app may import of another (docs: README "Architecture").
PUBLIC_MODULES = ("services", "selectors")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_modules() -> dict[str, Path]:
    return {
        _module_name(path): path
        for package in PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
        if "migrations" not in path.parts
    }


def _is_type_checking_block(node: ast.AST) -> bool:
    test = getattr(node, "test", None)
    return isinstance(node, ast.If) and (
        (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING")
        or (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")
    )


def _import_nodes(tree: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import that runs: module level and inside functions, not under `if TYPE_CHECKING:`."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if _is_type_checking_block(node):
            stack.extend(node.orelse)  # type: ignore[attr-defined]
            continue
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        stack.extend(ast.iter_child_nodes(node))


def imported_modules(module: str, path: Path, known: set[str]) -> set[str]:
    """The project modules `module` imports (a package counts as its __init__)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in _import_nodes(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, *([base] if base else [])])
            # `from cart import conf` imports the module cart.conf; `from cart.conf import X` imports cart.conf.
            names = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names]
        for name in names:
            # Importing a.b.c runs a and a.b first.
            parts = name.split(".")
            found.update(".".join(parts[:end]) for end in range(1, len(parts) + 1) if ".".join(parts[:end]) in known)
    found.discard(module)
    return found


def import_graph() -> dict[str, set[str]]:
    modules = project_modules()
    known = set(modules)
    return {module: imported_modules(module, path, known) for module, path in modules.items()}


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each as a sorted list."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return components


def test_the_graph_sees_function_local_imports() -> None:
    graph = {"a": {"b"}, "b": {"a"}, "c": {"a"}}
    assert find_cycles(graph) == [["a", "b"]]
    assert find_cycles({"a": {"b"}, "b": set()}) == []
    source = ROOT / "tests" / "unit" / "test_architecture.py"
    # This module imports nothing of the project; a project module with a local import must show it.
    assert imported_modules("tests.unit.test_architecture", source, set(project_modules())) == set()
    assert "shopcart.es" in import_graph()["shopcart.apps"]  # imported inside AppConfig.ready()


def test_no_import_cycles_between_the_apps_and_shopcart() -> None:
    cycles = find_cycles(import_graph())
    assert cycles == [], "import cycles: " + "; ".join(" <-> ".join(cycle) for cycle in cycles)


def test_apps_import_each_other_only_through_services_and_selectors() -> None:
    wrong = []
    for module, targets in import_graph().items():
        app = module.split(".")[0]
        if app not in APPS:
            continue
        for target in targets:
            other, _, rest = target.partition(".")
            if other in APPS and other != app and rest and rest.split(".")[0] not in PUBLIC_MODULES:
                wrong.append(f"{module} imports {target}")
    assert wrong == [], "apps import each other only via services/selectors: " + "; ".join(sorted(wrong))
