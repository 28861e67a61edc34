"""The results page's pieces: training curves and the summary table."""

from __future__ import annotations

import re

import pytest

from i2i import report


def _records(n: int) -> list[dict]:
    recs = [{"step": 10 * (i + 1), "epoch": 0, "G_L1": 1.0 / (i + 1), "G_gan": 0.0, "it_per_s": 5.0,
             "lr_G": 2e-4 * (1 - i / n)}
            for i in range(n)]
    recs += [{"step": 50, "epoch": 0, "val_PSNR": 20.0}, {"step": 100, "epoch": 0, "val_PSNR": 22.5}]
    return recs


def test_curves_group_losses_validation_and_learning_rate_and_skip_disabled_terms():
    svg = report.loss_curves_svg(_records(20))
    groups = re.findall(r"<h3>(.*?)</h3>", svg)
    assert groups == ["training losses", "validation", "learning rate"]
    assert 'aria-label="G_L1"' in svg and 'aria-label="val_PSNR"' in svg and 'aria-label="lr_G"' in svg
    assert 'aria-label="G_gan"' not in svg and "Always 0 in this run (disabled terms), not drawn: G_gan" in svg
    assert 'aria-label="it_per_s"' not in svg and 'aria-label="epoch"' not in svg
    g_l1 = svg[svg.index('aria-label="G_L1"'):svg.index("</figure>", svg.index('aria-label="G_L1"'))]
    assert g_l1.count("<polyline") == 2 and 'stroke-opacity="0.3"' in g_l1  # raw (faint) + smoothed
    assert ">step</text>" in g_l1 and len(re.findall(r'text-anchor="end">', g_l1)) >= 3  # y ticks
    assert "first 1, last 0.05, min 0.05, max 1" in g_l1
    lr = svg[svg.index('aria-label="lr_G"'):]
    assert lr[: lr.index("</figure>")].count("<polyline") == 1  # a schedule is drawn as it is


def test_few_points_are_drawn_as_points_not_smoothed():
    svg = report.loss_curves_svg(_records(3))
    start = svg.index('aria-label="val_PSNR"')
    val = svg[start:svg.index("</figure>", start)]
    assert val.count("<circle") == 2 and "stroke-opacity" not in val


def test_smoothing_is_bias_corrected_and_nice_ticks_are_round():
    assert report.smooth([5.0, 5.0, 5.0]) == pytest.approx([5.0, 5.0, 5.0])
    assert report.smooth([0.0, 10.0], weight=0.0) == [0.0, 10.0]
    assert report._nice_ticks(0.03, 0.97) == pytest.approx([0.2, 0.4, 0.6, 0.8])
    assert report._nice_ticks(0, 1000) == pytest.approx([0, 200, 400, 600, 800, 1000])


def test_summary_marks_the_best_value_of_each_column(tmp_path):
    page = report.write_results_page(tmp_path, title="t", columns=[], rows=[], records=[],
                                     summary=[{"model": "trained", "L1": 0.04, "PSNR": 26.5},
                                              {"model": "identity", "L1": 0.06, "PSNR": 26.6}],
                                     better={"L1": "min", "PSNR": "max"}).read_text()
    assert "<td><b>0.0400</b></td>" in page and "<td><b>26.6000</b></td>" in page
    assert "<td>26.5000</td>" in page and "PSNR ↑" in page and "L1 ↓" in page
    # each metric printed with its own format, as the text tables print it
    page = report.write_results_page(tmp_path, title="t", columns=[], records=[],
                                     rows=[{"name": "a.png", "images": [],
                                            "metrics": {"PSNR": 26.512, "dB over identity": 0.5}}],
                                     summary=[{"model": "trained", "L1": 0.04, "PSNR": 26.5}],
                                     better={"L1": "min", "PSNR": "max"}, formats={"PSNR": ".2f"}).read_text()
    assert "<td><b>26.50</b></td>" in page and "<td><b>0.0400</b></td>" in page
    assert "<td>26.51</td>" in page and "<td>+0.50</td>" in page
