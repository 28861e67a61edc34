"""Training health: each verdict provoked (on records, and the discriminator's win in a real
run), said once in plain words, in train.log, metrics.jsonl and the results page; a healthy run
says none; the state resumes."""

from __future__ import annotations

import json

import i2i
from i2i.cli import main
from i2i.engine.health import Health
from i2i.report import health_html


def _log(step, **losses):
    return {"step": step, "epoch": 0, "it_per_s": 3.0, "lr_G": 2e-4, **losses}


def test_a_discriminator_that_wins_for_three_logs_is_said_once():
    h = Health("vanilla")
    assert h.on_log(_log(10, D_real=0.01, D_fake=0.02, G_gan=5.0)) == []
    assert h.on_log(_log(20, D_real=0.3, D_fake=0.02, G_gan=5.0)) == []  # not in a row: starts again
    said = [v for s in (30, 40, 50, 60) for v in h.on_log(_log(s, D_real=0.01, D_fake=0.004, G_gan=6.0))]
    assert [v.key for v in said] == ["d_won"] and said[0].step == 50
    assert (
        "since step 30" in said[0].message and "optim.lr_d" in said[0].message and "augment_policy" in said[0].message
    )
    cyc = Health("lsgan")
    said = [v for s in (1, 2, 3) for v in cyc.on_log(_log(s, D_a=0.001, D_b=0.002, G_ab=0.9, cycle_a=0.3))]
    assert [v.key for v in said] == ["d_won"]
    assert Health("wgangp").on_log(_log(1, D_real=-3.0, D_fake=-5.0)) == []  # a critic's values: no verdict
    assert [v for s in (1, 2, 3) for v in Health(None).on_log(_log(s, G_pixel=0.01))] == []  # no discriminator


def test_a_loss_growing_by_orders_of_magnitude_is_said():
    h = Health("vanilla")
    for s, g in ((1, 2.0), (2, 1.5), (3, 1.2)):
        assert h.on_log(_log(s, D_real=0.6, D_fake=0.6, G_gan=g)) == []
    said = h.on_log(_log(4, D_real=0.6, D_fake=0.6, G_gan=500.0))
    assert [v.key for v in said] == ["diverging"] and "G_gan grew from 1.2 to 500" in said[0].message
    assert h.on_log(_log(5, D_real=0.6, D_fake=0.6, G_gan=900.0)) == []  # once


def test_validation_verdicts_copies_input_collapse_and_stalled():
    h = Health("vanilla", metric="PSNR", better="max", identity={"PSNR": 25.0}, patience_val=2)
    assert h.on_validation(100, {"PSNR": 25.02, "L1": 0.05}) == []
    said = h.on_validation(200, {"PSNR": 24.9, "L1": 0.05})
    assert [v.key for v in said] == ["copies_input"] and "25.00 dB" in said[0].message
    g = Health("vanilla", metric="FID", better="min")
    said = g.on_validation(100, {"FID": 40.0, "diversity": 0.03})
    assert [v.key for v in said] == ["collapse"] and "diversity 0.03" in said[0].message
    s = Health("vanilla", metric="PSNR", better="max", patience_val=2)
    for step, g_loss, psnr in ((100, 3.0, 24.0), (200, 2.5, 26.0), (300, 2.0, 25.5), (400, 1.5, 25.1)):
        s.on_log(_log(step, D_real=0.6, D_fake=0.6, G_L1=g_loss))
        said = s.on_validation(step, {"PSNR": psnr})
    assert [v.key for v in said] == ["stalled"] and "best 26 at step 200" in said[0].message
    # Improving validation, or stalled while the losses do not fall: nothing to say.
    ok = Health("vanilla", metric="PSNR", better="max", patience_val=2)
    for step, psnr in ((100, 24.0), (200, 25.0), (300, 26.0), (400, 27.0)):
        ok.on_log(_log(step, D_real=0.6, D_fake=0.6, G_L1=1.0))
        assert ok.on_validation(step, {"PSNR": psnr}) == []
    again = Health("vanilla", metric="PSNR", better="max", patience_val=2)
    again.load_state_dict(json.loads(json.dumps(s.state_dict())))  # what a checkpoint holds, plain values
    assert again.said == {"stalled"} and again.validations == s.validations


