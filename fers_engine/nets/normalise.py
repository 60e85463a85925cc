"""Scene-wide input normalisation for the enhancers.

The published code min-max scales each tile/cube to [-0.1, 0.1] (method.md 1.1): one hot pixel
rescales everything, and each tile gets a different transform (flaw 6.6 / 6.15). Here the scale
is fixed once per scene from robust global quantiles (all bands pooled, like the published
whole-cube min-max, so relative band levels are kept) of a bounded, deterministic subsample of
the valid values, then the same affine map is applied to every tile:

    x_n = 0.1 * (2 * (x - q_lo) / (q_hi - q_lo) - 1),   q_lo, q_hi = quantiles 0.001, 0.999

Values are not clipped: an anomaly brighter than the 99.9 % quantile stays brighter.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np

#: ``cap``: values sampled for the quantiles. 2**22 takes every pixel of a scene up to ~180 x 180 px
#: at 128 bands, so the transform of a development scene does not depend on which pixels a
#: stride happens to pick (a rotated scene gets exactly the same transform).
DEFAULT: Dict[str, Any] = {
    "method": "global-quantile",
    "q_lo": 0.001,
    "q_hi": 0.999,
    "half_range": 0.1,
    "cap": 4194304,
}


class Normaliser:
    """Streamed first pass: ``update(block, valid)`` per block, then ``apply(block)``.

    The sample is every k-th valid value with k doubling whenever the buffer exceeds ``cap``
    (no random numbers, so the transform depends only on the data and the block order).
    ``check`` (e.g. ``Reporter.check``) is called on every pass of the thinning loop, whose
    length depends on the model card's ``cap``, so a cancel is always heard."""

    def __init__(
        self,
        q_lo: float = 0.001,
        q_hi: float = 0.999,
        half_range: float = 0.1,
        cap: int = 4194304,
        check: Optional[Callable[[], None]] = None,
        **_ignored,
    ):
        self.q_lo, self.q_hi, self.half_range, self.cap = (
            float(q_lo),
            float(q_hi),
            float(half_range),
            int(cap),
        )
        self.check = check or (lambda: None)
        self._parts: List[np.ndarray] = []
        self._n = 0
        self._stride = 1
        self._offset = 0
        self.lo: Optional[float] = None
        self.hi: Optional[float] = None

    def update(self, block: np.ndarray, valid: Optional[np.ndarray] = None) -> None:
        block = np.asarray(block)
        if valid is None:
            vals = block.reshape(block.shape[0], -1)
        else:
            vals = block[:, np.asarray(valid, bool)]
        vals = vals.ravel()
        vals = vals[np.isfinite(vals)]
        if vals.size == 0:
            return
        take = vals[(self._offset % self._stride) :: self._stride]
        self._offset = (self._offset + vals.size) % self._stride if self._stride > 1 else 0
        self._parts.append(take.astype(np.float32, copy=True))
        self._n += take.size
        while self._n > self.cap:
            self.check()
            allv = np.concatenate(self._parts)[::2]
            self._parts = [allv]
            self._n = allv.size
            self._stride *= 2
        self.lo = self.hi = None

    def _fit(self) -> Tuple[float, float]:
        """``(lo, hi)``, fitted on the first call from the sample gathered so far."""
        if self.lo is not None and self.hi is not None:
            return self.lo, self.hi
        if self._n == 0:
            from ..errors import InputError

            raise InputError("cannot normalise: the scene has no valid pixel")
        v = np.concatenate(self._parts).astype(np.float64)
        lo, hi = np.quantile(v, [self.q_lo, self.q_hi])
        if not hi > lo:
            lo, hi = float(v.min()), float(v.max())
        if not hi > lo:
            hi = lo + 1.0
        self.lo, self.hi = float(lo), float(hi)
        return self.lo, self.hi

    @property
    def params(self) -> dict:
        self._fit()
        return {"lo": self.lo, "hi": self.hi, "half_range": self.half_range}

    def apply(self, block: np.ndarray) -> np.ndarray:
        lo, hi = self._fit()
        scale = 2.0 * self.half_range / (hi - lo)
        out = np.subtract(block, np.float32(lo), dtype=np.float32)  # one new array, then in place
        out *= np.float32(scale)
        out -= np.float32(self.half_range)
        return out


def normalise_cube(cube: np.ndarray, valid: Optional[np.ndarray] = None, **params) -> np.ndarray:
    n = Normaliser(**{**DEFAULT, **params})
    n.update(cube, valid)
    return n.apply(cube)
