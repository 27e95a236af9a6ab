"""`radfair train` twice (second is skipped), `radfair runs list|show|clean`, `radfair predict` on the CLI."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from radfair.cli import app

runner = CliRunner()


def test_train_then_rerun_skips_and_runs_commands_describe_it(tmp_path, split_all, synth_root):
    run = tmp_path / "store" / "mlp"
    args = ["train", "--cohort", str(split_all), "--root", str(synth_root[0]), "--missing-embeddings", "drop",
            "--epochs", "2", "--labels", "edema,cardiomegaly", "--out", str(run)]
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    assert "trained in" in first.output and "test AUROC:" in first.output and "edema" in first.output
    second = runner.invoke(app, args)
    assert second.exit_code == 0 and "already done, skipped" in second.output

    listing = runner.invoke(app, ["runs", "list", str(run)])
    assert listing.exit_code == 0 and "done" in listing.output and "mlp-embeddings-seed0" in listing.output
    shown = runner.invoke(app, ["runs", "show", str(run)])
    record = json.loads(shown.output)
    assert record["status"] == "done" and record["config"]["labels"] == ["edema", "cardiomegaly"]
    assert set(record["outputs"]) == {"scored", "history", "metrics", "best_checkpoint"}

    changed = runner.invoke(app, args[:-2] + ["--seed", "1", "--out", str(run)])
    assert changed.exit_code == 2 and "made with other settings (config.seed 0 -> 1)" in changed.output

    pred = runner.invoke(app, ["predict", "--run", str(run), "--cohort", str(split_all), "--out", str(tmp_path / "p.parquet")])
    assert pred.exit_code == 0 and (tmp_path / "p.parquet").is_file()

    cleaned = runner.invoke(app, ["runs", "clean", str(tmp_path / "store")])
    assert cleaned.exit_code == 0 and "removed 0 run(s)" in cleaned.output and (run / "scored.parquet").is_file()


def test_runs_commands_on_a_missing_folder_are_one_line_errors(tmp_path):
    for args in (["runs", "list", str(tmp_path / "nope")], ["runs", "show", str(tmp_path)]):
        result = runner.invoke(app, args)
        assert result.exit_code == 2 and result.output.startswith("error: "), result.output