def test_a_starved_generator_makes_the_discriminator_win_and_the_run_says_so(tmp_path, gray2color, make_config):
    """lr_G 1e-12: the generator cannot answer, D wins; the verdict is in train.log, in
    metrics.jsonl, and on the results page of `i2i eval`."""
    cfg = make_config(tmp_path / "starved", gray2color, optim={"lr_g": 1e-12, "lr_d": 2e-3},
                      schedule={"policy": "constant"},
                      train={"steps": 100, "log_every": 10})
    ckpt = i2i.train(cfg)["checkpoint"]
    log = (cfg.run_dir / "train.log").read_text()
    assert log.count("health: the discriminator has won") == 1, log[-2000:]
    records = [json.loads(x) for x in (cfg.run_dir / "metrics.jsonl").read_text().splitlines()]
    said = [r for r in records if "health" in r]
    assert [r["health"] for r in said] == ["d_won"]
    cfg.train.steps = 130  # resumed further: D still wins, but it was said already
    ckpt = i2i.train(cfg, resume="auto")["checkpoint"]
    assert (cfg.run_dir / "train.log").read_text().count("health: the discriminator has won") == 1
    out = tmp_path / "eval"
    assert main(["eval", ckpt, "--data", str(gray2color / "test"), "--out", str(out)]) == 0
    page = (out / "index.html").read_text()
    assert "Training health" in page and "the discriminator has won" in page


def test_a_healthy_run_says_nothing(tmp_path, gray2color, make_config):
    cfg = make_config(tmp_path / "ok", gray2color, train={"steps": 40, "log_every": 5})
    i2i.train(cfg)
    assert "health:" not in (cfg.run_dir / "train.log").read_text()
    records = [json.loads(x) for x in (cfg.run_dir / "metrics.jsonl").read_text().splitlines()]
    assert not any("health" in r for r in records)
    assert "No warning from the health checks" in health_html(records) and health_html([]) == ""


def test_unpaired_generators_that_change_nothing_are_said_to_copy_their_inputs():
    h = Health("lsgan")
    assert h.on_log(_log(1, D_a=0.3, D_b=0.3, G_ab=0.5, change_ab=0.004, change_ba=0.2)) == []  # one of them works
    said = [v for s in (2, 3, 4,
                        5) for v in h.on_log(_log(s, D_a=0.3, D_b=0.3, G_ab=0.5, change_ab=0.004, change_ba=0.002))]
    assert [v.key for v in said] == ["copies_input"] and said[0].step == 4
    assert "ab 0.40%" in said[0].message and "loss.identity_weight" in said[0].message
    assert "change_ab" not in h.smallest  # not a loss: no divergence verdict from it
    again = Health("lsgan")
    again.load_state_dict(json.loads(json.dumps(h.state_dict())))
    assert again.unchanged_logs == h.unchanged_logs == 4
    working = Health("lsgan")
    assert [v for s in range(1, 8) for v in working.on_log(_log(s, G_ab=0.5, change_ab=0.08, change_ba=0.1))] == []


def test_a_translation_that_answers_every_input_alike_is_a_collapse(tmp_path, gray2color, make_config):
    """A pix2pix generator whose last layer is zero returns one image for every input: the
    validator's output diversity is 0 and health says so at the third validation in a row (an
    untrained net's outputs vary little too, though far more than that)."""
    import torch

    from i2i.evaluate.paired import output_diversity

    x = [torch.rand(1, 3, 24, 32) * 2 - 1 for _ in range(4)]
    assert output_diversity(x, x) == 1.0 and output_diversity([x[0]] * 4, x) == 0.0
    cfg = make_config(tmp_path, gray2color, train={"steps": 1, "val_every": 1, "val_limit": 6})
    trainer = i2i.Trainer(cfg)
    untrained = trainer.validation.validator(trainer.inference_nets())["diversity"]
    last = [m for m in trainer.pipeline.nets["G"].modules() if isinstance(m,
                                                                          (torch.nn.Conv2d,
                                                                           torch.nn.ConvTranspose2d))][-1]
    with torch.no_grad():
        last.weight.zero_()
    values = trainer.validation.validator(trainer.inference_nets())
    assert values["diversity"] < 1e-6 < untrained / 1000
    h = Health.of_run(cfg, trainer.pipeline, trainer.validation)
    said = {v.key: v for step in (1, 2, 3) for v in h.on_validation(step, values)}
    assert said["collapse"].step == 3 and "whatever its input" in said["collapse"].message
    assert set(said) == {"collapse", "copies_input"}  # one grey answer is no better than the input either
    trainer.feed.close()


