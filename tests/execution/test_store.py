"""The run store: content-addressed runs, skip when done, recompute corrupted outputs, resume dead runs."""

from __future__ import annotations

import json

import pytest
from pydantic import BaseModel, ConfigDict

from radfair.errors import RadfairInputError
from radfair.execution import RunSpec, RunStore, RunStoreWarning, declare, execute, read_record
from radfair.execution.kinds import undeclare
from radfair.execution.store import run_lock

CALLS: list[dict] = []


def toy_run(config: dict, ctx) -> dict[str, str]:
    """A run kind for tests: writes one output whose content depends on the config."""
    CALLS.append(config)
    if config.get("fail"):
        raise RuntimeError("planned failure")
    (ctx.run_dir / "result.txt").write_text(f"value={config['value'] * 2}\n")
    ctx.log("toy run wrote result.txt")
    return {"result": "result.txt"}


class ToySettings(BaseModel):
    model_config = ConfigDict(extra="allow")
    value: int


@pytest.fixture(autouse=True)
def toy_kind():
    declare("toy", settings=ToySettings, function=toy_run, outputs={"result": "result.txt"}, gpu=0.25)
    CALLS.clear()
    yield
    undeclare("toy")


def spec(value=1, **extra):
    return RunSpec("toy", {"value": value, **extra}, label=f"toy{value}")


def test_run_id_depends_on_config_and_input_checksums_only(tmp_path):
    data = tmp_path / "input.csv"
    data.write_text("a\n1\n")
    a = RunSpec("toy", {"value": 1}, {"data": str(data)}, cpus=1)
    b = RunSpec("toy", {"value": 1}, {"data": str(data)}, cpus=2, device="cuda", label="other")
    assert a.run_id == b.run_id  # resources and labels are not settings
    assert RunSpec("toy", {"value": 2}, {"data": str(data)}).run_id != a.run_id
    data.write_text("a\n2\n")
    assert RunSpec("toy", {"value": 1}, {"data": str(data)}).run_id != a.run_id  # changed input -> new run


def test_done_run_is_skipped_without_recomputing(tmp_path):
    store = RunStore(tmp_path)
    first = execute(spec(), store.path(spec()), progress=False)
    assert first.status == "done" and len(CALLS) == 1
    record = read_record(store.path(spec()))
    assert record["status"] == "done" and record["outputs"]["result"]["sha256"]
    assert {"radfair", "torch", "python"} <= set(record["attempts"][0]["versions"])
    second = execute(spec(), store.path(spec()), progress=False)
    assert second.status == "skipped" and len(CALLS) == 1


def test_corrupted_output_is_detected_and_recomputed(tmp_path):
    run_dir = RunStore(tmp_path).path(spec())
    execute(spec(), run_dir, progress=False)
    (run_dir / "result.txt").write_text("value=999\n")
    with pytest.warns(RunStoreWarning, match="result.*sha256 mismatch"):
        outcome = execute(spec(), run_dir, progress=False)
    assert outcome.status == "done" and len(CALLS) == 2
    assert (run_dir / "result.txt").read_text() == "value=2\n"
    (run_dir / "result.txt").unlink()
    with pytest.warns(RunStoreWarning, match="missing or changed"):
        execute(spec(), run_dir, progress=False)
    assert len(CALLS) == 3


def test_a_run_left_running_by_a_dead_process_is_resumed(tmp_path):
    run_dir = RunStore(tmp_path).path(spec())
    run_dir.mkdir(parents=True)
    (run_dir / "run.json").write_text(json.dumps({"run_id": spec().run_id, "kind": "toy", "status": "running",
                                                 "attempts": [{"pid": 999999, "host": "gone"}], "outputs": {}}))
    outcome = execute(spec(), run_dir, progress=False)
    assert outcome.status == "done"
    record = read_record(run_dir)
    assert len(record["attempts"]) == 2 and record["attempts"][1]["resumed"]


def test_a_run_held_by_a_live_process_is_not_run_twice(tmp_path):
    from radfair.execution import RunBusy

    run_dir = RunStore(tmp_path).path(spec())
    with run_lock(run_dir), pytest.raises(RunBusy):
        execute(spec(), run_dir, progress=False)


