import numpy as np
import pytest
import torch

from i2i.data.base import DataError
from i2i.data.generation import GenerationDataConfig
from i2i.data.io import write_image
from i2i.data.paired import PairedDataConfig, PairedDataset
from i2i.data.sampling import EpochSampler
from i2i.data.sr import SRDataConfig
from i2i.data.unpaired import UnpairedDataConfig


def _pairs(root, names, size=(40, 48)):
    rng = np.random.default_rng(0)
    for n in names:
        a = rng.integers(0, 256, size=(*size, 3), dtype=np.uint8)
        write_image(root / "A" / f"{n}.png", a)
        write_image(root / "B" / f"{n}.png", 255 - a)  # B is a known pixelwise function of A


def test_folders_layout_keeps_a_and_b_in_register_through_crop_and_flip(tmp_path):
    _pairs(tmp_path, ["x", "y"])
    ds = PairedDataset(tmp_path, PairedDataConfig(preprocess="crop", crop_size=24, flip=True), train=True)
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
    item = PairedDataset(tmp_path, PairedDataConfig(preprocess="resize_and_crop", load_size=36, crop_size=32),
                         train=True)[0]
    assert (item["target"] + item["input"]).abs().max() < 0.02


def test_same_epoch_and_index_reproduce_the_same_sample(tmp_path):
    _pairs(tmp_path, ["x"])
    ds = PairedDataset(tmp_path, PairedDataConfig(preprocess="crop", crop_size=16))
    assert torch.equal(ds[(3, 0)]["input"], ds[(3, 0)]["input"])


def test_aligned_layout_and_direction(tmp_path):
    a = np.zeros((8, 8, 3), np.uint8)
    b = np.full((8, 8, 3), 255, np.uint8)
    write_image(tmp_path / "p.png", np.concatenate([a, b], axis=1))
    fwd = PairedDataset(tmp_path, PairedDataConfig(preprocess="none"), train=False)
    assert fwd.layout == "aligned"
    assert fwd[0]["input"].max() == -1 and fwd[0]["target"].min() == 1
    back = PairedDataset(tmp_path, PairedDataConfig(preprocess="none", direction="b_to_a"), train=False)
    assert back[0]["input"].min() == 1


def test_channels_follow_the_config(tmp_path):
    _pairs(tmp_path, ["x"])
    item = PairedDataset(tmp_path, PairedDataConfig(preprocess="none"), in_channels=1, out_channels=3, train=False)[0]
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
        PairedDataset(tmp_path, PairedDataConfig(layout="aligned"))


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


def test_resize_and_crop_needs_load_size_at_least_crop(tmp_path, gray2color, make_config):
    _pairs(tmp_path, ["x"])
    with pytest.raises(ValueError, match=r"data.load_size \(20\) must be >= data.crop_size \(32\)"):
        PairedDataset(tmp_path, PairedDataConfig(preprocess="resize_and_crop", load_size=20, crop_size=32))
    from i2i.config import ConfigError

    with pytest.raises(ConfigError,
                       match=r"data.load_size=3 is smaller than data.crop_size=32 .*set data.load_size >= 32"):
        make_config(tmp_path, gray2color, data={"load_size": 3})  # in the config, before anything is built


# ------------------------------------------------------------------ data.max_items
def test_first_items_keeps_the_first_n_or_spreads_them_over_the_classes():
    from i2i.data.base import first_items

    assert first_items(5, None) == [0, 1, 2, 3, 4] and first_items(5, 9) == [0, 1, 2, 3, 4]
    assert first_items(5, 2) == [0, 1]
    # Classes 0 (items 0-5), 1 (6-7) and 2 (8-11): 7 items, round robin in class order; class 1
    # runs out after two and the others fill in.
    labels = [0] * 6 + [1] * 2 + [2] * 4
    assert first_items(12, 7, labels) == [0, 1, 2, 6, 7, 8, 9]
    assert first_items(12, 3, labels) == [0, 6, 8]


