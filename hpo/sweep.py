"""W&B sweep configurations into hpo space files (``hpo import-sweep``).

A W&B sweep (https://docs.wandb.ai/models/sweeps/sweep-config-keys) names a search ``method``, a
``metric`` and its ``goal``, the ``parameters`` with their distributions, an ``early_terminate`` rule
and a ``run_cap``, next to what runs its trials (``program``, ``command``, ``project``...). What has an
hpo counterpart becomes a key of the space file, with a comment saying where it came from; what has
none is listed in :attr:`SweepConversion.not_carried`, with the reason and what to write instead,
never dropped silently. A file that is not a W&B sweep, or breaks one of W&B's own rules, is a
:class:`SweepError` naming the file, the key and the rule.

The rules followed are W&B's (their ``wandb/sweeps`` schema and samplers): a parameter without
``distribution`` is ``categorical`` with ``values``, ``constant`` with ``value``, ``int_uniform`` when
``min`` and ``max`` are both integers and ``uniform`` otherwise; ``min`` must be below ``max``;
``log_uniform`` takes base-e exponents; ``q_uniform`` rounds to multiples of ``q`` (default 1.0) and
returns integers only when ``q`` is one; the metric's ``goal`` defaults to ``minimize``.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from hpo.errors import HpoError
from hpo.metrics import METRICS
from hpo.space._keys import key_refusal
from hpo.space._load import StrictLoader, read_text

if TYPE_CHECKING:
    from hpo.space import SpaceFile


class SweepError(HpoError):
    """The file is not a W&B sweep, or breaks one of its rules; one line per problem."""


@dataclass(frozen=True)
class NotCarried:
    """A part of the sweep with no counterpart in the space file."""

    key: str
    """Where it is in the sweep: ``program``, ``metric.target``, ``parameters.dropout``."""
    value: Any
    reason: str
    """Why hpo has no counterpart, and what to write instead where there is something to write."""

    def __str__(self) -> str:
        return f"{self.key} ({_short(self.value)}): {self.reason}"


@dataclass(frozen=True)
class SweepConversion:
    """A converted sweep: the space file's text, the same validated, and what did not carry over."""

    text: str
    """The space file as YAML, with comments naming the sweep key each key came from."""
    space: SpaceFile
    not_carried: tuple[NotCarried, ...]
    notes: tuple[str, ...]
    """What was carried over with a change a reader should know of (exponents made values, names flattened)."""


METHODS: dict[str, tuple[str, str]] = {
    "grid": ("grid", "every combination once"),
    "random": ("random", ""),
    "bayes": ("tpe", "W&B's bayes is a Gaussian process; tpe is hpo's Bayesian sampler, and gp needs PyTorch"),
}
"""W&B ``method`` -> hpo sampler name and a comment for the written file."""

METRIC_ALIASES: dict[str, str] = {
    **{m: m for m in METRICS},
    **dict.fromkeys(("acc",), "accuracy"),
    **dict.fromkeys(("f1_score",), "f1"),
    **dict.fromkeys(("auc", "rocauc", "auroc", "roc_auc_score"), "roc_auc"),
    **dict.fromkeys(
        ("log_loss", "cross_entropy", "crossentropy", "binary_crossentropy", "categorical_crossentropy", "bce"), "logloss"
    ),
    **dict.fromkeys(("root_mean_squared_error",), "rmse"),
    **dict.fromkeys(("mse", "mean_squared_error"), "rmse"),
    **dict.fromkeys(("mean_absolute_error",), "mae"),
    **dict.fromkeys(("r2_score", "r_squared", "rsquared"), "r2"),
    **dict.fromkeys(("pearson", "pearsonr", "pearson_corr", "pearson_correlation"), "pearson_r"),
    **dict.fromkeys(("spearman", "spearmanr", "spearman_corr", "spearman_correlation"), "spearman_r"),
}
"""A W&B metric name, lower-cased, separators as ``_`` and a ``val_``/``eval_`` prefix removed -> hpo metric.

Only names that mean one thing: ``loss`` is log loss for a classifier and some error for a regressor,
so it maps to nothing and ``--metric`` decides."""

_SQUARED = {"mse", "mean_squared_error"}
_VALIDATION_AFFIX = re.compile(r"^(?:val|valid|validation|eval|evaluation)_|_(?:val|valid|validation)\Z")