def test_a_cyclegan_whose_generators_stay_the_identity_is_told_so(tmp_path, photos, make_config):
    """Residual generators start as the identity; with lr_g 1e-12 they stay it: a real run's
    log says the generators copy their inputs, once."""
    import make_unpaired

    make_unpaired.build(photos, tmp_path / "data", transform="negative", size=32, n_train=3, n_test=1, seed=0)
    net = {"name": "resnet", "n_blocks": 1, "base_channels": 8, "predict": "residual"}
    cfg = make_config(tmp_path, tmp_path / "data", pipeline="cyclegan", model={"generator": net},
                      data={"root": str(tmp_path / "data"), "val_root": None, "preprocess": "none", "batch_size": 2},
                      optim={"lr_g": 1e-12},
                      train={"steps": 8, "log_every": 2})
    i2i.train(cfg)
    log = (cfg.run_dir / "train.log").read_text()
    assert log.count("health: the generators return their inputs almost unchanged") == 1, log[-1500:]


def test_memorisation_compares_samples_with_held_out_images():
    import torch

    from i2i.metrics import memorisation

    g = torch.Generator().manual_seed(0)
    train, held_out, new = (torch.randn(n, 64, generator=g) for n in (200, 50, 50))
    assert memorisation(train[:50] + 0.01 * torch.randn(50, 64, generator=g), held_out, train) < 0.05  # near copies
    assert 0.8 < memorisation(new, held_out, train) < 1.25  # as new as unseen real images
    h = Health("vanilla", metric="FID", better="min")
    assert h.on_validation(10, {"FID": 5.0, "diversity": 0.9, "memorisation": 0.9}) == []
    assert h.on_validation(20, {"FID": 5.0, "diversity": 0.05, "memorisation": 0.1})[0].key == "collapse"  # not copies
    said = h.on_validation(30, {"FID": 5.0, "diversity": 0.9, "memorisation": 0.1})
    assert [v.key for v in said] == ["memorisation"] and "copying its training set" in said[0].message


def test_a_generator_that_returns_training_images_is_said_to_memorise(tmp_path, monkeypatch):
    """The validator measures memorisation against the training folder when val_root is another;
    a generator whose samples are the training images is told it copies them."""
    import make_shapes
    import torch

    from i2i.data.generation import GenerationDataConfig, ImageDataset
    from i2i.generate import Generator
    from i2i.recipes import config_from_dict

    make_shapes.build(tmp_path / "train", n=24, size=16, seed=0)
    make_shapes.build(tmp_path / "val", n=24, size=16, seed=1)
    cfg = config_from_dict({"pipeline": "dcgan", "output_dir": str(tmp_path / "runs"),
                            "model": {"generator": {"name": "dcgan", "base_channels": 4, "out_channels": 1},
                                      "discriminator": {"name": "dcgan", "base_channels": 4}},
                            "data": {"root": str(tmp_path / "train"), "val_root": str(tmp_path / "val"),
                                     "image_size": 16,
                                     "num_workers": 0},
                            "train": {"epochs": None, "steps": 1, "val_every": 1, "val_features": "pixels",
                                      "progress": False}})
    trainer = i2i.Trainer(cfg)
    honest = trainer.validation.validator(trainer.inference_nets())
    assert honest["memorisation"] > 0.5
    ds = ImageDataset(tmp_path / "train", GenerationDataConfig(image_size=16), channels=1, train=False)
    copies = torch.stack([ds[i % len(ds)]["image"] for i in range(24)])
    monkeypatch.setattr(Generator, "sample_labelled", lambda self, n, **kw: (copies[:n], None))
    values = trainer.validation.validator(trainer.inference_nets())
    assert values["memorisation"] < 0.05 and values["diversity"] > 0.5
    said = Health.of_run(cfg, trainer.pipeline, trainer.validation).on_validation(1, values)
    assert [v.key for v in said] == ["memorisation"]
    trainer.feed.close()
