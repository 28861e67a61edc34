"""Sample grids, loss-curve plots (SVG, no plotting dependency) and the HTML results page."""

from __future__ import annotations

import html
import json
import math
import os
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from .data.io import from_tensor, write_image
from .files import atomic_write_bytes


def to_rgb8(t: torch.Tensor) -> np.ndarray:
    """``(C, H, W)`` in [-1, 1] with C = 1 or 3 -> ``(H, W, 3)`` uint8."""
    img = from_tensor(t)
    return np.repeat(img, 3, axis=2) if img.shape[2] == 1 else img[:, :, :3]


def save_grid(path: str | Path, columns: list[torch.Tensor], pad: int = 2, titles: list[str] | None = None) -> Path:
    """Write :func:`grid_image` of ``columns`` as a PNG at ``path`` (atomically); returns the path."""
    return write_image(path, grid_image(columns, pad=pad, titles=titles))


def grid_image(columns: list[torch.Tensor], pad: int = 2, titles: list[str] | None = None) -> np.ndarray:
    """``(H, W, 3)`` uint8 grid: one row per sample, one column per tensor in ``columns``.

    Each tensor is ``(N, C, H, W)`` in [-1, 1]; columns may differ in size (cells are
    padded to the largest) and in channels (gray is shown as RGB). ``titles`` (one per
    column) are drawn in a band above the columns, shortened to fit their width.
    """
    n = columns[0].shape[0]
    h = max(c.shape[2] for c in columns)
    w = max(c.shape[3] for c in columns)
    band = 14 if titles else 0
    grid = np.full((band + n * (h + pad) + pad, len(columns) * (w + pad) + pad, 3), 255, np.uint8)
    for j, col in enumerate(columns):
        x = pad + j * (w + pad)
        if titles:
            text = titles[j]
            while text and cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.35, 1)[0][0] > w:
                text = text[:-1]
            cv2.putText(grid, text, (x + 1, band - 4), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (0, 0, 0), 1, cv2.LINE_AA)
        for i in range(n):
            img = to_rgb8(col[i])
            y = band + pad + i * (h + pad)
            grid[y : y + img.shape[0], x : x + img.shape[1]] = img
    return grid


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """Records of a run's ``metrics.jsonl`` (empty when missing)."""
    path = Path(path)
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    """About ``n`` round tick values covering [lo, hi] (1, 2, 2.5 or 5 times a power of ten apart)."""
    if hi <= lo:
        return [lo]
    raw = (hi - lo) / max(n, 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step - 1e-9) * step
    return [first + i * step for i in range(int((hi - first) / step + 1e-9) + 1)]


def smooth(values: list[float], weight: float = 0.6) -> list[float]:
    """TensorBoard-style exponential smoothing with bias correction (``weight`` 0: none)."""
    out, last, norm = [], 0.0, 0.0
    for v in values:
        last = weight * last + (1 - weight) * v
        norm = weight * norm + (1 - weight)
        out.append(last / norm)
    return out


