#!/usr/bin/env bash
# Command one: set up, then train pix2pix on the bundled photos to restore degraded crops (blurred,
# noisy, JPEG-compressed -> clean), convert the held-out crops, and write the results page. About
# 6 minutes on 2 CPU cores after the first-time install; a GPU is used automatically when present.
#   bash tools/demo.sh [--seed N]     (seed 0 writes runs/demo, seed N runs/demo_seedN)
set -euo pipefail
seed=0
while [ $# -gt 0 ]; do
    case "$1" in
        --seed) seed="${2:?--seed needs a number}"; shift 2 ;;
        *) echo "usage: bash tools/demo.sh [--seed N]" >&2; exit 2 ;;
    esac
done
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-$(nproc)}"
name=demo
[ "$seed" = 0 ] || name="demo_seed$seed"
start=$SECONDS
[ -d data/restore/test ] || python datasets/make_paired.py --out data/restore --task restore
i2i train configs/pix2pix/demo.yaml --resume auto --set seed="$seed" --set name="$name"
i2i convert "runs/$name/checkpoints/last.pt" data/restore/test/A "runs/$name/converted" --quiet
i2i eval "runs/$name/checkpoints/last.pt" --data data/restore/test --out "runs/$name/results"
echo "demo finished in $((SECONDS - start)) s: open runs/$name/results/index.html (converted images in runs/$name/converted)"
echo "try it in a browser: i2i serve runs/$name/checkpoints/last.pt   (then open http://127.0.0.1:8000)"
