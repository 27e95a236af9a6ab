"""Reconstruction networks of the reconstruction paper: U-Net, PatchGAN (Pix2Pix) and the IR-SDE."""

from .irsde import IRSDE, cosine_thetas
from .patchgan import PatchGAN
from .unet import UNet, timestep_embedding

__all__ = ["IRSDE", "PatchGAN", "UNet", "cosine_thetas", "timestep_embedding"]
