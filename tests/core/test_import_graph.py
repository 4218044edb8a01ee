"""The pack's modules import each other without cycles.

Every import statement is an edge, at module level or inside a function: a lazy import hides a
cycle from the interpreter, not from the reader, and the next refactor that hoists it turns it
into an ImportError. Importing `a.b.c` also runs the package `a.b`, so that is an edge too.
"""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("insertanywhere", "nodes", "scripts")


def project_modules(root: Path) -> dict[str, Path]:
    """Dotted module name -> file, for every .py file of the pack's packages under `root`."""
    modules = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def imported_names(module: str, path: Path, modules: dict[str, Path]) -> list[str]:
    """The absolute dotted names (module, or module.attribute) that the file's imports refer to."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names += [_sibling_script(module, alias.name, modules) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parent = package.split(".")[: package.count(".") + 2 - node.level]
                base = ".".join(parent + ([node.module] if node.module else []))
            else:
                base = _sibling_script(module, node.module, modules)
            names += [base] + [f"{base}.{alias.name}" for alias in node.names]
    return names


def _sibling_script(module: str, name: str, modules: dict[str, Path]) -> str:
    """Scripts run as files import their siblings top-level: `import helper` in scripts/ is scripts.helper.
    The top-level name `nodes` is ComfyUI's nodes.py, never the pack's nodes package (imported relatively)."""
    if module.startswith("scripts.") and f"scripts.{name}" in modules:
        return f"scripts.{name}"
    return "comfyui." + name if name.split(".")[0] == "nodes" else name


def _targets(name: str, modules: dict[str, Path]) -> set[str]:
    """The project modules that importing `name` runs: the deepest module it names and its packages."""
    parts = name.split(".")
    return {".".join(parts[:i]) for i in range(1, len(parts) + 1)} & modules.keys()


def import_graph(modules: dict[str, Path]) -> dict[str, set[str]]:
    graph = {}
    for module, path in modules.items():
        targets = set().union(*(_targets(n, modules) for n in imported_names(module, path, modules)))
        graph[module] = {t for t in targets if t != module and not module.startswith(t + ".")}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle as [a, b, ..., a], or None (depth-first search)."""
    done, stack = set(), []

    def visit(node):
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt in stack:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in done and (cycle := visit(nxt)):
                return cycle
        done.add(stack.pop())
        return None

    for node in sorted(graph):
        if node not in done and (cycle := visit(node)):
            return cycle
    return None


def test_no_import_cycles():
    cycle = find_cycle(import_graph(project_modules(ROOT)))
    assert cycle is None, "import cycle: " + " -> ".join(cycle) + " (move the shared piece to a module both can import)"


def test_the_graph_reads_relative_lazy_package_and_script_imports(tmp_path):
    files = {
        "insertanywhere/__init__.py": "",
        "nodes/__init__.py": "from insertanywhere import a\n",
        "insertanywhere/a.py": "from .sub.c import h\n",
        "insertanywhere/sub/__init__.py": "from .b import g\n",
        "insertanywhere/sub/b.py": "import numpy\ndef g():\n    from ..a import x\n",
        "insertanywhere/sub/c.py": "from . import b\n",
        "scripts/build.py": "from helper import y\nimport insertanywhere.a\nimport nodes\n",
        "scripts/helper.py": "def y():\n    import build\n",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    graph = import_graph(project_modules(tmp_path))
    assert graph == {
        "nodes": {"insertanywhere", "insertanywhere.a"},
        "insertanywhere": set(),
        "insertanywhere.a": {"insertanywhere.sub", "insertanywhere.sub.c"},
        "insertanywhere.sub": {"insertanywhere.sub.b"},
        "insertanywhere.sub.b": {"insertanywhere.a"},
        "insertanywhere.sub.c": {"insertanywhere.sub.b"},
        "scripts.build": {"scripts.helper", "insertanywhere", "insertanywhere.a"},
        "scripts.helper": {"scripts.build"},
    }
    assert find_cycle(graph) == ["insertanywhere.a", "insertanywhere.sub", "insertanywhere.sub.b", "insertanywhere.a"]
    del graph["insertanywhere.sub.b"]
    assert find_cycle(graph) == ["scripts.build", "scripts.helper", "scripts.build"]
