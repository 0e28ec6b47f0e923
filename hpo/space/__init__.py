"""The search-space file: typed models, loading, validation and the JSON Schema.

A space file is parsed into :class:`SpaceFile` as soon as it is read; nothing past this module
sees a raw dict. Every problem in a file is reported at once, one line each, naming the file,
the key path and the rule.

- :mod:`._params`, :mod:`._strategies`: the sections of a space file (`data` and `cv` are hpo.data's,
  re-exported here);
- :mod:`._file`: :class:`SpaceFile`, the whole file and its cross-key rules;
- :mod:`._grid`: the grid sampler's points, counted and built one by one;
- :mod:`._keys`: which parameter names MLflow takes as keys;
- :mod:`._problems`: a file's problems in hpo's words, all at once (pydantic's errors translated,
  the cross-key and model-parameter rules run on the raw file too);
- :mod:`._suggest`: "did you mean" for a misspelt key;
- :mod:`._load`: reading and validating a file, and its JSON Schema.
"""

from hpo.data import ColumnSplit, CVConfig, DataConfig, RatioSplit, SplitFiles
from hpo.space._file import BUDGET_KEYS, NAME_RE, DerivedFrom, SpaceFile
from hpo.space._grid import GRID_MAX_POINTS, GridOrder, GridPoints
from hpo.space._keys import KEY_RULE, key_problem, key_refusal
from hpo.space._load import LoadedSpace, StrictLoader, load_space, parse_space, read_text, schema
from hpo.space._params import CategoricalParam, Choice, FloatParam, IntParam, Param
from hpo.space._strategies import (
    CmaEsSamplerConfig,
    GPSamplerConfig,
    GridSamplerConfig,
    HyperbandPrunerConfig,
    MedianPrunerConfig,
    NoPrunerConfig,
    PrunerConfig,
    QMCSamplerConfig,
    RandomSamplerConfig,
    SamplerConfig,
    SuccessiveHalvingPrunerConfig,
    TPESamplerConfig,
)

__all__ = [
    "BUDGET_KEYS",
    "CategoricalParam",
    "Choice",
    "CmaEsSamplerConfig",
    "CVConfig",
    "ColumnSplit",
    "DataConfig",
    "DerivedFrom",
    "FloatParam",
    "GRID_MAX_POINTS",
    "GridOrder",
    "GridPoints",
    "GPSamplerConfig",
    "GridSamplerConfig",
    "HyperbandPrunerConfig",
    "IntParam",
    "KEY_RULE",
    "LoadedSpace",
    "MedianPrunerConfig",
    "NAME_RE",
    "NoPrunerConfig",
    "Param",
    "PrunerConfig",
    "QMCSamplerConfig",
    "RandomSamplerConfig",
    "RatioSplit",
    "SamplerConfig",
    "SpaceFile",
    "SplitFiles",
    "StrictLoader",
    "SuccessiveHalvingPrunerConfig",
    "TPESamplerConfig",
    "key_problem",
    "key_refusal",
    "load_space",
    "parse_space",
    "read_text",
    "schema",
]
