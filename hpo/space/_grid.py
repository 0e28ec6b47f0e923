"""The grid of a space, counted and walked without being built.

A grid's size is the product of its axes' value counts, computed arithmetically. A point is
built only when asked for, from its index by mixed-radix decoding in ``itertools.product`` order
(the last parameter of the file varies fastest). The run order shuffles the indices by the study
seed: for grids of up to :data:`SHUFFLED_IN_MEMORY` points with numpy's permutation (the order
hpo has always used, so a grid study made before keeps its order when resumed); above it with a
seeded bijection of the indices (a Feistel network), which needs no memory and no time up front.
"""

from __future__ import annotations

import functools
import hashlib
import math
import sys
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, overload

from hpo.space._params import CategoricalParam, FloatParam, IntParam

if TYPE_CHECKING:
    import numpy as np

# More points than any study could run: a grid this large is a mistake (a step far too small),
# and its size, the budget of a grid without `n_trials`, would never be reached.
GRID_MAX_POINTS = 10**9

# numpy's permutation of the indices costs 8 bytes and ~0.2 us a point, once per process.
SHUFFLED_IN_MEMORY = 2**20

_FEISTEL_ROUNDS = 6


class Axis:
    """One parameter's grid values: a list of choices, or ``low + i * step`` for ``i < count``."""

    def __init__(self, p: IntParam | FloatParam | CategoricalParam) -> None:
        self.choices: list[Any] | None = None
        self.low: float = 0
        self.step: float = 1
        self.integer = isinstance(p, IntParam)
        if isinstance(p, CategoricalParam):
            self.choices = list(p.choices)
            self.count = len(p.choices)
        elif isinstance(p, IntParam):
            self.low, self.step = p.low, p.step
            self.count = (p.high - p.low) // p.step + 1
        else:
            assert p.step is not None
            self.low, self.step = p.low, p.step
            ratio = (p.high - p.low) / p.step
            if not math.isfinite(ratio):  # a step so small the count overflows a float
                ratio = sys.float_info.max
            self.count = int(math.floor(ratio + 1e-9)) + 1

    def value(self, i: int) -> Any:
        if self.choices is not None:
            return self.choices[i]
        if self.integer:
            return int(self.low) + i * int(self.step)
        return round(self.low + i * self.step, 12)


class GridPoints(Sequence[dict[str, Any]]):
    """Every combination of the parameter values, in ``itertools.product`` order; built one by one."""

    def __init__(self, params: dict[str, IntParam | FloatParam | CategoricalParam]) -> None:
        self._axes = [(name, Axis(p)) for name, p in params.items()]
        self._size = math.prod(a.count for _, a in self._axes)

    @property
    def size(self) -> int:
        """The number of points, however large (``len()`` stops at 2**63)."""
        return self._size

    def counts(self) -> dict[str, int]:
        return {name: a.count for name, a in self._axes}

    def __len__(self) -> int:
        return self._size

    @overload
    def __getitem__(self, index: int) -> dict[str, Any]: ...
    @overload
    def __getitem__(self, index: slice) -> list[dict[str, Any]]: ...
    def __getitem__(self, index: int | slice) -> dict[str, Any] | list[dict[str, Any]]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(self._size))]
        if index < 0:
            index += self._size
        if not 0 <= index < self._size:
            raise IndexError(f"grid point {index} of {self._size}")
        return self._point(index)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return (self._point(i) for i in range(self._size))

    def _point(self, index: int) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for name, axis in reversed(self._axes):  # mixed radix: the last axis is the lowest digit
            index, digit = divmod(index, axis.count)
            values[name] = axis.value(digit)
        return {name: values[name] for name, _ in self._axes}


class GridOrder(Sequence[dict[str, Any]]):
    """A grid's points in run order: slot ``k`` holds point ``permutation(k)``, built when asked for."""

    def __init__(self, points: GridPoints, seed: int) -> None:
        self._points = points
        self._seed = seed
        n = len(points)
        self._shuffled = _numpy_order(seed, n) if n <= SHUFFLED_IN_MEMORY else None
        self._bits = max(2, (n - 1).bit_length() + (n - 1).bit_length() % 2)

    def __len__(self) -> int:
        return len(self._points)

    @overload
    def __getitem__(self, slot: int) -> dict[str, Any]: ...
    @overload
    def __getitem__(self, slot: slice) -> list[dict[str, Any]]: ...
    def __getitem__(self, slot: int | slice) -> dict[str, Any] | list[dict[str, Any]]:
        n = len(self._points)
        if isinstance(slot, slice):
            return [self[i] for i in range(*slot.indices(n))]
        if slot < 0:
            slot += n
        if not 0 <= slot < n:
            raise IndexError(f"grid slot {slot} of {n}")
        return self._points[self.grid_index(slot)]

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return (self[i] for i in range(len(self)))

    def grid_index(self, slot: int) -> int:
        """The grid index of the point in ``slot``."""
        if self._shuffled is not None:
            return int(self._shuffled[slot])
        # Cycle-walking: the network permutes [0, 2**bits), at most 4 times the grid; values past
        # the grid are mapped again until one falls inside, which keeps the map a bijection.
        x = self._feistel(slot)
        while x >= len(self._points):
            x = self._feistel(x)
        return x

    def _feistel(self, x: int) -> int:
        half = self._bits // 2
        mask = (1 << half) - 1
        left, right = x >> half, x & mask
        for r in range(_FEISTEL_ROUNDS):
            key = f"{self._seed}:{r}:{right}".encode()
            f = int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "big") & mask
            left, right = right, left ^ f
        return (left << half) | right


@functools.lru_cache(maxsize=4)
def _numpy_order(seed: int, n: int) -> np.ndarray:
    import numpy as np

    return np.random.default_rng(seed).permutation(n)