def test_max_items_limits_every_dataset_to_its_first_items(tmp_path):
    import make_shapes

    from i2i.data.generation import ImageDataset
    from i2i.data.paired import PairedDataConfig
    from i2i.data.sr import SRDataset
    from i2i.data.unpaired import UnpairedDataset

    _pairs(tmp_path / "paired", ["c", "a", "d", "b"])
    ds = PairedDataset(tmp_path / "paired", PairedDataConfig(max_items=2, preprocess="none"))
    assert len(ds) == 2 and [ds[i]["name"] for i in range(2)] == ["a.png", "b.png"] and ds.limited_from == 4
    # more than there are: all, no note
    assert PairedDataset(tmp_path / "paired", PairedDataConfig(max_items=9)).limited_from is None
    rng = np.random.default_rng(0)
    for domain, n in (("trainA", 5), ("trainB", 3)):
        for i in range(n):
            write_image(tmp_path / "unpaired" / domain / f"{i}.png", rng.integers(0, 256, (20, 20, 3), dtype=np.uint8))
    un = UnpairedDataset(tmp_path / "unpaired", UnpairedDataConfig(preprocess="none", max_items=2))  # per domain
    assert [p.name for p in un.a_files] == ["0.png", "1.png"] and [p.name for p in un.b_files] == ["0.png", "1.png"]
    assert len(un) == 2 and un.limited_from == 5
    sr = SRDataset(tmp_path / "unpaired" / "trainA", SRDataConfig(crop_size=8, max_items=3), scale=2)
    assert [p.name for p in sr.files] == ["0.png", "1.png", "2.png"]
    make_shapes.build(tmp_path / "shapes", n=10, size=16, seed=0)  # disc/ and square/, alternating
    gen = ImageDataset(tmp_path / "shapes", GenerationDataConfig(image_size=16, max_items=4), channels=1, labels=True)
    assert len(gen) == 4 and sorted(gen.labels) == [0, 0, 1, 1] and gen.limited_from == 10
    assert [p.parent.name for p in gen.files] == ["disc", "disc", "square", "square"]


def test_max_items_is_said_in_the_banner_and_validation_reads_every_item(tmp_path, gray2color, make_config):
    import i2i
    from i2i.config import ConfigError

    with pytest.raises(ConfigError, match="data.max_items"):
        make_config(tmp_path, gray2color, data={"max_items": 0})
    cfg = make_config(tmp_path, gray2color, data={"max_items": 5}, train={"steps": 1})
    i2i.train(cfg)
    log = (cfg.run_dir / "train.log").read_text()
    from i2i.recipes import pipeline_class

    whole = len(PairedDataset(cfg.data.root))
    assert f"5 training items (data.max_items; the folder has {whole})" in log
    assert len(pipeline_class("pix2pix").make_dataset(cfg, train=False,
                                                      root=cfg.data.val_root)) == len(PairedDataset(cfg.data.val_root))


def test_rotate90_turns_both_images_of_a_pair_alike_and_needs_square_crops(tmp_path, gray2color, make_config):
    from i2i.config import ConfigError

    _pairs(tmp_path / "p", ["x", "y"], size=(40, 40))
    ds = PairedDataset(tmp_path / "p", PairedDataConfig(preprocess="crop", crop_size=24, flip=True, rotate90=True),
                       train=True)
    plain = PairedDataset(tmp_path / "p", PairedDataConfig(preprocess="crop", crop_size=24, flip=True), train=True)
    turned = 0
    for epoch in range(6):
        for i in range(2):
            item = ds[(epoch, i)]
            assert torch.allclose(item["target"], -item["input"], atol=1e-6)  # B = 255 - A: still in register
            turned += not torch.equal(item["input"], plain[(epoch, i)]["input"])
    assert turned >= 6  # 3 of 4 draws turn the crop
    with pytest.raises(ConfigError, match="data.rotate90 needs square training images"):
        make_config(tmp_path, gray2color, data={"rotate90": True, "preprocess": "none"})


