"""Sample reweighting by inverse joint-subgroup frequency (reconstruction paper §3.5, "Sample Reweighting")."""

from __future__ import annotations

import numpy as np
import torch

from ..training.inputs import PairedImageBatches, epoch_generator


def subgroup_weights(groups: np.ndarray) -> np.ndarray:
    """Per-row sampling weights ∝ 1 / |joint subgroup|, summing to 1.

    Parameters
    ----------
    groups : ndarray of int, shape (N, A)
        Integer codes of A sensitive attributes per row; −1 (missing) is a category of its own here,
        so a row with a missing attribute is still drawn, within its own joint cell.

    Returns
    -------
    ndarray of float64, shape (N,)
        Every joint subgroup (combination of codes across attributes) receives the same total weight
        1 / (number of non-empty joint subgroups), so each is drawn equally often in expectation.
    """
    groups = np.asarray(groups)
    if groups.ndim == 1:
        groups = groups[:, None]
    if len(groups) == 0:
        return np.zeros(0)
    _, inverse, counts = np.unique(groups, axis=0, return_inverse=True, return_counts=True)
    weights = 1.0 / counts[inverse.reshape(-1)]
    return weights / weights.sum()


class MitigationBatches(PairedImageBatches):
    """Paired images plus ``labels`` (B, L float, NaN = unknown) and ``groups`` (B, A int, −1 = missing).

    With ``weights`` (training only), each epoch draws ``n`` rows **with replacement** ∝ ``weights`` from a
    generator seeded by (seed, epoch), like the permutation of :class:`~radfair.training.inputs.IndexBatches`,
    so the draw is deterministic and a resumed epoch replays it exactly.
    """

    def __init__(self, degraded, clean, labels: np.ndarray, groups: np.ndarray, batch_size: int, *, shuffle: bool,
                 seed: int = 0, device: torch.device | str = "cpu", weights: np.ndarray | None = None,
                 masks=None):
        super().__init__(degraded, clean, batch_size, shuffle=shuffle, seed=seed, device=device)
        self.labels = torch.as_tensor(np.asarray(labels, dtype=np.float32)).reshape(len(clean), -1)
        self.groups = torch.as_tensor(np.asarray(groups, dtype=np.int64)).reshape(len(clean), -1)
        self.masks = masks
        if weights is not None and not shuffle:
            raise ValueError("weighted sampling is for training batches (shuffle=True)")
        self.weights = None if weights is None else torch.as_tensor(np.asarray(weights, dtype=np.float64))

    def order(self, epoch: int) -> torch.Tensor:
        if self.weights is None:
            return super().order(epoch)
        return torch.multinomial(self.weights, self.n_samples, replacement=True, generator=epoch_generator(self.seed, epoch))

    def _batch(self, idx: torch.Tensor) -> dict:
        batch = super()._batch(idx)
        device = batch["degraded"].device
        batch["labels"] = self.labels.index_select(0, idx).to(device)
        batch["groups"] = self.groups.index_select(0, idx).to(device)
        if self.masks is not None:
            mask = torch.from_numpy(np.ascontiguousarray(self.masks[idx.numpy()])).unsqueeze(1).float()
            batch["mask"] = (mask / 255.0 if mask.max() > 1 else mask).to(device)
        return batch
