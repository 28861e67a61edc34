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
    assert "since step 30" in said[0].message and "optim.lr_d" in said[0].message and "augment_policy" in said[0].message
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
    cfg = make_config(tmp_path / "starved", gray2color, optim={"lr_g": 1e-12, "lr_d": 2e-3}, schedule={"policy": "constant"},
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
