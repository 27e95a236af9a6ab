"""``radfair embed``: embeddings of a cohort's images from any frozen local encoder, written in the
CXR-Foundation store format, so that Study 1 (and ``radfair train --input embeddings``) run on a user's
own foundation model and dataset.

Layout written (the loaders' formats, :mod:`radfair.data.embeddings`):

* MIMIC rows: ``files/pXX/pSUBJECT/sSTUDY/<dicom_id>.tfrecord`` (one ``tf.train.Example``, ``embedding``);
* CheXpert rows: ``train.npz`` (``valid/`` rows: ``validation.npz``, as CXR Foundation ships them) mapping the
  CheXpert ``Path`` to the vector;
* any other dataset: ``embeddings.npz`` mapping ``image_id`` to the vector;
* ``radfair-embeddings.json``: encoder file and sha256, architecture, image size, width, cohort sha256, counts.

The folder is built in a temporary folder and renamed into place when complete.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch

from ..data.embeddings import GENERIC_STORE, chexpert_key, write_mimic_embedding
from ..errors import MISSING_COLUMNS, RadfairInputError
from ..io import file_sha256, read_table, write_json
from ..models.encoders import load_encoder
from .checkpoint import check_device
from .inputs import ImageBatches, image_array


@torch.no_grad()
def encode_images(encoder: torch.nn.Module, images: np.ndarray, batch_size: int, device: str) -> np.ndarray:
    """(n, d) float32 vectors of a uint8 (n, s, s) image array."""
    encoder = encoder.to(device)
    dummy = torch.zeros(len(images), 1)
    out = []
    for batch in ImageBatches(images, dummy, batch_size, shuffle=False, device=device).epoch(0):
        vectors = encoder(batch["x"])
        if vectors.ndim != 2:
            raise RadfairInputError(f"encoder returned shape {tuple(vectors.shape)}; expected (batch, width) vectors")
        out.append(vectors.float().cpu())
    return torch.cat(out).numpy()


def embed_cohort(encoder_path: str | Path, cohort_path: str | Path, out: str | Path, *, arch: str | None = None,
                 image_size: int = 224, batch_size: int = 64, device: str = "cpu", overwrite: bool = False,
                 progress: bool = True) -> dict:
    check_device(device)
    out = Path(out)
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise RadfairInputError(f"{out}: folder exists and is not empty; pass --overwrite to replace it")
    cohort = read_table(cohort_path, "cohort table")
    missing = [c for c in ("image_id", "path", "dataset") if c not in cohort.columns]
    if missing:
        raise RadfairInputError(MISSING_COLUMNS.format(path=cohort_path, columns=missing, expected="image_id, path, dataset"))
    encoder, info = load_encoder(encoder_path, arch)
    vectors = encode_images(encoder, image_array(cohort, cohort_path, image_size, progress=progress), batch_size, device)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        counts = _write_store(tmp, cohort, vectors)
        manifest = {"encoder": str(Path(encoder_path).resolve()), "encoder_sha256": file_sha256(encoder_path), **info,
                    "image_size": image_size, "width": int(vectors.shape[1]), "cohort": str(Path(cohort_path).resolve()),
                    "cohort_sha256": file_sha256(cohort_path), "rows": counts}
        write_json(tmp / "radfair-embeddings.json", manifest)
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return manifest


def _write_store(folder: Path, cohort, vectors: np.ndarray) -> dict[str, int]:
    chexpert, generic, mimic = {}, {}, 0
    for i, (dataset, image_id, path) in enumerate(zip(cohort["dataset"], cohort["image_id"], cohort["path"], strict=True)):
        if dataset == "chexpert":
            chexpert[image_id.removeprefix("chexpert:")] = vectors[i]
        elif dataset == "mimic":
            rel = Path(*Path(path).parts[-5:]).with_suffix(".tfrecord")  # files/pXX/pSUBJ/sSTUDY/<dicom_id>
            write_mimic_embedding(folder / rel, rel.stem, vectors[i])
            mimic += 1
        else:
            generic[image_id] = vectors[i]
    for name, part in (("train.npz", False), ("validation.npz", True)):
        rows = {k: v for k, v in chexpert.items() if chexpert_key(k).startswith("valid/") == part}
        if rows:
            np.savez(folder / name, mapping=np.array(rows, dtype=object))
    if generic:
        np.savez(folder / GENERIC_STORE, mapping=np.array(generic, dtype=object))
    return {"chexpert": len(chexpert), "mimic": mimic, "other": len(generic)}
