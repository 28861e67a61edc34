import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_benchmark_runs_the_real_trainer_and_reports_figures(tmp_path):
    out = tmp_path / "bench.json"
    r = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "benchmark.py"), str(ROOT / "configs/pix2pix/demo.yaml"), "--threads",
         "1",
         "--set", "model.generator.base_channels=8", "--set", "model.discriminator.base_channels=8", "--set",
         "data.batch_size=1",
         "--steps", "1", "--repeats", "1", "--warmup", "1", "--images", "1", "--size", "40", "--write", "--json",
         str(out),
         "--modes", "eager", "fused"],
        capture_output=True, text=True, timeout=300,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    eager, fused = json.loads(out.read_text())
    assert (
        eager["mode"] == "eager"
        and eager["train_it_per_s"] > 0
        and eager["convert_img_per_s"] > 0
        and eager["convert_size"] == 40
    )
    assert fused["mode"] == "fused"
    last = r.stdout.strip().splitlines()[-1]
    assert last.startswith("fastest training here: ") and "torch CPU capability" in last


def test_gpu_benchmark_counts_flops_and_reports_mfu(tmp_path):
    """The issue-15 table's tool runs end to end (on the CPU here: the figures matter on a GPU)."""
    out = tmp_path / "gpu.json"
    r = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "bench_gpu.py"), str(ROOT / "configs/pix2pix/demo.yaml"), "--threads",
         "1",
         "--set", "model.generator.base_channels=8", "--set", "model.discriminator.base_channels=8", "--modes", "eager",
         "--steps", "1", "--repeats", "1", "--warmup", "1", "--max-batch", "2", "--peak-tflops", "1", "--json",
         str(out)],
        capture_output=True, text=True, timeout=300,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    rows = json.loads(out.read_text())
    assert [row["batch"] for row in rows] == [1, 2]
    assert rows[1]["gflop_per_it"] == pytest.approx(2 * rows[0]["gflop_per_it"], rel=0.05)  # FLOPs scale with the batch
    assert all(row["it_per_s"] > 0 and 0 < row["mfu"] < 1 for row in rows)


def test_benchmark_prints_the_ratio_to_a_reference_checkout(tmp_path):
    """The plumbing of --reference, against a stand-in train.py printing the reference's loss
    lines every 0.05 s (the real checkout is not part of the project)."""
    fake = tmp_path / "ref"
    fake.mkdir()
    (fake / "train.py").write_text(
        "import sys, time\n"
        "assert '--dataroot' in sys.argv and '--model' in sys.argv\n"
        "for i in range(8):\n"
        "    time.sleep(0.05)\n"
        "    print(f'(epoch: 1, iters: {i + 1}, time: 0.050, data: 0.001) G_GAN: 0.7', flush=True)\n")
    out = tmp_path / "bench.json"
    r = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "benchmark.py"), str(ROOT / "configs/pix2pix/demo.yaml"), "--threads",
         "1",
         "--set", "model.generator.base_channels=8", "--set", "model.discriminator.base_channels=8", "--steps", "1",
         "--repeats", "1",
         "--warmup", "1", "--images", "1", "--size", "32", "--reference", str(fake), "--reference-iterations", "8",
         "--json", str(out)],
        capture_output=True, text=True, timeout=300,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    (row,) = json.loads(out.read_text())
    assert 0.04 < row["reference_s_per_it"] < 0.2
    assert row["x_reference"] == pytest.approx(row["reference_s_per_it"] / row["train_s_per_it"])
    assert "the reference (" in r.stdout


