import numpy as np
import pytest
import torch
from skimage.data import shepp_logan_phantom
from skimage.metrics import structural_similarity
from skimage.transform import iradon, radon, resize

from radfair.degradation import LowDoseXray, ParallelBeam, Undersample, fbp, fft2c, ifft2c, psnr, ssim
from radfair.degradation.mri import golden_angle_mask, paper_mask
from radfair.degradation.xray import paper_angle_weights


@pytest.fixture(scope="module")
def phantom256():
    return resize(shepp_logan_phantom(), (256, 256), anti_aliasing=True)


def _t(a):
    return torch.tensor(a)[None, None]


@pytest.mark.parametrize("size, filt", [(64, "ramp"), (64, "hann"), (65, "shepp-logan"), (48, "hamming"), (48, "cosine")])
def test_fbp_equals_skimage_iradon(size, filt):
    rng = np.random.default_rng(0)
    angles = np.sort(rng.uniform(0, 180, 40))
    proj = ParallelBeam(size, angles)
    sino = rng.random((proj.n_det, len(angles)))
    ours = fbp(_t(sino), proj, filt)[0, 0].numpy()
    ref = iradon(sino, angles, filter_name=filt, circle=False, output_size=size)
    assert np.abs(ours - ref).max() < 1e-6 * np.abs(ref).max()  # float32 interpolation weights


def test_radon_close_to_skimage(phantom256):
    theta = np.linspace(0, 180, 256, endpoint=False)
    ours = ParallelBeam(256, 256)(_t(phantom256))[0, 0].numpy()
    ref = radon(phantom256, theta, circle=False)
    assert ours.shape == ref.shape
    assert np.sqrt(np.mean((ours - ref) ** 2)) / ref.max() < 0.01


def test_ramp_round_trip_differs_from_skimage_only_by_the_projector_footprint_and_is_as_accurate(phantom256):
    """Why the 1.3e-2 RMSE between our radon+FBP and scikit-image's is harmless (issue 12 item 8).

    The FBP is scikit-image's to float precision (``test_fbp_equals_skimage_iradon``); the whole difference is the
    forward projector's footprint (pixel-driven linear interpolation vs scikit-image's rotate-and-sum), i.e. two
    discretisations of the same line integrals. Measured on the 256-px Shepp-Logan phantom: ours vs scikit-image
    RMSE 0.0128, while each round trip's own error against the true phantom is 0.031 (ours) and 0.029
    (scikit-image): the footprint moves the reconstruction by less than half of what either discretisation misses,
    and ours is within 15 % of scikit-image's accuracy. The simulated dose noise (SD 0.003-0.016) is reconstructed
    by the same FBP in both, so the degradation levels are unaffected.
    """
    theta = np.linspace(0, 180, 256, endpoint=False)
    ref = iradon(radon(phantom256, theta, circle=False), theta, filter_name="ramp", circle=False, output_size=256)
    proj = ParallelBeam(256, 256)
    ours = fbp(proj(_t(phantom256).float()), proj, "ramp")[0, 0].numpy()

    def rmse(a, b):
        return float(np.sqrt(np.mean((a - b) ** 2)))

    assert rmse(ours, ref) < 0.5 * rmse(ref, phantom256)
    assert rmse(ours, phantom256) < 1.15 * rmse(ref, phantom256)


def _skimage_paper_recipe(image, photons=None):
    theta = np.linspace(0.0, 180.0, 256, endpoint=False)
    sino = radon(image, theta=theta, circle=False) * paper_angle_weights(256)[None, :]
    rec = iradon(sino, theta=theta, filter_name="hann", circle=False)
    rec = (rec - rec.min()) / (rec.max() - rec.min())
    return np.floor(rec * 255) / 255


