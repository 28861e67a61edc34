import json
import os
import socket
import subprocess
import sys

import pytest
import torch

import i2i
from i2i.config import dump_config


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


PIPELINES = {
    "pix2pix": {},
    # Each generator runs several times per step (translate, reconstruct, identity);
    # pools off because their random draws are per process.
    "cyclegan": {"pipeline": "cyclegan", "loss": {"gan_mode": "lsgan", "pool_size": 0, "identity_weight": 0.5},
                 "model": {"generator": {"name": "resnet", "n_blocks": 1, "base_channels": 8, "in_channels": 3}}},
    # G runs whole on A and B, then encoder-only on its outputs (queries) and, without gradients, on
    # its inputs (keys); F's heads are a third net. Every rank draws the same patch positions, which
    # is what one process does for every image of its batch.
    "cut": {"pipeline": "cut", "loss": {"nce_layers": [0, 4, 8, 10], "num_patches": 16, "mlp_channels": 8},
            "model": {"generator": {"name": "resnet", "n_blocks": 1, "base_channels": 8, "in_channels": 3,
                                    "antialias": True, "antialias_up": True}}},
}


@pytest.mark.slow
@pytest.mark.parametrize("pipeline", list(PIPELINES))
def test_two_gloo_processes_equal_one_process_with_the_combined_batch(tmp_path, gray2color, make_config, pipeline):
    # Without batch statistics or dropout, DDP over 2 ranks x batch 1 (gradients averaged)
    # computes the same update as 1 process x batch 2: same samples (the sampler shards
    # one permutation), same losses (means), same Adam steps. (Not instance norm: a conv
    # bias before a non-affine norm has an exactly-zero gradient, and Adam blows the float
    # noise there up to full-size, run-dependent steps.)
    extra = PIPELINES[pipeline]
    model = {"generator": {"norm": "none", "dropout": False, **extra.get("model", {}).get("generator", {})},
             "discriminator": {"norm": "none"}}
    root = {"root": str(gray2color / "train"), "val_root": str(gray2color / "test")}
    if pipeline in ("cyclegan", "cut"):  # the paired folders A/ + B/ double as two unpaired domains
        root = {"root": str(gray2color / "train"), "val_root": None}
    common = {"model": model, "train": {"steps": 3, "log_every": 1}, **{k: v for k, v in extra.items() if k != "model"}}
    ddp = make_config(tmp_path / "ddp", gray2color, data={"batch_size": 1, **root}, **common)
    cfg_file = tmp_path / "ddp.yaml"
    cfg_file.write_text(dump_config(ddp))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    r = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node=2", f"--master-port={_free_port()}",
         "-m", "i2i", "train", str(cfg_file)],
        capture_output=True, text=True, env=env, timeout=300,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.count("trained tiny to step 3") == 1  # rank 0 alone reports and writes

    single = make_config(tmp_path / "one", gray2color, data={"batch_size": 2, **root}, **common)
    i2i.train(single)

    a = torch.load(ddp.run_dir / "checkpoints" / "last.pt", weights_only=True)
    b = torch.load(single.run_dir / "checkpoints" / "last.pt", weights_only=True)
    for net in a["nets"]:
        for k, v in a["nets"][net].items():
            assert torch.allclose(v, b["nets"][net][k], atol=2e-5), f"{net}.{k}"
    lines = (ddp.run_dir / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(x)["step"] for x in lines] == [1, 2, 3]  # written once, not once per rank
