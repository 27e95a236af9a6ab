"""Benchmark: radfair's sparse-matrix Radon + FBP vs scikit-image radon + iradon, side by side.

256 x 256 images, 256 angles, batch 16, forward projection + FBP (ramp filter). Reports median
images/s over repeats for both, the speed-up, and the RMSE between the two reconstructions on the
same [0, 1] images. Then PSNR/SSIM per photon count (physical and paper modes) and per MRI
acceleration on synthetic radiographs and brain phantoms.

    python benchmarks/bench_degrade.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import numpy as np
import torch
from skimage.data import shepp_logan_phantom
from skimage.transform import iradon, radon, resize

from radfair.degradation import LowDoseXray, ParallelBeam, Undersample, fbp, psnr, ssim


def images(batch: int = 16) -> torch.Tensor:
    base = resize(shepp_logan_phantom(), (256, 256), anti_aliasing=True)
    rng = np.random.default_rng(0)
    stack = [np.clip(np.roll(base, rng.integers(-20, 20), axis=1) * rng.uniform(0.7, 1.0), 0, 1) for _ in range(batch)]
    return torch.tensor(np.stack(stack))[:, None].float()


def bench_projection(repeats: int) -> None:
    x = images()
    theta = np.linspace(0, 180, 256, endpoint=False)
    start = time.perf_counter()
    proj = ParallelBeam(256, 256)
    fbp(proj(x[:1]), proj)
    print(f"projector build (one-off, cached per size/angles): {time.perf_counter() - start:.2f}s")
    ours_t, ref_t = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        ours = fbp(proj(x), proj, "ramp")
        ours_t.append(time.perf_counter() - start)
        start = time.perf_counter()
        ref = np.stack([iradon(radon(img[0].numpy().astype(np.float64), theta, circle=False), theta, circle=False, output_size=256)
                        for img in x[:4]])
        ref_t.append((time.perf_counter() - start) * len(x) / 4)  # 4 images timed, scaled to the batch
    ours_ips, ref_ips = len(x) / statistics.median(ours_t), len(x) / statistics.median(ref_t)
    rmse = float(np.sqrt(np.mean((ours[:4, 0].numpy() - ref) ** 2)))
    hann = fbp(proj(x[:4]), proj, "hann")[:, 0].numpy()
    ref_hann = np.stack([iradon(radon(img[0].numpy().astype(np.float64), theta, circle=False), theta, filter_name="hann",
                                circle=False, output_size=256) for img in x[:4]])
    rmse_hann = float(np.sqrt(np.mean((hann - ref_hann) ** 2)))
    print(f"radfair radon+FBP, batch 16: {ours_ips:.1f} img/s (median of {repeats})")
    print(f"scikit-image radon+iradon:   {ref_ips:.2f} img/s (median of {repeats}, 4 images per repeat)")
    print(f"speed-up {ours_ips / ref_ips:.1f}x; RMSE between reconstructions {rmse:.2e} with the ramp filter, "
          f"{rmse_hann:.2e} with Hann (images in [0, 1])")


def bench_quality() -> None:
    from radfair.data.cohort import build_cohort
    from radfair.data.synthetic import generate

    with tempfile.TemporaryDirectory() as tmp:
        generate(tmp + "/syn", patients=60, seed=0, image_size=256, mri_patients=6, mri_shape=(128, 128, 16))
        cohort, _ = build_cohort("chexpert", tmp + "/syn")
        from PIL import Image

        x = torch.tensor(np.stack([np.asarray(Image.open(p).convert("L"), dtype=np.float32) / 255 for p in cohort["path"][:32]]))[:, None]
        for mode in ("physical", "paper"):
            for n0 in (1e5, 1e4, 3e3):
                out = LowDoseXray(photons=n0, mode=mode)(x, generator=torch.Generator().manual_seed(0))
                print(f"x-ray {mode:8s} N0={n0:>7.0f}: PSNR {psnr(out, x, 1.0).mean():.2f} dB, SSIM {ssim(out, x, 1.0).mean():.3f} (32 synthetic radiographs, 256^2)")
        import nibabel as nib

        mri, _ = build_cohort("ucsf-pdgm", tmp + "/syn")
        vols = [np.asarray(nib.load(p).get_fdata()) for p in mri["path"]]
        slices = torch.tensor(np.concatenate([np.moveaxis(v / v.max(), -1, 0) for v in vols]))[:, None]
        for acc in (4, 8, 16):
            for kind in ("golden_angle", "paper"):
                op = Undersample((128, 128), acceleration=acc, mask=kind)
                out = op(slices)
                print(f"mri {kind:12s} R={acc:2d}: sampled {op.sampled_fraction:.1%}, PSNR {psnr(out, slices, 1.0).mean():.2f} dB, "
                      f"SSIM {ssim(out, slices, 1.0).mean():.3f} ({len(slices)} phantom slices, 128^2)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(2)
    bench_projection(args.repeats)
    bench_quality()


if __name__ == "__main__":
    main()
