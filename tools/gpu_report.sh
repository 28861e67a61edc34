#!/usr/bin/env bash
# Everything issue 24's goals ask of one GPU, in one run of at most ~8 minutes on an H100/H200:
#   1. the machine (GPU, driver, torch);
#   2. pytest -m gpu (every pipeline one step in fp32/bf16/fp16, exact resume on CUDA, compile and
#      channels_last, conversion against the CPU, torchrun with NCCL);
#   3. the reference's train.py, pix2pix and CycleGAN, on the same GPU (when REF is given);
#   4. tools/bench_gpu.py: pix2pix facades, CycleGAN horse2zebra, SRResNet x4, DCGAN 64 in fp32,
#      bf16 and bf16 + cuda_graphs (pix2pix also fp32 + graphs and the loader without a cache,
#      CycleGAN also without horizontal batching), at batch 1 and the largest batch up to 64,
#      loader-fed (data.cache: auto, i.e. device) and batch-reused: it/s, images/s, MFU, peak
#      memory, the ratio to the reference;
#   5. tools/bench_convert.py: conversion with torch and torch.compile in fp32 / bf16 / fp16;
#   6. tools/bench_temporal.py: a 1080p video with and without --temporal flow;
#   7. tools/bench_data.py: the input path (loader workers, data.cache: memory, data.cache: device).
#
# Usage, from the repository root, with a python whose torch sees the GPU:
#   REF=path/to/reference OUT=report-folder bash tools/gpu_report.sh
# Packages the GPU image lacks (albumentations, kornia and what they need) can travel as wheels in
# .whl/ (see the device tool's README: pip download --python-version 3.12 ...); they are installed
# into /tmp/site when present. SMOKE=1 runs the same steps tiny, on any machine (checks the script).
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
OUT=${OUT:-runs/gpu_report}
REF=${REF:-}
SMOKE=${SMOKE:-0}
PY=${PY:-python3}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" NO_ALBUMENTATIONS_UPDATE=1
if compgen -G ".whl/*.whl" >/dev/null; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
        && export PYTHONPATH="$PYTHONPATH:/tmp/site"
fi
start=$SECONDS
section() { echo; echo "=== $1 ($((SECONDS - start)) s in)"; }

if [ "$SMOKE" = 1 ]; then
    steps=(--steps 1 --repeats 1 --warmup 5 --max-batch 1)
    configs=(configs/pix2pix/facades.yaml)
    sets=(--set model.generator.base_channels=4 --set model.discriminator.base_channels=4)
    ref_iters=2; tests_timeout=60
else
    steps=(--steps 10 --repeats 3 --warmup 5 --max-batch 64)  # warm-up 5: graphs capture on the 4th step
    configs=(configs/pix2pix/facades.yaml configs/srgan/srresnet_x4.yaml configs/dcgan/celeba64.yaml)
    sets=()
    ref_iters=24; tests_timeout=150
fi

section "machine"
nvidia-smi -L 2>/dev/null || echo "no nvidia-smi"
"$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'device', torch.cuda.get_device_name() if torch.cuda.is_available() else 'none')"

section "pytest -m gpu"
timeout "$tests_timeout" "$PY" -m pytest -m gpu -q -p no:cacheprovider tests/test_gpu.py 2>&1 | tail -25 | tee "$OUT/pytest_gpu.txt"

ref_p2p="" ref_cg=""
if [ -n "$REF" ]; then
    section "the reference's train.py on this machine"
    ref_p2p=$(timeout 120 "$PY" tools/bench_reference.py --reference "$REF" --model pix2pix --iterations "$ref_iters" 2>&1 | tail -1)
    echo "pix2pix: $ref_p2p"
    ref_cg=$(timeout 120 "$PY" tools/bench_reference.py --reference "$REF" --model cycle_gan --iterations "$ref_iters" 2>&1 | tail -1)
    echo "cycle_gan: $ref_cg"
fi
s_per_it() { echo "$1" | grep -oE '[0-9]+\.[0-9]+ s/it' | head -1 | cut -d' ' -f1; }

