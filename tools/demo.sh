#!/usr/bin/env bash
# Command one: set up, then train pix2pix on the bundled photos (grayscale -> colour),
# convert the held-out crops, and write the results page. About 5 minutes on 2 CPU cores
# after the first-time install; a GPU is used automatically when present.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-$(nproc)}"
start=$SECONDS
[ -d data/gray2color/test ] || python datasets/make_paired.py --out data/gray2color --task gray2color
i2i train configs/pix2pix/demo.yaml --resume auto
i2i convert runs/demo/checkpoints/last.pt data/gray2color/test/A runs/demo/converted --quiet
i2i eval runs/demo/checkpoints/last.pt --data data/gray2color/test --out runs/demo/results
echo "demo finished in $((SECONDS - start)) s: open runs/demo/results/index.html (converted images in runs/demo/converted)"