def test_convert_benchmark_runs_the_real_converter_and_the_reference_test_script(tmp_path):
    """bench_convert.py through i2i's conversion path, and --reference against a stand-in
    test.py that checks its arguments, needs the generator file, and prints the reference's
    progress lines every 0.05 s."""
    fake = tmp_path / "ref"
    (fake / "models").mkdir(parents=True)
    (fake / "models" / "__init__.py").write_text("")
    (fake / "models" / "networks.py").write_text("import torch\ndef define_G(*a):\n    return torch.nn.Conv2d(3, "
                                                 "3, 1)\n")
    (fake / "test.py").write_text(
        "import sys, time, os\n"
        "a = sys.argv\n"
        "root, ck, n = a[a.index('--dataroot') + 1], a[a.index('--checkpoints_dir') + 1], int(a[a.index('--num_test') "
        "+ 1])\n"
        "assert os.path.isfile(os.path.join(ck, 'bench_pix2pix', 'latest_net_G.pth'))\n"
        "assert len(os.listdir(os.path.join(root, 'test'))) == n\n"
        "for i in range(n):\n"
        "    if i % 5 == 0: print(f'processing ({i:04d})-th image... x', flush=True)\n"
        "    time.sleep(0.05)\n")
    out = tmp_path / "convert.json"
    r = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "bench_convert.py"), str(ROOT / "configs/pix2pix/demo.yaml"), "--threads",
         "1",
         "--set", "model.generator.base_channels=8", "--n", "11", "--size", "128", "--repeats", "1", "--workers", "0",
         "--like-reference", "--mode", "paper", "--reference", str(fake), "--json", str(out)],
        capture_output=True, text=True, timeout=300,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    row = json.loads(out.read_text())
    assert row["n"] == 11 and row["mode"] == "paper" and row["img_per_s_median"] > 0
    assert 10 < row["reference_img_per_s_median"] < 21  # 0.05 s per image, measured between progress lines 0 and 10
    assert row["ratio"] == pytest.approx(row["img_per_s_median"] / row["reference_img_per_s_median"])
    assert "i2i / reference" in r.stdout


@pytest.mark.slow
def test_two_clones_on_one_machine_each_run_their_own_code(tmp_path):
    """tools/env.sh shares the dependencies between clones but never the code: a second clone
    with another i2i runs that i2i, and this clone still runs its own."""
    import shutil

    other = tmp_path / "other"
    top = {".venv", ".git", "runs", "data", "build", ".pytest_cache", ".ruff_cache"}
    shutil.copytree(ROOT, other, ignore=lambda d,
                    names: [n for n in names if (Path(d) == ROOT and n in top) or n == "__pycache__"
                            or n.endswith(".egg-info")])
    (other / "i2i" / "_version.py").write_text('__version__ = "9.9.9-other-clone"\n')
    probe = ('source tools/env.sh >/dev/null && python -c "import i2i; print(i2i.__file__, i2i.__version__)" '
             "&& i2i --version")
    seen = {}
    for clone in (other, ROOT, other):
        r = subprocess.run(["bash", "-c", probe], cwd=clone, capture_output=True, text=True, timeout=900)
        assert r.returncode == 0, r.stderr[-2000:]
        seen[clone] = r.stdout.split()
    assert seen[other][0] == str(other / "i2i" / "__init__.py") and seen[other][1] == "9.9.9-other-clone"
    assert "i2i 9.9.9-other-clone" in " ".join(seen[other])
    assert seen[ROOT][0] == str(ROOT / "i2i" / "__init__.py") and seen[ROOT][1] != "9.9.9-other-clone"


def test_a_failed_dependency_install_is_not_kept_as_the_shared_layer(tmp_path):
    """tools/env.sh marks the shared layer complete only after pip succeeded: a failed install
    (here: a version pip cannot parse) is removed, and the shell is told (non-zero status)."""
    clone = tmp_path / "clone"
    for rel in ("setup.cfg", "pyproject.toml", "constraints.txt", "tools/env.sh", "i2i/__init__.py"):
        (clone / rel).parent.mkdir(parents=True, exist_ok=True)
        (clone / rel).write_bytes((ROOT / rel).read_bytes())
    (clone / "i2i" / "_version.py").write_text('__version__ = "not a version"\n')
    deps = tmp_path / "deps"
    r = subprocess.run(["bash", "-c", "source tools/env.sh"], cwd=clone, capture_output=True, text=True, timeout=600,
                       env={**os.environ, "I2I_VENV": str(deps)})
    assert r.returncode != 0
    assert "installing the dependencies failed" in r.stderr
    assert not deps.exists() and not (clone / ".venv").exists()


