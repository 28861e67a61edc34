"""Write checkpoints with i2i at commit c9b2b16 (checkpoint config format 1) as test fixtures.

Each fixture comes with what that i2i computed from it, so a later i2i can be checked
against the old one: converted outputs of a fixed input, and the weights of a run trained
straight on to a later step (for exact-resume checks across the format change).
"""

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[3]  # the i2i checkout it was run from
sys.path.insert(0, str(ROOT / "datasets"))
import make_paired  # noqa: E402
import make_shapes  # noqa: E402
import make_unpaired  # noqa: E402

import i2i  # noqa: E402
from i2i.recipes import config_from_dict  # noqa: E402

torch.set_num_threads(2)
OUT = Path(sys.argv[1])
OUT.mkdir(parents=True, exist_ok=True)
WORK = Path("/tmp/legacy_work")
shutil.rmtree(WORK, ignore_errors=True)
photos = ROOT / "datasets" / "sample" / "photos"

paired = WORK / "paired"
make_paired.build(photos, paired, task="gray2color", size=32, n_train=12, n_test=3, seed=0)
unpaired = WORK / "unpaired"
make_unpaired.build(photos, unpaired, transform="negative", size=32, n_train=4, n_test=1, seed=0)
shapes = WORK / "shapes"
make_shapes.build(shapes, n=64, size=16, seed=0)

common_train = {"epochs": None, "log_every": 1, "sample_every": 1000, "checkpoint_every": 1000, "progress": False}


def cfg_for(name, pipeline, model, data, steps, **extra):
    d = {"name": name, "pipeline": pipeline, "seed": 0, "output_dir": str(WORK / "runs"), "model": model, "data": data,
         "schedule": {"policy": "linear", "decay_start": 0},
         "train": {**common_train, "steps": steps, **extra.pop("train", {})}}
    d.update(extra)
    return config_from_dict(d)


pix_model = {"generator": {"name": "unet", "num_downs": 5, "base_channels": 4, "in_channels": 1, "out_channels": 3},
             "discriminator": {"name": "patch", "n_layers": 2, "base_channels": 4}}
pix_data = {"root": str(paired / "train"), "load_size": 36, "crop_size": 32, "batch_size": 4, "num_workers": 0}

# pix2pix: a training checkpoint at step 2 of 4 (EMA on), the straight run's final weights, an export.
half = cfg_for("pix_half", "pix2pix", pix_model, pix_data, 4, train={"ema_decay": 0.5})
t = i2i.Trainer(half)
t.total_steps = 2
t.fit()
shutil.copy(half.run_dir / "checkpoints" / "last.pt", OUT / "pix2pix_step2_of_4.pt")
full = cfg_for("pix_full", "pix2pix", pix_model, pix_data, 4, train={"ema_decay": 0.5})
i2i.train(full)
final = torch.load(full.run_dir / "checkpoints" / "last.pt", weights_only=True)
torch.save({"nets": final["nets"], "ema": final["ema"]}, OUT / "pix2pix_step4_expected.pt")
i2i.export_generator(OUT / "pix2pix_step2_of_4.pt", OUT / "pix2pix_export.pt")

# CycleGAN: export of G_ba from a 2-step tiny run.
cyc_model = {"generator": {"name": "resnet", "n_blocks": 1, "base_channels": 4, "norm": "instance"},
             "discriminator": {"name": "patch", "n_layers": 1, "base_channels": 4, "norm": "instance"}}
cyc = cfg_for("cyc", "cyclegan", cyc_model, {"root": str(unpaired), "load_size": 36, "crop_size": 32, "batch_size": 2,
                                             "num_workers": 0}, 2, loss={"pool_size": 4})
i2i.train(cyc)
i2i.export_generator(cyc.run_dir / "checkpoints" / "last.pt", OUT / "cyclegan_export_b_to_a.pt", direction="b_to_a")

