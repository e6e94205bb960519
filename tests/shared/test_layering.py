"""Dependencies point one way (shared/STYLE.md): the lower layers (models, the access log,
the catalogue, crypto and the other small modules under shared/) never import the services,
not even inside a function."""

from __future__ import annotations

import ast
from pathlib import Path

import shared

SHARED = Path(shared.__file__).parent

# Modules under shared/ that may use the services, each with its reason.
MAY_USE_SERVICES = {
    "services": "the services themselves",
    "auth": "sign-in logic, on the services' level",
    "app.py": "the top: knows both blueprints",
    "cli.py": "the top: commands call services",
    "passkey_views.py": "web glue that belongs with the blueprints",
}


def imported_modules(path: Path) -> set[str]:
    """Every module a file imports, at the top or inside a function."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def lower_modules() -> list[Path]:
    return sorted(path for path in SHARED.rglob("*.py")
                  if path.relative_to(SHARED).parts[0] not in MAY_USE_SERVICES)


def test_no_lower_module_imports_a_service():
    offenders = sorted(
        f"{path.relative_to(SHARED.parent)} imports {name}"
        for path in lower_modules() for name in imported_modules(path)
        if name == "shared.services" or name.startswith("shared.services."))
    assert not offenders, offenders


def test_the_check_reads_the_lower_modules_and_sees_imports_inside_functions(tmp_path):
    """A positive control: the walk covers the access log and the models, and finds an
    import inside a function body."""
    checked = {str(path.relative_to(SHARED)) for path in lower_modules()}
    assert {"audit.py", "catalogue.py", "crypto.py", "models/base.py"} <= checked
    assert not any(name.startswith(("services/", "app.py")) for name in checked)
    sample = tmp_path / "sample.py"
    sample.write_text("def late():\n    from shared.services import erasure\n")
    assert "shared.services.erasure" in imported_modules(sample)