def test_input_path_benchmark_times_every_row_against_a_reference_dataset(tmp_path):
    """tools/bench_data.py on 4 files, with a stand-in for the reference's AlignedDataset (the
    real checkout is not part of the project): every row is printed with a positive rate."""
    fake = tmp_path / "ref" / "data"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("")
    (fake / "aligned_dataset.py").write_text(
        "import numpy as np\n"
        "class AlignedDataset:\n"
        "    def __init__(self, opt):\n"
        "        assert opt.load_size == 286 and opt.crop_size == 256 and opt.direction == 'AtoB'\n"
        "    def __getitem__(self, i):\n"
        "        return np.zeros((3, 256, 256), np.float32)\n")
    r = subprocess.run([sys.executable, str(ROOT / "tools" / "bench_data.py"), "--n", "4", "--repeats", "1",
                        "--workers", "0",
                        "--reference", str(tmp_path / "ref"), "--device", "cpu"], capture_output=True, text=True,
                        timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    rows = dict(line.rsplit(None, 2)[:2] for line in r.stdout.splitlines()[1:])
    names = {"decode (cv2)", "decode (PIL)", "i2i PairedDataset", "i2i PairedDataset, cache: memory",
             "reference AlignedDataset",
             "i2i DataLoader, 0 workers", "i2i DataLoader, 0 workers, cache: memory",
             "i2i cache: device (cpu), batch 16"}
    assert set(rows) == names and all(float(v) > 0 for v in rows.values()), r.stdout


def test_small_data_study_trains_each_variant_and_scores_held_out_pairs(tmp_path, gray2color):
    out = tmp_path / "small.jsonl"
    r = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "bench_small_data.py"), str(ROOT / "configs/pix2pix/demo.yaml"),
         "--data", str(gray2color / "test"), "--threads", "1", "--seeds", "0", "--json", str(out),
         "--set", f"data.root={gray2color / 'train'}", "--set", "data.val_root=null", "--set", "train.val_every=0",
         "--set", "data.max_items=4",
         "--set", "data.num_workers=0", "--set", "model.generator.base_channels=8", "--set",
         "model.generator.in_channels=1",
         "--set", "model.generator.predict=image", "--set", "model.discriminator.base_channels=8",
         "--set", "data.load_size=36", "--set", "data.crop_size=32", "--set", "model.generator.name=unet",
         "--set", "model.generator.num_downs=5", "--set", "train.epochs=null", "--set", "train.steps=2",
         "--variant", "none=", "--variant", "jitter=data.color_jitter=0.2;data.scale_jitter=0.1"],
        capture_output=True, text=True, timeout=300,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    recs = [json.loads(x) for x in out.read_text().splitlines()]
    assert [x["variant"] for x in recs] == ["none", "jitter"] and recs[1]["sets"] == ["data.color_jitter=0.2",
                                                                                      "data.scale_jitter=0.1"]
    assert all(x["psnr"] > 0 and 0 < x["ssim"] <= 1 for x in recs)
    assert "| identity |" in r.stdout and "| jitter |" in r.stdout


def test_sr_quality_study_scores_each_variant_on_held_out_photos(tmp_path, sr_data):
    out = tmp_path / "sr.jsonl"
    r = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "bench_sr_quality.py"), str(ROOT / "configs/srgan/demo.yaml"),
         "--heldout", str(sr_data / "test"), "--threads", "1", "--seeds", "0", "--json", str(out),
         "--set", f"data.root={sr_data / 'train'}", "--set", "data.val_root=null", "--set", "train.val_every=0",
         "--set", "data.num_workers=0", "--set", "data.crop_size=32", "--set", "train.steps=2",
         "--set", "model.generator.n_convs=1", "--set", "model.generator.base_channels=8",
         "--variant", "shipped=", "--variant", "ema=train.ema_decay=0.9"],
        capture_output=True, text=True, timeout=300,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    recs = [json.loads(x) for x in out.read_text().splitlines()]
    assert [x["variant"] for x in recs] == ["shipped", "ema"] and recs[1]["weights"] == "ema"
    assert all(
        x["images"] == 5 and abs(x["gain"] - (x["psnr_y"] - x["bicubic"])) < 1e-9 and x["train_s"] > 0 for x in recs
    )
    assert "| shipped |" in r.stdout and "| ema |" in r.stdout