def test_paper_mode_matches_skimage_recipe_and_costs_18_7_db(phantom256):
    ours = LowDoseXray(photons=None, mode="paper")(_t(phantom256))
    ref = torch.tensor(_skimage_paper_recipe(phantom256))[None, None]
    clean = _t(phantom256)
    assert float(psnr(ours, ref, 1.0)) >= 40
    assert float(psnr(ours, clean, 1.0)) == pytest.approx(18.7, abs=0.3)
    assert float(psnr(ref, clean, 1.0)) == pytest.approx(18.7, abs=0.3)


def test_physical_noise_scales_as_inverse_sqrt_photons_and_vanishes(phantom256):
    x = _t(phantom256).float()
    clean = LowDoseXray(photons=None)(x)
    sd = {}
    for n0 in (1e5, 1e4, 3e3):
        out = LowDoseXray(photons=n0)(x, generator=torch.Generator().manual_seed(0))
        sd[n0] = float((out - clean)[..., 64:192, 64:192].std())
    assert sd[1e4] / sd[1e5] == pytest.approx(np.sqrt(10), rel=0.15)
    assert sd[3e3] / sd[1e4] == pytest.approx(np.sqrt(10 / 3), rel=0.15)
    huge = LowDoseXray(photons=1e13)(x, generator=torch.Generator().manual_seed(0))
    assert float((huge - clean).abs().max()) < 1e-3
    assert float(psnr(clean, x, 1.0)) > 25


def test_fft_helpers_are_orthonormal_inverses():
    x = torch.randn(2, 1, 16, 16, dtype=torch.float64)
    k = fft2c(x.to(torch.complex128))
    assert torch.allclose(ifft2c(k).real, x, atol=1e-12)
    assert float((k.abs() ** 2).sum()) == pytest.approx(float((x**2).sum()))


@pytest.mark.parametrize("acceleration, spokes_fraction", [(4, 0.25), (8, 0.125), (16, 0.0625)])
def test_golden_angle_fraction_near_target(acceleration, spokes_fraction):
    assert golden_angle_mask((256, 256), acceleration).mean() == pytest.approx(spokes_fraction, rel=0.05)


def test_paper_mask_reproduces_reference_fraction():
    assert paper_mask((256, 256), 60).mean() == pytest.approx(0.1073, abs=1e-3)  # "R=8" is really R~9.3


def test_undersample_volumes_slicewise_and_full_mask_is_identity():
    vol = torch.rand(1, 1, 4, 32, 32, dtype=torch.float64)
    op = Undersample((32, 32), acceleration=4)
    out = op(vol)
    assert out.shape == vol.shape
    assert torch.allclose(out[:, :, 2], op(vol[:, :, 2]))
    op.mask = torch.ones(32, 32, dtype=torch.bool)
    assert torch.allclose(op(vol), vol, atol=1e-12)
    assert 0.2 < Undersample((32, 32), acceleration=4).sampled_fraction < 0.3


def test_psnr_and_ssim_match_skimage():
    rng = np.random.default_rng(0)
    a = rng.random((2, 1, 40, 40))
    b = np.clip(a + rng.normal(0, 0.1, a.shape), 0, 1)
    ours = ssim(torch.tensor(a), torch.tensor(b), 1.0)
    for i in range(2):
        ref = structural_similarity(a[i, 0], b[i, 0], data_range=1.0, gaussian_weights=True, sigma=1.5, use_sample_covariance=False)
        assert float(ours[i]) == pytest.approx(ref, abs=1e-9)
    mse = np.mean((a - b) ** 2, axis=(1, 2, 3))
    assert psnr(torch.tensor(a), torch.tensor(b), 1.0).numpy() == pytest.approx(10 * np.log10(1 / mse))


def test_functional_form_matches_module():
    from radfair.degradation import simulate_low_dose

    x = torch.rand(2, 1, 32, 32)
    a = simulate_low_dose(x, 1e4, generator=torch.Generator().manual_seed(0))
    b = LowDoseXray(1e4, size=32, n_angles=32)(x, generator=torch.Generator().manual_seed(0))
    assert torch.equal(a, b)