def _chart(key: str, steps: list[int], ys: list[float], x0: int, x1: int, color: str, width: int, height: int,
           smoothed: bool = True) -> str:
    left, right, top, bottom = 52, 12, 10, 34
    w, h = width - left - right, height - top - bottom
    lo, hi = min(ys), max(ys)
    if hi - lo < 1e-12:
        lo, hi = lo - 0.5 * (abs(lo) or 1.0), hi + 0.5 * (abs(hi) or 1.0)
    pad = 0.05 * (hi - lo)
    lo, hi = lo - pad, hi + pad

    def X(s: float) -> float:
        return left + (s - x0) / max(x1 - x0, 1) * w

    def Y(v: float) -> float:
        return top + (1 - (v - lo) / (hi - lo)) * h

    parts = [f'<rect x="{left}" y="{top}" width="{w}" height="{h}" fill="none" stroke="#bbb"/>']
    for t in _nice_ticks(lo, hi):
        parts.append(f'<line x1="{left}" x2="{left + w}" y1="{Y(t):.1f}" y2="{Y(t):.1f}" stroke="#eee"/>'
                     f'<text x="{left - 4}" y="{Y(t) + 3:.1f}" font-size="10" text-anchor="end">{t:.4g}</text>')
    for t in _nice_ticks(x0, x1):
        parts.append(f'<line x1="{X(t):.1f}" x2="{X(t):.1f}" y1="{top + h}" y2="{top + h + 4}" stroke="#888"/>'
                     f'<text x="{X(t):.1f}" y="{top + h + 15}" font-size="10" text-anchor="middle">{t:.6g}</text>')
    parts.append(f'<text x="{left + w / 2:.0f}" y="{height - 4}" font-size="10" text-anchor="middle">step</text>')
    raw = " ".join(f"{X(s):.1f},{Y(v):.1f}" for s, v in zip(steps, ys))
    if smoothed and len(ys) >= 10:  # raw values faint, their smoothed trend on top
        parts.append(f'<polyline fill="none" stroke="{color}" stroke-opacity="0.3" stroke-width="1" points="{raw}"/>')
        sm = " ".join(f"{X(s):.1f},{Y(v):.1f}" for s, v in zip(steps, smooth(ys)))
        parts.append(f'<polyline fill="none" stroke="{color}" stroke-width="1.8" points="{sm}"/>')
    else:
        parts.append(f'<polyline fill="none" stroke="{color}" stroke-width="1.5" points="{raw}"/>')
    if len(ys) < 10:
        parts += [f'<circle cx="{X(s):.1f}" cy="{Y(v):.1f}" r="2.5" fill="{color}"/>' for s, v in zip(steps, ys)]
    caption = f"{key}: first {ys[0]:.4g}, last {ys[-1]:.4g}, min {min(ys):.4g}, max {max(ys):.4g}"
    return (f'<figure class="curve"><svg width="{width}" height="{height}" role="img" aria-label="{html.escape(key)}">'
            + "".join(parts) + f"</svg><figcaption>{html.escape(caption)}</figcaption></figure>")


def loss_curves_svg(records: list[dict[str, Any]], keys: list[str] | None = None, width: int = 420,
                    height: int = 180) -> str:
    """Inline SVG charts of a run's ``metrics.jsonl`` records (x = step), in three groups:
    training losses, validation metrics (``val_*``) and learning rates (``lr_*``). Each chart
    has its own scale with round ticks on both axes; with 10 points or more the raw losses
    and metrics are drawn faint under their smoothed trend (learning rates as they are). Series
    that are always 0 (a disabled loss term) are listed instead of drawn."""
    if not records:
        return "<p>No training metrics recorded.</p>"
    skip = {"step", "epoch", "it_per_s"}
    keys = keys or list(dict.fromkeys(k for r in records for k in r if k not in skip))
    colors = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"]
    all_steps = [r["step"] for r in records]
    x0, x1 = min(all_steps), max(all_steps)
    groups: dict[str, list[str]] = {"training losses": [], "validation": [], "learning rate": []}
    disabled = []
    for i, key in enumerate(keys):
        pts = [(r["step"], float(r[key])) for r in records if key in r and isinstance(r[key], (int, float))]
        if not pts:
            continue
        if all(v == 0 for _, v in pts) and not key.startswith("lr_"):
            disabled.append(key)
            continue
        group = (
            "validation" if key.startswith("val_") else "learning rate" if key.startswith("lr_") else "training losses"
        )
        steps, ys = [s for s, _ in pts], [v for _, v in pts]
        # A schedule is exact, not noisy: learning rates are drawn as they are.
        groups[group].append(_chart(key, steps, ys, x0, x1, colors[i % len(colors)], width, height,
                                    smoothed=group != "learning rate"))
    out = []
    for title, charts in groups.items():
        if charts:
            out.append(f"<h3>{html.escape(title)}</h3>\n" + "\n".join(charts))
    if disabled:
        out.append(f"<p>Always 0 in this run (disabled terms), not drawn: {html.escape(', '.join(disabled))}.</p>")
    return "\n".join(out)


