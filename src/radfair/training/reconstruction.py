"""Step objects for the three reconstructors of the reconstruction paper (§3.2), for the shared loop.

Every step has ``reconstruct(degraded, generator)`` (evaluation output in [0, 1]) and an ``extra_loss`` hook:
a callable ``(batch, output) -> scalar`` added to the reconstructor's training loss. Mitigation (fairness
terms computed by the frozen downstream model) plugs in there; ``output`` is always differentiable in the
network's parameters: the U-Net's / generator's image, and for IR-SDE the x_0 implied by the predicted noise
at the sampled step (so a fairness term reaches the network through the sampling step).

Batches hold ``degraded`` and ``clean`` (B, 1, H, W) tensors in [0, 1]. ``eval_output(batch)`` returns the
validation values and the output they were computed on (for validation terms on that output).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import torch
import torch.nn.functional as F

from ..config import StrictModel
from ..models.reconstruction import IRSDE, PatchGAN, UNet
from .steps import OptimConfig, make_optimizer

ExtraLoss = Callable[[dict, torch.Tensor], torch.Tensor]


class ReconstructorConfig(StrictModel):
    kind: Literal["unet", "pix2pix", "irsde"]
    output: Literal["residual", "sigmoid"] = "residual"  # U-Net / Pix2Pix generator output (see models.reconstruction.unet)
    widths: list[int] = [64, 128, 256, 512]
    bottleneck: int = 1024
    optim: OptimConfig = OptimConfig(lr=1e-4, weight_decay=0.0)
    # Pix2Pix
    l1_weight: float = 100.0
    disc_widths: list[int] = [64, 128, 256, 512]
    disc_optim: OptimConfig = OptimConfig(lr=2e-4, weight_decay=0.0, betas=(0.5, 0.999))
    # IR-SDE
    sde_steps: int = 100
    max_sigma: float = 10 / 255
    sde_eps: float = 0.005
    time_dim: int = 64


class _Reconstruction:
    extra_loss: ExtraLoss | None = None

    def _extra(self, batch: dict, output: torch.Tensor) -> torch.Tensor:
        return self.extra_loss(batch, output) if self.extra_loss is not None else output.new_zeros(())


class UNetStep(_Reconstruction):
    """U-Net trained with MSE."""

    def __init__(self, config: ReconstructorConfig):
        self.net = UNet(1, 1, config.widths, config.bottleneck, output=config.output)
        self.modules = {"model": self.net}
        self.optimizers = {"model": make_optimizer(self.net.parameters(), config.optim)}

    def train_step(self, batch: dict) -> dict[str, torch.Tensor]:
        opt = self.optimizers["model"]
        opt.zero_grad(set_to_none=True)
        out = self.net(batch["degraded"])
        recon = F.mse_loss(out, batch["clean"])
        extra = self._extra(batch, out)
        (recon + extra).backward()
        opt.step()
        return {"loss": recon.detach(), "extra": extra.detach()}

    def eval_output(self, batch: dict) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        out = self.net(batch["degraded"])
        return {"loss": F.mse_loss(out, batch["clean"])}, out

    def eval_step(self, batch: dict) -> dict[str, torch.Tensor]:
        return self.eval_output(batch)[0]

    def reconstruct(self, degraded: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        return self.net(degraded)


class Pix2PixStep(_Reconstruction):
    """U-Net generator + 70x70 PatchGAN on (input, output) pairs; vanilla GAN loss + λ_L1 · L1; two optimisers."""

    def __init__(self, config: ReconstructorConfig):
        self.net = UNet(1, 1, config.widths, config.bottleneck, output=config.output)
        self.disc = PatchGAN(2, config.disc_widths)
        self.l1_weight = config.l1_weight
        gen_optim = config.optim.model_copy(update={"betas": config.disc_optim.betas, "lr": config.disc_optim.lr})
        self.modules = {"model": self.net, "discriminator": self.disc}
        self.optimizers = {"model": make_optimizer(self.net.parameters(), gen_optim),
                           "discriminator": make_optimizer(self.disc.parameters(), config.disc_optim)}

    @staticmethod
    def _gan(logits: torch.Tensor, real: bool) -> torch.Tensor:
        return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, 1.0 if real else 0.0))

    def train_step(self, batch: dict) -> dict[str, torch.Tensor]:
        lq, gt = batch["degraded"], batch["clean"]
        out = self.net(lq)
        d_opt, g_opt = self.optimizers["discriminator"], self.optimizers["model"]
        d_opt.zero_grad(set_to_none=True)
        d_loss = 0.5 * (self._gan(self.disc(lq, gt), True) + self._gan(self.disc(lq, out.detach()), False))
        d_loss.backward()
        d_opt.step()
        g_opt.zero_grad(set_to_none=True)
        adv = self._gan(self.disc(lq, out), True)
        l1 = F.l1_loss(out, gt)
        extra = self._extra(batch, out)
        (adv + self.l1_weight * l1 + extra).backward()
        g_opt.step()
        return {"loss": l1.detach(), "g_adv": adv.detach(), "d_loss": d_loss.detach(), "extra": extra.detach()}

    def eval_output(self, batch: dict) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        out = self.net(batch["degraded"])
        return {"loss": F.l1_loss(out, batch["clean"])}, out

    def eval_step(self, batch: dict) -> dict[str, torch.Tensor]:
        return self.eval_output(batch)[0]

    def reconstruct(self, degraded: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        return self.net(degraded)


class IRSDEStep(_Reconstruction):
    """IR-SDE: a time-conditioned U-Net predicts the noise; maximum-likelihood L1 loss (see :mod:`..irsde`).

    The noise prediction is ``IRSDE.prior_noise(x_t, μ, t) + net(x_t, μ, t)`` with the network's last layer
    zero-initialised: the analytic noise of x_0 = μ plus a learned correction, so an untrained or briefly trained
    model samples ≈ the degraded input instead of diverging (the residual start of the U-Net, for the SDE).

    Training draws (t, noise) from the step's own generator, whose state is checkpointed with the run.
    Validation uses a fixed generator seed, so validation losses are comparable across epochs.
    """

    def __init__(self, config: ReconstructorConfig, seed: int = 0):
        self.net = UNet(2, 1, config.widths, config.bottleneck, time_dim=config.time_dim, output="linear")
        torch.nn.init.zeros_(self.net.head.weight)
        torch.nn.init.zeros_(self.net.head.bias)
        self.sde = IRSDE(config.sde_steps, config.max_sigma, config.sde_eps)
        self.modules = {"model": self.net}
        self.optimizers = {"model": make_optimizer(self.net.parameters(), config.optim)}
        self.generator = torch.Generator().manual_seed(seed)

    def to(self, device) -> IRSDEStep:
        self.sde = self.sde.to(device)
        return self

    def extra_state(self) -> dict:
        return {"generator": self.generator.get_state()}

    def load_extra_state(self, state: dict) -> None:
        self.generator.set_state(state["generator"])

    def predict_noise(self, inputs: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Noise of ``inputs = cat(x_t, μ)``: the analytic prior noise plus the network's correction."""
        return self.sde.prior_noise(inputs[:, :1], inputs[:, 1:], t) + self.net(inputs, t)

    def _loss(self, batch: dict, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        lq, gt = batch["degraded"], batch["clean"]
        b = gt.shape[0]
        t = torch.randint(1, self.sde.steps + 1, (b,), generator=generator).to(gt.device)
        noise = torch.randn(gt.shape, generator=generator).to(gt.device)
        xt = self.sde.noisy_state(gt, lq, t, noise)
        predicted = self.predict_noise(torch.cat([xt, lq], 1), t)
        loss = F.l1_loss(self.sde.reverse_mean_step(xt, lq, predicted, t), self.sde.optimal_previous(xt, gt, lq, t))
        return loss, self.sde.denoised(xt, lq, predicted, t).clamp(0, 1)

    def train_step(self, batch: dict) -> dict[str, torch.Tensor]:
        opt = self.optimizers["model"]
        opt.zero_grad(set_to_none=True)
        loss, denoised = self._loss(batch, self.generator)
        extra = self._extra(batch, denoised)
        (loss + extra).backward()
        opt.step()
        return {"loss": loss.detach(), "extra": extra.detach()}

    def eval_output(self, batch: dict) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        loss, denoised = self._loss(batch, torch.Generator().manual_seed(12345))
        return {"loss": loss}, denoised

    def eval_step(self, batch: dict) -> dict[str, torch.Tensor]:
        return self.eval_output(batch)[0]

    def reconstruct(self, degraded: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        return self.sde.sample(self.predict_noise, degraded, generator).clamp(0, 1)


RECONSTRUCTORS = {"unet": UNetStep, "pix2pix": Pix2PixStep, "irsde": IRSDEStep}


def build_reconstructor(config: ReconstructorConfig, seed: int = 0):
    """A fresh reconstructor step; weights drawn from ``torch.manual_seed(seed)`` (caller forks the RNG)."""
    torch.manual_seed(seed)
    if config.kind == "irsde":
        return IRSDEStep(config, seed)
    return RECONSTRUCTORS[config.kind](config)