# W&B's distributions (schema.json in wandb/sweeps) and the keys each takes besides `distribution`.
_DISTRIBUTIONS: dict[str, tuple[str, ...]] = {
    "constant": ("value",),
    "categorical": ("values",),
    "categorical_w_probabilities": ("values", "probabilities"),
    "int_uniform": ("min", "max"),
    "uniform": ("min", "max"),
    "log_uniform": ("min", "max"),
    "log_uniform_values": ("min", "max"),
    "inv_log_uniform": ("min", "max"),
    "inv_log_uniform_values": ("min", "max"),
    "q_uniform": ("min", "max", "q"),
    "q_log_uniform": ("min", "max", "q"),
    "q_log_uniform_values": ("min", "max", "q"),
    "normal": ("mu", "sigma"),
    "q_normal": ("mu", "sigma", "q"),
    "log_normal": ("mu", "sigma"),
    "q_log_normal": ("mu", "sigma", "q"),
    "beta": ("a", "b"),
    "q_beta": ("a", "b", "q"),
}

# Top-level keys of a sweep with no counterpart in a space file, and why.
_ELSEWHERE: dict[str, str] = {
    "program": "hpo trains the space's model, not a script; to run your own training code, write a function "
    "(params, train, validation, seed, report) and pass --model module:function",
    "command": "hpo calls the model itself; there is no command line",
    "project": "hpo names its MLflow experiments after `project` under [tool.hpo] in pyproject.toml",
    "entity": "a W&B team; hpo has no counterpart",
    "controller": "hpo's workers share the study through its Optuna storage",
    "job": "a W&B Launch job; hpo runs trials itself",
    "image_uri": "a W&B Launch image; hpo runs trials itself",
    "scheduler": "a W&B custom scheduler; hpo's sampler is `sampler`",
    "apiVersion": "W&B's format version",
    "kind": "W&B's format kind",
}
_DEFAULT_BUDGET = 100


def read_sweep(path: str | Path) -> dict[str, Any]:
    """The mapping in a sweep file, read as strictly as a space file (no aliases, no repeated keys)."""
    path = Path(path)
    text = read_text(path, SweepError, "give a W&B sweep file")
    try:
        raw = yaml.load(text, Loader=_SweepLoader)  # noqa: S506 (a SafeLoader)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise SweepError(f"{path}: invalid YAML{where}: {e.problem}") from None
    except yaml.YAMLError as e:
        raise SweepError(f"{path}: invalid YAML: {e}") from None
    if not isinstance(raw, dict):
        raise SweepError(f"{path}: is not a W&B sweep: it must be a YAML mapping with `method` and `parameters`")
    return raw


def convert_sweep(
    sweep: Mapping[str, Any],
    *,
    data: str,
    source: str = "<sweep>",
    target: str = "target",
    version: str = "v0.1.0",
    study: str | None = None,
    model: str = "catboost",
    metric: str | None = None,
    n_trials: int | None = None,
) -> SweepConversion:
    """Convert a W&B sweep into an hpo space file.

    Args:
        sweep: the sweep, as read by :func:`read_sweep`.
        data: the data source (a table file or ``sklearn:<name>``), split 60/20/20 with seed 0.
        source: the sweep file's name, for messages and the written file's header.
        study: the study name; default the sweep's ``name``, else ``source``'s stem.
        metric: an hpo metric, for a sweep whose metric names none (or none unambiguously).
        n_trials: the budget; default the sweep's ``run_cap``.

    Raises:
        SweepError: one line per problem, naming ``source``, the key and the rule.
    """
    return _Converter(sweep, source).convert(
        data=data, target=target, version=version, study=study, model=model, metric=metric, n_trials=n_trials
    )


def check_output(path: str | Path, force: bool = False) -> None:
    """Refuse a path :func:`write_space_file` would refuse, before any work is done for it."""
    path = Path(path)
    if path.is_dir():
        raise SweepError(f"{path}: is a folder; give the space file's path (e.g. {path}/<study>.yaml)")
    if path.exists() and not force:
        raise SweepError(f"{path}: already exists; give another -o path, or --force to overwrite it")


def write_space_file(path: str | Path, text: str, force: bool = False) -> None:
    """Write a space file; an existing file is replaced only with ``force``."""
    path = Path(path)
    check_output(path, force)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    try:
        if force:
            os.replace(tmp, path)
        else:
            path.hardlink_to(tmp)  # fails if the file appeared since the check: never overwrite by accident
    except FileExistsError:
        raise SweepError(f"{path}: already exists; give another -o path, or --force to overwrite it") from None
    finally:
        tmp.unlink(missing_ok=True)


