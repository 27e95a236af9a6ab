"""Parallel-beam Radon transform and filtered back-projection in PyTorch, batched, CPU or CUDA.

Geometry follows scikit-image (``radon(..., circle=False)`` / ``iradon``) so results compare:

* an N x N image is padded to P = N + ceil(sqrt(2) N - N) detector bins, rotation axis at pixel
  (N // 2, N // 2) and detector bin P // 2;
* angles in degrees, sinograms shaped (B, 1, P, n_angles) like scikit-image's (P, n_angles);
* pixel (row i, col j) projects to ``t = (j - N//2) cos(theta) - (i - N//2) sin(theta)``.

The projector is a sparse matrix A (P * n_angles x N**2) with linear-interpolation weights onto
the detector ("pixel-driven"); its transpose is exactly scikit-image's linear-interpolation
back-projection, so the FBP matches ``iradon`` to float precision and the adjoint is exact.
Matrices are cached per (N, angles, device) in memory and optionally on disk (``RADFAIR_CACHE``).
"""

from __future__ import annotations

import functools
import hashlib
import math
import os
import warnings
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch

FILTERS = ("ramp", "shepp-logan", "cosine", "hamming", "hann", None)


def detector_count(size: int) -> int:
    return size + int(math.ceil(math.sqrt(2) * size - size))


def default_angles(n: int) -> np.ndarray:
    return np.linspace(0.0, 180.0, n, endpoint=False)


def _build_coo(size: int, angles_deg: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    n_det = detector_count(size)
    n_ang = len(angles_deg)
    rows_px, cols_px = np.mgrid[:size, :size]
    xpr = (rows_px - size // 2).ravel().astype(np.float64)
    ypr = (cols_px - size // 2).ravel().astype(np.float64)
    pixel = np.arange(size * size)
    out_r, out_c, out_v = [], [], []
    for a, theta in enumerate(np.deg2rad(angles_deg)):
        u = ypr * np.cos(theta) - xpr * np.sin(theta) + n_det // 2
        inside = (u >= 0) & (u <= n_det - 1)
        u, px = u[inside], pixel[inside]
        i0 = np.floor(u).astype(np.int64)
        frac = u - i0
        for idx, weight in ((i0, 1 - frac), (i0 + 1, frac)):
            keep = (idx < n_det) & (weight > 0)
            out_r.append(idx[keep] * n_ang + a)
            out_c.append(px[keep])
            out_v.append(weight[keep])
    return np.concatenate(out_r), np.concatenate(out_c), np.concatenate(out_v).astype(np.float32), n_det


def _csr(matrix: sp.csr_matrix) -> torch.Tensor:
    """scipy CSR (counting-sort built, O(nnz)) -> torch CSR without a torch-side coalesce."""
    matrix.sort_indices()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        return torch.sparse_csr_tensor(
            torch.from_numpy(matrix.indptr.astype(np.int64)),
            torch.from_numpy(matrix.indices.astype(np.int64)),
            torch.from_numpy(matrix.data.astype(np.float32)),
            size=matrix.shape,
            check_invariants=False,
        )


@functools.lru_cache(maxsize=8)
def _matrices(size: int, angles_key: tuple[float, ...], device: str) -> tuple[torch.Tensor, torch.Tensor]:
    angles = np.asarray(angles_key)
    cache_dir = os.environ.get("RADFAIR_CACHE")
    cache_file = None
    if cache_dir:
        digest = hashlib.sha256(np.asarray(angles_key).tobytes()).hexdigest()[:16]
        cache_file = Path(cache_dir) / f"radon_{size}_{len(angles)}_{digest}.pt"
    if cache_file is not None and cache_file.is_file():
        rows, cols, vals, n_det = torch.load(cache_file, weights_only=False)
    else:
        rows, cols, vals, n_det = _build_coo(size, angles)
        if cache_file is not None:
            cache_file.parent.mkdir(parents=True, exist_ok=True)
            tmp = cache_file.with_suffix(f".tmp{os.getpid()}")
            torch.save((rows, cols, vals, n_det), tmp)
            os.replace(tmp, cache_file)
    matrix = sp.csr_matrix((vals, (rows, cols)), shape=(n_det * len(angles), size * size))
    return _csr(matrix).to(device), _csr(matrix.T.tocsr()).to(device)


class ParallelBeam(torch.nn.Module):
    """Linear operator A (Radon) and A^T (back-projection) for N x N images and given angles."""

    def __init__(self, size: int, angles: np.ndarray | int = 256):
        super().__init__()
        self.size = size
        self.angles = default_angles(angles) if np.isscalar(angles) else np.asarray(angles, dtype=float)
        self.n_det = detector_count(size)

    def _mats(self, device: torch.device):
        return _matrices(self.size, tuple(float(a) for a in self.angles), str(device))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 1, N, N) -> sinogram (B, 1, P, n_angles)."""
        a, _ = self._mats(images.device)
        b = images.shape[0]
        flat = images.reshape(b, -1).T.contiguous().float()
        sino = (a @ flat).T.reshape(b, 1, self.n_det, len(self.angles))
        return sino.to(images.dtype)

    def adjoint(self, sinogram: torch.Tensor) -> torch.Tensor:
        """(B, 1, P, n_angles) -> (B, 1, N, N): unfiltered linear-interpolation back-projection."""
        _, at = self._mats(sinogram.device)
        b = sinogram.shape[0]
        flat = sinogram.reshape(b, -1).T.contiguous().float()
        return (at @ flat).T.reshape(b, 1, self.size, self.size).to(sinogram.dtype)


def fourier_filter(size: int, name: str | None, device=None, dtype=torch.float64) -> torch.Tensor:
    """scikit-image's FBP filter (ramp from the spatial kernel, Kak & Slaney eq. 61, then windowed)."""
    n = np.concatenate((np.arange(1, size / 2 + 1, 2, dtype=int), np.arange(size / 2 - 1, 0, -2, dtype=int)))
    f = np.zeros(size)
    f[0] = 0.25
    f[1::2] = -1 / (np.pi * n) ** 2
    filt = 2 * np.real(np.fft.fft(f))
    if name == "shepp-logan":
        omega = np.pi * np.fft.fftfreq(size)[1:]
        filt[1:] *= np.sin(omega) / omega
    elif name == "cosine":
        filt *= np.fft.fftshift(np.sin(np.linspace(0, np.pi, size, endpoint=False)))
    elif name == "hamming":
        filt *= np.fft.fftshift(np.hamming(size))
    elif name == "hann":
        filt *= np.fft.fftshift(np.hanning(size))
    elif name is None:
        filt[:] = 1
    elif name != "ramp":
        raise ValueError(f"unknown filter {name!r}; expected one of {FILTERS}")
    return torch.as_tensor(filt, device=device, dtype=dtype)


def fbp(sinogram: torch.Tensor, projector: ParallelBeam, filter_name: str | None = "ramp") -> torch.Tensor:
    """Filtered back-projection, identical to ``skimage.transform.iradon(..., circle=False, output_size=N)``."""
    n_det = sinogram.shape[-2]
    padded = max(64, int(2 ** math.ceil(math.log2(2 * n_det))))
    spectrum = torch.fft.fft(sinogram.double(), n=padded, dim=-2)
    filt = fourier_filter(padded, filter_name, device=sinogram.device)[:, None]
    filtered = torch.fft.ifft(spectrum * filt, dim=-2).real[..., :n_det, :]
    return projector.adjoint(filtered.to(sinogram.dtype)) * (math.pi / (2 * len(projector.angles)))