def test_video_benchmark_times_the_streamed_the_frames_folder_and_the_stage_ways(trained):
    """bench_video.py makes its clip, runs each way in a fresh process and prints frames/s, the
    stage times, the temporary PNG volume and the ratio of the streamed to the frames-folder way."""
    r = subprocess.run([sys.executable, str(ROOT / "tools" / "bench_video.py"), trained, "--size", "64x48", "--frames",
                        "3",
                        "--repeats", "1", "--threads", "1", "--batch-size", "2"], capture_output=True, text=True,
                        timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    lines = r.stdout.splitlines()
    assert lines[0].startswith("clip 64x48, 3 frames")
    stream, frames, stages = (next(x for x in lines if x.strip().startswith(w + ":") or x.strip().startswith(w + " "))
                              for w in ("stream", "frames", "stages"))
    assert "frames/s" in stream and "translate" in stream and "encode" in stream
    assert "extract" in frames and "MB of temporary PNGs" in frames and "decode" in stages
    assert "streaming is" in lines[-1] and "the speed of the frames-folder path" in lines[-1]


def test_convert_benchmark_compares_runtimes_side_by_side(tmp_path):
    """--runtime with several settings: each in its own process per repeat, one table, the fastest named."""
    pytest.importorskip("onnxruntime")
    out = tmp_path / "runtimes.json"
    r = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "bench_convert.py"), str(ROOT / "configs/pix2pix/demo.yaml"), "--threads",
         "1", "--set", "model.generator.base_channels=4", "--n", "3", "--size", "64", "--repeats", "2", "--workers",
         "0", "--runtime", "torch,onnxruntime", "--json", str(out)],
        capture_output=True, text=True, timeout=600, env={**os.environ, "I2I_CACHE_DIR": str(tmp_path / "cache")},
    )
    assert r.returncode == 0, r.stderr[-2000:]
    table = json.loads(out.read_text())
    assert [row["setting"] for row in table["rows"]] == ["torch", "onnxruntime"]
    assert all(len(row["img_per_s_all"]) == 2 and row["peak_rss_mb_max"] > 0 for row in table["rows"])
    assert f"fastest on this machine: {table['fastest']}" in r.stdout and "| onnxruntime |" in r.stdout


def test_int8_quality_tool_reports_every_prediction(trained, gray2color, tmp_path):
    pytest.importorskip("nncf")
    r = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "int8_quality.py"), trained, "--data", str(gray2color / "test"),
         "--calibration", str(gray2color / "train" / "A"), "--threads", "1"],
        capture_output=True, text=True, timeout=600, env={**os.environ, "I2I_CACHE_DIR": str(tmp_path / "cache")},
    )
    assert r.returncode == 0, r.stderr[-2000:]
    rows = {line.split("|")[1].strip(): float(line.split("|")[2]) for line in r.stdout.splitlines()
            if line.startswith("| ") and not line.startswith("| prediction")}
    assert set(rows) == {"identity", "fp32 (torch)", "fp32 (openvino)", "int8 (openvino)",
                         "int8 vs fp32 (PSNR to fp32 torch)"}
    assert abs(rows["fp32 (openvino)"] - rows["fp32 (torch)"]) < 0.1 and rows["int8 vs fp32 (PSNR to fp32 torch)"] > 30


