"""`hpo schema`: the JSON Schema of a space file."""

from __future__ import annotations


def schema() -> None:
    """Print the JSON Schema of a space file (for editor completion)."""
    from hpo.cli._output import print_json
    from hpo.space import schema as get_schema

    print_json(get_schema(), indent=2)
