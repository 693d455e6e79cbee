"""The six packages of the distribution, and their import arrows: one way, and staying so."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.disable_socket

ROOT = Path(__file__).resolve().parents[1]
#: The library, the emulator, the application and the three front ends.
PACKAGES = ["langchain_sfmodels", "llama_index_sfmodels", "sfmodels", "sfmodels_core",
            "sfmodels_emulator", "sfmodels_spark"]
FOREIGN = ("sfmodels", "sfmodels_emulator", "sfmodels_spark", "langchain_sfmodels",
           "llama_index_sfmodels", "langchain_core", "llama_index")


def _imported_after(code: str) -> list[str]:
    """The top-level packages loaded by ``code`` in a fresh interpreter."""
    probe = code + "\nimport sys, json\nprint(json.dumps(sorted({m.split('.')[0] " \
                   "for m in sys.modules})))"
    out = subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True,
                         text=True, timeout=120).stdout
    return list(json.loads(out.strip().splitlines()[-1]))


def test_the_distribution_is_six_packages_with_a_test_folder_each() -> None:
    on_disk = sorted(p.parent.name for p in ROOT.glob("*/__init__.py")
                     if p.parent.name not in ("tests", "benchmarks", "examples", "docs"))
    assert on_disk == PACKAGES
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    wheel = re.search(r"\[tool\.hatch\.build\.targets\.wheel\]\npackages = \[([^]]*)\]", pyproject)
    assert wheel is not None
    assert sorted(re.findall(r'"(\w+)"', wheel.group(1))) == PACKAGES
    # A folder per package under tests/ (the application's is app/, the core's core/).
    folders = {"sfmodels_core": "core", "sfmodels_emulator": "emulator", "sfmodels": "app",
               "langchain_sfmodels": "langchain", "llama_index_sfmodels": "llama_index",
               "sfmodels_spark": "spark"}
    assert sorted(folders) == PACKAGES
    assert all((ROOT / "tests" / folder / "__init__.py").is_file() for folder in folders.values())


def test_the_core_imports_nothing_of_ours_nor_any_framework() -> None:
    loaded = _imported_after(
        "import pkgutil, importlib, sfmodels_core\n"
        "for m in pkgutil.walk_packages(sfmodels_core.__path__, 'sfmodels_core.'):\n"
        "    importlib.import_module(m.name)\n")
    assert [name for name in loaded if name in FOREIGN] == []


def test_the_emulator_needs_only_the_standard_library() -> None:
    loaded = _imported_after(
        "import pkgutil, importlib, sfmodels_emulator\n"
        "for m in pkgutil.walk_packages(sfmodels_emulator.__path__, 'sfmodels_emulator.'):\n"
        "    if not m.name.endswith('__main__'):\n"
        "        importlib.import_module(m.name)\n")
    at_startup = _imported_after("")  # what this interpreter's site hooks load anyway
    stdlib = set(sys.stdlib_module_names) | {"sfmodels_emulator", "__main__"}
    assert sorted(set(loaded) - stdlib - set(at_startup)) == []


@pytest.mark.parametrize("package, other", [
    ("langchain_sfmodels", "llama_index"), ("llama_index_sfmodels", "langchain_core")])
def test_a_framework_package_never_loads_the_other_framework(package: str, other: str) -> None:
    loaded = _imported_after(
        f"import pkgutil, importlib, {package}\n"
        f"for m in pkgutil.walk_packages({package}.__path__, '{package}.'):\n"
        "    importlib.import_module(m.name)\n")
    assert other not in loaded and "sfmodels" not in loaded and "sfmodels_emulator" not in loaded


def test_spark_loads_neither_framework() -> None:
    loaded = _imported_after(
        "import pkgutil, importlib, sfmodels_spark\n"
        "for m in pkgutil.walk_packages(sfmodels_spark.__path__, 'sfmodels_spark.'):\n"
        "    importlib.import_module(m.name)\n")
    assert [name for name in loaded if name in FOREIGN] == ["sfmodels_spark"]


def test_cli_help_loads_no_sub_command() -> None:
    loaded = _imported_after(
        "import contextlib, io\nfrom sfmodels.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n    main([])\n")
    assert "httpx" not in loaded and "langchain_core" not in loaded
    assert "llama_index" not in loaded


def _core_imports() -> dict[str, set[str]]:
    """Each module of sfmodels_core and the modules of sfmodels_core it imports anywhere (at the
    top, in a function, under TYPE_CHECKING)."""
    core = ROOT / "sfmodels_core"
    names = {}
    for path in core.rglob("*.py"):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        names[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    graph: dict[str, set[str]] = {}
    for name, path in names.items():
        package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        found = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                base = package[:len(package) - node.level + 1] if node.level else []
                prefix = ".".join([*base, *([node.module] if node.module else [])])
                subs = {f"{prefix}.{alias.name}" for alias in node.names} & set(names)
                found |= subs if len(subs) == len(node.names) else {prefix, *subs}
        graph[name] = (found & set(names)) - {name}
    return graph


def test_the_core_has_no_import_cycle() -> None:
    graph = _core_imports()
    done: set[str] = set()

    def walk(module: str, path: list[str]) -> list[str] | None:
        if module in path:
            return [*path[path.index(module):], module]
        if module in done:
            return None
        for imported in sorted(graph[module]):
            cycle = walk(imported, [*path, module])
            if cycle is not None:
                return cycle
        done.add(module)
        return None

    assert [cycle for module in sorted(graph) if (cycle := walk(module, []))] == []
