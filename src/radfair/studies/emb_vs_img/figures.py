"""Figure 1 of the embeddings paper: TPR disparity per finding and group, findings sorted by gap.

Each finding's x position is looked up by its name, so a finding with no value for some group never
shifts another finding's values onto the wrong disease (the CheXclusion ``plot_14`` bug, anchor bug 13).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from ...io import atomic_path  # noqa: E402

PRETTY = {"no_finding": "No Finding", "enlarged_cardiomediastinum": "Enl. Cardiomed.", "lung_opacity": "Lung Opacity",
          "lung_lesion": "Lung Lesion", "pleural_effusion": "Pleural Effusion", "pleural_other": "Pleural Other",
          "support_devices": "Support Devices"}


def label_order(gaps: pd.DataFrame) -> list[str]:
    """Findings sorted by increasing gap (left to right); findings with no gap go last, in input order."""
    order = gaps.assign(_nan=gaps["gap"].isna()).sort_values(["_nan", "gap"], kind="stable")
    return order["label"].tolist()


def group_points(disparities: pd.DataFrame, groups: list[str], x_of: dict[str, int]):
    """(group, its rows with a value, x position of each row looked up by the row's own finding name)."""
    for group in groups:
        rows = disparities[(disparities["group"] == group) & disparities["disparity_mean"].notna()]
        yield group, rows, np.array([x_of[label] for label in rows["label"]], dtype=float)


def figure1(disparities: pd.DataFrame, gaps: pd.DataFrame, title: str, path: str | Path) -> list[str]:
    """Draw one panel (one dataset, model and attribute); return the finding order used on the x axis."""
    labels = label_order(gaps)
    x_of = {label: i for i, label in enumerate(labels)}
    groups = [g for g in dict.fromkeys(disparities["group"]) if disparities.loc[disparities["group"] == g, "disparity_mean"].notna().any()]
    fig, ax = plt.subplots(figsize=(max(6.0, 0.6 * len(labels) + 2), 4.2))
    ax.axhline(0.0, color="0.4", lw=0.8, zorder=1)
    offsets = np.linspace(-0.25, 0.25, len(groups)) if len(groups) > 1 else [0.0]
    cmap = plt.get_cmap("tab10")
    for k, (group, rows, x) in enumerate(group_points(disparities, groups, x_of)):
        x = x + offsets[k]
        y = rows["disparity_mean"].to_numpy()
        err = np.vstack([y - rows["ci_low"].to_numpy(), rows["ci_high"].to_numpy() - y])
        size = 20 + 380 * np.nan_to_num(rows["share_of_positives"].to_numpy())
        ax.errorbar(x, y, yerr=np.where(np.isnan(err), 0, err), fmt="none", ecolor=cmap(k % 10), elinewidth=1, alpha=0.7, zorder=2)
        ax.scatter(x, y, s=size, color=cmap(k % 10), alpha=0.85, edgecolor="white", linewidth=0.5, label=group, zorder=3)
    ax.set_xticks(range(len(labels)))
    ax.set_xticklabels([PRETTY.get(label, label.replace("_", " ").title()) for label in labels], rotation=45, ha="right", fontsize=8)
    ax.set_ylabel("TPR disparity (seed mean, 95% t-CI)")
    ax.set_title(f"{title}\nfindings sorted by gap (increasing); marker area ~ group's share of positives; bars: 95% t-CI over seeds",
                 fontsize=9)
    legend = ax.legend(fontsize=7, ncol=min(len(groups), 6), loc="upper left", frameon=False)
    for handle in legend.legend_handles:
        handle.set_sizes([30])
    fig.tight_layout()
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, format=path.suffix.lstrip("."))
    plt.close(fig)
    return labels
