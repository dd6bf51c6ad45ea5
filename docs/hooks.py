"""MkDocs hooks: the configuration page's table is made from the ``Settings`` class (so it
cannot drift from the code), and the bundled versions' training reports are published
with the site (so the training page shows the current curves)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files

from cnnlab.layout import list_models, list_versions

ROOT = Path(__file__).resolve().parent.parent
MARKER = "<!-- settings table -->"
REPORTS = ("training_curves.png", "confusion_matrix.png")


def settings_table() -> str:
    """One row per setting: its variable, default and description."""
    from service.runtime.settings import Settings

    rows = ["| setting | default | meaning |", "| --- | --- | --- |"]
    for name, field in Settings.model_fields.items():
        if name == "run_dir":  # set by the supervisor for its workers, not by users
            continue
        default = field.get_default(call_default_factory=True)
        shown = ("auto" if name == "workers" else "unset" if default is None
                 else json.dumps(default) if isinstance(default, list | dict)
                 else str(default))
        meaning = (field.description or "").replace("|", "\\|")
        rows.append(f"| `CNNLAB_{name.upper()}` | `{shown}` | {meaning} |")
    return "\n".join(rows)


def on_page_markdown(markdown: str, page: Any, config: Any, files: Files) -> str:
    return markdown.replace(MARKER, settings_table()) if MARKER in markdown else markdown


def on_files(files: Files, config: Any) -> Files:
    """``img/reports/<model>-<version>-<report>.png`` for each bundled version's reports."""
    models = ROOT / "models"
    for name in list_models(models):
        for version in list_versions(models / name):
            for report in REPORTS:
                path = models / name / str(version) / "reports" / report
                if path.is_file():
                    files.append(File.generated(
                        config, f"img/reports/{name}-{version}-{report}",
                        abs_src_path=str(path)))
    return files
