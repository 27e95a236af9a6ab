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


def _torchvision_densenet_layout(monai_state: dict, old_style: bool) -> dict:
    """A DenseNet-121 state dict in torchvision's layout, written from MONAI's names (the inverse of monai_key):
    RGB first convolution, ImageNet's 1000-class classifier."""
    out = {}
    for key, value in monai_state.items():
        if key.startswith("class_layers"):
            continue
        if ".layers." in key:
            head, tail = key.split(".layers.")
            kind, rest = tail[:-len(tail.split(".", 1)[1]) - 1], tail.split(".", 1)[1]
            key = f"{head}.{kind[:-1]}.{kind[-1]}.{rest}" if old_style else f"{head}.{kind}.{rest}"
        out[key] = torch.randn(64, 3, 7, 7) if key == "features.conv0.weight" else torch.randn_like(value.float()).to(value.dtype)
    out["classifier.weight"], out["classifier.bias"] = torch.randn(1000, 1024), torch.randn(1000)
    return out


@pytest.mark.parametrize("old_style", [False, True])
def test_torchvision_imagenet_densenet_layout_loads_every_backbone_tensor(tmp_path, old_style):
    from monai.networks.nets import DenseNet121

    from radfair.models.weights import monai_key

    state = _torchvision_densenet_layout(DenseNet121(spatial_dims=2, in_channels=3, out_channels=1000).state_dict(), old_style)
    assert "features.denseblock1.denselayer1.layers.norm1.weight" not in state  # really torchvision's names
    torch.save(state, tmp_path / "densenet121-imagenet.pth")
    model = build_classifier("densenet121", 14, in_channels=1)
    counts = load_weights(model, tmp_path / "densenet121-imagenet.pth")
    backbone = [k for k in model.state_dict() if k.startswith("backbone.")]
    assert counts["matched"] == len(backbone) and counts["backbone_unset"] == 0
    loaded = model.state_dict()
    for key, value in state.items():
        if key.startswith("classifier"):
            continue
        want = value.sum(dim=1, keepdim=True) if key == "features.conv0.weight" else value
        assert torch.equal(loaded[f"backbone.{monai_key(key)}"], want), key


def test_torchvision_imagenet_resnet50_layout_loads_every_backbone_tensor(tmp_path):
    from monai.networks.nets import resnet50

    from radfair.models.mri import SliceClassifier

    # torchvision's ResNet-50 names are MONAI's (conv1, bn1, layerN.M.convK, downsample.0/1, fc); ImageNet geometry
    reference = resnet50(spatial_dims=2, n_input_channels=3, num_classes=1000, conv1_t_stride=2, bias_downsample=False)
    state = {k: torch.randn_like(v.float()).to(v.dtype) for k, v in reference.state_dict().items()}
    torch.save(state, tmp_path / "resnet50-imagenet.pth")
    model = SliceClassifier("resnet50", 2)
    counts = load_weights(model, tmp_path / "resnet50-imagenet.pth")
    assert counts["backbone_unset"] == 0
    assert torch.equal(model.state_dict()["backbone.layer4.2.bn3.running_var"], state["layer4.2.bn3.running_var"])
    assert torch.equal(model.state_dict()["backbone.conv1.weight"], state["conv1.weight"].sum(dim=1, keepdim=True))


def test_a_file_covering_part_of_the_backbone_warns_with_the_count(tmp_path):
    from radfair.errors import RadfairWarning

    model = build_classifier("densenet121", 14)
    partial = {k.removeprefix("backbone."): v for k, v in model.state_dict().items() if "denseblock4" not in k}
    torch.save(partial, tmp_path / "partial.pt")
    with pytest.warns(RadfairWarning, match=r"partial.pt: \d+ of \d+ DenseNetClassifier backbone tensor"):
        load_weights(build_classifier("densenet121", 14), tmp_path / "partial.pt")


def test_weights_module_doctests():
    import doctest

    from radfair.models import weights

    failures, tried = doctest.testmod(weights)
    assert tried >= 3 and failures == 0
