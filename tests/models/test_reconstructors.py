"""Contract over every reconstructor (U-Net, Pix2Pix, IR-SDE) and the IR-SDE schedule against hand computation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from radfair.models.reconstruction import IRSDE, UNet
from radfair.training.reconstruction import RECONSTRUCTORS, ReconstructorConfig, build_reconstructor

NARROW = dict(widths=[8, 16], bottleneck=32, disc_widths=[8, 16, 32], sde_steps=10, time_dim=16,
              optim={"lr": 1e-3, "weight_decay": 0.0})


def batch(seed=0, b=4, size=32):
    g = torch.Generator().manual_seed(seed)
    clean = torch.rand(b, 1, size, size, generator=g)
    degraded = (clean + 0.2 * torch.randn(b, 1, size, size, generator=g)).clamp(0, 1)
    return {"clean": clean, "degraded": degraded, "size": b}


@pytest.fixture(params=sorted(RECONSTRUCTORS))
def kind(request):
    return request.param


def test_output_shape_and_range(kind):
    step = build_reconstructor(ReconstructorConfig(kind=kind, **NARROW), seed=0)
    b = batch()
    with torch.no_grad():
        out = step.reconstruct(b["degraded"], torch.Generator().manual_seed(0))
    assert out.shape == b["clean"].shape and out.dtype == torch.float32
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0 and torch.isfinite(out).all()


def test_same_seed_same_weights_and_outputs(kind):
    a = build_reconstructor(ReconstructorConfig(kind=kind, **NARROW), seed=3)
    b = build_reconstructor(ReconstructorConfig(kind=kind, **NARROW), seed=3)
    x = batch()["degraded"]
    with torch.no_grad():
        out_a = a.reconstruct(x, torch.Generator().manual_seed(1))
        out_b = b.reconstruct(x, torch.Generator().manual_seed(1))
    assert torch.equal(out_a, out_b)
    c = build_reconstructor(ReconstructorConfig(kind=kind, **NARROW), seed=4)
    assert not torch.equal(next(c.net.parameters()), next(a.net.parameters()))


def test_one_optimisation_step_lowers_the_loss_on_a_fixed_batch(kind):
    step = build_reconstructor(ReconstructorConfig(kind=kind, **NARROW), seed=0)
    b = batch()

    def loss() -> float:  # the same batch and, for IR-SDE, the same (t, noise) draws as the training step
        with torch.no_grad():
            if hasattr(step, "generator"):
                return float(step._loss(b, torch.Generator().set_state(state))[0])
            return float(step.eval_step(b)["loss"])

    state = step.generator.get_state() if hasattr(step, "generator") else None
    before = loss()
    step.train_step(b)
    assert loss() < before


def test_the_extra_loss_hook_reaches_the_network_with_a_gradient(kind):
    step = build_reconstructor(ReconstructorConfig(kind=kind, **NARROW), seed=0)
    seen = {}

    def hook(batch, output):
        seen["requires_grad"] = output.requires_grad
        return output.mean() * 0 + (output ** 2).mean()

    step.extra_loss = hook
    b = batch()
    weights = [p.detach().clone() for p in step.net.parameters()]
    values = step.train_step(b)
    assert seen["requires_grad"] and float(values["extra"]) > 0
    assert any(not torch.equal(w, p) for w, p in zip(weights, step.net.parameters(), strict=True))


def test_irsde_schedule_matches_a_hand_computation():
    sde = IRSDE(steps=100, max_sigma=10 / 255, eps=0.005)
    # cosine schedule by hand (numpy), as in the authors' code
    n = 102
    x = np.linspace(0, n, n + 1)
    ac = np.cos(((x / n) + 0.008) / 1.008 * math.pi * 0.5) ** 2
    thetas = 1 - (ac / ac[0])[1:-1]
    cumsum = np.cumsum(thetas) - thetas[0]
    assert len(thetas) == 101
    assert sde.dt == pytest.approx(-math.log(0.005) / cumsum[-1])
    assert sde.dt == pytest.approx(0.10409, abs=5e-6)
    assert math.exp(-cumsum[-1] * sde.dt) == pytest.approx(0.005)
    # the closed-form optimal previous state at t = 40
    t = 40
    a, b, c = (math.exp(-thetas[t] * sde.dt), math.exp(-cumsum[t] * sde.dt), math.exp(-cumsum[t - 1] * sde.dt))
    xt, x0, mu = 0.7, 0.2, 0.5
    expected = a * (1 - c**2) / (1 - b**2) * (xt - mu) + c * (1 - a**2) / (1 - b**2) * (x0 - mu) + mu
    got = sde.optimal_previous(torch.full((1, 1, 1, 1), xt), torch.full((1, 1, 1, 1), x0), torch.full((1, 1, 1, 1), mu),
                               torch.tensor([t]))
    assert float(got) == pytest.approx(expected, rel=1e-5)
    # sigma_bar(T)^2 -> lambda^2 (1 - eps^2): the stationary variance
    assert float(sde.sigma_bars[-1]) ** 2 == pytest.approx((10 / 255) ** 2 * (1 - 0.005**2), rel=1e-5)


def test_irsde_mean_step_with_the_true_noise_moves_toward_the_clean_image():
    sde = IRSDE(steps=100)
    g = torch.Generator().manual_seed(0)
    x0, mu = torch.rand(2, 1, 8, 8, generator=g), torch.rand(2, 1, 8, 8, generator=g)
    t = torch.tensor([60, 60])
    noise = torch.randn(x0.shape, generator=g)
    xt = sde.noisy_state(x0, mu, t, noise)
    assert torch.allclose(sde.denoised(xt, mu, noise, t), x0, atol=1e-5)


def test_paper_unet_widths_and_no_batchnorm():
    net = UNet(1, 1)
    widths = [block.conv2.out_channels for block in net.down] + [net.middle.conv2.out_channels]
    assert widths == [64, 128, 256, 512, 1024]
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules())


class PairBatches:
    """A fixed list of paired batches (what Study 2's paired image batches provide)."""

    def __init__(self, n_batches=4):
        self.batches = [batch(seed=i) for i in range(n_batches)]
        self.n_samples = sum(b["size"] for b in self.batches)

    def __len__(self):
        return len(self.batches)

    def epoch(self, epoch, start=0):
        order = torch.randperm(len(self.batches), generator=torch.Generator().manual_seed(epoch))
        for i in order[start:]:
            yield self.batches[int(i)]


def test_irsde_resumes_exactly_in_the_shared_loop_including_its_own_generator(tmp_path):
    from radfair.training import LoopConfig, fit

    config = LoopConfig(epochs=3, patience=None, checkpoint_minutes=1e-9)
    cfg = ReconstructorConfig(kind="irsde", **NARROW)
    reference = build_reconstructor(cfg, seed=0)
    fit(reference, PairBatches(), PairBatches(2), config, tmp_path / "a", progress=False, log=lambda m: None)

    class Crash(RuntimeError):
        pass

    crashing = build_reconstructor(cfg, seed=0)
    original, calls = crashing.train_step, []

    def train_step(b):
        calls.append(1)
        if len(calls) == 6:
            raise Crash
        return original(b)

    crashing.train_step = train_step
    with pytest.raises(Crash):
        fit(crashing, PairBatches(), PairBatches(2), config, tmp_path / "b", progress=False, log=lambda m: None)
    resumed = build_reconstructor(cfg, seed=9)
    fit(resumed, PairBatches(), PairBatches(2), config, tmp_path / "b", progress=False, log=lambda m: None)
    for a, b in zip(reference.net.parameters(), resumed.net.parameters(), strict=True):
        assert torch.equal(a, b)


def test_untrained_unet_and_pix2pix_return_their_input_not_noise():
    b = batch()
    for kind in ("unet", "pix2pix"):
        step = build_reconstructor(ReconstructorConfig(kind=kind, **NARROW), seed=0)
        with torch.no_grad():
            assert torch.equal(step.reconstruct(b["degraded"]), b["degraded"])


@pytest.mark.parametrize("steps", [100, 20])
def test_irsde_sampler_with_the_true_noise_recovers_the_clean_image(steps):
    """Reverse Euler-Maruyama driven by the oracle noise (x_t - mu_bar(x0)) / sigma_bar(t) ends at x0."""
    sde = IRSDE(steps=steps)
    g = torch.Generator().manual_seed(0)
    x0 = torch.rand(2, 1, 16, 16, generator=g)
    mu = (x0 + 0.1 * torch.randn(x0.shape, generator=g)).clamp(0, 1)

    class Oracle(torch.nn.Module):
        def forward(self, inputs, t):
            return (inputs[:, :1] - sde.mu_bar(x0, mu, t)) / sde.sigma_bar(t)

    out = sde.sample(Oracle(), mu, torch.Generator().manual_seed(1))
    assert float(((out - x0) ** 2).mean()) < 1e-2 * float(((mu - x0) ** 2).mean())
