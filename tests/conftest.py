"""Shared fixtures: one small synthetic release tree per test session (fastMRI-style mock data)."""

from __future__ import annotations

import pytest

from radfair.data.synthetic import generate

SYNTH_KW = dict(patients=600, seed=7, image_size=32, mri_patients=6, mri_shape=(32, 32, 8))


@pytest.fixture(scope="session")
def synth_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth") / "releases"
    truth = generate(root, **SYNTH_KW)
    return root, truth