def test_seamless_figure_measures_the_border_against_an_endless_tiling(tmp_path):
    import torch

    from i2i.cli import main
    from i2i.nets.registry import build_generator

    torch.manual_seed(0)
    state = {k: v + 0.1 * torch.randn_like(v) for k, v in  # random weights: the body, not only its base, shows
             build_generator("srvgg", scale=2, n_convs=2, base_channels=8).state_dict().items()}
    torch.save(state, tmp_path / "c.pth")
    assert main(["import-weights", str(tmp_path / "c.pth"), "-o", str(tmp_path / "c.pt")]) == 0
    r = subprocess.run([sys.executable, str(ROOT / "tools" / "seamless_figure.py"), str(tmp_path / "c.pt"),
                        str(tmp_path / "fig.png"), "--crop", "16"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    rows = {line.split("|")[1].strip(): line.split("|")[2].strip() for line in r.stdout.splitlines()
            if line.startswith("| plain") or line.startswith("| seamless")}
    assert rows["seamless wrap"] == "0.00 / 0" and rows["plain"] != "0.00 / 0"
    assert (tmp_path / "fig.png").stat().st_size > 1000


def test_mask_figure_changes_nothing_outside_the_mask(tmp_path):
    import torch

    from i2i.cli import main
    from i2i.nets.registry import build_generator

    torch.manual_seed(0)
    torch.save(build_generator("srvgg", scale=1, n_convs=1, base_channels=4, act="prelu").state_dict(),
               tmp_path / "c.pth")
    assert main(["import-weights", str(tmp_path / "c.pth"), "-o", str(tmp_path / "c.pt")]) == 0
    r = subprocess.run([sys.executable, str(ROOT / "tools" / "mask_figure.py"), str(tmp_path / "c.pt"),
                        str(tmp_path / "fig.png"), "--side", "64"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "pixels outside the mask that changed: 0 of" in r.stdout
    assert (tmp_path / "fig.png").stat().st_size > 1000


def test_metadata_figure_keeps_the_display_p3_profile_and_shows_what_dropping_it_costs(tmp_path):
    import re

    import torch

    from i2i.nets.registry import build_generator

    torch.manual_seed(0)
    torch.save(build_generator("srvgg", scale=1, n_convs=1, base_channels=4).state_dict(), tmp_path / "c.pth")
    r = subprocess.run([sys.executable, str(ROOT / "tools" / "metadata_figure.py"), str(tmp_path / "c.pth"),
                        str(tmp_path / "fig.png"), "--side", "96"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "output tags ['EXIF', 'ICC'], profile byte-equal: True" in r.stdout
    kept, dropped = map(float, re.search(r"profile kept ([\d.]+), profile dropped ([\d.]+)", r.stdout).groups())
    assert kept < 1.0 < 3.0 < dropped  # the identity-like net, shown through its profile, looks like the input
    sys.path.insert(0, str(ROOT / "tools"))
    import io

    from metadata_figure import display_p3_profile
    from PIL import Image, ImageCms

    p3 = ImageCms.ImageCmsProfile(io.BytesIO(display_p3_profile()))
    red = ImageCms.profileToProfile(Image.new("RGB", (1, 1), (255, 0, 0)), ImageCms.createProfile("sRGB"), p3)
    assert all(abs(a - b) <= 1 for a, b in zip(red.getpixel((0, 0)), (234, 51, 35)))  # sRGB red in Display P3


def test_mask_conservation_study_trains_both_variants_and_scores_outside_and_inside(tmp_path, photos):
    sys.path.insert(0, str(ROOT / "datasets"))
    import make_unpaired

    make_unpaired.build(photos, tmp_path / "sq", transform="negative", size=32, n_train=2, n_test=1, seed=0,
                        squares=True)
    r = subprocess.run([sys.executable, str(ROOT / "tools" / "mask_conservation_study.py"), "--data",
                        str(tmp_path / "sq"), "--out", str(tmp_path / "runs"), "--seeds", "0", "--steps", "2",
                        "--set", "data.load_size=36", "data.crop_size=32"],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "seed0_w0: outside" in r.stdout and "seed0_w10: outside" in r.stdout and "median ratio" in r.stdout


def test_bench_temporal_times_both_modes_and_reports_the_warping_error():
    r = subprocess.run([sys.executable, str(ROOT / "tools" / "bench_temporal.py"), "--config",
                        str(ROOT / "configs" / "pix2pix" / "demo.yaml"), "--size", "160x96", "--frames", "3",
                        "--repeats", "1"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "ms/frame" in r.stdout and "frames/s (median of 1): off" in r.stdout and "stabilised" in r.stdout


def test_env_sh_prunes_shared_layers_unused_for_two_weeks(tmp_path):
    layers = tmp_path / ".cache" / "i2i"
    for name, days in (("deps-old", 20), ("deps-recent", 1), ("deps-unmarked", 30)):
        (layers / name).mkdir(parents=True)
        marker = layers / name / (".i2i-complete" if name == "deps-unmarked" else ".i2i-used")
        marker.touch()
        t = marker.stat().st_mtime - days * 86400
        os.utime(marker, (t, t))
    r = subprocess.run(["bash", "-c", "source tools/env.sh"], cwd=ROOT, capture_output=True, text=True, timeout=60,
                       env={**os.environ, "HOME": str(tmp_path), "I2I_PRUNE_ONLY": "1"})
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in layers.iterdir()) == ["deps-recent"]
    assert "deps-old (its dependency versions unused for 14 days)" in r.stderr


def test_cut_parity_helpers_turn_recorded_draws_into_host_draws_and_find_idle_biases():
    """tools/cut_parity.py needs the authors' checkout to run; its own logic is checked here."""
    import numpy as np
    import torch

    sys.path.insert(0, str(ROOT / "tools"))
    import cut_parity

    perms = [("perm", np.arange(n)[::-1]) for n in (1444, 1024, 256, 64, 64)]
    draws = cut_parity.host_draws_from([("random", 0.3), *perms], "fastcut")
    assert bool(draws["flip"]) and [len(draws[f"ids_nce_{i}"]) for i in range(5)] == [256, 256, 256, 64, 64]
    assert draws["ids_nce_0"][0] == 1443
    with pytest.raises(AssertionError, match="expected 10"):
        cut_parity.host_draws_from(perms, "cut")  # CUT draws for its identity term too
    from i2i.nets.registry import build_discriminator, build_generator

    G = build_generator("resnet", n_blocks=1, base_channels=4, norm="instance")
    assert cut_parity.idle_biases(G) == {"model.1.bias", "model.4.bias", "model.7.bias", "model.10.block.1.bias",
                                         "model.10.block.5.bias", "model.11.bias", "model.14.bias"}
    assert cut_parity.idle_biases(build_discriminator("patch", in_channels=3, n_layers=2, norm="batch")) == set()
    assert cut_parity.relative(torch.ones(3), torch.ones(3) * 2) == 0.5
    assert cut_parity.relative(torch.zeros(2) + 1e-9, torch.zeros(2), floor=1.0) == pytest.approx(1e-9)


def test_adapt_study_adapts_a_copy_and_leaves_the_net_alone():
    import torch

    sys.path.insert(0, str(ROOT / "tools"))
    import adapt_study

    from i2i.nets.registry import build_generator

    G = build_generator("srvgg", scale=4, n_convs=1, base_channels=4, base="bicubic")
    before = [p.detach().clone() for p in G.parameters()]
    lr = torch.rand(1, 3, 32, 40)
    net = adapt_study.adapt(G, lr, 2, lr_rate=1e-3, batch=2, crop=16, seed=0)
    assert all(torch.equal(a, b) for a, b in zip(before, G.parameters()))
    assert any(not torch.equal(a, b) for a, b in zip(G.parameters(), net.parameters()))
    up = adapt_study.upscale(net, lr)
    assert up.shape == (1, 3, 128, 160) and torch.equal(up, (up * 255).round() / 255)


def test_demo_study_variants_are_valid_overrides_of_the_demo_recipe():
    """tools/demo_study.py trains for minutes per variant; that each variant is a config the trainer
    accepts, and changes what it says, is checked here."""
    sys.path.insert(0, str(ROOT / "tools"))
    import demo_study

    from i2i.recipes import load_config

    base = load_config(ROOT / "configs/pix2pix/demo.yaml")
    old = load_config(ROOT / "configs/pix2pix/demo.yaml", demo_study.VARIANTS["old"][1])
    assert (old.model.generator.arg("upsample"), old.optim.lr_g, old.data.load_size, old.train.steps) == (
        "resize", 2e-4, 144, 1000)
    assert (base.model.generator.arg("upsample"), base.optim.lr_g, base.train.steps) == ("transpose", 1e-3, 1500)
    resize = load_config(ROOT / "configs/pix2pix/demo.yaml", demo_study.VARIANTS["resize"][1])
    assert resize.model.generator.arg("upsample") == "resize" and resize.optim == base.optim
