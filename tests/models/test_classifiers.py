"""Classifier shapes, the paper's MLP size, DenseNet head, local weights (no download)."""

from __future__ import annotations

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from radfair.errors import RadfairInputError
from radfair.models import build_classifier, load_weights


def macs(model, x):
    model.eval()
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(x)
    return counter.get_total_flops() / 2 / len(x)


def test_mlp_is_the_papers_head_with_1_257m_macs_per_sample():
    model = build_classifier("mlp", 14)
    kinds = [type(m).__name__ for m in model.body]
    assert kinds == ["Linear", "ReLU", "BatchNorm1d", "Dropout"] * 2
    assert [m.out_features for m in model.modules() if isinstance(m, torch.nn.Linear)] == [768, 256, 14]
    assert macs(model, torch.randn(4, 1376)) == 1376 * 768 + 768 * 256 + 256 * 14 == 1_256_960


def test_linear_probe_and_densenet_shapes():
    assert build_classifier("linear", 14)(torch.randn(3, 1376)).shape == (3, 14)
    net = build_classifier("densenet121", 12).eval()
    x = torch.randn(2, 1, 64, 64)
    assert net(x).shape == (2, 12) and net.features(x).shape == (2, 256)


def test_densenet121_forward_is_2_83_gmacs_at_224():
    net = build_classifier("densenet121", 14, in_channels=3)
    assert macs(net, torch.randn(1, 3, 224, 224)) / 1e9 == pytest.approx(2.83, abs=0.01)


def test_weights_from_a_local_file_with_rgb_first_conv_summed_to_grey(tmp_path):
    rgb = build_classifier("densenet121", 14, in_channels=3)
    torch.save({"state_dict": {f"module.{k}": v for k, v in rgb.state_dict().items()}}, tmp_path / "w.pt")
    grey = build_classifier("densenet121", 14, in_channels=1)
    counts = load_weights(grey, tmp_path / "w.pt")
    assert counts["matched"] == counts["model_tensors"]
    conv = "backbone.features.conv0.weight"
    assert torch.equal(grey.state_dict()[conv], rgb.state_dict()[conv].sum(dim=1, keepdim=True))


def test_weights_errors_name_the_file(tmp_path):
    model = build_classifier("mlp", 14)
    with pytest.raises(RadfairInputError, match="file not found"):
        load_weights(model, tmp_path / "missing.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(RadfairInputError, match="junk.pt: not a readable PyTorch checkpoint"):
        load_weights(model, tmp_path / "junk.pt")
    torch.save({"other.weight": torch.zeros(3)}, tmp_path / "other.pt")
    with pytest.raises(RadfairInputError, match="no tensor matches"):
        load_weights(model, tmp_path / "other.pt")
