"""Analysis of a finished study: per-parameter trends, the recommended next space, its reports,
and warm-starting the derived study from its parent.

- :mod:`._stats` computes (trials in, :class:`Analysis` out), weighing the evidence of
  :mod:`._evidence` by the rules of :mod:`._recommend` and :mod:`._categorical`;
- :mod:`._report` draws the figures, HTML and Markdown from an :class:`Analysis`;
- :mod:`._derive` writes the derived space file; :mod:`hpo.warm_start` (a layer below, for ``hpo run``)
  seeds its study, re-exported here;
- :mod:`._study` is ``hpo analyze``: all of the above for a study in a storage, in steps; :mod:`._publish`
  writes its report and shows it in optuna-dashboard and MLflow.
"""

from hpo.analyze._derive import DerivedSpace, derive_space, next_study_name, write_space
from hpo.analyze._inputs import IMPORTANCE_METHODS
from hpo.analyze._publish import DASHBOARD_POINTS, AnalyzeResult
from hpo.analyze._report import figures, html_id, html_page, markdown, recommended
from hpo.analyze._results import (
    MIN_TRIALS,
    TOP_FRACTION,
    Analysis,
    CategoricalAnalysis,
    ChoiceStat,
    Group,
    Noise,
    NumericAnalysis,
    ParamAnalysis,
    Recommendation,
    format_number,
    format_p_value,
    format_statistic,
)
from hpo.analyze._stats import analyze
from hpo.analyze._study import analyze_study
from hpo.warm_start import RUN_FIRST, Inheritance, inherited_trials, source_trials, to_distribution

__all__ = [
    "DASHBOARD_POINTS",
    "RUN_FIRST",
    "IMPORTANCE_METHODS",
    "MIN_TRIALS",
    "TOP_FRACTION",
    "Analysis",
    "AnalyzeResult",
    "CategoricalAnalysis",
    "ChoiceStat",
    "DerivedSpace",
    "Group",
    "Inheritance",
    "Noise",
    "NumericAnalysis",
    "ParamAnalysis",
    "Recommendation",
    "analyze",
    "analyze_study",
    "derive_space",
    "figures",
    "format_number",
    "format_p_value",
    "format_statistic",
    "html_id",
    "html_page",
    "inherited_trials",
    "markdown",
    "next_study_name",
    "recommended",
    "source_trials",
    "to_distribution",
    "write_space",
]