class _SweepLoader(StrictLoader):
    """The space files' strict YAML (``hpo.space``), with the wording of a sweep file."""

    IN = ""


@dataclass
class _Param:
    """One converted parameter: its hpo definition and the comment the written file gives it."""

    spec: dict[str, Any]
    comment: str


class _Converter:
    """One conversion: the sweep, and the problems, omissions and notes found on the way."""

    def __init__(self, sweep: Mapping[str, Any], source: str) -> None:
        self.sweep = sweep
        self.source = source
        self.problems: list[str] = []
        self.not_carried: list[NotCarried] = []
        self.notes: list[str] = []

    def fail(self, message: str) -> None:
        self.problems.append(f"{self.source}: {message}")

    def drop(self, key: str, value: Any, reason: str) -> None:
        self.not_carried.append(NotCarried(key, value, reason))

    def convert(
        self, *, data: str, target: str, version: str, study: str | None, model: str, metric: str | None, n_trials: int | None
    ) -> SweepConversion:
        if metric is not None and metric not in METRICS:
            raise SweepError(f"--metric must be one of {', '.join(METRICS)}, but got {metric!r}")
        s = self.sweep
        method = s.get("method")
        if "method" not in s and "parameters" not in s:
            keys = ", ".join(map(str, s)) or "none"
            self.fail(f"is not a W&B sweep: it has no `method` and no `parameters` (its keys: {keys})")
        elif "method" not in s:
            self.fail("is not a W&B sweep: `method` is required (grid, random or bayes)")
        elif not isinstance(method, str) or method not in METHODS:
            self.fail(f"`method` must be one of {', '.join(METHODS)}, but got {method!r}")
        if "parameters" not in s and "method" in s:
            self.fail("is not a W&B sweep: `parameters` is required (a mapping of parameter names to their values)")
        if self.problems:  # not a sweep at all: its other keys would only add noise
            raise SweepError("\n".join(self.problems))
        params, fixed = self._parameters(s.get("parameters"), method)
        hpo_metric, metric_comment = self._metric(s.get("metric"), metric)
        pruner, pruner_comment = self._early_terminate(s.get("early_terminate"))
        budget, budget_comment = self._budget(s.get("run_cap"), n_trials, method)
        study_name, study_comment = self._study(s.get("name"), study)
        for key, value in s.items():
            if key in _ELSEWHERE:
                self.drop(key, value, _ELSEWHERE[key])
            elif key == "metrics":
                self.drop(key, value, "several metrics (multi-objective) need W&B's custom method; hpo optimizes one `metric`")
            elif key not in ("method", "parameters", "metric", "early_terminate", "run_cap", "name", "description"):
                self.drop(key, value, "not a key of a W&B sweep that hpo knows")
        if self.problems:
            raise SweepError("\n".join(self.problems))
        assert isinstance(method, str) and hpo_metric is not None

        sampler, sampler_note = METHODS[method]
        if sampler == "grid" and budget is not None:
            budget, budget_comment = self._grid_budget(params, budget, budget_comment)
        lines = self._header(s.get("name"), s.get("description"))
        lines.append(_line("study", study_name, study_comment))
        lines += [
            "data:",
            _line("version", version, "--version", indent=2),
            _line("source", data, "--data", indent=2),
            _line("target", target, "--target" if target != "target" else None, indent=2),
            _line("split", {"validation": 0.2, "test": 0.2, "seed": 0}, "hpo's default split", indent=2),
            _line("model", model, "--model" if model != "catboost" else "hpo's default model"),
            _line("metric", hpo_metric, metric_comment),
        ]
        if budget is not None:
            lines.append(_line("n_trials", budget, budget_comment))
        lines.append(_line("sampler", {"name": sampler}, f"method: {method}" + (f" ({sampler_note})" if sampler_note else "")))
        lines.append(_line("pruner", pruner, pruner_comment))
        lines.append("params:")
        lines += [_line(name, p.spec, p.comment, indent=2) for name, p in params.items()]
        if fixed:
            lines.append("fixed:")
            lines += [_line(name, value, "value", indent=2) for name, value in fixed.items()]
        text = "\n".join(lines) + "\n"

        from hpo.space import parse_space

        try:
            space = parse_space(text, f"{self.source} (converted)")
        except HpoError as e:
            raise SweepError(str(e)) from None
        return SweepConversion(text=text, space=space, not_carried=tuple(self.not_carried), notes=tuple(self.notes))

    # -- parameters -------------------------------------------------------------------------

    def _parameters(self, raw: Any, method: Any) -> tuple[dict[str, _Param], dict[str, Any]]:
        params: dict[str, _Param] = {}
        fixed: dict[str, Any] = {}
        if raw is None:
            return params, fixed
        if not isinstance(raw, dict) or not raw:
            self.fail(f"`parameters` must be a mapping of at least one parameter name to its values, but got {_short(raw)}")
            return params, fixed
        self._collect(raw, "", "parameters", params, fixed, method == "grid")
        if not params and not self.problems:
            self.fail(
                "`parameters` leaves nothing to tune: every parameter is a `value` or was not carried over, "
                "and an hpo study needs at least one"
            )
        return params, fixed

    def _collect(
        self, raw: dict[str, Any], prefix: str, path: str, params: dict[str, _Param], fixed: dict[str, Any], grid: bool
    ) -> None:
        """Convert the parameters in ``raw`` (at sweep key ``path``), naming nested ones ``outer.inner``."""
        for own, spec in raw.items():
            key = f"{path}.{own}"
            if not isinstance(own, str):
                self.fail(f"`{key}`: a parameter's name must be a string, but got {own!r}")
                continue
            name = f"{prefix}{own}"
            if name in params or name in fixed:
                self.fail(f"`{key}` flattens to {name!r}, which another parameter already is; rename one")
                continue
            if not isinstance(spec, dict):
                self.fail(f"`{key}` must be a mapping (values, value, min/max or distribution), but got {_short(spec)}")
                continue
            if "parameters" in spec:
                if set(spec) != {"parameters"} or not isinstance(spec["parameters"], dict) or not spec["parameters"]:
                    self.fail(f"`{key}` holds nested `parameters`, so it must hold nothing else and at least one parameter")
                    continue
                before = set(params) | set(fixed)
                self._collect(spec["parameters"], f"{name}.", f"{key}.parameters", params, fixed, grid)
                flat = sorted((set(params) | set(fixed)) - before)
                if flat:
                    self.notes.append(
                        f"`{key}` is nested; hpo's params are flat, so its parameters are named {', '.join(flat)} "
                        f"(a training function reads params[{flat[0]!r}])"
                    )
                continue
            why = key_refusal(name)
            if why is not None:
                # Renamed, it would no longer be what the training code reads: the sweep's author renames it.
                self.fail(f"`{key}`: the parameter name {name!r} {why}; rename it in the sweep")
                continue
            kind = self._kind(key, spec)
            if kind is None:
                continue
            if kind == "constant":
                fixed[name] = spec["value"]
                continue
            converted = self._param(key, kind, spec, grid)
            if converted is not None:
                params[name] = converted

    def _kind(self, key: str, spec: dict[str, Any]) -> str | None:
        """The W&B distribution of ``spec``, stated or inferred as W&B infers it; None after a problem."""
        kind = spec.get("distribution")
        if kind is None:
            if "values" in spec:
                kind = "categorical_w_probabilities" if "probabilities" in spec else "categorical"
            elif "value" in spec:
                kind = "constant"
            elif "min" in spec and "max" in spec:
                kind = "int_uniform" if _is_int(spec["min"]) and _is_int(spec["max"]) else "uniform"
            else:
                self.fail(f"`{key}` needs `values`, `value`, `min` and `max`, or a `distribution`")
                return None
        elif not isinstance(kind, str) or kind not in _DISTRIBUTIONS:
            self.fail(f"`{key}.distribution` must be one of W&B's {', '.join(_DISTRIBUTIONS)}, but got {_short(kind)}")
            return None
        takes = _DISTRIBUTIONS[kind]
        extra = [k for k in spec if k not in takes and k != "distribution"]
        if extra:
            self.fail(f"`{key}.{extra[0]}` is not a key of a W&B {kind} parameter (it takes {', '.join(takes)})")
            return None
        needed = [k for k in takes if k not in spec and k not in ("q", "mu", "sigma", "a", "b")]
        if needed:
            self.fail(f"`{key}` is a {kind} parameter and needs `{needed[0]}`")
            return None
        return kind

    def _param(self, key: str, kind: str, spec: dict[str, Any], grid: bool) -> _Param | None:
        if kind in ("categorical", "categorical_w_probabilities"):
            return self._categorical(key, kind, spec)
        if kind in ("normal", "q_normal", "log_normal", "q_log_normal", "beta", "q_beta"):
            self.drop(key, spec, _unbounded_hint(kind, spec))
            return None
        low, high = self._range(key, kind, spec)
        if low is None or high is None:
            return None
        param: _Param | None
        if kind == "int_uniform":
            param = _Param({"type": "int", "low": low, "high": high}, kind)
        elif kind == "uniform":
            param = _Param({"type": "float", "low": float(low), "high": float(high)}, kind)
        elif kind in ("log_uniform_values", "inv_log_uniform_values"):
            same = " (1/X log-uniform is X log-uniform on the same range)" if kind.startswith("inv") else ""
            param = _Param({"type": "float", "low": float(low), "high": float(high), "log": True}, kind + same)
        elif kind in ("log_uniform", "inv_log_uniform"):
            param = self._exponents(key, kind, low, high)
        elif kind == "q_uniform":
            param = self._stepped(key, spec, low, high)
        else:  # q_log_uniform_values, q_log_uniform
            param = self._quantized_log(key, kind, spec, low, high)
        if param is not None and grid and param.spec["type"] == "float" and "step" not in param.spec:
            self.fail(
                f"`{key}` is a continuous range ({kind}), which a grid cannot enumerate (W&B's grid refuses it too); "
                "give it `values`, or `distribution: q_uniform` with a `q`"
            )
            return None
        return param

    def _categorical(self, key: str, kind: str, spec: dict[str, Any]) -> _Param | None:
        values = spec["values"]
        if not isinstance(values, list) or not values:
            self.fail(f"`{key}.values` must be a list of at least one value, but got {_short(values)}")
            return None
        odd = [v for v in values if not isinstance(v, (bool, int, float, str, type(None)))]
        if odd:
            self.drop(
                key,
                spec,
                f"its values hold {_short(odd[0])}, and an hpo categorical holds only numbers, strings, booleans and null; "
                "write each as a string (e.g. '64-64') and parse it in a training function",
            )
            return None
        if kind == "categorical_w_probabilities":
            self.drop(
                f"{key}.probabilities", spec["probabilities"], "hpo's samplers weigh every choice alike; the values are kept"
            )
        return _Param({"type": "categorical", "choices": values}, "values")

    def _range(self, key: str, kind: str, spec: dict[str, Any]) -> tuple[Any, Any]:
        lo, hi = spec["min"], spec["max"]
        ok = True
        for k, v in (("min", lo), ("max", hi)):
            if kind == "int_uniform" and not _is_int(v):
                self.fail(f"`{key}.{k}` must be an integer for int_uniform, but got {_short(v)}")
                ok = False
            elif not _is_number(v):
                self.fail(f"`{key}.{k}` must be a finite number, but got {_short(v)}")
                ok = False
        if not ok:
            return None, None
        if lo >= hi:
            self.fail(f"`{key}.min` must be < `max` (W&B's rule), but got min={lo}, max={hi}")
            return None, None
        if kind.endswith("log_uniform_values") and lo <= 0:
            self.fail(f"`{key}.min` must be > 0 for {kind}, but got min={lo}")
            return None, None
        return lo, hi

    def _exponents(self, key: str, kind: str, lo: float, hi: float) -> _Param | None:
        # W&B's v1 log distributions take base-e exponents: log_uniform samples e^U(min, max) and
        # inv_log_uniform e^-U(min, max), both log-uniform on the values below.
        a, b = (lo, hi) if kind == "log_uniform" else (-hi, -lo)
        try:
            low, high = _tidy(math.exp(a)), _tidy(math.exp(b))
        except OverflowError:
            self.fail(f"`{key}` is {kind}, whose min and max are exponents, and e^{max(a, b)} is too large for a float")
            return None
        self.notes.append(
            f"`{key}` is {kind}, whose min and max are base-e exponents: written as a log-scale range of the values "
            f"e^{_g(a)}..e^{_g(b)} = {_g(low)}..{_g(high)}"
        )
        return _Param({"type": "float", "low": low, "high": high, "log": True}, f"{kind}: e^{_g(a)}..e^{_g(b)}")

    def _stepped(self, key: str, spec: dict[str, Any], lo: float, hi: float) -> _Param | None:
        q = spec.get("q", 1.0)  # W&B's default is the float 1.0, so without q the values are floats
        if not _is_number(q) or q <= 0:
            self.fail(f"`{key}.q` must be a number > 0, but got {_short(q)}")
            return None
        # W&B draws U(min, max) and rounds it to a multiple of q; hpo's range is those multiples within [min, max].
        first, last = math.ceil(lo / q - 1e-9), math.floor(hi / q + 1e-9)
        if first > last:
            self.fail(f"`{key}` has no multiple of q={q} between min={lo} and max={hi}")
            return None
        integers = _is_int(q) and _is_int(lo) and _is_int(hi)
        low, high = (first * q, last * q) if integers else (_tidy(first * q), _tidy(last * q))
        if low != lo or high != hi:
            self.notes.append(
                f"`{key}` is q_uniform, which rounds to multiples of q={q}: written as the multiples within "
                f"[{lo}, {hi}], {low}..{high}"
            )
        spec_out = {"type": "int" if integers else "float", "low": low, "high": high, "step": q if integers else float(q)}
        return _Param(spec_out, "q_uniform" + (" (min, max and q are integers, so are the values)" if integers else ""))

    def _quantized_log(self, key: str, kind: str, spec: dict[str, Any], lo: float, hi: float) -> _Param | None:
        q = spec.get("q", 1.0)
        if kind == "q_log_uniform_values" and q == 1 and _is_int(q) and _is_int(lo) and _is_int(hi):
            # round(e^U(log min, log max)) as integers: Optuna's int log scale samples the same way.
            return _Param({"type": "int", "low": lo, "high": hi, "log": True}, f"{kind} with q: 1")
        try:
            log_values = (lo, hi) if kind == "q_log_uniform_values" else (_tidy(math.exp(lo)), _tidy(math.exp(hi)))
        except OverflowError:
            self.fail(f"`{key}` is {kind}, whose min and max are exponents, and e^{hi} is too large for a float")
            return None
        self.drop(
            key,
            spec,
            f"Optuna's log scale takes no step, so {kind} with q={q} has no exact counterpart; write "
            f"`{{type: float, low: {_g(log_values[0])}, high: {_g(log_values[1])}, log: true}}` (unrounded), "
            f"an int with log: true for q: 1, or the values as a categorical",
        )
        return None

    # -- metric, pruner, budget, study ----------------------------------------------------------

    def _metric(self, raw: Any, override: str | None) -> tuple[str | None, str | None]:
        names = ", ".join(METRICS)
        if override is not None:
            said = ""
            if isinstance(raw, dict) and "name" in raw:
                said = f" (the sweep's metric: {_short(raw['name'])}, {_short(raw.get('goal', 'minimize'))})"
                self.notes.append(f"--metric {override} replaces the sweep's metric {_short(raw['name'])}")
            if isinstance(raw, dict):
                self._metric_extras(raw)
            elif raw is not None:
                self.drop("metric", raw, "--metric names the metric")
            return override, f"--metric{said}"
        if raw is None:
            self.fail(f"`metric` is not given, and hpo optimizes one; pass --metric, one of {names}")
            return None, None
        if not isinstance(raw, dict) or not isinstance(raw.get("name"), str):
            self.fail(f"`metric` must be a mapping with a `name` (and a `goal`), but got {_short(raw)}")
            return None, None
        name, goal = raw["name"], raw.get("goal", "minimize")
        if goal not in ("minimize", "maximize"):
            self.fail(f"`metric.goal` must be minimize or maximize, but got {_short(goal)}")
            return None, None
        normal = _VALIDATION_AFFIX.sub("", re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_"))
        hpo = METRIC_ALIASES.get(normal)
        if hpo is None:
            by_task = "; ".join(
                f"{task}: {', '.join(m.name for m in METRICS.values() if m.task == task)}"
                for task in ("regression", "classification")
            )
            self.fail(f"`metric.name` {name!r} names none of hpo's metrics unambiguously; pass --metric ({by_task})")
            return None, None
        direction = METRICS[hpo].direction
        if goal != direction:
            default = " (W&B's default when `goal` is not given)" if "goal" not in raw else ""
            self.fail(
                f"`metric.goal` is {goal}{default}, but hpo's {hpo}, which `metric.name` {name!r} maps to, is to {direction}; "
                "fix the goal, or pass --metric"
            )
            return None, None
        if normal in _SQUARED:
            self.notes.append(f"`metric.name` {name!r}: hpo has no mse; rmse, its square root, ranks trials the same")
        self._metric_extras(raw)
        return hpo, f"metric: {{name: {name}, goal: {goal}}}"

    def _metric_extras(self, raw: dict[str, Any]) -> None:
        for key, value in raw.items():
            if key == "target":
                self.drop("metric.target", value, "hpo does not stop at a target value; n_trials or timeout end a study")
            elif key in ("impute", "impute_while_running"):
                self.drop(f"metric.{key}", value, "a failed trial is FAIL in Optuna, and its samplers leave it out")
            elif key not in ("name", "goal"):
                self.drop(f"metric.{key}", value, "not a key of a W&B metric that hpo knows")

    def _early_terminate(self, raw: Any) -> tuple[dict[str, Any], str]:
        none = ({"name": "none"}, "no early_terminate: W&B stops no run early")
        if raw is None:
            return none
        if not isinstance(raw, dict) or raw.get("type") != "hyperband":
            got = raw.get("type") if isinstance(raw, dict) else raw
            self.fail(f"`early_terminate.type` must be hyperband (the only type W&B knows), but got {_short(got)}")
            return none
        for k in ("min_iter", "max_iter", "s"):
            if k in raw and (not _is_int(raw[k]) or raw[k] < 1):
                self.fail(f"`early_terminate.{k}` must be an integer >= 1, but got {_short(raw[k])}")
                return none
        eta = raw.get("eta", 3)
        if not _is_number(eta) or eta <= 1:
            self.fail(f"`early_terminate.eta` must be a number > 1, but got {_short(eta)}")
            return none
        pruner: dict[str, Any] = {"name": "hyperband"}
        if "min_iter" in raw:
            pruner["min_resource"] = raw["min_iter"]
            said = f"min_iter {raw['min_iter']}"
            for k in ("max_iter", "s"):
                if k in raw:
                    self.drop(
                        f"early_terminate.{k}",
                        raw[k],
                        "with min_iter, W&B ignores it; hpo's max_resource is the model's iterations",
                    )
        elif "max_iter" in raw and "s" in raw:
            # W&B's bands are max_iter / eta^k for k = 1..s while >= 1; hpo's min_resource is the first.
            bands = [int(raw["max_iter"] / eta**k) for k in range(1, raw["s"] + 1) if raw["max_iter"] / eta**k >= 1]
            if not bands:
                self.fail(
                    "`early_terminate`: max_iter / eta is below 1, so W&B's hyperband has no band (raise max_iter or lower eta)"
                )
                return none
            pruner["min_resource"] = min(bands)
            said = f"max_iter {raw['max_iter']} / eta^{len(bands)} = {min(bands)}, W&B's first band"
            self.notes.append(
                f"`early_terminate` gives max_iter and s: hpo's min_resource is W&B's first band, {said.split(', ')[0]}; "
                "its max_resource is the model's iterations"
            )
        else:
            self.fail("`early_terminate` needs `min_iter`, or `max_iter` and `s`")
            return none
        if _is_int(eta) or float(eta).is_integer():
            pruner["reduction_factor"] = int(eta)
            said += f", eta {int(eta)}"
        else:
            self.drop("early_terminate.eta", eta, "hpo's reduction_factor is a whole number >= 2; hpo's default 3 is written")
        if "strict" in raw:
            self.drop("early_terminate.strict", raw["strict"], "Optuna's HyperbandPruner has no strict mode")
        for k, v in raw.items():
            if k not in ("type", "min_iter", "max_iter", "s", "eta", "strict"):
                self.drop(f"early_terminate.{k}", v, "not a key of W&B's hyperband (W&B ignores it too)")
        return pruner, (
            f"early_terminate: hyperband, {said} (W&B counted the steps your script logged; "
            "hpo counts boosting iterations, or what a training function reports)"
        )

    def _budget(self, run_cap: Any, n_trials: int | None, method: Any) -> tuple[int | None, str | None]:
        if run_cap is not None and (not _is_int(run_cap) or run_cap < 1):
            self.fail(f"`run_cap` must be an integer >= 1, but got {_short(run_cap)}")
            return None, None
        if n_trials is not None:
            said = f" (the sweep's run_cap: {run_cap})" if run_cap is not None else ""
            return n_trials, f"--n-trials{said}"
        if run_cap is not None:
            return run_cap, "run_cap"
        if method == "grid":
            return None, None
        self.notes.append(
            f"the sweep has no run_cap (W&B runs it until stopped), and an hpo study needs a budget: "
            f"n_trials: {_DEFAULT_BUDGET} is written; change it, or import again with --n-trials"
        )
        return _DEFAULT_BUDGET, "no run_cap in the sweep: a budget to change"

    def _grid_budget(self, params: dict[str, _Param], budget: int, comment: str | None) -> tuple[int | None, str | None]:
        size = math.prod(_grid_size(p.spec) for p in params.values())
        if budget < size:
            return budget, comment
        self.notes.append(
            f"the budget {budget} covers the whole grid of {size} points; the grid's size is the budget, so no n_trials is "
            "written"
        )
        return None, None

    def _study(self, name: Any, study: str | None) -> tuple[str, str | None]:
        if study is not None:
            if name is not None:
                self.drop("name", name, "--study names the study")
            return study, "--study"
        from hpo.space import NAME_RE

        if isinstance(name, str) and name.strip():
            cleaned = re.sub(r"[^A-Za-z0-9._-]+", "-", name.strip()).strip("-._")
            if cleaned and NAME_RE.match(cleaned):
                return cleaned, "name" if cleaned == name else f"name: {name!r}, made a valid study name"
        stem = re.sub(r"[^A-Za-z0-9._-]+", "-", Path(self.source).stem).strip("-._") or "sweep"
        return stem, "the sweep file's name"

    def _header(self, name: Any, description: Any) -> list[str]:
        named = f" ({_short(name)})" if name is not None else ""
        lines = [f"# Converted from the W&B sweep {self.source}{named} by `hpo import-sweep`; see docs/import-sweep.md."]
        if isinstance(description, str) and description.strip():
            lines.append(f"# Its description: {' '.join(description.split())}")
        if self.not_carried:
            lines.append("# Not carried over (no counterpart in a space file):")
            lines += [f"#   {' '.join(str(n).split())}" for n in self.not_carried]
        lines += [f"# Note: {' '.join(n.split())}" for n in self.notes]
        lines.append("# Check it, data and model included, with `hpo validate` before `hpo run`.")
        return lines


def _grid_size(spec: dict[str, Any]) -> int:
    if spec["type"] == "categorical":
        return len(spec["choices"])
    return int(round((spec["high"] - spec["low"]) / spec.get("step", 1))) + 1


def _unbounded_hint(kind: str, spec: dict[str, Any]) -> str:
    """Why an unbounded (or [0, 1]) distribution has no counterpart, and a range to write instead."""
    if kind in ("beta", "q_beta"):
        return f"Optuna samples ranges uniformly, not from a {kind}; write `{{type: float, low: 0.0, high: 1.0}}`"
    mu, sigma = spec.get("mu", 0.0), spec.get("sigma", 1.0)
    if not (_is_number(mu) and _is_number(sigma)):
        return f"Optuna samples bounded ranges, not a {kind}; write a range such as mu ± 2 sigma"
    lo, hi = mu - 2 * sigma, mu + 2 * sigma
    if kind.endswith("log_normal"):
        return (
            f"Optuna samples bounded ranges, not a {kind}; for e^(mu ± 2 sigma) write "
            f"`{{type: float, low: {_g(math.exp(lo))}, high: {_g(math.exp(hi))}, log: true}}`"
        )
    step = f", step: {spec['q']}" if "q" in spec else ""
    return (
        f"Optuna samples bounded ranges, not a {kind}; for mu ± 2 sigma write "
        f"`{{type: float, low: {_g(lo)}, high: {_g(hi)}{step}}}`"
    )


class _Dumper(yaml.SafeDumper):
    """Flow style on one line; no aliases (a space file refuses them)."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _line(key: str, value: Any, comment: str | None, indent: int = 0) -> str:
    text = f"{' ' * indent}{_flow(key)}: {_flow(value)}"
    return f"{text}  # {' '.join(comment.split())}" if comment else text


def _flow(value: Any) -> str:
    out = yaml.dump(value, Dumper=_Dumper, default_flow_style=True, sort_keys=False, width=1 << 30, allow_unicode=True)
    return out.removesuffix("\n").removesuffix("\n...").strip()


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _tidy(x: float) -> float:
    """``x`` to 12 significant digits: e^ln(1e-4) is 1e-4, not 1.0000000000000002e-4."""
    return float(f"{x:.12g}")


def _g(x: float) -> str:
    return f"{x:.6g}"


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
