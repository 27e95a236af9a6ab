"""radfair.degradation: acquisition simulators (low-dose X-ray, undersampled MRI) and image quality."""

from .mri import Undersample, fft2c, golden_angle_mask, ifft2c, paper_mask
from .quality import psnr, ssim
from .radon import ParallelBeam, fbp, fourier_filter
from .registry import OPERATORS
from .xray import LowDoseXray, simulate_low_dose

__all__ = ["OPERATORS", "LowDoseXray", "ParallelBeam", "Undersample", "fbp", "fft2c", "fourier_filter",
           "golden_angle_mask", "ifft2c", "paper_mask", "psnr", "simulate_low_dose", "ssim"]
