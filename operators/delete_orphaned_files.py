"""The ``delete_orphaned_files`` operator."""

from __future__ import annotations

import fiftyone.operators as foo
import fiftyone.operators.types as types

from ._pipeline import delete_orphaned_files, orphaned_folders


class DeleteOrphanedFiles(foo.Operator):
    """Deletes FIXER's files of datasets that no longer exist."""

    @property
    def config(self) -> foo.OperatorConfig:
        return foo.OperatorConfig(
            name="delete_orphaned_files",
            label="Delete FIXER files of deleted datasets",
            description="fo.delete_dataset() leaves FIXER's folder "
            "fixer/<dataset id>/ behind; delete those of datasets that no "
            "longer exist",
            icon="/assets/icon.svg",
            dynamic=True,
        )

    def resolve_input(self, ctx):
        inputs = types.Object()
        folders = orphaned_folders()
        inputs.view(
            "orphans",
            types.Notice(
                label=f"{len(folders)} folder(s) of deleted datasets"
                + (f": {', '.join(folders[:5])}" if folders else "")
            ),
        )
        return types.Property(
            inputs,
            view=types.View(label="Delete FIXER files of deleted datasets"),
        )

    def execute(self, ctx):
        return {"deleted": delete_orphaned_files()}

    def __call__(self):
        """Deletes them from Python; returns the execution result (its
        ``result["deleted"]`` lists the folders)."""
        return foo.execute_operator(self.uri, {})