def test_a_folder_made_with_other_settings_is_refused_then_overwritten_on_request(tmp_path):
    execute(spec(1), tmp_path / "run", progress=False)
    with pytest.raises(RadfairInputError, match=r"made with other settings \(config.value 1 -> 2\).*--overwrite"):
        execute(spec(2), tmp_path / "run", progress=False)
    assert (tmp_path / "run" / "result.txt").read_text() == "value=2\n"  # untouched
    execute(spec(2), tmp_path / "run", progress=False, overwrite=True)
    assert (tmp_path / "run" / "result.txt").read_text() == "value=4\n"


def test_failure_is_recorded_and_clean_removes_only_unfinished_runs(tmp_path):
    store = RunStore(tmp_path)
    execute(spec(1), store.path(spec(1)), progress=False)
    with pytest.raises(RuntimeError, match="planned failure"):
        execute(spec(2, fail=True), store.path(spec(2, fail=True)), progress=False)
    failed = read_record(store.path(spec(2, fail=True)))
    assert failed["status"] == "failed" and "planned failure" in failed["error"]
    assert "Traceback" in (store.path(spec(2, fail=True)) / "run.log").read_text()
    assert store.clean(dry_run=True) == [store.path(spec(2, fail=True))]
    store.clean()
    assert [r["status"] for _, r in store.records()] == ["done"]


def test_outputs_resolve_by_run_and_name_before_and_after_the_run(tmp_path):
    store = RunStore(tmp_path)
    toy = spec(3)
    assert toy.declaration is not None and toy.declaration.name == "toy"
    assert store.output(toy, "result") == store.path(toy) / "result.txt"  # declared: usable as a later run's input
    execute(toy, store.path(toy), progress=False)
    assert store.output(toy.run_id, "result").read_text() == "value=6\n"
    assert store.output(store.path(toy), "result") == store.path(toy) / "result.txt"
    with pytest.raises(RadfairInputError, match="wrote no output 'scored'"):
        store.output(toy, "scored")
    with pytest.raises(RadfairInputError, match="no run.json"):
        store.output(tmp_path / "elsewhere", "result")


def test_a_run_returning_undeclared_outputs_fails_as_a_bug_of_its_kind(tmp_path):
    declare("toy-liar", settings=ToySettings, function=toy_run, outputs={"other": "other.txt"})
    try:
        with pytest.raises(RuntimeError, match=r"missing \['other'\], undeclared \['result'\]"):
            execute(RunSpec("toy-liar", {"value": 1}), tmp_path / "r", progress=False)
    finally:
        undeclare("toy-liar")


def test_an_undeclared_kind_is_a_one_line_error(tmp_path):
    with pytest.raises(RadfairInputError, match="run kind 'nope' is not declared"):
        execute(RunSpec("nope", {}), tmp_path / "r", progress=False)


def test_gpu_share_comes_from_the_declaration_on_cuda_only():
    assert spec(1).gpus == 0.0
    on_cuda = RunSpec("toy", {"value": 1}, device="cuda")
    assert on_cuda.gpus == 0.25 and RunSpec("toy", {"value": 1}, device="cuda", gpus=1.0).gpus == 1.0
    built = on_cuda.declaration.spec({"value": 1}, device="cuda:1", label="x")
    assert built.gpus == 0.25 and built.config == {"value": 1} and built.run_id == spec(1).run_id


def test_the_device_is_checked_where_the_run_executes(tmp_path, monkeypatch):
    import radfair.execution.devices as devices

    monkeypatch.setattr(devices, "visible_gpus", lambda: 0)
    with pytest.raises(RadfairInputError, match=r"--device.*cuda.*no CUDA device is available on"):
        execute(RunSpec("toy", {"value": 1}, device="cuda"), tmp_path / "r", progress=False)
    assert read_record(tmp_path / "r")["status"] == "failed" and not CALLS
    monkeypatch.setattr(devices, "visible_gpus", lambda: 2)
    with pytest.raises(RadfairInputError, match=r"cuda:0 to cuda:1"):
        devices.check_device("cuda:2")
    assert devices.check_device("cuda:1") == "cuda:1"
    with pytest.raises(RadfairInputError, match="cpu, cuda or cuda:N"):
        devices.check_device("tpu")
