"""Sample grids, loss-curve plots (SVG, no plotting dependency) and the HTML results page."""

from __future__ import annotations

import html
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .data.io import atomic_write_bytes, from_tensor, write_image


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
    import cv2

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


def loss_curves_svg(records: list[dict[str, Any]], keys: list[str] | None = None, width: int = 640, height: int = 160) -> str:
    """Inline SVG with one small line chart per loss (x = step), each on its own scale."""
    if not records:
        return "<p>No training metrics recorded.</p>"
    skip = {"step", "epoch", "it_per_s"}
    # Every key any record has (training losses, then ``val_*`` metrics logged on their own lines).
    keys = keys or list(dict.fromkeys(k for r in records for k in r if k not in skip and not k.startswith("lr_")))
    colors = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"]
    all_steps = [r["step"] for r in records]
    x0, x1 = min(all_steps), max(max(all_steps), min(all_steps) + 1)
    parts = []
    for i, key in enumerate(keys):
        steps = [r["step"] for r in records if key in r]
        ys = [float(r[key]) for r in records if key in r]
        if not ys:
            continue
        lo, hi = min(ys), max(ys)
        hi = hi if hi > lo else lo + 1.0
        pts = " ".join(
            f"{40 + (s - x0) / (x1 - x0) * (width - 60):.1f},{10 + (1 - (y - lo) / (hi - lo)) * (height - 40):.1f}"
            for s, y in zip(steps, ys)
        )
        c = colors[i % len(colors)]
        parts.append(
            f'<figure class="curve"><svg width="{width}" height="{height}" role="img" aria-label="{html.escape(key)}">'
            f'<rect x="40" y="10" width="{width - 60}" height="{height - 40}" fill="none" stroke="#ccc"/>'
            f'<polyline fill="none" stroke="{c}" stroke-width="1.5" points="{pts}"/>'
            f'<text x="2" y="16" font-size="10">{hi:.3g}</text><text x="2" y="{height - 30}" font-size="10">{lo:.3g}</text>'
            f'<text x="40" y="{height - 14}" font-size="10">step {x0}</text>'
            f'<text x="{width - 80}" y="{height - 14}" font-size="10">step {x1}</text></svg>'
            f"<figcaption>{html.escape(key)}: first {ys[0]:.4g}, last {ys[-1]:.4g}</figcaption></figure>"
        )
    return "\n".join(parts)


def write_results_page(
    out_dir: str | Path,
    *,
    title: str,
    columns: list[str],
    rows: list[dict[str, Any]],
    summary: list[dict[str, Any]],
    records: list[dict[str, Any]],
    notes: str = "",
) -> Path:
    """Write ``out_dir/index.html``.

    ``rows``: ``{"name": str, "images": [paths, one per column], "metrics": {name: value}}``;
    image paths are made relative to ``out_dir``. ``summary``: table rows of dicts
    (e.g. one per model with mean metrics). ``records``: training metrics for the curves.
    """
    out_dir = Path(out_dir)
    esc = html.escape

    def table(dicts: list[dict[str, Any]]) -> str:
        if not dicts:
            return ""
        keys = list(dicts[0])
        head = "".join(f"<th>{esc(k)}</th>" for k in keys)
        body = "".join(
            "<tr>" + "".join(f"<td>{v:.4f}</td>" if isinstance(v, float) else f"<td>{esc(str(v))}</td>" for v in d.values()) + "</tr>"
            for d in dicts
        )
        return f"<table><tr>{head}</tr>{body}</table>"

    metric_names = list(rows[0]["metrics"]) if rows else []
    head = "".join(f"<th>{esc(c)}</th>" for c in ["name", *columns, *metric_names])
    body = []
    for r in rows:
        cells = [f"<td>{esc(r['name'])}</td>"]
        for p in r["images"]:
            rel = os.path.relpath(p, out_dir)
            cells.append(f'<td><a href="{esc(rel)}"><img src="{esc(rel)}" loading="lazy"></a></td>')
        cells += [f"<td>{v:.4f}</td>" for v in r["metrics"].values()]
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
<h2>Loss curves</h2>
{loss_curves_svg(records)}
<h2>Images</h2>
<table><tr>{head}</tr>
{"".join(body)}
</table></body></html>
"""
    path = out_dir / "index.html"
    atomic_write_bytes(path, page.encode())
    return path
