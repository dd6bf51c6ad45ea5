"""The packages' dependency direction: ``training`` and ``service`` never import each
other (what they share lives in ``cnnlab``), and ``cnnlab`` imports neither."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def imported_packages(package: str) -> dict[str, set[str]]:
    """Each module file of ``package`` -> the top-level packages it imports."""
    found = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names.add(node.module.split(".")[0])
        found[str(path.relative_to(ROOT))] = names
    return found


@pytest.mark.parametrize(("package", "forbidden"), [
    ("training", {"service"}),
    ("service", {"training"}),
    ("cnnlab", {"service", "training"}),
])
def test_a_package_imports_only_what_it_may(package: str, forbidden: set[str]) -> None:
    modules = imported_packages(package)
    assert modules  # the package was found and read
    crossing = {module: sorted(names & forbidden) for module, names in modules.items()
                if names & forbidden}
    assert not crossing
