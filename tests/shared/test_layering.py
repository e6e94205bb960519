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


# What only a web request has. A service takes what it needs as arguments, so that a CLI
# command, a test or a view can call it alike.
REQUEST_STATE = frozenset({"flask.session", "flask.g", "flask.request",
                           "flask_login.current_user"})
# The only modules under shared/ that know the blueprints (STYLE: dependencies).
MAY_KNOW_BLUEPRINTS = frozenset({"app.py", "cli.py"})


def request_state_used(path: Path) -> set[str]:
    """The request state a file imports, or reads through ``flask.`` / ``flask_login.``."""
    used = imported_modules(path) & REQUEST_STATE
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            name = f"{node.value.id}.{node.attr}"
            if name in REQUEST_STATE:
                used.add(name)
    return used


def service_modules() -> list[Path]:
    return sorted((SHARED / "services").rglob("*.py"))


def test_no_service_reads_the_request_session_or_signed_in_user():
    offenders = sorted(f"{path.relative_to(SHARED.parent)} uses {name}"
                       for path in [*service_modules(), SHARED / "audit.py"]
                       for name in request_state_used(path))
    assert not offenders, offenders


def test_nothing_in_shared_but_the_app_and_cli_imports_a_blueprint_package():
    offenders = sorted(
        f"{path.relative_to(SHARED.parent)} imports {name}"
        for path in SHARED.rglob("*.py")
        if str(path.relative_to(SHARED)) not in MAY_KNOW_BLUEPRINTS
        for name in imported_modules(path)
        if name.split(".")[0] in ("portal", "staff"))
    assert not offenders, offenders


def test_the_request_and_blueprint_checks_see_what_they_look_for(tmp_path):
    """A positive control: the services are walked, and each way of reaching request
    state or a blueprint is found, also inside a function."""
    assert {"consents.py", "casefile.py", "erasure.py"} <= {p.name for p in service_modules()}
    sample = tmp_path / "sample.py"
    sample.write_text("import flask\nfrom flask import current_app, session\n"
                      "def late():\n    from flask_login import current_user\n"
                      "    from staff.clients import bp\n    return flask.g, flask.request\n")
    assert request_state_used(sample) == set(REQUEST_STATE)
    assert "staff.clients" in imported_modules(sample)
    assert "shared.models.staff" not in imported_modules(sample)
