"""The audit's figures, drawn from its tables: where people would rather look than read.

* ``forest_<attribute>.png``: per finding, each group's TPR and FPR with its bootstrap interval (the embeddings
  paper's Figure 1 style), the overall rate as a dashed line: who is under-served and how sure that is;
* ``roc_<attribute>.png``: per finding, each group's ROC curve with the group's operating point at the shared
  threshold marked: a group whose curve matches the others but whose point sits lower is a *threshold* effect (the
  shared threshold falls differently for it); a lower curve is a *ranking* effect;
* ``reliability_<attribute>.png``: observed vs mean predicted per calibration bin and group.

The curves behind the ROC figure are in ``roc.csv`` (:func:`roc_table`). Figures are drawn in worker processes
(:class:`FigurePainter`), in parallel with each other and with the bootstrap, so a wide audit stays fast; each is a plain function of tables.
"""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

#: FPR grid on which every ROC curve is stored (the curve is a step function; np.interp of its points).
ROC_GRID = np.linspace(0.0, 1.0, 101)
#: At most this many findings per figure (the findings with the largest TPR gap first): the forest plot shows 8,
#: the panel figures (ROC, reliability) 4; every curve is in roc.csv / reliability.csv.
MAX_PANELS = 4
MAX_FOREST_LABELS = 8
TICKS = (0.0, 0.5, 1.0)  # few tick labels: text is most of matplotlib's drawing time


def safe_name(attribute: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in attribute)