def health_html(records: list[dict[str, Any]]) -> str:
    """The run's training-health verdicts (``health`` records of ``metrics.jsonl``), or that
    none was raised; nothing without training records."""
    if not records:
        return ""
    said = [r for r in records if "health" in r]
    if not said:
        return ("<h3>Training health</h3><p>No warning from the health checks (a discriminator that has won, a "
                "diverging loss, generators that copy their inputs, mode collapse, samples copying the training set, "
                "validation stalled while the losses fall; all but the first two and unpaired copying need "
                "validation: train.val_every).</p>")
    items = "".join(f"<li>step {int(r['step'])}: {html.escape(str(r.get('message', r['health'])))}</li>" for r in said)
    return f"<h3>Training health</h3><ul>{items}</ul>"


def write_results_page(
    out_dir: str | Path,
    *,
    title: str,
    columns: list[str],
    rows: list[dict[str, Any]],
    summary: list[dict[str, Any]],
    records: list[dict[str, Any]],
    notes: str = "",
    better: dict[str, str] | None = None,
    formats: dict[str, str] | None = None,
) -> Path:
    """Write ``out_dir/index.html``.

    ``rows``: ``{"name": str, "images": [paths, one per column], "metrics": {name: value}}``;
    image paths are made relative to ``out_dir``. ``summary``: table rows of dicts
    (e.g. one per model with mean metrics); ``better`` (column -> ``"max"`` or ``"min"``)
    marks each column's best row in bold; ``formats`` (column -> format spec, e.g. ``".2f"``)
    prints each metric as the text tables do (others: ``".4f"``). ``records``: training metrics
    for the curves.
    """
    out_dir = Path(out_dir)
    esc = html.escape
    better = better or {}
    formats = formats or {}

    def table(dicts: list[dict[str, Any]]) -> str:
        if not dicts:
            return ""
        keys = list(dicts[0])
        best = {k: (max if better[k] == "max" else min)(d[k] for d in dicts) for k in keys if k in better}
        head = "".join(
            f"<th>{esc(k)}{' ↑' if better.get(k) == 'max' else ' ↓' if better.get(k) == 'min' else ''}</th>"
            for k in keys
        )

        def cell(k: str, v: Any) -> str:
            if not isinstance(v, float):
                return f"<td>{esc(str(v))}</td>"
            text = format(v, formats.get(k, ".4f"))
            return f"<td><b>{text}</b></td>" if k in best and v == best[k] else f"<td>{text}</td>"

        body = "".join("<tr>" + "".join(cell(k, v) for k, v in d.items()) + "</tr>" for d in dicts)
        return f"<table><tr>{head}</tr>{body}</table>"

    metric_names = list(rows[0]["metrics"]) if rows else []
    head = "".join(f"<th>{esc(c)}</th>" for c in ["name", *columns, *metric_names])
    body = []
    for r in rows:
        cells = [f"<td>{esc(r['name'])}</td>"]
        for p in r["images"]:
            rel = os.path.relpath(p, out_dir)
            cells.append(f'<td><a href="{esc(rel)}"><img src="{esc(rel)}" loading="lazy"></a></td>')
        cells += [f"<td>{format(v, '+.2f' if k.startswith('dB') else formats.get(k, '.4f'))}</td>" for k,
                  v in r["metrics"].items()]
        body.append("<tr>" + "".join(cells) + "</tr>")
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>{esc(title)}</title>
<style>body{{font-family:sans-serif;margin:1.5em}} table{{border-collapse:collapse;margin:1em 0}}
td,th{{border:1px solid #ddd;padding:4px 8px;text-align:center}} img{{max-width:256px;image-rendering:pixelated}}
figure.curve{{display:inline-block;margin:0.5em}}</style></head><body>
<h1>{esc(title)}</h1>
<p>{esc(notes)}</p>
<h2>Summary</h2>
{table(summary)}
<p>Bold: the best value in each column (↑ higher is better, ↓ lower is better).</p>
<h2>Training curves</h2>
{loss_curves_svg(records)}
{health_html(records)}
<h2>Images</h2>
<table><tr>{head}</tr>
{"".join(body)}
</table></body></html>
"""
    path = out_dir / "index.html"
    atomic_write_bytes(path, page.encode())
    return path
