"""W&B sweep configurations into hpo space files (``hpo import-sweep``).

A W&B sweep (https://docs.wandb.ai/models/sweeps/sweep-config-keys) names a search ``method``, a
``metric`` and its ``goal``, the ``parameters`` with their distributions, an ``early_terminate`` rule
and a ``run_cap``, next to what runs its trials (``program``, ``command``, ``project``...). What has an
hpo counterpart becomes a key of the space file, with a comment saying where it came from; what has
none is listed in :attr:`SweepConversion.not_carried`, with the reason and what to write instead,
never dropped silently. A file that is not a W&B sweep, or breaks one of W&B's own rules, is a
:class:`SweepError` naming the file, the key and the rule. The metric's ``goal`` defaults to
``minimize``, as in W&B.

- :mod:`._read`: reading a sweep file, checking it is a sweep, and the top-level keys with no counterpart;
- :mod:`._params`: ``parameters`` (W&B's distributions) to ``params`` and ``fixed``;
- :mod:`._metric`: ``metric`` and its ``goal`` to an hpo metric;
- :mod:`._strategies`: ``method`` to a sampler, ``early_terminate`` to a pruner, ``run_cap`` to ``n_trials``;
- :mod:`._write`: the space file's text (header and commented keys), and writing it;
- :mod:`._convert`: one conversion, step by step; :mod:`._findings`: its problems, omissions and notes.
"""

from hpo.sweep._convert import SweepConversion, convert_sweep
from hpo.sweep._findings import NotCarried, SweepError
from hpo.sweep._metric import METRIC_ALIASES
from hpo.sweep._read import read_sweep
from hpo.sweep._strategies import METHODS
from hpo.sweep._write import check_output, write_space_file

__all__ = [
    "METHODS",
    "METRIC_ALIASES",
    "NotCarried",
    "SweepConversion",
    "SweepError",
    "check_output",
    "convert_sweep",
    "read_sweep",
    "write_space_file",
]
