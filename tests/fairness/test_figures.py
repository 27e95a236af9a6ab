"""The audit's figure workers: forest plots drawn on two cores by forking one warm worker."""

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from radfair.fairness._figures import FigurePainter, _draw, _draw_forked, figure_jobs


def _tables() -> dict:
    rows = []
    for label in ("edema", "effusion", "fracture"):
        for k, group in enumerate(("A", "B", "C")):
            tpr, fpr = 0.5 + 0.1 * k, 0.1 + 0.05 * k
            rows.append({"label": label, "attribute": "race", "group": group, "n_pos": 10 + k, "tpr": tpr,
                         "fpr": fpr, "tpr_ci_low": tpr - 0.1, "tpr_ci_high": tpr + 0.1, "fpr_ci_low": fpr - 0.02,
                         "fpr_ci_high": fpr + 0.02})
    gm = pd.DataFrame(rows)
    gm = pd.concat([gm, gm.assign(attribute="sex")], ignore_index=True)
    perf = pd.DataFrame({"label": ["edema", "effusion", "fracture"], "tpr": [0.6] * 3, "fpr": [0.15] * 3})
    return {"group_metrics": gm, "performance": perf}


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no os.fork")
def test_forked_drawing_writes_the_same_figures_as_drawing_in_one_process(tmp_path):
    serial, forked = tmp_path / "serial", tmp_path / "forked"
    serial.mkdir(), forked.mkdir()
    for job in figure_jobs(_tables(), serial, kinds=("forest",)):
        _draw(job)
    names = _draw_forked(figure_jobs(_tables(), forked, kinds=("forest",)))
    assert names == ["forest_race.png", "forest_sex.png"]  # submission order, half drawn by the child
    for name in names:
        a, b = (np.asarray(Image.open(folder / name)) for folder in (serial, forked))
        assert a.shape == b.shape and np.array_equal(a, b)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no os.fork")
def test_an_error_in_the_forked_child_is_raised_with_its_message(tmp_path):
    jobs = figure_jobs(_tables(), tmp_path, kinds=("forest",))
    kind, args = jobs[1]
    broken = (kind, (args[0].drop(columns=["tpr_ci_low"]),) + args[1:])  # the child's job: a column missing
    with pytest.raises(RuntimeError, match="forest_sex.png failed in the forked figure process: KeyError"):
        _draw_forked([jobs[0], broken])
    assert (tmp_path / "forest_race.png").exists()  # the parent's half is still drawn


def test_painter_returns_every_figure_name_in_submission_order(tmp_path):
    tables = _tables()
    painter = FigurePainter(workers=2)
    painter.submit(figure_jobs(tables, tmp_path, kinds=("forest",)), forked=True)
    painter.submit([("reliability", (pd.DataFrame({"label": ["edema"] * 2, "group": ["A", "B"], "bin": [0, 0],
                                                    "mean_predicted": [0.1, 0.2], "observed_rate": [0.1, 0.3], "n": [5, 5]}),
                                      Path(tmp_path) / "reliability_race.png", "t", None))])
    assert painter.result() == ["forest_race.png", "forest_sex.png", "reliability_race.png"]
    assert all((tmp_path / name).stat().st_size > 0 for name in ("forest_race.png", "forest_sex.png", "reliability_race.png"))
