#!/usr/bin/env bash
# Command one: set up, then train pix2pix on the bundled photos to restore degraded crops (blurred,
# noisy, JPEG-compressed -> clean), convert the held-out crops, and write the results page (with
# OpenCV's non-local means beside the trained model). About 4 minutes on 2 CPU cores after the
# first-time install; a GPU is used automatically when present.
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
# a run of this name trained from an earlier demo recipe cannot be resumed by this one: moved aside, not deleted
run="runs/$name"
if [ -f "$run/config.yaml" ] && ! python - "$run/config.yaml" "$seed" "$name" <<'EOF'
import sys

import i2i
from i2i.config import config_to_dict

saved = i2i.load_config(sys.argv[1])
want = i2i.load_config("configs/pix2pix/demo.yaml", [f"seed={sys.argv[2]}", f"name={sys.argv[3]}"])
sys.exit(0 if config_to_dict(saved) == config_to_dict(want) else 1)
EOF
then
    aside="$run.earlier-$(date +%Y%m%d-%H%M%S)"
    mv "$run" "$aside"
    echo "$run was trained from an earlier demo recipe: moved to $aside (nothing deleted); training afresh"
fi
i2i train configs/pix2pix/demo.yaml --resume auto --set seed="$seed" --set name="$name"
i2i convert "runs/$name/checkpoints/last.pt" data/restore/test/A "runs/$name/converted" --quiet
i2i eval "runs/$name/checkpoints/last.pt" --data data/restore/test --out "runs/$name/results" --classical nlm
echo "demo finished in $((SECONDS - start)) s: open runs/$name/results/index.html (converted images in runs/$name/converted)"
echo "try it in a browser: i2i serve runs/$name/checkpoints/last.pt   (then open http://127.0.0.1:8000)"
