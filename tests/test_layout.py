"""The package's layout: stages at the top, libraries in folders, no import circle, nothing too long to read.

The top of ``lpa/`` holds the stage modules only, each run by a Snakemake rule as
``python -m lpa.<stage>`` and imported by no other module; libraries sit in folders named for
what they hold, and the tools run by hand (``lpa.tools``) are imported by nothing outside it.

The import graph is read from the source (``ast``): every ``import lpa...`` and ``from lpa...
import`` at module level and inside functions (a package's ``__init__`` that re-exports its
modules, as ``lpa.losses``, is not an import of it by them); a circle is named module by module.
"""

import ast
import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "lpa"
RULES = PACKAGE.parent / "workflow" / "rules"
MAX_FUNCTION_LINES = 80
MAX_MODULE_LINES = 450


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imported(name: str, node: ast.AST) -> set[str]:
    """The lpa modules one import statement of module ``name`` loads."""
    if isinstance(node, ast.Import):
        targets = [alias.name for alias in node.names]
    else:
        base = node.module or ""
        if node.level:  # relative: from the module's package, up level - 1
            package = name if MODULES[name].name == "__init__.py" else name.rpartition(".")[0]
            package = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1])
            base = f"{package}.{base}" if base else package
        # ``from lpa.x import y`` loads lpa.x.y when y is a module, else lpa.x
        targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base for alias in node.names]
    return {t for t in targets if t in MODULES}


def import_graph() -> dict[str, set[str]]:
    graph = {}
    for name, path in MODULES.items():
        nodes = ast.walk(ast.parse(path.read_text(), str(path)))
        edges = set().union(*(imported(name, n) for n in nodes if isinstance(n, (ast.Import, ast.ImportFrom))))
        graph[name] = edges - {name}
    return graph


def find_circle(graph: dict[str, set[str]]) -> list[str] | None:
    """One circle of imports, as [a, b, ..., a], or None."""
    state: dict[str, str] = {}  # "open" while on the path, "done" after
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = "open"
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state and (circle := visit(nxt)):
                return circle
        state[node] = "done"
        path.pop()
        return None

    for node in sorted(graph):
        if node not in state and (circle := visit(node)):
            return circle
    return None


def test_the_package_imports_form_no_circle():
    graph = import_graph()
    assert {"lpa.train", "lpa.models.checkpoints", "lpa.augment.recipes"} <= set(graph)
    assert "lpa.models.networks" in graph["lpa.models.checkpoints"]
    assert "lpa.augment.steps" in graph["lpa.augment.recipes"]
    circle = find_circle(graph)
    assert circle is None, "import circle: " + " -> ".join(circle)


def test_a_circle_is_found_and_named():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert find_circle(graph) == ["a", "b", "c", "a"]
    assert find_circle({"a": {"b"}, "b": set()}) is None
    tree = ast.parse("def f():\n    from lpa import train\n")  # an import inside a function counts
    assert imported("lpa.models.checkpoints", next(n for n in ast.walk(tree) if isinstance(n, ast.ImportFrom))) == {
        "lpa.train"
    }


def test_no_module_or_function_is_too_long_to_read():
    too_long = []
    for name, path in MODULES.items():
        source = path.read_text()
        if (lines := len(source.splitlines())) > MAX_MODULE_LINES:
            too_long.append(f"{path.relative_to(PACKAGE.parent)}: {lines} lines (at most {MAX_MODULE_LINES})")
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                start = min([node.lineno] + [d.lineno for d in node.decorator_list])
                if (lines := node.end_lineno - start + 1) > MAX_FUNCTION_LINES:
                    too_long.append(f"{name}.{node.name} (line {node.lineno}): {lines} lines (at most 80)")
    assert not too_long, "\n".join(too_long)


def stage_modules() -> set[str]:
    """The modules the workflow's rules run (``python -m lpa.<stage>``, or a rule's launcher ``-m lpa.train``)."""
    text = "".join(p.read_text() for p in sorted(RULES.glob("*.smk")))
    return set(re.findall(r"-m (lpa\.[a-z_.]+)", text))


def test_the_top_of_the_package_holds_the_stages_and_nothing_else():
    top = {n for n, p in MODULES.items() if p.parent == PACKAGE and p.name != "__init__.py"}
    stages = stage_modules()
    assert {"lpa.data", "lpa.train", "lpa.kmeans", "lpa.attributes", "lpa.import_paco"} <= stages
    assert stages - top == set(), f"modules run by rules but not at the top of lpa/: {sorted(stages - top)}"
    assert top - stages == set(), f"modules at the top of lpa/ that no rule runs (a library belongs in a folder): "\
        f"{sorted(top - stages)}"


def test_no_stage_module_or_tool_is_imported_by_another_module():
    graph, stages = import_graph(), stage_modules()
    wrong = [f"{a} imports {b}" for a, edges in sorted(graph.items()) for b in sorted(edges)
             if b in stages or (b.startswith("lpa.tools.") and not a.startswith("lpa.tools"))]  # fmt: skip
    assert not wrong, "a stage (or a tool) is an entry point, not a library: " + "; ".join(wrong)
