"""The `public_surface` import-linter contract (tools/importlinter_contracts.py) run by `lint-imports` on a
throwaway package, and the project's own contracts as pyproject.toml states them."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

CONFIG = """
[tool.importlinter]
root_packages = ["pkg"]
contract_types = ["public_surface: tools.importlinter_contracts.PublicSurfaceContract"]

[[tool.importlinter.contracts]]
name = "public"
type = "public_surface"
containers = ["pkg.*"]
public = ["services", "selectors", "models"]
shared = ["pkg.core.errors", "pkg.core.not_built_yet"]
"""


def _lint(tmp_path: Path, modules: dict[str, str]) -> subprocess.CompletedProcess:
    """lint-imports as CI runs it, on a throwaway package `pkg` whose modules hold the given source."""
    for name, source in {"pkg.core.errors": "", "pkg.a.services": "", "pkg.a.services.sending": "",
                         "pkg.a.selectors": "", "pkg.a.models": "", "pkg.a.phones": "", **modules}.items():
        parts = name.split(".")
        for i in range(1, len(parts)):
            package = tmp_path.joinpath(*parts[:i])
            package.mkdir(exist_ok=True)
            (package / "__init__.py").touch()
        tmp_path.joinpath(*parts[:-1], parts[-1] + ".py").write_text(textwrap.dedent(source))
    (tmp_path / "pyproject.toml").write_text(CONFIG)
    return subprocess.run(
        [str(Path(sys.executable).parent / "lint-imports"), "--config", "pyproject.toml", "--no-cache"],
        cwd=tmp_path, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}, capture_output=True, text=True,
        timeout=60,
    )


def test_public_rooms_shared_modules_and_imports_inside_an_app_are_allowed(tmp_path):
    result = _lint(tmp_path, {
        "pkg.b.services": """
            from pkg.a import selectors, services
            from pkg.a.services import sending
            from pkg.core import errors
        """,
        "pkg.b.api.views": "from pkg.a import models\n",
        "pkg.a.services.sending": "from pkg.a import phones\n",
    })
    assert result.returncode == 0, result.stdout + result.stderr
    assert "public KEPT" in result.stdout


def test_a_private_module_of_another_app_is_reported_with_its_line(tmp_path):
    result = _lint(tmp_path, {
        "pkg.b.services": "import os\nfrom pkg.a import phones\n",
        "pkg.b.selectors": "from pkg.a.services import sending\nimport pkg.core.crypto\n",
        "pkg.core.crypto": "",
    })
    assert result.returncode == 1, result.stdout + result.stderr
    assert "public BROKEN" in result.stdout
    illegal = [line for line in result.stdout.splitlines() if line.startswith("- ")]
    assert illegal == ["- pkg.b.selectors -> pkg.core.crypto (l.2)", "- pkg.b.services -> pkg.a.phones (l.2)"]


def test_pyproject_states_the_three_contracts():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    assert config["root_packages"] == ["apps", "reach"]
    assert config["contract_types"] == ["public_surface: tools.importlinter_contracts.PublicSurfaceContract"]
    assert [(c["type"], c.get("source_modules"), c.get("forbidden_modules")) for c in config["contracts"]] == [
        ("layers", None, None), ("forbidden", ["apps"], ["reach"]), ("public_surface", None, None),
    ]
    assert config["contracts"][2]["public"] == ["services", "selectors", "models", "api"]
