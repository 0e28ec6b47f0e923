"""What an analysis finds: its dataclasses, thresholds and number formats.

The statistics (:mod:`._stats`) and the recommendation rules (:mod:`._recommend`) fill these in.

Pure computation: trials in, dataclasses out. No plotting, no files, no storage, no MLflow:
the terminal table, the HTML report, the dashboard note and the derived space are all built
from an :class:`Analysis` elsewhere (``hpo.report``, ``hpo.derive``).

How a verdict is reached (all on COMPLETE trials, in the parameter's own scale: log10 when its
distribution is log). The p-values come from trials a sampler chose adaptively, so they are
*descriptive*: thresholds on them gate a verdict, they are not tests with a guaranteed error rate.

* **noise floor**: for a study hpo ran, the best trial is re-fitted with a few other seeds (their
  sd), and its validation rows are resampled with the median trial's (a paired bootstrap: the sd
  of the difference over sqrt(2)); the two sources are independent, so the floor (``noise``) is
  the square root of their summed variances, and exists for a deterministic model too.
  Differences below it are no differences. A cross-validated study's floor comes from its folds
  instead (no re-fit): the standard error of a trial's fold mean, net of the folds' shared effects
  (see ``_noise``).
* **clear effect** of a parameter: without a noise floor, Spearman's rho (a monotone trend) or a
  Kruskal-Wallis test across the per-value or binned groups (any shape) is below ``alpha``
  divided by the number of tests (two per parameter, every parameter of the study: Bonferroni);
  with a floor (an independent measure of the noise), one of them is below ``alpha`` and the
  spread of the groups' true means (noise removed: a random-effects estimate) is at least the floor.
* **the study is noise** when no parameter has a clear effect, or when the top trials' median is
  within the noise floor of the median trial: every parameter is then ``keep``, with a
  study-level message.
* **fix** (no effect) only when another parameter clearly has one, this parameter's tests are far
  from significance (p >= 0.1), and the spread of its groups' true means (noise removed: a
  random-effects estimate) is below a quarter of the clear parameters' and below the noise floor:
  absence of evidence alone never fixes anything.
* **top trials**: the best ``top`` fraction, at least ``MIN_TOP``, and every trial within the noise
  floor of the best. Their range is taken from ``BOOTSTRAP`` resamples of the trials: the 5th
  percentile of the resampled top trials' lows to the 95th percentile of their highs.
* **widen** (move an edge): the best trial sits in the outer fifth of the range, the trend
  towards that edge is clear and does not turn back within the edge half: the edge moves out by
  the searched width (``WIDEN_BY``; in log10 for log ranges) within the model's hard limits, and
  the other side comes in to where the resampled top trials start, less a margin. Without a clear
  effect (or in a noisy study), a strong monotone trend (Spearman p below the Bonferroni-corrected
  alpha) into the edge the best trial sits at still moves that edge out, and only it: the
  direction is evidenced, nothing is cut. The reason names every bound that changed.
* **narrow**: the resampled top range plus a margin of a tenth of the searched width each side
  (ints snapped outward); only with a clear effect, ``MIN_TOP`` top trials, and at least 10%
  narrower, else ``keep``. A ``keep`` names the gate that failed, with its numbers.

A categorical choice is ``drop``-ped when a one-sided Mann-Whitney test says its objective is
worse than that of the best choice (Bonferroni-corrected over the choices compared) and, with a
noise floor, its mean is worse by at least the floor; when one choice is left, the parameter is
``fix``-ed at it.

Below ``min_trials`` COMPLETE trials (default 10) nothing is recommended (kind ``none``).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal, cast

if TYPE_CHECKING:
    import optuna

MIN_TRIALS = 10
TOP_FRACTION = 0.2
ALPHA = 0.05
EDGE_ZONE = 0.2  # the outer fifth of a range counts as "at the edge"
WIDEN_BY = 1.0  # a moved edge goes this fraction of the searched width past it (log10 for log ranges)
MARGIN = 0.1  # a narrowed range keeps this fraction of the searched width around the top trials
MIN_TOP = 5  # top trials needed before a range is narrowed
MIN_TOP_COUNT = 3  # the top trials are never fewer than this, whatever `top` asks for
ROW_RESAMPLES = 500  # bootstrap resamples of the validation rows behind the noise floor
BOOTSTRAP = 200  # resamples of the trials behind a narrowed range
NO_EFFECT_P = 0.1  # a parameter is fixed only when its tests are at least this far from significance
MAX_PER_VALUE = 25  # int parameters with at most this many values get one group per value
N_BINS = 10

ImportanceMethod = Literal["ped-anova", "fanova", "mdi"]


@dataclass(frozen=True)
class AnalysisSettings:
    """The thresholds an analysis applies that a caller may change (``hpo analyze``'s options)."""

    top: float = TOP_FRACTION  # the fraction of best trials whose range is reported and narrowed to
    min_trials: int = MIN_TRIALS  # COMPLETE trials needed before anything is recommended
    alpha: float = ALPHA
    hard_limits: dict[str, tuple[float | None, float | None]] | None = None  # the model's own (low, high) bounds
    importance: ImportanceMethod | None = "ped-anova"  # Optuna's importance evaluator, or None to skip it


Kind = Literal["narrow", "widen", "keep", "fix", "drop", "none"]


@dataclass(frozen=True)
class Recommendation:
    """What to search next for one parameter; ``reason`` says why, in words and numbers."""

    kind: Kind
    reason: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    choices: list[Any] | None = None
    value: Any = None
    evidence: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Group:
    """Trials whose parameter falls in one value or bin (``low`` == ``high`` for one value)."""

    label: str
    low: Any
    high: Any
    count: int
    mean: float | None
    median: float | None
    best: float | None


@dataclass(frozen=True)
class NumericAnalysis:
    name: str
    type: Literal["int", "float"]
    log: bool
    low: float
    high: float
    step: float | None
    n: int
    pearson_r: float | None
    pearson_p: float | None
    spearman_rho: float | None
    spearman_p: float | None
    groups_p: float | None  # Kruskal-Wallis across the groups
    groups: list[Group]
    top_low: float | None
    top_high: float | None
    best: float | None  # the parameter's value in the best trial
    importance: float | None
    recommendation: Recommendation

    @property
    def searched(self) -> str:
        return _range_str(self.low, self.high, self.type == "int")

    @property
    def top_range(self) -> str:
        return "-" if self.top_low is None else _range_str(self.top_low, self.top_high, self.type == "int")


@dataclass(frozen=True)
class ChoiceStat:
    choice: Any
    count: int
    mean: float | None
    median: float | None
    best: float | None
    p_worse: float | None  # one-sided Mann-Whitney against the best choice
    worse: bool


@dataclass(frozen=True)
class CategoricalAnalysis:
    name: str
    n: int
    choices: list[ChoiceStat]
    groups_p: float | None
    best: Any
    importance: float | None
    recommendation: Recommendation
    type: Literal["categorical"] = "categorical"
    top_choices: list[Any] = field(default_factory=list)

    @property
    def searched(self) -> str:
        return ", ".join(map(str, (c.choice for c in self.choices)))

    @property
    def top_range(self) -> str:
        return ", ".join(map(str, self.top_choices)) or "-"


ParamAnalysis = NumericAnalysis | CategoricalAnalysis


@dataclass(frozen=True)
class Noise:
    """The study's noise floor: how much one configuration's value moves by chance alone.

    ``sd`` is the floor; ``basis`` says where it came from: ``folds`` (a cross-validated study),
    ``seeds`` (re-fits with other seeds), ``validation rows`` (a bootstrap of the best trial's
    validation predictions) or ``seeds + validation rows`` (both, combined as independent
    variances: sqrt(seed_sd^2 + rows_sd^2)).
    """

    sd: float
    source: str  # in words, e.g. "3 re-fits of trial #12 with other seeds"
    values: list[float] = field(default_factory=list)  # the re-fits' values (or each trial's fold sd)
    from_folds: bool = False  # measured on a cross-validated study's folds
    basis: str = "seeds"
    seed_sd: float | None = None  # the sd of the re-fits with other seeds
    rows_sd: float | None = None  # the sd of the metric over bootstrap resamples of the validation rows
    rows: int | None = None  # validation rows resampled


@dataclass(frozen=True)
class Analysis:
    """The trends of one study, per parameter, with the settings they were computed under."""

    study: str
    direction: Literal["maximize", "minimize"]
    n_complete: int
    n_trials: int
    top_fraction: float
    top_count: int
    min_trials: int
    alpha: float
    best_number: int | None
    best_value: float | None
    importance_method: str | None
    params: dict[str, ParamAnalysis]
    noise: Noise | None = None
    message: str | None = None  # a study-level verdict, e.g. that its values are noise
    top_reason: str = ""  # the top trials taken, their true share, and why it differs from `top_fraction`

    @property
    def enough(self) -> bool:
        return self.n_complete >= self.min_trials

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: the keys of ``hpo analyze --json``."""
        out = {k: v for k, v in asdict(self).items() if k != "params"}
        out["params"] = {}
        for name, p in self.params.items():
            out["params"][name] = asdict(p)
        return cast("dict[str, Any]", _clean(out))


def _clean(x: Any) -> Any:
    """Floats that JSON can hold: NaN and infinities become null."""
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, dict):
        return {k: _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    return x


@dataclass(frozen=True)
class _Context:
    sign: float
    top: float
    top_count: int
    min_trials: int
    alpha: float
    hard_limits: dict[str, tuple[float | None, float | None]]
    best: optuna.trial.FrozenTrial | None
    alpha_each: float = 0.05  # alpha over the number of tests (Bonferroni)
    noise: Noise | None = None
    noisy: bool = False  # the study's values cannot be told apart from noise
    others_clear: frozenset[str] = frozenset()  # parameters with a clear effect
    clear_effect: float = 0.0  # the largest effect among them


def _py(x: Any, is_int: bool) -> Any:
    return int(x) if is_int else float(x)


def _round_sig(x: float, digits: int, mode: Literal["down", "up", "nearest"] = "nearest") -> float:
    if x == 0 or not math.isfinite(x):
        return x
    scale = 10 ** (digits - 1 - math.floor(math.log10(abs(x))))
    rounded = math.floor(x * scale) if mode == "down" else math.ceil(x * scale) if mode == "up" else round(x * scale)
    return float(rounded / scale)


# How an analysis writes its numbers, in its reasons, its reports and the CLI's table alike.


def format_number(x: Any) -> str:
    """A parameter value or bound: floats to 4 significant digits (`0.05`, `1.235e-05`), the rest as is."""
    if isinstance(x, float):
        return f"{x:.4g}"
    return str(x)


def format_p_value(p: float | None) -> str:
    """A p-value to 3 decimals, `<0.001` below that, `n/a` when there is none."""
    if p is None:
        return "n/a"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def format_statistic(x: float | None, spec: str = "+.3f") -> str:
    """A statistic (a correlation, an importance, a mean) by the format ``spec``; `-` when missing or not finite."""
    return "-" if x is None or (isinstance(x, float) and not math.isfinite(x)) else format(x, spec)


def _range_str(low: Any, high: Any, is_int: bool) -> str:
    return f"{format_number(low)}-{format_number(high)}" if is_int else f"{format_number(low)}..{format_number(high)}"


def _per_value(a: dict[str, Any]) -> bool:
    return a["type"] == "int" and all(g.low == g.high for g in a["groups"])
