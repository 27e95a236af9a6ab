"""One contract over every registered degradation operator (deepinv-style)."""

import pytest
import torch

from radfair.degradation import OPERATORS

SIZE = 32


@pytest.fixture(params=sorted(OPERATORS))
def operator(request):
    return request.param, OPERATORS[request.param](SIZE)


def _images(dtype=torch.float32, batch=3):
    g = torch.Generator().manual_seed(0)
    return torch.rand(batch, 1, SIZE, SIZE, generator=g, dtype=dtype)


def test_shape_and_dtype_preserved(operator):
    _, op = operator
    for dtype in (torch.float32, torch.float64):
        x = _images(dtype)
        y = op(x, generator=torch.Generator().manual_seed(1))
        assert y.shape == x.shape and y.dtype == dtype and y.device == x.device


def test_deterministic_under_a_seed_and_seed_matters_when_random(operator):
    name, op = operator
    x = _images()
    a = op(x, generator=torch.Generator().manual_seed(5))
    b = op(x, generator=torch.Generator().manual_seed(5))
    assert torch.equal(a, b)
    c = op(x, generator=torch.Generator().manual_seed(6))
    if name.startswith("xray") or name.endswith("random"):
        assert not torch.equal(a, c)


def test_no_nan_or_inf_at_extremes(operator):
    name, op = operator
    for x in (torch.zeros(2, 1, SIZE, SIZE), torch.ones(2, 1, SIZE, SIZE), _images()):
        y = op(x, generator=torch.Generator().manual_seed(0))
        assert torch.isfinite(y).all(), name
    if name.startswith("xray"):
        op.photons = 1.0  # photon starvation
        assert torch.isfinite(op(_images(), generator=torch.Generator().manual_seed(0))).all()


def _dot(a, b):
    return torch.sum(a.conj() * b).real if a.is_complex() else torch.sum(a * b)


def test_linear_parts_pass_the_dot_product_test(operator):
    name, op = operator
    g = torch.Generator().manual_seed(3)
    x = torch.rand(2, 1, SIZE, SIZE, generator=g, dtype=torch.float64)
    if name.startswith("mri"):
        y = torch.randn(2, 1, SIZE, SIZE, generator=g, dtype=torch.complex128)
        lhs, rhs = _dot(op.A(x), y), _dot(x.to(torch.complex128), op.A_adjoint(y))
    else:
        proj = op.projector
        y = torch.rand(2, 1, proj.n_det, len(proj.angles), generator=g, dtype=torch.float64)
        lhs, rhs = _dot(proj(x), y), _dot(x, proj.adjoint(y))
    assert float(lhs) == pytest.approx(float(rhs), rel=1e-5)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_matches_cpu(operator):
    """Each device draws the noise from its own seeded generator (CPU and CUDA streams differ by design), so
    on CUDA the output is reproducible under its seed and the degradation error has the CPU one's distribution."""
    _, op = operator
    x = _images()
    cpu = op(x, generator=torch.Generator().manual_seed(0))
    gpu_op = op.to("cuda")
    gpu = gpu_op(x.cuda(), generator=torch.Generator("cuda").manual_seed(0)).cpu()
    again = gpu_op(x.cuda(), generator=torch.Generator("cuda").manual_seed(0)).cpu()
    assert torch.allclose(gpu, again, atol=1e-5)  # same draws; CUDA's sparse projector sums in any order
    err_cpu, err_gpu = (cpu - x).float(), (gpu - x).float()
    assert abs(float(err_cpu.mean() - err_gpu.mean())) < 0.01
    assert float(err_gpu.std()) == pytest.approx(float(err_cpu.std()), rel=0.1, abs=1e-3)
