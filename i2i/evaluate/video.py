"""Videos against target videos (``i2i eval MODEL --data DIR`` where ``DIR/A`` holds videos): the
paired metrics per frame (PSNR, SSIM, and LPIPS where its weights are local) and the warping error
(:mod:`i2i.convert.video.temporal`, 8-bit levels: how much each frame differs from the one before
moved along the input's motion), for the identity (the input itself), the per-frame translation
(``--temporal off``) and the stabilised one (``--temporal flow``), with the targets' own warping
error as the floor a faithful output cannot go below."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import av
import numpy as np
import torch

from ..convert.video import VIDEO_EXTENSIONS, Stabilizer
from ..data.io import to_tensor
from ..translator import Translator
from .base import format_table
from .lpips import lpips_for
from .paired import PAIRED, as_channels, image_scores

ROWS = ("identity", "per-frame", "stabilised")


def video_pairs(root: str | Path) -> list[tuple[Path, Path]]:
    """``(input, target)`` videos: ``A/`` (or ``testA/``) and ``B/`` (``testB/``) matched by stem.
    A ``ValueError`` names what is missing."""
    root = Path(root)
    a, b = ("A", "B") if (root / "A").is_dir() else ("testA", "testB")
    if not (root / a).is_dir():
        raise ValueError(f"'{root}' has no A/ (or testA/) folder of input videos")
    targets = {p.stem: p for p in sorted((root / b).glob("*")) if p.suffix.lower() in VIDEO_EXTENSIONS}
    pairs, missing = [], []
    for p in sorted((root / a).glob("*")):
        if p.suffix.lower() in VIDEO_EXTENSIONS:
            (pairs.append((p, targets[p.stem])) if p.stem in targets else missing.append(p.name))
    if missing:
        raise ValueError(f"no target video in '{root / b}' for {', '.join(missing[:5])}: name each like its input")
    if not pairs:
        raise ValueError(f"'{root / a}' holds no videos ({', '.join(VIDEO_EXTENSIONS)})")
    return pairs


def has_videos(root: str | Path) -> bool:
    """Whether ``root`` is a folder of input videos with targets (``A/`` or ``testA/`` holding videos)."""
    root = Path(root)
    return any(p.suffix.lower() in VIDEO_EXTENSIONS for a in ("A", "testA") if (root / a).is_dir()
               for p in (root / a).iterdir())


def frames_of(path: Path, limit: int | None = None) -> list[np.ndarray]:
    """The first ``limit`` (all: None) frames of a video as RGB uint8 arrays."""
    out = []
    with av.open(str(path)) as c:
        for f in c.decode(video=0):
            out.append(f.to_ndarray(format="rgb24"))
            if limit is not None and len(out) >= limit:
                break
    return out


def _score_video(tr: Translator, src: Path, dst: Path, limit: int | None, lpips: Any) -> dict[str, Any]:
    xs, ys = frames_of(src, limit), frames_of(dst, limit)
    n = min(len(xs), len(ys))
    stab, floor = Stabilizer(), Stabilizer(strength=0.0)  # strength 0: measures the target, changes nothing
    sums: dict[str, dict[str, float]] = {r: {} for r in ROWS}
    for k in range(n):
        raw = tr.translate_arrays([xs[k]])[0]
        preds = {"identity": xs[k], "per-frame": raw, "stabilised": stab.step(xs[k], raw)}
        floor.step(xs[k], ys[k])
        y = to_tensor(ys[k])[None]
        for who, p in preds.items():
            pt = as_channels(to_tensor(p)[None], y.shape[1])
            if pt.shape != y.shape:
                raise ValueError(f"'{dst}' frames are {ys[k].shape[1]}x{ys[k].shape[0]}, the outputs of '{src}' "
                                 f"{p.shape[1]}x{p.shape[0]}: the target video must have the output's size")
            for m, v in image_scores(pt, y, lpips=lpips).items():
                sums[who][m] = sums[who].get(m, 0.0) + v
    warp, target = stab.report(), floor.report()
    rows = [{"model": who, **{m: v / max(n, 1) for m, v in sums[who].items()},
             "warping": warp.get({"identity": "input"}.get(who, who), float("nan"))} for who in ROWS]
    return {"video": src.name, "frames": n, "rows": rows, "target_warping": target.get("per-frame", float("nan")),
            "cuts": warp.get("cuts", 0.0)}


def evaluate_videos(checkpoint: str | Path, data_root: str | Path, out_dir: str | Path | None = None, *,
                    direction: str | None = None, device: str = "auto", limit: int | None = None,
                    lpips: str | None = "auto") -> dict[str, Any]:
    """Every input video of ``data_root`` (:func:`video_pairs`) translated frame by frame and
    stabilised, scored against its target (``limit``: frames per video). Returns ``{"videos":
    [{"video", "frames", "rows": [{"model", <metric>..., "warping"}], "target_warping", "cuts"}],
    "models": the rows averaged over videos, "lpips"}``; with ``out_dir``, writes ``metrics.json``."""
    perceptual, note = lpips_for(lpips)
    tr = Translator.from_file(checkpoint, direction=direction, device=device)
    with torch.no_grad():
        videos = [_score_video(tr, a, b, limit, perceptual) for a, b in video_pairs(data_root)]
    keys = [k for k in videos[0]["rows"][0] if k != "model"]
    models = [{"model": who, **{k: float(np.mean([v["rows"][i][k] for v in videos])) for k in keys}}
              for i, who in enumerate(ROWS)]
    result = {"videos": videos, "models": models, "lpips": note,
              "target_warping": float(np.mean([v["target_warping"] for v in videos]))}
    if out_dir is not None:
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        (Path(out_dir) / "metrics.json").write_text(json.dumps(result, indent=2))
    return result


def video_report(result: dict[str, Any]) -> str:
    """The table ``i2i eval`` prints for videos."""
    metrics = [m for m in PAIRED.metrics if m.name in result["models"][0]]
    table = format_table(result["models"], metrics)
    lines = [f"{len(result['videos'])} video(s), {sum(v['frames'] for v in result['videos'])} frames; "
             f"LPIPS: {result['lpips']}", table]
    warps = ", ".join(f"{r['model']} {r['warping']:.2f}" for r in result["models"])
    lines.append(f"warping error (8-bit levels, lower is steadier): {warps}; the targets' own "
                 f"{result['target_warping']:.2f}")
    return "\n".join(lines)
