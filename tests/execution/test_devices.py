"""Devices of executed runs: round-robin over visible GPUs for local processes, GPU ids from Ray."""

from __future__ import annotations

import os
import re

import pytest
from pydantic import BaseModel, ConfigDict

from radfair.execution import RunSpec, declare
from radfair.execution.devices import worker_device
from radfair.execution.executors import _run_processes, _run_ray


class GpuProbe(BaseModel):
    model_config = ConfigDict(extra="allow")
    value: int


def gpu_probe(config: dict, ctx) -> dict[str, str]:
    """Writes the device it was given and the GPU ids Ray assigned to its task."""
    ids = ""
    try:
        import ray

        if ray.is_initialized():
            ids = ",".join(str(i) for i in ray.get_gpu_ids())
    except ImportError:
        pass
    (ctx.run_dir / "device.txt").write_text(f"{ctx.device}|{ids}|{os.environ.get('CUDA_VISIBLE_DEVICES', '')}")
    return {"device": "device.txt"}


PROBE = declare("test-gpu-probe", settings=GpuProbe, function=gpu_probe, outputs={"device": "device.txt"},
                gpu=lambda config: 0.5 if config.get("small") else 1.0)


def test_round_robin_assignment_of_workers_to_gpus():
    assert [worker_device("cuda", w, 2) for w in range(5)] == ["cuda:0", "cuda:1", "cuda:0", "cuda:1", "cuda:0"]
    assert worker_device("cuda", 3, 4) == "cuda:3"
    assert worker_device("cpu", 1, 2) == "cpu"
    assert worker_device("cuda:1", 0, 2) == "cuda:1"  # an explicit device is kept
    assert worker_device("cuda", 1, 0) == "cuda" and worker_device("cuda", None, 2) == "cuda"


def test_local_workers_run_cuda_runs_on_different_gpus_and_check_the_device_there(tmp_path):
    # No GPU here: each worker's device check fails, naming the GPU that worker was given.
    specs = [PROBE.spec({"value": i}, device="cuda", cpus=1, label=f"p{i}") for i in range(6)]
    outcomes = _run_processes(specs, [str(tmp_path / s.run_id) for s in specs], jobs=2, progress=False, n_gpus=2)
    assert all(o.status == "failed" and o.input_error for o in outcomes)
    given = {re.search(r"--device: '(cuda:\d)'", o.error).group(1) for o in outcomes}
    assert given == {"cuda:0", "cuda:1"}


@pytest.mark.slow
def test_ray_gives_every_network_run_a_gpu_id(tmp_path):
    ray = pytest.importorskip("ray")
    # Ray's logical GPUs on a CPU machine: the resources are real for scheduling, the devices are not, so the
    # runs execute on "cpu" while asking for the GPU share their declaration gives on CUDA.
    specs = []
    for i, small in enumerate([False, True, True, False]):
        cuda = PROBE.spec({"value": i, "small": small}, device="cuda", cpus=1)
        specs.append(RunSpec(cuda.kind, cuda.config, cpus=1, gpus=cuda.gpus, device="cpu", declaration=PROBE))
    assert [s.gpus for s in specs] == [1.0, 0.5, 0.5, 1.0]
    ray.init(num_cpus=2, num_gpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        outcomes = _run_ray(specs, [str(tmp_path / s.run_id) for s in specs], None, progress=False)
    finally:
        ray.shutdown()
    assert [o.status for o in outcomes] == ["done"] * 4
    for spec in specs:
        device, ids, visible = (tmp_path / spec.run_id / "device.txt").read_text().split("|")
        assert ids and set(ids.split(",")) <= {"0", "1"}, ids  # every run received a GPU id
        assert visible == ids  # and Ray made exactly that GPU visible to the task
