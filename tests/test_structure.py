"""The code's shape: no import cycles in chronoslib, no Streamlit in the library, no module past ~400 lines, and a
README layout table that names exactly the modules that exist."""

from __future__ import annotations

import ast
import os
import re

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = os.path.join(ROOT, "chronoslib")
MAX_LINES = 400
# Modules allowed past MAX_LINES, each with the reason next to it. Keep this list short.
ALLOWED: dict[str, tuple[int, str]] = {}


def _modules(folder: str, prefix: str) -> dict[str, str]:
    """Dotted module name -> file path for every .py file under ``folder``."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = [d for d in dirnames if d != "__pycache__"]
        for f in filenames:
            if f.endswith(".py"):
                rel = os.path.relpath(os.path.join(dirpath, f), folder)[:-3].replace(os.sep, ".")
                name = prefix if rel == "__init__" else f"{prefix}.{rel.removesuffix('.__init__')}"
                out[name] = os.path.join(dirpath, f)
    return out


def _imports(name: str, path: str, known: set[str]) -> set[str]:
    """chronoslib modules that ``name`` imports anywhere in its file (module level or inside functions)."""
    tree = ast.parse(open(path, encoding="utf-8").read(), path)
    is_pkg = path.endswith("__init__.py")
    base = name.split(".") if is_pkg else name.split(".")[:-1]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parent = base[: len(base) - node.level + 1]
                mod = ".".join(parent + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            # ``from pkg import sub`` imports the submodule; ``from mod import name`` imports the module
            targets = [f"{mod}.{a.name}" if f"{mod}.{a.name}" in known else mod for a in node.names]
        else:
            continue
        for t in targets:
            while t and t not in known:
                t = t.rpartition(".")[0]
            if t and t != name:
                found.add(t)
    return found


def _find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    colour = dict.fromkeys(graph, 0)  # 0 new, 1 on the stack, 2 done
    stack: list[str] = []

    def visit(n: str) -> list[str] | None:
        colour[n] = 1
        stack.append(n)
        for m in sorted(graph[n]):
            if colour[m] == 1:
                return stack[stack.index(m):] + [m]
            if colour[m] == 0 and (cyc := visit(m)):
                return cyc
        stack.pop()
        colour[n] = 2
        return None

    for n in sorted(graph):
        if colour[n] == 0 and (cyc := visit(n)):
            return cyc
    return None


def _graph() -> dict[str, set[str]]:
    mods = _modules(PACKAGE, "chronoslib")
    known = set(mods)
    # The package's __init__ re-exports the public API; importing a submodule runs it, but that is not a design
    # dependency of the submodule, so edges *into* the package root are left out.
    return {n: _imports(n, p, known) - {"chronoslib"} for n, p in mods.items()}


def test_cycle_finder_reports_a_cycle_it_is_given():
    assert _find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def test_the_import_walk_sees_relative_and_lazy_imports(tmp_path):
    pkg = tmp_path / "p"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from .b import x\n")
    (pkg / "b.py").write_text("def f():\n    from . import a\n")
    mods = _modules(str(pkg), "p")
    assert _imports("p.a", mods["p.a"], set(mods)) == {"p.b"}
    assert _imports("p.b", mods["p.b"], set(mods)) == {"p.a"}


def test_chronoslib_has_no_import_cycle():
    graph = _graph()
    assert len(graph) > 20, "the import walk found too few modules"
    assert _find_cycle(graph) is None, f"import cycle: {' -> '.join(_find_cycle(graph) or [])}"


def test_the_library_never_imports_streamlit():
    for name, path in _modules(PACKAGE, "chronoslib").items():
        tree = ast.parse(open(path, encoding="utf-8").read(), path)
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                mods = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                assert not any(m.split(".")[0] == "streamlit" for m in mods), f"{name} imports streamlit"


def _sized_files() -> list[str]:
    files = [os.path.join(ROOT, "app.py")]
    for folder in ("chronoslib", "app_pages"):
        files += list(_modules(os.path.join(ROOT, folder), folder).values())
    return files


@pytest.mark.parametrize("path", _sized_files(), ids=lambda p: os.path.relpath(p, ROOT))
def test_no_module_is_longer_than_the_limit(path):
    rel = os.path.relpath(path, ROOT).replace(os.sep, "/")
    limit = ALLOWED.get(rel, (MAX_LINES, ""))[0]
    n = sum(1 for _ in open(path, encoding="utf-8"))
    assert n <= limit, f"{rel} has {n} lines (limit {limit}): split it along a seam"


def test_the_allow_list_names_existing_files_with_reasons():
    for rel, (limit, reason) in ALLOWED.items():
        assert os.path.exists(os.path.join(ROOT, rel)), rel
        assert limit > MAX_LINES and len(reason) > 20, rel


def _layout_names() -> set[str]:
    text = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
    table = text[text.index("## Layout"):]
    table = table[: table.index("\n\n", table.index("| module"))]
    return {m for cell in re.findall(r"^\| ([^|]+) \|", table, re.M) for m in re.findall(r"`([^`]+)`", cell)}


def test_readme_layout_table_names_exactly_the_modules_that_exist():
    named = _layout_names()
    present = {f for f in os.listdir(PACKAGE) if f.endswith(".py") and f not in ("__init__.py", "__main__.py")}
    present |= {f"{d}/" for d in os.listdir(PACKAGE)
                if os.path.isdir(os.path.join(PACKAGE, d)) and d != "__pycache__"}
    assert present - named == set(), f"modules missing from the README layout table: {sorted(present - named)}"
    assert named - present == set(), f"the README layout table names missing modules: {sorted(named - present)}"
