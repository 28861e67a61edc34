"""What int8 costs in quality: a trained translation model in fp32 (eager torch) and in OpenVINO int8,
on held-out pairs, against the target and against each other.

    python tools/int8_quality.py runs/demo/checkpoints/last.pt --data data/restore/test \\
        --calibration data/restore/train/A --threads 2

``--data``: a paired folder (``A/`` inputs, ``B/`` targets, same names); ``--calibration``: the folder
int8 is calibrated on (training inputs, never the held-out ones). Prints mean PSNR (dB, 8-bit RGB)
of the identity (input as the prediction), fp32, OpenVINO fp32 and int8 against the targets, and of
int8 against fp32. Nothing here is imported by i2i.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from i2i.data.io import list_images, read_image  # noqa: E402
from i2i.translator import Translator  # noqa: E402


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint")
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--calibration", type=Path, required=True)
    p.add_argument("--threads", type=int, default=None)
    a = p.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    models = {"fp32 (torch)": Translator.from_checkpoint(a.checkpoint, device="cpu", mode="eval"),
              "fp32 (openvino)": Translator.from_checkpoint(a.checkpoint, device="cpu", mode="eval",
                                                            runtime="openvino"),
              "int8 (openvino)": Translator.from_checkpoint(a.checkpoint, device="cpu", mode="eval",
                                                            runtime="openvino", precision="int8",
                                                            calibration=a.calibration)}
    scores: dict[str, list[float]] = {k: [] for k in ["identity", *models, "int8 vs fp32"]}
    for src in list_images(a.data / "A"):
        x, target = read_image(src), read_image(a.data / "B" / src.name)
        outs = {k: tr(x) for k, tr in models.items()}
        scores["identity"].append(psnr(x, target))
        for k, y in outs.items():
            scores[k].append(psnr(y, target))
        scores["int8 vs fp32"].append(psnr(outs["int8 (openvino)"], outs["fp32 (torch)"]))
    n = len(scores["identity"])
    print(f"{a.checkpoint} on {n} held-out pairs of {a.data}; int8 calibrated on {a.calibration}")
    print("| prediction | PSNR to the target, dB (mean) | min |")
    print("|---|---:|---:|")
    for k, v in scores.items():
        what = "PSNR to fp32 torch" if k == "int8 vs fp32" else ""
        print(f"| {k}{f' ({what})' if what else ''} | {statistics.mean(v):.2f} | {min(v):.2f} |")


if __name__ == "__main__":
    main()
