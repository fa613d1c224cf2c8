"""The experiment: real digits, a held-out split, learning on a tiny budget, files written."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from sepconv import models
from sepconv.experiment import (
    TrainingConfig,
    evaluate,
    load_digits,
    recompute_batch_norm,
    run_experiment,
)

# Many small torch calls: one intra-op thread is faster and steadier on a busy machine.
pytestmark = pytest.mark.usefixtures("torch_single_thread")


def test_load_digits_split() -> None:
    data = load_digits(seed=0)
    assert data.train_images.shape == (4000, 1, 28, 28)
    assert data.test_images.shape == (1000, 1, 28, 28)
    assert data.test_labels.bincount().tolist() == [100] * 10
    assert data.train_labels.bincount().tolist() == [400] * 10
    # Held out: no test image is also a training image.
    train = {bytes(x.numpy()) for x in data.train_images}
    assert not any(bytes(x.numpy()) in train for x in data.test_images)
    assert abs(float(data.train_images.mean())) < 0.05
    assert abs(float(data.train_images.std()) - 1) < 0.05
    again = load_digits(seed=0)
    assert torch.equal(again.train_images, data.train_images)
    other = load_digits(seed=1)
    assert not torch.equal(other.test_images, data.test_images)


def test_quick_run_learns(tmp_path) -> None:
    config = TrainingConfig(epochs=1, train_limit=2000, batch_size=32, latency_repeats=5)
    result = run_experiment(tmp_path, config=config, progress=False)
    sep, full = result.separable, result.full
    assert (sep.model, full.model) == ("mnist_separable", "mnist_conv")
    # Chance is 10%: both twins learned after one short epoch.
    assert sep.test_accuracy > 0.5 and full.test_accuracy > 0.5
    assert full.mult_adds / sep.mult_adds >= 7
    assert sep.parameters < full.parameters
    assert sep.latency_ms > 0 and sep.training_seconds > 0
    markdown = (tmp_path / "results.md").read_text()
    assert "| mnist_separable |" in markdown and "fewer mult-adds" in markdown
    data = json.loads((tmp_path / "results.json").read_text())
    assert data["rows"][0]["test_accuracy"] == sep.test_accuracy
    assert data["config"]["epochs"] == 1
    # Checkpoints are plain state dicts that load with weights_only=True.
    state = torch.load(tmp_path / "mnist_separable.pt", weights_only=True)
    fresh = models.create_model("mnist_separable")
    fresh.load_state_dict(state)
    digits = load_digits(seed=0)
    assert evaluate(fresh, digits.test_images, digits.test_labels) == sep.test_accuracy
    assert not list(tmp_path.glob(".*tmp*"))


def test_recompute_batch_norm_matches_population_statistics() -> None:
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 3, 3), torch.nn.BatchNorm2d(3))
    x = torch.randn(64, 1, 8, 8, generator=torch.Generator().manual_seed(0)) * 3 + 1
    recompute_batch_norm(net, x, batch_size=16)
    with torch.no_grad():
        y = net[0](x)
    np.testing.assert_allclose(net[1].running_mean, y.mean((0, 2, 3)), rtol=1e-4, atol=1e-5)
    assert net[1].momentum == 0.1


def test_exception() -> None:
    with pytest.raises(ValueError, match="`epochs` must be a positive integer, got 0"):
        TrainingConfig(epochs=0)
    with pytest.raises(ValueError, match="`learning_rate` must be > 0"):
        TrainingConfig(learning_rate=0.0)
    with pytest.raises(ValueError, match="`seed` must be an integer >= 0, got -1"):
        load_digits(seed=-1)
    with pytest.raises(ValueError, match="`test_per_class` must leave training images"):
        load_digits(test_per_class=500)