# SRResNet x2 export.
sr_model = {"generator": {"name": "srresnet", "scale": 2, "n_blocks": 1, "base_channels": 4, "norm": "none",
                          "global_skip": True}}
hr = WORK / "hr"
hr.mkdir()
for p in sorted((paired / "train" / "B").glob("*.png"))[:6]:
    shutil.copy(p, hr / p.name)
sr = cfg_for("sr", "srgan", sr_model, {"root": str(hr), "crop_size": 16, "batch_size": 2, "num_workers": 0}, 2,
             loss={"adversarial_weight": 0.0, "pixel_loss": "l1"}, test={"mode": "eval"})
i2i.train(sr)
i2i.export_generator(sr.run_dir / "checkpoints" / "last.pt", OUT / "srresnet_x2_export.pt")

# DCGAN: a class-free 16x16 training checkpoint at step 2 of 4 (EMA on) and the straight run's final weights.
dc_model = {"generator": {"name": "dcgan", "out_channels": 1, "base_channels": 4, "latent_dim": 8, "num_classes": 0},
            "discriminator": {"name": "dcgan", "base_channels": 4}}
dc_data = {"dataset": "folder", "root": str(shapes), "crop_size": 16, "batch_size": 8, "num_workers": 0}
dhalf = cfg_for("dc_half", "dcgan", dc_model, dc_data, 4, train={"ema_decay": 0.5}, schedule={"policy": "constant"})
t = i2i.Trainer(dhalf)
t.total_steps = 2
t.fit()
shutil.copy(dhalf.run_dir / "checkpoints" / "last.pt", OUT / "dcgan_step2_of_4.pt")
dfull = cfg_for("dc_full", "dcgan", dc_model, dc_data, 4, train={"ema_decay": 0.5}, schedule={"policy": "constant"})
i2i.train(dfull)
final = torch.load(dfull.run_dir / "checkpoints" / "last.pt", weights_only=True)
torch.save({"nets": final["nets"], "ema": final["ema"]}, OUT / "dcgan_step4_expected.pt")

# What this i2i computes from the fixtures.
rng = np.random.default_rng(0)
gray = i2i.read_image(sorted((paired / "test" / "A").glob("*.png"))[0])
rgb = i2i.read_image(sorted((paired / "test" / "B").glob("*.png"))[0])
i2i.write_image(OUT / "input_gray.png", gray)
i2i.write_image(OUT / "input_rgb.png", rgb)
expected = {
    "pix2pix_step2_of_4": i2i.Translator.from_checkpoint(OUT / "pix2pix_step2_of_4.pt", device="cpu")(gray),
    "pix2pix_export": i2i.Translator.from_checkpoint(OUT / "pix2pix_export.pt", device="cpu")(gray),
    "cyclegan_export_b_to_a": i2i.Translator.from_checkpoint(OUT / "cyclegan_export_b_to_a.pt", device="cpu")(rgb),
    "srresnet_x2_export": i2i.Translator.from_checkpoint(OUT / "srresnet_x2_export.pt", device="cpu")(rgb[:20, :24]),
}
for k, v in expected.items():
    i2i.write_image(OUT / f"expected_{k}.png", v)
samples = i2i.Generator.from_checkpoint(OUT / "dcgan_step2_of_4.pt", device="cpu").sample(4, seed=3)
torch.save({"samples": samples}, OUT / "dcgan_step2_samples_seed3.pt")
meta = {"written_by": "i2i " + i2i.__version__ + " at commit c9b2b16 (checkpoint config format 1)",
        "data": {"paired": "make_paired.build(photos, out, task='gray2color', size=32, n_train=12, n_test=3, seed=0)",
                 "shapes": "make_shapes.build(out, n=64, size=16, seed=0)"}}
(OUT / "README.json").write_text(json.dumps(meta, indent=2))
for p in sorted(OUT.iterdir()):
    print(p.name, p.stat().st_size)
