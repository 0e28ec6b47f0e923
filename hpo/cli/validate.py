"""`hpo validate`: a space file and its data checked, nothing run or written."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from hpo.cli._guard import guarded

if TYPE_CHECKING:
    from hpo.prepare import Prepared


def validate(
    ctx: typer.Context,
    space: Path = typer.Argument(..., help="Search-space YAML file."),
    as_json: bool = typer.Option(
        False, "--json", help="Print one JSON object (ok, problems with their keys, summary), nothing else; same exit codes."
    ),
) -> None:
    """Check a space file and its data without running or writing anything."""

    def body() -> None:
        from hpo.ledger import check_data
        from hpo.prepare import check_writable, prepare
        from hpo.tracking._data_space import tracked_digests

        prep = prepare(space)
        url = check_writable(prep.workspace)  # the storage `hpo run` would write (an SQLite file is read, not opened)
        # The data ledger: the version's digests, if the storage or its MLflow experiment knows them.
        check_data(url, prep.data, prep.where, tracked_digests(prep.workspace, prep.data.version))
        summary = _summary(prep)
        if as_json:
            from hpo.cli._output import print_json

            print_json({"ok": True, "file": str(space), "problems": [], "summary": summary})
            return
        d = prep.data
        rows = ", ".join(f"{s} {getattr(d, s).rows}" for s in ("train", "validation", "test"))
        shown = ", ".join(map(repr, d.classes[:10])) + (", ..." if len(d.classes) > 10 else "")
        classes = f", {len(d.classes)} classes: {shown}" if d.classes else ""
        typer.echo(
            f"{space}: ok: study {prep.space.study!r}, {len(prep.space.params)} tuned params, "
            f"{d.task} on {d.target!r} ({rows} rows, {len(d.features)} features{classes}), "
            f"metric {prep.space.metric} ({prep.space.direction})" + _scoring(prep)
        )
        from hpo.models import estimator_inputs, is_class_path  # after hpo.prepare: it imports hpo.data first

        inputs = is_class_path(prep.space.model) and estimator_inputs(prep.space.model, d, prep.space.fixed)
        if inputs and inputs.changes:  # what hpo encodes for an estimator, and why; nothing when it takes the table as is
            typer.echo(f"  {inputs.describe()}")

    if not as_json:
        guarded(body, ctx)
        return
    from hpo.errors import HpoError

    try:
        body()
    except HpoError as e:
        from hpo.cli._output import print_json

        print_json({"ok": False, "file": str(space), "problems": _problems(str(e), str(space)), "summary": None})
        raise typer.Exit(e.exit_code) from None


def _scoring(prep: Prepared) -> str:
    if prep.folds is None:
        return ""
    cv = prep.space.cv
    assert cv is not None
    held = sorted({f.validation.rows for f in prep.folds})
    rows = "-".join(map(str, (held[0], held[-1]) if len(held) > 1 else held))
    return f", {cv.folds}-fold cv x {cv.repeats} repeat(s) ({len(prep.folds)} fits per trial, {rows} held-out rows each)"


def _summary(prep: Prepared) -> dict[str, object]:
    """What `validate` found, as `--json` gives it."""
    d, s = prep.data, prep.space
    cv = None
    if prep.folds is not None and s.cv is not None:
        held = sorted({f.validation.rows for f in prep.folds})
        cv = {"folds": s.cv.folds, "repeats": s.cv.repeats, "fits": len(prep.folds), "held_out_rows": [held[0], held[-1]]}
    return {
        "study": s.study,
        "params": len(s.params),
        "task": d.task,
        "target": d.target,
        "rows": {split: getattr(d, split).rows for split in ("train", "validation", "test")},
        "features": len(d.features),
        "feature_names": list(d.features),
        "classes": [c.item() if hasattr(c, "item") else c for c in d.classes] if d.classes else None,
        "metric": s.metric,
        "direction": s.direction,
        "cv": cv,
    }


def _problems(message: str, source: str) -> list[dict[str, str | None]]:
    """An error's lines as ``{key, message}``: each line names the file, then (mostly) the key in backquotes."""
    from hpo.secrets import masked

    out: list[dict[str, str | None]] = []
    for line in masked(message).splitlines():
        text = line.removeprefix(f"{source}: ")
        key = text[1 : text.index("`", 1)] if text.startswith("`") and "`" in text[1:] else None
        out.append({"key": key, "message": text})
    return out
