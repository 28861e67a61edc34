import numpy as np
import pytest
import torch

from i2i.data.datasets import DataError, PairedDataset
from i2i.data.io import write_image
from i2i.data.sampling import EpochSampler


def _pairs(root, names, size=(40, 48)):
    rng = np.random.default_rng(0)
    for n in names:
        a = rng.integers(0, 256, size=(*size, 3), dtype=np.uint8)
        write_image(root / "A" / f"{n}.png", a)
        write_image(root / "B" / f"{n}.png", 255 - a)  # B is a known pixelwise function of A


def test_folders_layout_keeps_a_and_b_in_register_through_crop_and_flip(tmp_path):
    _pairs(tmp_path, ["x", "y"])
    ds = PairedDataset(tmp_path, preprocess="crop", crop_size=24, flip=True, train=True)
    assert ds.layout == "folders" and len(ds) == 2
    crops = set()
    for epoch in range(6):
        item = ds[(epoch, 0)]
        a, b = item["input"], item["target"]
        assert a.shape == (3, 24, 24)
        assert torch.allclose(b, -a, atol=1e-6)  # 255 - a maps to -a on [-1, 1]
        crops.add(tuple(a[0, 0, :3].tolist()))
    assert len(crops) > 1  # different epochs draw different crops


def test_resize_keeps_register_within_interpolation_rounding(tmp_path):
    _pairs(tmp_path, ["x"])
    item = PairedDataset(tmp_path, preprocess="resize_and_crop", load_size=36, crop_size=32, train=True)[0]
    assert (item["target"] + item["input"]).abs().max() < 0.02


def test_same_epoch_and_index_reproduce_the_same_sample(tmp_path):
    _pairs(tmp_path, ["x"])
    ds = PairedDataset(tmp_path, preprocess="crop", crop_size=16)
    assert torch.equal(ds[(3, 0)]["input"], ds[(3, 0)]["input"])


def test_aligned_layout_and_direction(tmp_path):
    a = np.zeros((8, 8, 3), np.uint8)
    b = np.full((8, 8, 3), 255, np.uint8)
    write_image(tmp_path / "p.png", np.concatenate([a, b], axis=1))
    fwd = PairedDataset(tmp_path, preprocess="none", train=False)
    assert fwd.layout == "aligned"
    assert fwd[0]["input"].max() == -1 and fwd[0]["target"].min() == 1
    back = PairedDataset(tmp_path, preprocess="none", direction="b_to_a", train=False)
    assert back[0]["input"].min() == 1


def test_channels_follow_the_config(tmp_path):
    _pairs(tmp_path, ["x"])
    item = PairedDataset(tmp_path, preprocess="none", in_channels=1, out_channels=3, train=False)[0]
    assert item["input"].shape[0] == 1 and item["target"].shape[0] == 3


def test_unmatched_names_are_listed(tmp_path):
    _pairs(tmp_path, ["a", "b"])
    write_image(tmp_path / "A" / "only_in_a.png", np.zeros((4, 4, 3), np.uint8))
    write_image(tmp_path / "B" / "only_in_b.png", np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(DataError, match="in A/ but not B/: only_in_a; in B/ but not A/: only_in_b"):
        PairedDataset(tmp_path)


def test_missing_and_empty_folders(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        PairedDataset(tmp_path / "nope")
    (tmp_path / "A").mkdir()
    (tmp_path / "B").mkdir()
    with pytest.raises(DataError, match="holds no images"):
        PairedDataset(tmp_path)
    (tmp_path / "A").rmdir()
    (tmp_path / "B").rmdir()
    with pytest.raises(DataError, match="holds no images"):
        PairedDataset(tmp_path, layout="aligned")


def test_epoch_sampler_shards_and_resumes():
    full = EpochSampler(10, seed=3)
    full.set_epoch(2)
    order = [i for _, i in full]
    assert sorted(order) == list(range(10))
    ranks = [EpochSampler(10, seed=3, rank=r, world_size=3) for r in range(3)]
    shards = []
    for s in ranks:
        s.set_epoch(2)
        shards.append([i for _, i in s])
    assert all(len(s) == 4 for s in shards)  # padded to equal counts
    assert set(sum(shards, [])) == set(range(10))
    full.set_epoch(2, start=4)
    assert [i for _, i in full] == order[4:] and len(full) == 6
    full.set_epoch(3)
    assert [i for _, i in full] != order


def test_resize_and_crop_needs_load_size_at_least_crop(tmp_path):
    _pairs(tmp_path, ["x"])
    with pytest.raises(ValueError, match=r"data.load_size \(20\) must be >= data.crop_size \(32\)"):
        PairedDataset(tmp_path, preprocess="resize_and_crop", load_size=20, crop_size=32)
