"""Mapping how a sweep searches and stops: ``method`` to a sampler, ``early_terminate`` to a pruner, ``run_cap`` to a budget."""

from __future__ import annotations

from typing import Any

from hpo.errors import option
from hpo.sweep._findings import Findings, Keyed, is_int, is_number, short

METHODS: dict[str, tuple[str, str]] = {
    "grid": ("grid", "every combination once"),
    "random": ("random", ""),
    "bayes": ("tpe", "W&B's bayes is a Gaussian process; tpe is hpo's Bayesian sampler, and gp needs PyTorch"),
}
"""W&B ``method`` -> hpo sampler name and a comment for the written file."""

DEFAULT_BUDGET = 100
"""``n_trials`` for a sweep without ``run_cap`` (W&B runs it until stopped)."""

_NO_PRUNER = Keyed({"name": "none"}, "no early_terminate: W&B stops no run early")
_HYPERBAND_KEYS = ("type", "min_iter", "max_iter", "s", "eta", "strict")


def convert_method(method: str) -> Keyed:
    """The sampler for a (checked) W&B ``method``."""
    sampler, why = METHODS[method]
    return Keyed({"name": sampler}, f"method: {method}" + (f" ({why})" if why else ""))


def convert_early_terminate(raw: Any, findings: Findings) -> Keyed:
    """The pruner for the sweep's ``early_terminate`` (``raw``); no pruner without one, or after a problem."""
    if raw is None:
        return _NO_PRUNER
    if not isinstance(raw, dict) or raw.get("type") != "hyperband":
        got = raw.get("type") if isinstance(raw, dict) else raw
        findings.fail(f"`early_terminate.type` must be hyperband (the only type W&B knows), but got {short(got)}")
        return _NO_PRUNER
    for k in ("min_iter", "max_iter", "s"):
        if k in raw and (not is_int(raw[k]) or raw[k] < 1):
            findings.fail(f"`early_terminate.{k}` must be an integer >= 1, but got {short(raw[k])}")
            return _NO_PRUNER
    eta = raw.get("eta", 3)
    if not is_number(eta) or eta <= 1:
        findings.fail(f"`early_terminate.eta` must be a number > 1, but got {short(eta)}")
        return _NO_PRUNER
    min_resource = _min_resource(raw, eta, findings)
    if min_resource is None:
        return _NO_PRUNER
    pruner: dict[str, Any] = {"name": "hyperband", "min_resource": min_resource[0]}
    said = min_resource[1]
    if _is_whole(eta):
        pruner["reduction_factor"] = int(eta)
        said += f", eta {int(eta)}"
    else:
        findings.drop("early_terminate.eta", eta, "hpo's reduction_factor is a whole number >= 2; hpo's default 3 is written")
    if "strict" in raw:
        findings.drop("early_terminate.strict", raw["strict"], "Optuna's HyperbandPruner has no strict mode")
    for k, v in raw.items():
        if k not in _HYPERBAND_KEYS:
            findings.drop(f"early_terminate.{k}", v, "not a key of W&B's hyperband (W&B ignores it too)")
    return Keyed(
        pruner,
        f"early_terminate: hyperband, {said} (W&B counted the steps your script logged; "
        "hpo counts boosting iterations, or what a training function reports)",
    )


def _min_resource(raw: dict[str, Any], eta: float, findings: Findings) -> tuple[int, str] | None:
    """Hyperband's ``min_resource`` from ``min_iter``, or from ``max_iter`` and ``s``, and how it was found."""
    if "min_iter" in raw:
        for k in ("max_iter", "s"):
            if k in raw:
                findings.drop(
                    f"early_terminate.{k}", raw[k], "with min_iter, W&B ignores it; hpo's max_resource is the model's iterations"
                )
        return raw["min_iter"], f"min_iter {raw['min_iter']}"
    if "max_iter" in raw and "s" in raw:
        # W&B's bands are max_iter / eta^k for k = 1..s while >= 1; hpo's min_resource is the first.
        bands = [int(raw["max_iter"] / eta**k) for k in range(1, raw["s"] + 1) if raw["max_iter"] / eta**k >= 1]
        if not bands:
            findings.fail(
                "`early_terminate`: max_iter / eta is below 1, so W&B's hyperband has no band (raise max_iter or lower eta)"
            )
            return None
        said = f"max_iter {raw['max_iter']} / eta^{len(bands)} = {min(bands)}, W&B's first band"
        findings.note(
            f"`early_terminate` gives max_iter and s: hpo's min_resource is W&B's first band, {said.split(', ')[0]}; "
            "its max_resource is the model's iterations"
        )
        return min(bands), said
    findings.fail("`early_terminate` needs `min_iter`, or `max_iter` and `s`")
    return None


def _is_whole(eta: float) -> bool:
    return is_int(eta) or float(eta).is_integer()


def convert_budget(run_cap: Any, n_trials: int | None, method: Any, findings: Findings) -> Keyed | None:
    """``n_trials``: ``--n-trials``, else ``run_cap``, else a stated default; None for a grid without a budget."""
    if run_cap is not None and (not is_int(run_cap) or run_cap < 1):
        findings.fail(f"`run_cap` must be an integer >= 1, but got {short(run_cap)}")
        return None
    if n_trials is not None:
        said = f" (the sweep's run_cap: {run_cap})" if run_cap is not None else ""
        return Keyed(n_trials, f"--n-trials{said}")
    if run_cap is not None:
        return Keyed(run_cap, "run_cap")
    if method == "grid":
        return None
    findings.note(
        f"the sweep has no run_cap (W&B runs it until stopped), and an hpo study needs a budget: "
        f"n_trials: {DEFAULT_BUDGET} is written; change it, or import again with {option('n_trials')}"
    )
    return Keyed(DEFAULT_BUDGET, "no run_cap in the sweep: a budget to change")


def fit_grid(budget: Keyed, points: int, findings: Findings) -> Keyed | None:
    """A grid's budget: kept when it stops short of the grid's ``points``, else none (the grid's size is the budget)."""
    if budget.value < points:
        return budget
    findings.note(
        f"the budget {budget.value} covers the whole grid of {points} points; the grid's size is the budget, so no n_trials is "
        "written"
    )
    return None