def test_color_jitter_is_torchvisions_color_jitter_without_hue():
    """jitter_colors on levels in [0, 255] equals torchvision's adjust_brightness, then
    adjust_contrast, then adjust_saturation on the same image in [0, 1], up to the final rounding."""
    import torchvision.transforms.functional as TF

    from i2i.data.transforms import jitter_colors

    rng = np.random.default_rng(3)
    x = torch.from_numpy(rng.integers(0, 256, (2, 3, 20, 24)).astype(np.float32))
    factors = torch.tensor([[1.3, 0.7, 1.5], [0.8, 1.2, 0.6]])
    got = jitter_colors(x.clone(), factors, 255.0)
    for i, (b, c, s) in enumerate(factors.tolist()):
        want = TF.adjust_saturation(TF.adjust_contrast(TF.adjust_brightness(x[i] / 255, b), c), s) * 255
        assert (got[i] - want).abs().max() <= 0.51  # our rounding of torchvision's float result (measured: 0.503)
    assert torch.equal(got, got.round()) and got.min() >= 0 and got.max() <= 255
    gray = jitter_colors(x[:, :1].clone(), factors, 255.0)  # one channel: brightness and contrast only
    want = TF.adjust_contrast(TF.adjust_brightness(x[0, :1] / 255, 1.3), 0.7) * 255
    assert (gray[0] - want).abs().max() <= 0.51


def test_color_jitter_draws_one_change_for_both_images_of_a_pair_and_none_in_validation(tmp_path):
    rng = np.random.default_rng(0)
    for n in ("x", "y"):
        a = rng.integers(0, 256, size=(24, 24, 3), dtype=np.uint8)
        write_image(tmp_path / "A" / f"{n}.png", a)
        write_image(tmp_path / "B" / f"{n}.png", a)  # B equals A: a shared draw keeps them equal
    kw = {"preprocess": "crop", "crop_size": 24, "flip": False}
    plain = PairedDataset(tmp_path, PairedDataConfig(**kw), train=True)
    jittered = PairedDataset(tmp_path, PairedDataConfig(color_jitter=0.4, **kw), train=True)
    changed = []
    for epoch in range(4):
        item = jittered[(epoch, 0)]
        assert torch.equal(item["input"], item["target"])
        assert torch.equal(item["input"], jittered[(epoch, 0)]["input"])  # the draw is the item's: reproducible
        changed.append((item["input"] - plain[(epoch, 0)]["input"]).abs().mean().item())
    assert min(changed) > 0.01 and len(set(changed)) == 4  # a different change every epoch
    val = PairedDataset(tmp_path, PairedDataConfig(color_jitter=0.4, **kw), train=False)
    assert torch.equal(val[0]["input"], PairedDataset(tmp_path, PairedDataConfig(**kw), train=False)[0]["input"])


def test_scale_jitter_zooms_before_the_crop_and_needs_a_crop(tmp_path, gray2color, make_config):
    from i2i.config import ConfigError
    from i2i.data.transforms import draw_geometry

    _pairs(tmp_path / "p", ["x"], size=(40, 40))
    ds = PairedDataset(tmp_path / "p",
                       PairedDataConfig(preprocess="resize_and_crop", load_size=36, crop_size=32, scale_jitter=0.3),
                       train=True)
    sizes = {draw_geometry(ds.transform, 40, 40, s).resize for s in range(40)}
    assert all(h == w and 32 <= h <= round(36 * 1.3) for h, w in sizes) and len(sizes) > 5
    assert (32, 32) in sizes  # zooming out past the crop stops at the crop size
    for epoch in range(4):
        item = ds[(epoch, 0)]
        assert item["input"].shape == (3, 32, 32)
        assert (item["target"] + item["input"]).abs().max() < 0.02  # the pair stays in register
    crop = PairedDataset(tmp_path / "p", PairedDataConfig(preprocess="crop", crop_size=24, scale_jitter=0.5),
                         train=True)
    assert {draw_geometry(crop.transform, 40, 40, s).resize for s in range(20)} - {None}  # the image itself is scaled
    zoom = PairedDataConfig(preprocess="resize_and_crop", load_size=36, crop_size=32, scale_jitter=0.3)
    # validation: none
    assert PairedDataset(tmp_path / "p", zoom, train=False).transform.transforms[0].__class__.__name__ == "Resize"
    with pytest.raises(ConfigError, match="data.scale_jitter scales the image before its crop"):
        make_config(tmp_path, gray2color, data={"scale_jitter": 0.2, "preprocess": "resize"})
    with pytest.raises(ConfigError, match="data.color_jitter"):
        make_config(tmp_path, gray2color, data={"color_jitter": 1.0})
