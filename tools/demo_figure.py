"""The README's picture, made from what the demo wrote (never by hand): held-out degraded crops,
OpenCV's non-local means at the strength the results page chose (``--results``' metrics.json), the
trained model's converted outputs, and the clean targets, side by side.

    bash tools/demo.sh && python tools/demo_figure.py        # -> docs/images/demo.png
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from i2i.data.io import read_image, to_tensor  # noqa: E402
from i2i.evaluate.classical import nonlocal_means  # noqa: E402
from i2i.report import save_grid  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default="data/restore/test", help="the demo's held-out pairs (A/ degraded, B/ clean)")
    p.add_argument("--converted", default="runs/demo/converted", help="what 'i2i convert' wrote for A/")
    p.add_argument("--results", default="runs/demo/results", help="the demo's results page (for the strength of "
                   "non-local means; no such column without one)")
    p.add_argument("--rows", type=int, default=3, help="crops shown, evenly spaced over the held-out set")
    p.add_argument("--out", default="docs/images/demo.png")
    a = p.parse_args()
    names = sorted(f.name for f in Path(a.converted).glob("*.png"))
    if not names:
        print(f"no converted images in {a.converted}: run bash tools/demo.sh first", file=sys.stderr)
        return 2
    picked = [names[round(i * (len(names) - 1) / max(a.rows - 1, 1))] for i in range(a.rows)]
    columns = [torch.stack([to_tensor(read_image(Path(folder) / n)[:, :, :3]) for n in picked])
               for folder in (Path(a.data) / "A", a.converted, Path(a.data) / "B")]
    titles = ["input (degraded)", "i2i (trained)", "target"]
    metrics = Path(a.results) / "metrics.json"
    classical = json.loads(metrics.read_text()).get("classical") if metrics.is_file() else None
    if classical and classical["method"] == "nlm":  # the classical answer beside the trained one, as on the page
        strength = classical["strength"]
        columns.insert(1, torch.cat([nonlocal_means(x[None], strength) for x in columns[0]]))
        titles.insert(1, f"non-local means (h={strength:g})")
    # one row per crop: input | [non-local means |] output | target, as the columns of a grid laid out sideways
    path = save_grid(a.out, columns, pad=4, titles=titles)
    print(f"wrote {path} ({', '.join(picked)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