def _sorted_points(y: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """ROC points of rows already in descending score order (known labels only)."""
    n_pos = (y == 1).sum()
    n_neg = len(y) - n_pos
    if n_pos == 0 or n_neg == 0:
        return np.zeros(0), np.zeros(0)
    last = np.r_[np.flatnonzero(np.diff(score)), len(score) - 1]
    tp = np.cumsum(y)[last]
    fp = (last + 1) - tp
    return np.r_[0.0, fp / n_neg], np.r_[0.0, tp / n_pos]


def roc_curve_points(y: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """ROC points (FPR, TPR) of ``score >= t`` over every distinct threshold, from (0, 0) to (1, 1).

    The same points as scikit-learn's ``roc_curve(drop_intermediate=False)``; empty arrays without both classes.
    """
    keep = ~np.isnan(y)
    y, score = y[keep], score[keep]
    order = np.argsort(-score, kind="mergesort")
    return _sorted_points(y[order], score[order])


def roc_table(y: np.ndarray, scores: np.ndarray, labels: list[str], groupings: dict[str, tuple[np.ndarray, list[str]]]) -> pd.DataFrame:
    """Every group's ROC curve on :data:`ROC_GRID`: columns label, attribute, group, fpr, tpr.

    ``y``, ``scores`` (n, L); ``groupings``: attribute -> (codes (n,), group names), code -1 = missing. Each label's
    rows are sorted once; every group's curve is read from that order.
    """
    pieces = {}
    for j, label in enumerate(labels):
        known = np.flatnonzero(~np.isnan(y[:, j]))
        order = known[np.argsort(-scores[known, j], kind="mergesort")]
        for a, (attribute, (codes, groups)) in enumerate(groupings.items()):
            in_order = codes[order]
            for g, group in enumerate(groups):
                rows = order[in_order == g]
                fpr, tpr = _sorted_points(y[rows, j], scores[rows, j])
                if not len(fpr):
                    continue
                # the upper envelope of the step function at each grid FPR (the best TPR with FPR <= grid)
                best = np.maximum.accumulate(tpr)
                index = np.searchsorted(fpr, ROC_GRID, side="right") - 1
                pieces[(a, j, g)] = (label, attribute, group, best[np.clip(index, 0, None)])
    columns = ["label", "attribute", "group", "fpr", "tpr"]
    if not pieces:
        return pd.DataFrame(columns=columns)
    keys = sorted(pieces)
    k = len(ROC_GRID)
    return pd.DataFrame({"label": np.repeat([pieces[key][0] for key in keys], k),
                         "attribute": np.repeat([pieces[key][1] for key in keys], k),
                         "group": np.repeat([pieces[key][2] for key in keys], k),
                         "fpr": np.tile(ROC_GRID, len(keys)),
                         "tpr": np.concatenate([pieces[key][3] for key in keys])})


def _panels(group_metrics: pd.DataFrame, gaps: pd.DataFrame | None, limit: int = MAX_PANELS) -> list[str]:
    labels = list(dict.fromkeys(group_metrics["label"]))
    if gaps is not None and len(gaps) and len(labels) > limit:
        order = gaps.sort_values("gap", ascending=False)["label"].tolist()
        labels = [label for label in order if label in labels][:limit]
    return labels[:limit]


def _pyplot():
    """matplotlib's pyplot on the Agg backend (files only; imported on first use: it costs about 0.5 s)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path) -> None:
    """PNG at 80 dpi, zlib level 1: a third of the default level's encoding time for a few more bytes."""
    fig.savefig(path, dpi=80, pil_kwargs={"compress_level": 1})
    _pyplot().close(fig)


def _grid(n: int, width: float = 3.0, height: float = 2.6):
    plt = _pyplot()
    cols = min(4, max(1, n))
    rows = int(np.ceil(n / cols)) if n else 1
    fig, axes = plt.subplots(rows, cols, figsize=(width * cols, height * rows + 0.5), squeeze=False)
    fig.subplots_adjust(left=0.08 / cols * 4, right=0.98, bottom=0.12 / rows, top=1 - 0.5 / (height * rows + 0.5),
                        wspace=0.32, hspace=0.45)
    return plt, fig, axes


def forest_figure(group_metrics: pd.DataFrame, performance: pd.DataFrame, path, title: str, gaps: pd.DataFrame | None = None) -> None:
    """Per finding (rows), each group's TPR and FPR (two panels) with intervals; overall rate dashed."""
    plt = _pyplot()

    labels = _panels(group_metrics, gaps, MAX_FOREST_LABELS)
    groups = list(dict.fromkeys(group_metrics["group"]))
    n_rows = len(labels) * (len(groups) + 1)
    fig, axes = plt.subplots(1, 2, figsize=(9.5, 0.9 + 0.17 * n_rows), sharey=True)
    fig.subplots_adjust(left=0.27, right=0.98, top=1 - 0.55 / (0.9 + 0.17 * n_rows), bottom=0.35 / (0.9 + 0.17 * n_rows), wspace=0.1)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    ticks, names = [], []
    overall = performance.set_index("label") if performance is not None and len(performance) else None
    # one row per (label, group), a blank row between labels; one errorbar call per group and panel (fast)
    index = group_metrics.set_index(["label", "group"])
    positions: dict[str, list] = {g: [] for g in groups}
    y = 0.0
    for label in labels:
        top = y
        for group in groups:
            if (label, group) in index.index:
                positions[group].append((y, label))
                ticks.append(y)
                names.append(f"{label} · {group} (n+={int(index.loc[(label, group), 'n_pos'])})")
            y += 1
        if overall is not None and label in overall.index:
            for ax, rate in zip(axes, ("tpr", "fpr"), strict=True):
                if rate in overall.columns and np.isfinite(overall.loc[label, rate]):
                    ax.plot([overall.loc[label, rate]] * 2, [top - 0.4, y - 0.6], ls="--", lw=0.8, color="grey")
        y += 1
    for k, group in enumerate(groups):
        if not positions[group]:
            continue
        ys = np.array([p for p, _ in positions[group]])
        rows = index.loc[[(label, group) for _, label in positions[group]]]
        for ax, rate in zip(axes, ("tpr", "fpr"), strict=True):
            value = rows[rate].to_numpy(float)
            low = np.nan_to_num(value - rows[f"{rate}_ci_low"].to_numpy(float), nan=0.0).clip(0)
            high = np.nan_to_num(rows[f"{rate}_ci_high"].to_numpy(float) - value, nan=0.0).clip(0)
            ok = np.isfinite(value)
            ax.errorbar(value[ok], ys[ok], xerr=[low[ok], high[ok]], fmt="o", ms=3.5, lw=1.2, color=colours[k % len(colours)],
                        capsize=2)
    for ax, rate in zip(axes, ("TPR (sensitivity)", "FPR (1 - specificity)"), strict=True):
        ax.set_xlim(0, 1)
        ax.set_xticks((0.0, 0.25, 0.5, 0.75, 1.0))
        ax.set_xlabel(rate, fontsize=8)
        ax.grid(axis="x", lw=0.4, alpha=0.5)
        ax.tick_params(labelsize=7)
    # row names as plain text, not tick labels: a tick is two lines and two texts on each shared axis, and ticks were
    # most of the drawing time (0.3 s of a 48-row figure)
    axes[0].set_yticks([])
    axes[1].tick_params(axis="y", left=False)
    for tick, name in zip(ticks, names, strict=True):
        axes[0].text(-0.02, tick, name, transform=axes[0].get_yaxis_transform(), ha="right", va="center", fontsize=7)
    axes[0].set_ylim(y - 0.5, -0.5)
    fig.suptitle(title, fontsize=10)
    _save(fig, path)


def roc_figure(roc: pd.DataFrame, group_metrics: pd.DataFrame, path, title: str, gaps: pd.DataFrame | None = None) -> None:
    """Per finding, each group's ROC curve and its operating point (x marker) at the shared threshold."""
    labels = [label for label in _panels(group_metrics, gaps) if label in set(roc["label"])]
    plt, fig, axes = _grid(len(labels))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    groups = list(dict.fromkeys(group_metrics["group"]))
    for ax, label in zip(axes.ravel(), labels, strict=False):
        curves = roc[roc["label"] == label]
        points = group_metrics[group_metrics["label"] == label].set_index("group")
        for k, group in enumerate(groups):
            part = curves[curves["group"] == group]
            if part.empty:
                continue
            colour = colours[k % len(colours)]
            ax.plot(part["fpr"], part["tpr"], lw=1.1, color=colour, label=str(group))
            if group in points.index and np.isfinite(points.loc[group, "tpr"]) and np.isfinite(points.loc[group, "fpr"]):
                ax.plot([points.loc[group, "fpr"]], [points.loc[group, "tpr"]], marker="X", ms=7, color=colour, mec="black", mew=0.6)
        ax.plot([0, 1], [0, 1], color="grey", lw=0.6, ls=":")
        ax.set(xlim=(0, 1), ylim=(0, 1), xticks=TICKS, yticks=TICKS)
        ax.set_title(label, fontsize=9)
        ax.tick_params(labelsize=7)
        ax.set_xlabel("FPR", fontsize=7)
        ax.set_ylabel("TPR", fontsize=7)
    for ax in axes.ravel()[len(labels):]:
        ax.axis("off")
    if labels:
        axes.ravel()[0].legend(fontsize=6, loc="lower right")
    fig.suptitle(title, fontsize=10)
    _save(fig, path)


def reliability_figure(curves: pd.DataFrame, path, title: str = "", gaps: pd.DataFrame | None = None) -> None:
    """Reliability diagram PNG: one panel per label, one line per group (observed vs mean predicted).

    ``curves`` is a DataFrame with label, group, mean_predicted, observed_rate, n (the reliability table).
    """
    labels = list(dict.fromkeys(curves["label"]))
    if gaps is not None and len(gaps) and len(labels) > MAX_PANELS:
        order = gaps.sort_values("gap", ascending=False)["label"].tolist()
        labels = [label for label in order if label in labels]
    labels = labels[:MAX_PANELS]
    plt, fig, axes = _grid(len(labels))
    for ax, label in zip(axes.ravel(), labels, strict=False):
        sub = curves[(curves["label"] == label) & (curves["n"] > 0)]
        for group, part in sub.groupby("group", sort=False):
            ax.plot(part["mean_predicted"], part["observed_rate"], marker="o", ms=2.5, lw=1, label=str(group))
        ax.plot([0, 1], [0, 1], color="grey", lw=0.8, ls="--")
        ax.set(xlim=(0, 1), ylim=(0, 1), xticks=TICKS, yticks=TICKS)
        ax.set_title(label, fontsize=9)
        ax.tick_params(labelsize=7)
    for ax in axes.ravel()[len(labels):]:
        ax.axis("off")
    if labels:
        axes.ravel()[0].legend(fontsize=6)
    fig.suptitle(title, fontsize=10)
    _save(fig, path)


def _job_name(job) -> str:
    """The file name a figure job writes (its one Path argument)."""
    return next(Path(a).name for a in job[1] if isinstance(a, Path))


def _draw(job):
    kind, args = job
    {"forest": forest_figure, "roc": roc_figure, "reliability": reliability_figure}[kind](*args)
    return _job_name(job)


def figure_jobs(tables: dict, folder: Path, level: float = 0.95,
                kinds: tuple[str, ...] = ("forest", "roc", "reliability")) -> list[tuple[str, tuple]]:
    """The audit's figures of ``kinds`` as (kind, arguments) jobs: forest and ROC first (the report shows them at
    the top). The forest plot needs the intervals; ROC and reliability figures the point estimates only."""
    jobs = []
    roc = tables.get("roc")
    gm, perf, gaps = tables["group_metrics"], tables.get("performance"), tables.get("gaps")
    for attribute in dict.fromkeys(gm["attribute"]):
        name = safe_name(attribute)
        part = gm[gm["attribute"] == attribute]
        gap_part = gaps[gaps["attribute"] == attribute] if gaps is not None and len(gaps) else None
        if "forest" in kinds:
            jobs.append(("forest", (part, perf, folder / f"forest_{name}.png",
                                    f"TPR and FPR by {attribute} ("
                                    + (f"{level:.0%} patient-bootstrap intervals" if part["tpr_ci_low"].notna().any() else "no bootstrap: no intervals")
                                    + "; dashed: overall)", gap_part)))
        if "roc" in kinds and roc is not None and len(roc):
            jobs.append(("roc", (roc[roc["attribute"] == attribute], part, folder / f"roc_{name}.png",
                                 f"ROC by {attribute}: curves per group, X = operating point at the shared threshold", gap_part)))
    reliability = tables.get("reliability")
    if "reliability" in kinds and reliability is not None and len(reliability):
        from ._calibration import N_BINS

        for attribute, part in reliability.groupby("attribute", sort=False):
            gap_part = gaps[gaps["attribute"] == attribute] if gaps is not None and len(gaps) else None
            jobs.append(("reliability", (part, folder / f"reliability_{safe_name(attribute)}.png",
                                         f"Reliability by {attribute} (test split, {N_BINS} uniform bins)", gap_part)))
    return jobs


def _warm() -> None:
    _pyplot()


def _draw_forked(jobs: list[tuple[str, tuple]]) -> list[str]:
    """Draw ``jobs`` in this worker process, every other one in a forked child of it.

    The child inherits matplotlib already imported and warm (fonts loaded), so the second core costs a fork instead of
    a second import (about 0.5 CPU-s); without ``os.fork`` (Windows) the jobs are drawn here, one after another. A
    child's error is raised here with its message."""
    import os

    names = [_job_name(job) for job in jobs]
    if len(jobs) < 2 or not hasattr(os, "fork"):
        for job in jobs:
            _draw(job)
        return names
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child (coverage does not follow a fork)
        os.close(read)
        code = 0
        try:
            for job in jobs[1::2]:
                _draw(job)
        except BaseException as error:  # noqa: BLE001 - reported to the parent, which raises it
            os.write(write, f"{type(error).__name__}: {error}".encode()[:4000])
            code = 1
        finally:
            os._exit(code)
    os.close(write)
    try:
        for job in jobs[0::2]:
            _draw(job)
    finally:
        with os.fdopen(read, "rb") as pipe:
            message = pipe.read().decode(errors="replace")
        _, status = os.waitpid(pid, 0)
    if status:
        raise RuntimeError(f"drawing {', '.join(names[1::2])} failed in the forked figure process: {message or status}")
    return names


class FigurePainter:
    """Draws figure jobs in worker processes as they are submitted; matplotlib is imported in each worker while the
    caller computes.

    ``workers - 1`` processes (at least one) draw while the caller's bootstrap threads hold the other cores; jobs
    submitted with ``forked=True`` (the forest plots, which wait for the intervals and are left when the bootstrap
    ends) go to one worker, which forks to draw half of them on a second core (:func:`_draw_forked`).
    """

    def __init__(self, workers: int = 2):
        import multiprocessing

        context = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn")
        self.pool = ProcessPoolExecutor(max_workers=max(1, workers - 1), mp_context=context)
        self.pool.submit(_warm)
        self.futures: list = []

    def submit(self, jobs: list[tuple[str, tuple]], forked: bool = False) -> None:
        """Queue ``jobs``, one task each, or, with ``forked``, as one task drawn on two cores."""
        if forked:
            self.futures.append(self.pool.submit(_draw_forked, jobs))
        else:
            self.futures += [self.pool.submit(_draw, job) for job in jobs]

    def result(self) -> list[str]:
        """The file names of every job submitted, in submission order (waits for them); then closes the pool."""
        try:
            names = []
            for future in self.futures:
                name = future.result()
                names += name if isinstance(name, list) else [name]
            return names
        finally:
            self.close()

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)
