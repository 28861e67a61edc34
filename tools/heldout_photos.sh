#!/bin/bash
# Assemble the 17 held-out photos the SR figures in docs/benchmarks.md are measured on: none of
# them is bundled with i2i or seen in training. Sources (package registries only): OpenCV's
# sample images (Debian's opencv-doc), scikit-learn's china / flower, matplotlib's
# grace_hopper, imgaug's quokka, SciPy 1.9's raccoon face. Used for measurement only, never
# redistributed.
#   bash tools/heldout_photos.sh OUT_DIR
set -euo pipefail
out=${1:?usage: tools/heldout_photos.sh OUT_DIR}
mkdir -p "$out"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
apt-get download opencv-doc >/dev/null
dpkg -x opencv-doc_*.deb deb
data=deb/usr/share/doc/opencv-doc/examples/data
for f in squirrel_cls.jpg messi5.jpg building.jpg fruits.jpg board.jpg baboon.jpg ela_original.jpg leuvenA.jpg aloeL.jpg \
         basketball1.png chicky_512.png rubberwhale1.png; do
  cp "$data/$f" "$out/"
done
pip download --quiet --no-deps --only-binary=:all: -d wheels scikit-learn==1.5.2 imgaug==0.4.0 scipy==1.9.3 matplotlib
for w in wheels/*.whl; do
  unzip -q -o -j "$w" 'imgaug/quokka.jpg' 'matplotlib/mpl-data/sample_data/grace_hopper.jpg' 'sklearn/datasets/images/*.jpg' \
    'scipy/misc/face.dat' -d "$out" 2>/dev/null || true
done
python - "$out" <<'PY'
import bz2, sys
from pathlib import Path
import cv2, numpy as np
out = Path(sys.argv[1])
raw = bz2.decompress((out / "face.dat").read_bytes())  # SciPy's misc.face: 768 x 1024 RGB
cv2.imwrite(str(out / "face.png"), np.frombuffer(raw, np.uint8).reshape(768, 1024, 3)[:, :, ::-1])
(out / "face.dat").unlink()
PY
ls "$out" | wc -l