section "training speed (bench_gpu.py)"
p2p_ref=$(s_per_it "$ref_p2p"); cg_ref=$(s_per_it "$ref_cg")
[ "$SMOKE" = 1 ] && p2p_ref="" cg_ref=""  # tiny nets against the reference's full ones: no ratio
graphs=(graphs bf16+graphs); [ "$SMOKE" = 1 ] && ! "$PY" -c "import torch, sys; sys.exit(not torch.cuda.is_available())" && graphs=()
timeout 240 "$PY" tools/bench_gpu.py "${configs[0]}" --modes eager nocache bf16 "${graphs[@]}" "${steps[@]}" "${sets[@]}" \
    ${p2p_ref:+--reference-s-per-it "$p2p_ref"} --json "$OUT/pix2pix.json" 2>&1 | grep -v Warning | tail -6
if [ "$SMOKE" = 1 ]; then
    cg=(configs/cyclegan/horse2zebra.yaml --set model.generator.name=resnet --set model.generator.n_blocks=1 --set model.generator.base_channels=4
        --set model.discriminator.base_channels=4 --set data.crop_size=64 --set data.load_size=72)
else
    cg=(configs/cyclegan/horse2zebra.yaml)
fi
timeout 200 "$PY" tools/bench_gpu.py "${cg[@]}" --modes eager unbatched bf16 "${graphs[@]:1}" "${steps[@]}" \
    ${cg_ref:+--reference-s-per-it "$cg_ref"} --json "$OUT/cyclegan.json" 2>&1 | grep -v Warning | tail -8
if [ "$SMOKE" != 1 ]; then
    timeout 150 "$PY" tools/bench_gpu.py "${configs[@]:1}" --modes eager bf16 bf16+graphs "${steps[@]}" --json "$OUT/sr_dcgan.json" 2>&1 \
        | grep -v Warning | tail -10
fi

section "conversion runtimes (bench_convert.py)"
# torch and torch.compile in fp32 / bf16 / fp16 on the GPU. TensorRT needs onnxruntime-gpu or torch-tensorrt,
# which the device image lacks and cannot fetch (no network; the wheels exceed what travels): skipped
# unless one of them is importable.
conv=(--n 32 --size 256 --batch-size 8 --repeats 3); [ "$SMOKE" = 1 ] && conv=(--n 4 --size 64 --batch-size 2 --repeats 1 \
    --set model.generator.base_channels=4 --set model.generator.name=unet_128)
settings=torch,torch:bf16,compile,compile:bf16
"$PY" -c "import torch, sys; sys.exit(not torch.cuda.is_available())" 2>/dev/null && settings="$settings,torch:fp16"
timeout 240 "$PY" tools/bench_convert.py configs/pix2pix/facades.yaml "${conv[@]}" --workers 2 --runtime "$settings" \
    --json "$OUT/convert_runtimes.json" 2>&1 | grep -v -i warn | tail -9
"$PY" -c "import tensorrt" 2>/dev/null || "$PY" -c "import torch_tensorrt" 2>/dev/null \
    || echo "TensorRT: not installed here (onnxruntime-gpu / torch-tensorrt); not measured"

section "video with --temporal flow (bench_temporal.py)"
# frames/s of the pix2pix demo's generator (untrained: the cost is the same) on a 1080p clip with and
# without the stabiliser, and the stabiliser's own time per frame (it runs on the CPU).
tv=(--size 1920x1080 --frames 24 --repeats 3 --device cuda); [ "$SMOKE" = 1 ] && tv=(--size 320x180 --frames 4 --repeats 1)
timeout 150 "$PY" tools/bench_temporal.py --config configs/pix2pix/demo.yaml "${tv[@]}" 2>&1 | grep -v -i warn \
    | tee "$OUT/temporal.txt"

section "input path (bench_data.py)"
workers=(0 4 8); [ "$SMOKE" = 1 ] && workers=(0)
timeout 60 "$PY" tools/bench_data.py --n 64 --repeats 3 --workers "${workers[@]}" ${REF:+--reference "$REF"} 2>&1 | grep -v Warning \
    | tee "$OUT/input_path.txt"

section "done"
echo "report finished in $((SECONDS - start)) s; files in $OUT"
