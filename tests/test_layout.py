"""The import arrows of the six packages point one way, and stay that way."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.disable_socket

FOREIGN = ("sfmodels", "sfmodels_emulator", "sfmodels_spark", "langchain_sfmodels",
           "llama_index_sfmodels", "langchain_core", "llama_index")


def _imported_after(code: str) -> list[str]:
    """The top-level packages loaded by ``code`` in a fresh interpreter."""
    probe = code + "\nimport sys, json\nprint(json.dumps(sorted({m.split('.')[0] " \
                   "for m in sys.modules})))"
    out = subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True,
                         text=True, timeout=120).stdout
    return list(json.loads(out.strip().splitlines()[-1]))


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


def test_cli_help_loads_no_sub_command() -> None:
    loaded = _imported_after(
        "import contextlib, io\nfrom sfmodels.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n    main([])\n")
    assert "httpx" not in loaded and "langchain_core" not in loaded
    assert "llama_index" not in loaded
