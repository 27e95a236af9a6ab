"""The built wheel's metadata: torch is required with a lower bound, never pinned (issue 19, item 6)."""

import subprocess
import sys
from email.parser import Parser
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]


def test_wheel_metadata_does_not_pin_torch(tmp_path):
    # The same PEP 517 hook `pip wheel` calls to write the wheel's METADATA; offline, no build isolation.
    code = (
        "import sys; from setuptools import build_meta as b; "
        "print(b.prepare_metadata_for_build_wheel(sys.argv[1]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)], cwd=ROOT, capture_output=True, text=True, check=True
    )
    dist_info = out.stdout.strip().splitlines()[-1]
    metadata = Parser().parsestr((tmp_path / dist_info / "METADATA").read_text())
    torch_reqs = [Requirement(r) for r in metadata.get_all("Requires-Dist")]
    torch_reqs = [r for r in torch_reqs if r.name == "torch"]
    assert len(torch_reqs) == 1, "torch must be a requirement, once"
    operators = {spec.operator for spec in torch_reqs[0].specifier}
    assert operators == {">="}, str(torch_reqs[0])


def test_constraints_keep_the_cpu_pin_for_make_setup():
    constraints = (ROOT / "constraints.txt").read_text()
    assert "torch==2.13.0" in constraints
    makefile = (ROOT / "Makefile").read_text()
    assert "-c constraints.txt" in makefile
