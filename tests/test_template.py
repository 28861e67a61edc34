"""The pipeline template (i2i/pipelines/template.py) is a working method: registered here, it
passes every registry test a new method gets without writing one (one step, n_critic, exact
resume, validation with best.pt, every command)."""

from __future__ import annotations

import pytest
import test_registry as reg
from test_registry import data_roots  # noqa: F401  (the fixture the registry tests use)

from i2i.registry import PIPELINES


@pytest.fixture(autouse=True)
def registered(monkeypatch):
    """One line in PIPELINES: all a new method adds outside its own files."""
    monkeypatch.setitem(PIPELINES, "template", "i2i.pipelines.template:Template")


def test_the_template_declares_itself():
    reg.test_every_pipeline_declares_itself("template")


def test_the_template_trains_one_step_and_every_parameter_moves(tmp_path, data_roots):  # noqa: F811
    reg.test_every_pipeline_trains_one_step_on_its_example("template", tmp_path, data_roots)


def test_the_template_takes_r1_and_n_critic(tmp_path, data_roots):  # noqa: F811
    reg.test_every_pipeline_takes_the_r1_penalty_and_n_critic("template", tmp_path, data_roots)


def test_the_template_resumes_exactly(tmp_path, data_roots):  # noqa: F811
    reg.test_every_pipeline_resumes_exactly("template", tmp_path, data_roots)


def test_the_template_validates_and_keeps_the_best(tmp_path, data_roots, gray2color):  # noqa: F811
    reg.test_every_pipeline_validates_with_its_own_metrics_keeps_the_best_and_resumes_exactly("template", tmp_path, data_roots,
                                                                                               gray2color)


def test_every_command_works_for_the_template(tmp_path, data_roots, capsys):  # noqa: F811
    reg.test_every_command_works_or_refuses_clearly_for_every_pipeline("template", tmp_path, data_roots, capsys)
