"""Mapping a sweep's ``parameters`` (W&B's distributions) to hpo's ``params`` and ``fixed``.

W&B's rules (their ``wandb/sweeps`` schema and samplers): a parameter without ``distribution`` is
``categorical`` with ``values``, ``constant`` with ``value``, ``int_uniform`` when ``min`` and ``max`` are
both integers and ``uniform`` otherwise; ``min`` must be below ``max``; ``log_uniform`` takes base-e
exponents; ``q_uniform`` rounds to multiples of ``q`` (default 1.0) and returns integers only when ``q`` is one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from hpo.space import key_refusal
from hpo.sweep._findings import Findings, g, is_int, is_number, short, tidy

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
_OPTIONAL = ("q", "mu", "sigma", "a", "b")
_UNBOUNDED = ("normal", "q_normal", "log_normal", "q_log_normal", "beta", "q_beta")


@dataclass(frozen=True)
class Param:
    """One converted parameter: its hpo definition and the comment the written file gives it."""

    spec: dict[str, Any]
    comment: str


@dataclass
class Parameters:
    """A sweep's parameters as hpo's: the tuned ones and the fixed ones (W&B's ``value``), names flattened."""

    tuned: dict[str, Param] = field(default_factory=dict)
    fixed: dict[str, Any] = field(default_factory=dict)

    def grid_points(self) -> int:
        """How many points a grid over the tuned parameters has."""
        return math.prod(_points(p.spec) for p in self.tuned.values())


def convert_parameters(raw: Any, method: Any, findings: Findings) -> Parameters:
    """The sweep's ``parameters`` (``raw``) as hpo's; what cannot be converted goes into ``findings``."""
    out = Parameters()
    if raw is None:
        return out
    if not isinstance(raw, dict) or not raw:
        findings.fail(f"`parameters` must be a mapping of at least one parameter name to its values, but got {short(raw)}")
        return out
    _Mapper(findings, grid=method == "grid", out=out).collect(raw, "", "parameters")
    if not out.tuned and not findings.problems:
        findings.fail(
            "`parameters` leaves nothing to tune: every parameter is a `value` or was not carried over, "
            "and an hpo study needs at least one"
        )
    return out


@dataclass
class _Mapper:
    """Maps parameters one by one into ``out``; ``grid``: the sweep's method is grid, which enumerates them."""

    findings: Findings
    grid: bool
    out: Parameters

    def collect(self, raw: dict[Any, Any], prefix: str, path: str) -> None:
        """Convert the parameters in ``raw`` (at sweep key ``path``), naming nested ones ``outer.inner``."""
        for own, spec in raw.items():
            key = f"{path}.{own}"
            if not isinstance(own, str):
                self.findings.fail(f"`{key}`: a parameter's name must be a string, but got {own!r}")
                continue
            name = f"{prefix}{own}"
            if name in self.out.tuned or name in self.out.fixed:
                self.findings.fail(f"`{key}` flattens to {name!r}, which another parameter already is; rename one")
            elif not isinstance(spec, dict):
                self.findings.fail(f"`{key}` must be a mapping (values, value, min/max or distribution), but got {short(spec)}")
            elif "parameters" in spec:
                self._nested(key, name, spec)
            else:
                self._one(key, name, spec)

    def _nested(self, key: str, name: str, spec: dict[str, Any]) -> None:
        if set(spec) != {"parameters"} or not isinstance(spec["parameters"], dict) or not spec["parameters"]:
            self.findings.fail(f"`{key}` holds nested `parameters`, so it must hold nothing else and at least one parameter")
            return
        before = set(self.out.tuned) | set(self.out.fixed)
        self.collect(spec["parameters"], f"{name}.", f"{key}.parameters")
        flat = sorted((set(self.out.tuned) | set(self.out.fixed)) - before)
        if flat:
            self.findings.note(
                f"`{key}` is nested; hpo's params are flat, so its parameters are named {', '.join(flat)} "
                f"(a training function reads params[{flat[0]!r}])"
            )

    def _one(self, key: str, name: str, spec: dict[str, Any]) -> None:
        why = key_refusal(name)
        if why is not None:
            # Renamed, it would no longer be what the training code reads: the sweep's author renames it.
            self.findings.fail(f"`{key}`: the parameter name {name!r} {why}; rename it in the sweep")
            return
        kind = self._kind(key, spec)
        if kind == "constant":
            self.out.fixed[name] = spec["value"]
        elif kind is not None:
            converted = self._param(key, kind, spec)
            if converted is not None:
                self.out.tuned[name] = converted

    def _kind(self, key: str, spec: dict[str, Any]) -> str | None:
        """The W&B distribution of ``spec``, stated or inferred as W&B infers it; None after a problem."""
        kind = spec.get("distribution")
        if kind is None:
            if "values" in spec:
                kind = "categorical_w_probabilities" if "probabilities" in spec else "categorical"
            elif "value" in spec:
                kind = "constant"
            elif "min" in spec and "max" in spec:
                kind = "int_uniform" if is_int(spec["min"]) and is_int(spec["max"]) else "uniform"
            else:
                self.findings.fail(f"`{key}` needs `values`, `value`, `min` and `max`, or a `distribution`")
                return None
        elif not isinstance(kind, str) or kind not in _DISTRIBUTIONS:
            self.findings.fail(f"`{key}.distribution` must be one of W&B's {', '.join(_DISTRIBUTIONS)}, but got {short(kind)}")
            return None
        takes = _DISTRIBUTIONS[kind]
        extra = [k for k in spec if k not in takes and k != "distribution"]
        if extra:
            self.findings.fail(f"`{key}.{extra[0]}` is not a key of a W&B {kind} parameter (it takes {', '.join(takes)})")
            return None
        needed = [k for k in takes if k not in spec and k not in _OPTIONAL]
        if needed:
            self.findings.fail(f"`{key}` is a {kind} parameter and needs `{needed[0]}`")
            return None
        return kind

    def _param(self, key: str, kind: str, spec: dict[str, Any]) -> Param | None:
        if kind in ("categorical", "categorical_w_probabilities"):
            return self._categorical(key, kind, spec)
        if kind in _UNBOUNDED:
            self.findings.drop(key, spec, _unbounded_hint(kind, spec))
            return None
        bounds = self._range(key, kind, spec)
        if bounds is None:
            return None
        param = self._ranged(key, kind, spec, *bounds)
        if param is not None and self.grid and param.spec["type"] == "float" and "step" not in param.spec:
            self.findings.fail(
                f"`{key}` is a continuous range ({kind}), which a grid cannot enumerate (W&B's grid refuses it too); "
                "give it `values`, or `distribution: q_uniform` with a `q`"
            )
            return None
        return param

    def _ranged(self, key: str, kind: str, spec: dict[str, Any], low: Any, high: Any) -> Param | None:
        """A distribution over [min, max] (checked), as an hpo range."""
        if kind == "int_uniform":
            return Param({"type": "int", "low": low, "high": high}, kind)
        if kind == "uniform":
            return Param({"type": "float", "low": float(low), "high": float(high)}, kind)
        if kind in ("log_uniform_values", "inv_log_uniform_values"):
            same = " (1/X log-uniform is X log-uniform on the same range)" if kind.startswith("inv") else ""
            return Param({"type": "float", "low": float(low), "high": float(high), "log": True}, kind + same)
        if kind in ("log_uniform", "inv_log_uniform"):
            return self._exponents(key, kind, low, high)
        if kind == "q_uniform":
            return self._stepped(key, spec, low, high)
        return self._quantized_log(key, kind, spec, low, high)  # q_log_uniform_values, q_log_uniform

    def _categorical(self, key: str, kind: str, spec: dict[str, Any]) -> Param | None:
        values = spec["values"]
        if not isinstance(values, list) or not values:
            self.findings.fail(f"`{key}.values` must be a list of at least one value, but got {short(values)}")
            return None
        odd = [v for v in values if not isinstance(v, (bool, int, float, str, type(None)))]
        if odd:
            self.findings.drop(
                key,
                spec,
                f"its values hold {short(odd[0])}, and an hpo categorical holds only numbers, strings, booleans and null; "
                "write each as a string (e.g. '64-64') and parse it in a training function",
            )
            return None
        if kind == "categorical_w_probabilities":
            self.findings.drop(
                f"{key}.probabilities", spec["probabilities"], "hpo's samplers weigh every choice alike; the values are kept"
            )
        return Param({"type": "categorical", "choices": values}, "values")

    def _range(self, key: str, kind: str, spec: dict[str, Any]) -> tuple[Any, Any] | None:
        lo, hi = spec["min"], spec["max"]
        ok = True
        for k, v in (("min", lo), ("max", hi)):
            if kind == "int_uniform" and not is_int(v):
                self.findings.fail(f"`{key}.{k}` must be an integer for int_uniform, but got {short(v)}")
                ok = False
            elif not is_number(v):
                self.findings.fail(f"`{key}.{k}` must be a finite number, but got {short(v)}")
                ok = False
        if not ok:
            return None
        if lo >= hi:
            self.findings.fail(f"`{key}.min` must be < `max` (W&B's rule), but got min={lo}, max={hi}")
            return None
        if kind.endswith("log_uniform_values") and lo <= 0:
            self.findings.fail(f"`{key}.min` must be > 0 for {kind}, but got min={lo}")
            return None
        return lo, hi

    def _exponents(self, key: str, kind: str, lo: float, hi: float) -> Param | None:
        # W&B's v1 log distributions take base-e exponents: log_uniform samples e^U(min, max) and
        # inv_log_uniform e^-U(min, max), both log-uniform on the values below.
        a, b = (lo, hi) if kind == "log_uniform" else (-hi, -lo)
        try:
            low, high = tidy(math.exp(a)), tidy(math.exp(b))
        except OverflowError:
            self.findings.fail(f"`{key}` is {kind}, whose min and max are exponents, and e^{max(a, b)} is too large for a float")
            return None
        self.findings.note(
            f"`{key}` is {kind}, whose min and max are base-e exponents: written as a log-scale range of the values "
            f"e^{g(a)}..e^{g(b)} = {g(low)}..{g(high)}"
        )
        return Param({"type": "float", "low": low, "high": high, "log": True}, f"{kind}: e^{g(a)}..e^{g(b)}")

    def _stepped(self, key: str, spec: dict[str, Any], lo: float, hi: float) -> Param | None:
        q = spec.get("q", 1.0)  # W&B's default is the float 1.0, so without q the values are floats
        if not is_number(q) or q <= 0:
            self.findings.fail(f"`{key}.q` must be a number > 0, but got {short(q)}")
            return None
        # W&B draws U(min, max) and rounds it to a multiple of q; hpo's range is those multiples within [min, max].
        first, last = math.ceil(lo / q - 1e-9), math.floor(hi / q + 1e-9)
        if first > last:
            self.findings.fail(f"`{key}` has no multiple of q={q} between min={lo} and max={hi}")
            return None
        integers = is_int(q) and is_int(lo) and is_int(hi)
        low, high = (first * q, last * q) if integers else (tidy(first * q), tidy(last * q))
        if low != lo or high != hi:
            self.findings.note(
                f"`{key}` is q_uniform, which rounds to multiples of q={q}: written as the multiples within "
                f"[{lo}, {hi}], {low}..{high}"
            )
        spec_out = {"type": "int" if integers else "float", "low": low, "high": high, "step": q if integers else float(q)}
        return Param(spec_out, "q_uniform" + (" (min, max and q are integers, so are the values)" if integers else ""))

    def _quantized_log(self, key: str, kind: str, spec: dict[str, Any], lo: float, hi: float) -> Param | None:
        q = spec.get("q", 1.0)
        if kind == "q_log_uniform_values" and q == 1 and is_int(q) and is_int(lo) and is_int(hi):
            # round(e^U(log min, log max)) as integers: Optuna's int log scale samples the same way.
            return Param({"type": "int", "low": lo, "high": hi, "log": True}, f"{kind} with q: 1")
        try:
            log_values = (lo, hi) if kind == "q_log_uniform_values" else (tidy(math.exp(lo)), tidy(math.exp(hi)))
        except OverflowError:
            self.findings.fail(f"`{key}` is {kind}, whose min and max are exponents, and e^{hi} is too large for a float")
            return None
        self.findings.drop(
            key,
            spec,
            f"Optuna's log scale takes no step, so {kind} with q={q} has no exact counterpart; write "
            f"`{{type: float, low: {g(log_values[0])}, high: {g(log_values[1])}, log: true}}` (unrounded), "
            f"an int with log: true for q: 1, or the values as a categorical",
        )
        return None


def _points(spec: dict[str, Any]) -> int:
    if spec["type"] == "categorical":
        return len(spec["choices"])
    return int(round((spec["high"] - spec["low"]) / spec.get("step", 1))) + 1


def _unbounded_hint(kind: str, spec: dict[str, Any]) -> str:
    """Why an unbounded (or [0, 1]) distribution has no counterpart, and a range to write instead."""
    if kind in ("beta", "q_beta"):
        return f"Optuna samples ranges uniformly, not from a {kind}; write `{{type: float, low: 0.0, high: 1.0}}`"
    mu, sigma = spec.get("mu", 0.0), spec.get("sigma", 1.0)
    if not (is_number(mu) and is_number(sigma)):
        return f"Optuna samples bounded ranges, not a {kind}; write a range such as mu ± 2 sigma"
    lo, hi = mu - 2 * sigma, mu + 2 * sigma
    if kind.endswith("log_normal"):
        return (
            f"Optuna samples bounded ranges, not a {kind}; for e^(mu ± 2 sigma) write "
            f"`{{type: float, low: {g(math.exp(lo))}, high: {g(math.exp(hi))}, log: true}}`"
        )
    step = f", step: {spec['q']}" if "q" in spec else ""
    return (
        f"Optuna samples bounded ranges, not a {kind}; for mu ± 2 sigma write "
        f"`{{type: float, low: {g(lo)}, high: {g(hi)}{step}}}`"
    )
