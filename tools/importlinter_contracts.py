"""Import-linter contract types of our own (loaded by `lint-imports` through pyproject's `contract_types`).

Lives outside `apps/` because it imports import-linter, a dev dependency the running service never loads.
"""

from __future__ import annotations

import grimp
from importlinter import Contract, ContractCheck, fields, output
from importlinter.application import contract_utils
from importlinter.domain import helpers


class PublicSurfaceContract(Contract):
    """Across the packages matched by `containers`, only their public rooms may be imported.

    A module of one container may import from another container only a module whose first name under
    that container is in `public` (with everything below it: a `services/` package is still `services`),
    or a module listed in `shared` (with its descendants): the kernel every app builds on. Imports inside
    one container are not checked.

    Options:
        - containers: module expressions of the packages to check, e.g. `apps.*`.
        - public: names of the public rooms, e.g. `services`, `selectors`, `models`.
        - shared: modules any container may import, e.g. `apps.core.errors`. A name that does not
          exist (yet) is allowed, so the list can be merged ahead of the module.
        - ignore_imports: import expressions to leave out. (Optional.)
    """

    type_name = "public_surface"

    containers = fields.ListField(subfield=fields.ModuleExpressionField())
    public = fields.ListField(subfield=fields.StringField())
    shared = fields.ListField(subfield=fields.StringField(), required=False)
    ignore_imports = fields.SetField(subfield=fields.ImportExpressionField(), required=False)
    unmatched_ignore_imports_alerting = fields.EnumField(
        contract_utils.AlertLevel, default=contract_utils.AlertLevel.ERROR
    )

    def check(self, graph: grimp.ImportGraph, verbose: bool) -> ContractCheck:
        import_removal = contract_utils.remove_ignored_imports_and_report(
            graph=graph,
            ignore_imports=self.ignore_imports,  # type: ignore[arg-type]
            unmatched_alerting=self.unmatched_ignore_imports_alerting,  # type: ignore[arg-type]
        )
        containers = sorted(
            module.name
            for module in helpers.module_expressions_to_modules(
                graph=graph,
                expressions=self.containers,  # type: ignore[arg-type]
            )
        )
        public = set(self.public)  # type: ignore[arg-type]
        shared = tuple(self.shared or ())  # type: ignore[arg-type]

        def container_of(name: str) -> str | None:
            for container in containers:
                if name == container or name.startswith(container + "."):
                    return container
            return None

        def is_public(name: str, container: str) -> bool:
            if any(name == s or name.startswith(s + ".") for s in shared):
                return True
            rest = name[len(container) + 1 :]
            return bool(rest) and rest.split(".", 1)[0] in public

        illegal = []
        for importer_container in containers:
            importers = {importer_container} | graph.find_descendants(importer_container)
            for importer in sorted(importers):
                for imported in sorted(graph.find_modules_directly_imported_by(importer)):
                    imported_container = container_of(imported)
                    if imported_container in (None, importer_container):
                        continue
                    if is_public(imported, imported_container):
                        continue
                    lines = tuple(
                        detail["line_number"]
                        for detail in graph.get_import_details(importer=importer, imported=imported)
                    )
                    illegal.append((importer, imported, lines))

        return ContractCheck(
            kept=not illegal,
            warnings=list(import_removal.warnings),
            ignored_import_count=import_removal.ignored_import_count,
            metadata={"illegal": illegal},
        )

    def render_broken_contract(self, check: ContractCheck) -> None:
        output.print_error(
            f"Only {', '.join(sorted(self.public))} (and the shared modules) may be imported across "  # type: ignore[arg-type]
            "these packages:",
            bold=False,
        )
        output.new_line()
        for importer, imported, lines in check.metadata["illegal"]:
            output.print_error(f"- {importer} -> {imported} (l.{', '.join(map(str, lines))})", bold=False)
        output.new_line()
