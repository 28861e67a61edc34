"""Temporally stable video conversion without video training data (``--temporal flow``).

Each frame is still translated alone; then the previous *stabilised output* is warped along the
optical flow of the *input* frames (OpenCV's DIS flow, no learned weights, computed on a copy of
at most ``flow_side`` pixels a side and scaled to the output, so super-resolution works too) and
blended with the current output: ``out = c * s * warped + (1 - c * s) * current``, with ``s`` the
strength and ``c`` a per-pixel confidence from the warped *input*'s agreement with the current
input (after a blur that removes grain, so noise does not count as motion). Where the warped
input disagrees (occlusions, disocclusions, pixels that came from outside the frame) ``c`` is 0
and the current frame is taken as it is; where most of the frame disagrees (a scene cut) the
history is dropped and the frame is the per-frame output exactly. Along a motion trajectory
this is an exponential moving average, so per-frame flicker of variance v falls to about
``v (1 - s) / (1 + s)``.

The warping error (Lai et al., ECCV 2018, as mean absolute difference in 8-bit levels over the
pixels the input says are visible in both frames) is measured on the input, the per-frame output
and the stabilised output with the same flows and masks: :meth:`Stabilizer.report`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import cv2
import numpy as np

from ...data.io import max_value

TEMPORAL = ("off", "flow")


class Stabilizer:
    """Stateful: feed one video's frames in order (:meth:`wrap` around a batch translator, or
    :meth:`step` per frame). ``strength`` in [0, 1) is the share of the warped history where the
    input agrees; ``tolerance`` the input disagreement (fraction of full scale, after the blur) at
    which the confidence reaches 0; ``cut`` the share of unconfident pixels that makes a frame a
    scene cut; ``flow_side`` the longest side the flow is computed at."""

    def __init__(self, strength: float = 0.8, tolerance: float = 0.06, cut: float = 0.5, flow_side: int = 512) -> None:
        if not 0 <= strength < 1:
            raise ValueError(f"strength={strength} must be in [0, 1)")
        self.strength, self.tolerance, self.cut, self.flow_side = strength, tolerance, cut, flow_side
        self.flow = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
        self.prev: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None  # small, input, raw, stable
        self.errors: dict[str, list[float]] = {"input": [], "per-frame": [], "stabilised": []}
        self.frames = self.cuts = 0

    def wrap(self, translate: Callable[[list[np.ndarray]], list[np.ndarray]]) -> Callable[[list[np.ndarray]],
                                                                                        list[np.ndarray]]:
        """``translate`` (a batch of same-size ``(H, W, C)`` uint8/uint16 arrays in, outputs out)
        with every output stabilised against the frames before it."""
        def stabilised(arrays: list[np.ndarray]) -> list[np.ndarray]:
            return [self.step(a, o) for a, o in zip(arrays, translate(arrays))]
        return stabilised

    def step(self, frame: np.ndarray, out: np.ndarray) -> np.ndarray:
        """The stabilised output for input ``frame`` whose per-frame translation is ``out``
        (``(H, W, C)`` and ``(sH, sW, C')``, uint8 or uint16); the first frame, a cut or a change
        of size gives ``out`` itself."""
        self.frames += 1
        x = frame.astype(np.float32) / max_value(frame.dtype)
        y = out.astype(np.float32) / max_value(out.dtype)
        small = self._small(x)
        prev, self.prev = self.prev, None
        if prev is None or prev[0].shape != small.shape or prev[3].shape != y.shape:
            self.prev = (small, x, y, y)
            return out
        flow = self.flow.calc(_gray8(small), _gray8(prev[0]), None)  # current pixel -> where it was before
        conf = self._confidence(small, prev[0], flow)
        if (conf < 0.5).mean() > self.cut:
            self.cuts += 1
            self.prev = (small, x, y, y)
            return out
        c_out = _resize(conf, y.shape)[..., None]
        warped = _warp(prev[3], flow, y.shape)
        stable = y + self.strength * c_out * (warped - y)
        self._measure(x, prev[1], y, prev[2], stable, prev[3], flow, conf)
        self.prev = (small, x, y, stable)
        return _to(stable, out.dtype)

    def _small(self, x: np.ndarray) -> np.ndarray:
        h, w = x.shape[:2]
        f = min(1.0, self.flow_side / max(h, w))
        small = cv2.resize(x, (max(1, round(w * f)), max(1, round(h * f))), interpolation=cv2.INTER_AREA) if f < 1 \
            else x
        small = small[..., None] if small.ndim == 2 else small
        return small[..., :3]

    def _confidence(self, small: np.ndarray, prev_small: np.ndarray, flow: np.ndarray) -> np.ndarray:
        """1 where the previous input, warped, matches the current one (after a blur), falling to 0
        at ``tolerance``; 0 where the flow points outside the frame."""
        warped, inside = _warp(prev_small, flow, small.shape, inside=True)
        diff = np.abs(_chan(_blur(small)) - _chan(_blur(warped))).max(axis=2)
        return np.clip(1 - diff / self.tolerance, 0, 1) * inside

    def _measure(self, x, px, y, py, s, ps, flow, conf) -> None:  # noqa: ANN001  (arrays, for the report)
        visible = conf > 0.5
        for name, cur, before in (("input", x, px), ("per-frame", y, py), ("stabilised", s, ps)):
            v = _resize(visible.astype(np.float32), cur.shape) > 0.5
            if v.any():
                d = np.abs(_chan(cur) - _chan(_warp(before, flow, cur.shape)))
                self.errors[name].append(float(d[v].mean() * 255))

    def report(self) -> dict[str, float]:
        """Mean warping error (8-bit levels) of ``input``, ``per-frame`` and ``stabilised`` over
        the frames measured so far (none before two frames), and ``cuts``, the scene cuts seen."""
        out = {k: float(np.mean(v)) for k, v in self.errors.items() if v}
        return {**out, "cuts": float(self.cuts)} if out else out


def _blur(a: np.ndarray) -> np.ndarray:
    return cv2.GaussianBlur(a, (0, 0), 1.5)


def _chan(a: np.ndarray) -> np.ndarray:
    return a if a.ndim == 3 else a[..., None]


def _gray8(x: np.ndarray) -> np.ndarray:
    g = x[..., 0] if x.shape[2] == 1 else cv2.cvtColor(np.ascontiguousarray(x[..., :3]), cv2.COLOR_RGB2GRAY)
    return np.clip(g * 255 + 0.5, 0, 255).astype(np.uint8)


def _resize(a: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    h, w = shape[:2]
    return a if a.shape[:2] == (h, w) else cv2.resize(a, (w, h), interpolation=cv2.INTER_LINEAR)


def _warp(img: np.ndarray, flow: np.ndarray, shape: tuple[int, ...], inside: bool = False):  # noqa: ANN202
    """``img`` (the previous frame, any size) sampled at each pixel of a ``shape`` frame moved back
    along ``flow`` (computed at another size: scaled); with ``inside``, also where that lands
    inside the frame."""
    h, w = shape[:2]
    ih, iw = img.shape[:2]
    fh, fw = flow.shape[:2]
    f = _resize(flow, (h, w))
    gx, gy = _grid(h, w, iw / w, ih / h)
    mx = gx + f[..., 0] * (iw / fw)
    my = gy + f[..., 1] * (ih / fh)
    out = _chan(cv2.remap(img, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE))
    if not inside:
        return out
    return out, ((mx >= -0.5) & (mx <= iw - 0.5) & (my >= -0.5) & (my <= ih - 0.5)).astype(np.float32)


@functools.lru_cache(maxsize=8)
def _grid(h: int, w: int, sx: float, sy: float) -> tuple[np.ndarray, np.ndarray]:
    """Where each pixel centre of an ``h`` x ``w`` frame falls on a frame ``sx``, ``sy`` times its size."""
    gx, gy = np.meshgrid((np.arange(w, dtype=np.float32) + 0.5) * sx - 0.5,
                         (np.arange(h, dtype=np.float32) + 0.5) * sy - 0.5)
    gx.flags.writeable = gy.flags.writeable = False
    return gx, gy


def _to(x: np.ndarray, dtype: np.dtype) -> np.ndarray:
    m = max_value(dtype)
    return np.clip(x * m + 0.5, 0, m).astype(dtype)
