"""Model inputs that never become the bottleneck.

* Embeddings are read from the store (the landed loaders) once per folder of cohorts, into a per-(store, dataset)
  cache keyed by image id (:func:`store_vectors`), then held in memory as one tensor.
* Images are decoded and resized once per (image, size, preprocessing) into shared uint8 shards (memory-mapped,
  :func:`image_array`), so that no epoch, run or study decodes a JPEG again. Building is resumable and guarded by a
  file lock, so parallel runs of a grid build each image once. Grey PNGs already at the size asked for (Study 2's
  working-size images) are read from their files batch by batch instead (:class:`FileImages`): no second copy.
* Batches are built by indexing (``index_select`` on the tensor, fancy indexing on the memmap): no
  per-sample Python. Each epoch's order is a permutation drawn from a generator seeded by (seed, epoch),
  which a resumed run replays exactly.

Embedding caches live in ``embedding-cache/`` beside the cohort (or ``$RADFAIR_CACHE/embedding-cache``), keyed by
the store and its index files; image caches in one ``image-cache/`` per study folder (or
``$RADFAIR_CACHE/image-cache``), keyed by each image's path, size and mtime, so a rewritten image is decoded again.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import multiprocessing
import os
import queue
import threading
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from rich.progress import Progress

from ..data.embeddings import EMBEDDING_DIM, load_cohort_embeddings
from ..images import decode_chunk, decode_image, resize_to_uint8  # noqa: F401 - re-exported
from ..io import atomic_path

#: How a classifier reads pixels: values scaled to [0, 1], then ``(x - mean) / std`` with the named (mean, std).
#: ``standard``: radfair's (0.5, 0.25), about unit spread. ``xrv``: TorchXRayVision's ``normalize(img, 255)``, values
#: in [-1024, 1024] = ``(2 x - 1) 1024`` (Cohen et al. 2022; the reconstruction paper's CheXpert classifier, appendix
#: "Diagnostic Hyperparameters").
PIXEL_SCALINGS: dict[str, tuple[float, float]] = {"standard": (0.5, 0.25), "xrv": (0.5, 1.0 / 2048.0)}


def scale_pixels(x: torch.Tensor, scaling: str = "standard") -> torch.Tensor:
    """``(x - mean) / std`` of :data:`PIXEL_SCALINGS` ``[scaling]`` for ``x`` in [0, 1] (any shape); KeyError if unknown."""
    mean, std = PIXEL_SCALINGS[scaling]
    return (x - mean) / std


def _key(*parts) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


@contextlib.contextmanager
def _locked(path: Path):
    with open(path.with_suffix(".lock"), "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _store_signature(root: str | Path) -> list:
    """(name, size, mtime) of the store's index files (npz stores and radfair embed manifests, 3 levels deep),
    so that re-embedding into the same folder never reads a stale cache."""
    root = Path(root)
    found = []
    for pattern in ("train.npz", "validation.npz", "embeddings.npz", "radfair-embeddings.json"):
        for depth in ("", "*/", "*/*/"):
            for path in sorted(root.glob(depth + pattern)):
                stat = path.stat()
                found.append([str(path.relative_to(root)), stat.st_size, stat.st_mtime_ns])
    return found


EMBEDDING_CACHE = "embedding-cache"


def embedding_cache_root(cohort_path: str | Path) -> Path:
    """The folder of the per-store embedding caches: ``$RADFAIR_CACHE/embedding-cache``, else ``embedding-cache/``
    beside the cohort file (a study's split files share their ``data/`` folder, so every dataset of a study reads the
    store once)."""
    base = os.environ.get("RADFAIR_CACHE")
    return Path(base) / EMBEDDING_CACHE if base else Path(cohort_path).resolve().parent / EMBEDDING_CACHE


def store_vectors(cohort: pd.DataFrame, root: str | Path, folder: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """(n, d) float32 vectors of ``cohort``'s rows from the embedding store at ``root`` and a bool mask of the rows
    that have one, reading each image's vector from the store at most once per ``folder``.

    ``folder`` keeps one cache per (store, dataset): the vectors found so far, keyed by image_id (MIMIC's store is
    one TFRecord per image: a study's MIMIC and ALL cohorts, and its data preparation, used to read all of them three
    times). Only rows not in the cache are read from the store and appended; rows without a vector are not cached,
    so a vector added to the store later is found. The store's index files are part of the key (re-embedding into
    the same folder starts a new cache).
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    store_key = _key("store", str(Path(root).resolve()), _store_signature(root))
    vectors = np.zeros((len(cohort), 0), dtype=np.float32)
    found = np.zeros(len(cohort), dtype=bool)
    width = None
    datasets = cohort["dataset"].astype(str).to_numpy()
    for dataset in pd.unique(datasets):
        rows = np.flatnonzero(datasets == dataset)
        ids = cohort["image_id"].astype(str).to_numpy()[rows]
        base = folder / f"{dataset}-{store_key}"
        ids_path, vec_path = base.with_suffix(".ids.npy"), base.with_suffix(".vectors.npy")
        with _locked(vec_path):
            known = np.load(ids_path, allow_pickle=False) if ids_path.is_file() else np.zeros(0, dtype=str)
            cached = np.load(vec_path, mmap_mode="r") if vec_path.is_file() else None
            position = pd.Index(known).get_indexer(ids)
            if (position < 0).any():
                wanted = cohort.iloc[rows][position < 0].drop_duplicates("image_id")
                new, new_found = load_cohort_embeddings(wanted, root)
                if new_found.any():
                    added = wanted["image_id"].astype(str).to_numpy(dtype=str)[new_found]
                    stacked = new[new_found] if cached is None else np.concatenate([np.asarray(cached), new[new_found]])
                    known = np.concatenate([known, added]).astype(str)  # unicode, never object: loaded without pickle
                    with atomic_path(vec_path) as tmp:
                        np.save(tmp, stacked.astype(np.float32))
                    with atomic_path(ids_path) as tmp:
                        np.save(tmp, known)
                    cached = np.load(vec_path, mmap_mode="r")
                    position = pd.Index(known).get_indexer(ids)
        if cached is None:
            continue
        if width is None:
            width = cached.shape[1]
            vectors = np.zeros((len(cohort), width), dtype=np.float32)
        elif cached.shape[1] != width:
            from ..errors import RadfairInputError

            raise RadfairInputError(f"{root}: embedding store mixes vector widths {sorted({width, cached.shape[1]})}; expected one width")
        hit = position >= 0
        vectors[rows[hit]] = cached[position[hit]]
        found[rows[hit]] = True
    if width is None:
        vectors = np.zeros((len(cohort), EMBEDDING_DIM), dtype=np.float32)
    return vectors, found


def embedding_matrix(cohort: pd.DataFrame, cohort_path: str | Path, root: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """(n, d) float32 vectors aligned with ``cohort`` rows, and a bool mask of rows that have a vector
    (:func:`store_vectors` with the cohort's :func:`embedding_cache_root`)."""
    return store_vectors(cohort, root, embedding_cache_root(cohort_path))


#: from this many images on, :func:`image_array` decodes in a process pool over every core (below, the pool's
#: start-up costs more than it saves and two threads decode)
PROCESS_POOL_FROM = 2048


def usable_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


#: The preprocessing of the image cache (grey, bilinear resize, JPEG draft decoding): part of every cache key.
IMAGE_PREPROCESSING = "L-bilinear-jpeg-draft"
IMAGE_CACHE = "image-cache"


def image_cache_root(cohort_path: str | Path) -> Path:
    """The folder of the shared image caches: ``$RADFAIR_CACHE/image-cache``, else ``image-cache/`` in the nearest
    folder above the cohort file that holds a run store (``runs/``; a study's output folder), else beside the
    cohort. Never inside a run folder: the runs of a study (arms, seeds, levels) share it."""
    base = os.environ.get("RADFAIR_CACHE")
    if base:
        return Path(base) / IMAGE_CACHE
    cohort_path = Path(cohort_path).resolve()
    for parent in cohort_path.parents:
        if parent.name == "runs":  # a file inside a run folder: the study folder holding the store
            return parent.parent / IMAGE_CACHE
        if (parent / "runs").is_dir():
            return parent / IMAGE_CACHE
    return cohort_path.parent / IMAGE_CACHE


def file_identity(path: str, what: str) -> tuple[str, int, int]:
    """A cached input's identity: its resolved path, size and modification time (a rewritten file is a new input).
    A missing file is a one-line RadfairInputError naming it as ``what``."""
    resolved = Path(path).resolve()
    try:
        stat = resolved.stat()
    except OSError as exc:
        from ..errors import MISSING_FILE, RadfairInputError

        raise RadfairInputError(MISSING_FILE.format(path=path, what=f"{what} ({exc.strerror})")) from None
    return str(resolved), stat.st_size, stat.st_mtime_ns


def _image_key(path: str) -> str:
    """An image's cache key: ``path|size|mtime`` (:func:`file_identity`)."""
    return "|".join(map(str, file_identity(path, "an image named in the cohort")))


class CachedImages:
    """A read-only (n, size, size) uint8 view of cached images (rows of shared shard memmaps), in cohort order.

    Supports what the batch builders use: ``len``, ``shape``, ``dtype``, integer, slice and integer-array indexing
    (each returns an ndarray). No copy of the shards is made.
    """

    def __init__(self, shards: list[np.ndarray], shard: np.ndarray, row: np.ndarray, size: int):
        self.shards, self.shard, self.row = shards, shard, row
        self.shape = (len(row), size, size)
        self.dtype = np.dtype(np.uint8)

    def __len__(self) -> int:
        return len(self.row)

    def __array__(self, dtype=None, copy=None):
        out = self[np.arange(len(self))]
        return out.astype(dtype) if dtype is not None else out

    def __getitem__(self, index):
        if isinstance(index, int | np.integer):
            return np.asarray(self.shards[self.shard[index]][self.row[index]])
        rows = np.arange(len(self))[index] if isinstance(index, slice) else np.asarray(index)
        out = np.empty((len(rows),) + self.shape[1:], np.uint8)
        shard, row = self.shard[rows], self.row[rows]
        for s in np.unique(shard):
            take = np.flatnonzero(shard == s)
            order = np.argsort(row[take], kind="stable")  # ascending rows: sequential reads of the memmap
            out[take[order]] = self.shards[s][row[take[order]]]
        return out


class FileImages:
    """A read-only (n, size, size) uint8 view of image files that are already 8-bit grey PNGs of ``size`` (``radfair
    degrade``'s working-size images): rows are decoded when indexed, by the decoder the cache uses (the same pixels),
    on ``threads`` threads (Pillow inflates without the GIL), and never stored: a decoded copy of a lossless file of the
    right size would only double its bytes on disk. Same interface as :class:`CachedImages`."""

    def __init__(self, paths: list[str], size: int, threads: int = 4):
        self.paths, self.threads = list(paths), max(1, threads)
        self.shape = (len(self.paths), size, size)
        self.dtype = np.dtype(np.uint8)
        self._pool: ThreadPoolExecutor | None = None

    def __len__(self) -> int:
        return len(self.paths)

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_pool": None}

    def __array__(self, dtype=None, copy=None):
        out = self[np.arange(len(self))]
        return out.astype(dtype) if dtype is not None else out

    def __getitem__(self, index):
        size = self.shape[1]
        if isinstance(index, int | np.integer):
            return decode_image(self.paths[index], size)
        rows = np.arange(len(self))[index] if isinstance(index, slice) else np.asarray(index)
        if len(rows) < 2 * self.threads:
            return decode_chunk([self.paths[r] for r in rows], size) if len(rows) else np.empty((0, size, size), np.uint8)
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.threads)
        pieces = np.array_split(rows, self.threads)
        return np.concatenate(list(self._pool.map(lambda part: decode_chunk([self.paths[r] for r in part], size), pieces)))


def _already_at_size(paths: list[str], size: int) -> bool:
    """Whether ``paths`` are PNGs (by name) and the first is 8-bit grey at ``size`` x ``size`` (by its header): files
    ``radfair degrade`` wrote at the working size, which need no decoded copy (:class:`FileImages`)."""
    from PIL import Image

    if not paths or not all(p.lower().endswith(".png") for p in paths):
        return False
    try:
        with Image.open(paths[0]) as first:
            return first.mode == "L" and first.size == (size, size)
    except OSError:
        return False


def image_array(cohort: pd.DataFrame, cohort_path: str | Path, size: int, *, column: str = "path", threads: int = 2,
                progress: bool = True, persist: bool = True) -> CachedImages | FileImages | np.ndarray:
    """(n, size, size) uint8 images named in ``cohort[column]``, decoded once per (image, size, preprocessing).

    ``persist=False``: images read once (a reconstruction scored, validation reconstructions of a mitigation run)
    are decoded into memory by the same decoder and never cached: the cache would hold every reconstruction of a
    study a second time.

    8-bit grey PNGs already at ``size`` (Study 2's degraded and clean working-size images, read by every
    reconstructor) are not cached: a :class:`FileImages` view decodes the rows of each batch from the files (same
    pixels; measured cost in ``docs/benchmarks.md``). Which way is decided from the names (all ``.png``) and the
    first file's header; a later file of another size is still decoded and resized correctly.

    The cache (:func:`image_cache_root`) holds one folder per (size, preprocessing) with shards of decoded images
    and an index from each image's identity (:func:`_image_key`) to its shard row. Every run, arm, seed and study
    that names the same image file reads the same row (Study 1's ALL reuses the MIMIC and CheXpert rows; Study 2's
    classifier and reconstructors share the clean images); only images not cached yet are decoded, in one new shard.
    Building is resumable (chunks) and guarded by a file lock, so parallel runs of a grid build each image once.
    """
    paths = cohort[column].astype(str).tolist()
    if not persist or _already_at_size(paths, size):
        for path in paths:
            file_identity(path, "an image named in the cohort")  # a missing file: one line naming it
        if persist:
            return FileImages(paths, size, max(threads, usable_cores()))
        return _decode_in_memory(paths, size, threads, progress)
    folder = image_cache_root(cohort_path) / f"{size}px-{IMAGE_PREPROCESSING}"
    folder.mkdir(parents=True, exist_ok=True)
    keys = [_image_key(p) for p in paths]
    index_path = folder / "index.parquet"
    with _locked(folder / "store"):
        index = pd.read_parquet(index_path) if index_path.is_file() else pd.DataFrame({"key": [], "shard": [], "row": []})
        known = dict(zip(index["key"], zip(index["shard"].astype(int), index["row"].astype(int), strict=True), strict=True))
        missing = list(dict.fromkeys(k for k in keys if k not in known))
        if missing:
            shard_name = f"shard-{_key(missing)}.npy"
            to_decode = [k.split("|")[0] for k in missing]
            _decode_into(folder / shard_name, to_decode, size, threads, progress)
            number = int(index["shard"].max()) + 1 if len(index) else 0
            (folder / f"shard-{number:05d}.npy").unlink(missing_ok=True)
            os.replace(folder / shard_name, folder / f"shard-{number:05d}.npy")
            added = pd.DataFrame({"key": missing, "shard": number, "row": np.arange(len(missing))})
            index = pd.concat([index, added], ignore_index=True)
            with atomic_path(index_path) as tmp:
                index.to_parquet(tmp, index=False)
            known.update(zip(added["key"], zip(added["shard"], added["row"], strict=True), strict=True))
        numbers = sorted({known[k][0] for k in keys})
        shards = {n: np.load(folder / f"shard-{n:05d}.npy", mmap_mode="r") for n in numbers}
    local = {n: i for i, n in enumerate(numbers)}
    shard = np.array([local[known[k][0]] for k in keys], dtype=np.int64)
    row = np.array([known[k][1] for k in keys], dtype=np.int64)
    return CachedImages([shards[n] for n in numbers], shard, row, size)


def _decoded_chunks(paths: list[str], size: int, threads: int, progress: bool, *, done: int = 0,
                    note: str = "once") -> Iterator[tuple[int, int, np.ndarray]]:
    """``(lo, hi, images)``: ``paths[lo:hi]`` decoded to (hi - lo, size, size) uint8, in chunks of 256 from ``done`` on
    (the resumable unit of the cache), each chunk split into several pieces per decoding worker."""
    chunk = 256
    with Progress(transient=True, disable=not progress) as bar, _decoder_pool(len(paths) - done, threads) as (pool, workers):
        task = bar.add_task(f"decoding images to {size}x{size} ({note}, {workers} workers)", total=len(paths), completed=done)
        piece = max(1, chunk // (4 * workers))
        for lo in range(done, len(paths), chunk):
            hi = min(lo + chunk, len(paths))
            starts = range(lo, hi, piece)
            parts = pool.map(decode_chunk, [paths[a:min(a + piece, hi)] for a in starts], [size] * len(starts))
            yield lo, hi, np.concatenate(list(parts))
            bar.update(task, completed=hi)


def _decode_in_memory(paths: list[str], size: int, threads: int, progress: bool) -> np.ndarray:
    """(len(paths), size, size) uint8 of ``paths`` decoded as the cache decodes them, held in memory only."""
    out = np.empty((len(paths), size, size), np.uint8)
    for lo, hi, images in _decoded_chunks(paths, size, threads, progress, note="not cached"):
        out[lo:hi] = images
    return out


def _decode_into(final: Path, paths: list[str], size: int, threads: int, progress: bool) -> None:
    """Decode ``paths`` into the uint8 memmap ``final`` (resumable in chunks of 256)."""
    partial, done_marker = final.with_suffix(".partial.npy"), final.with_suffix(".done.txt")
    mode = "r+" if partial.is_file() else "w+"
    array = np.lib.format.open_memmap(partial, mode=mode, dtype=np.uint8, shape=(len(paths), size, size))
    done = int(done_marker.read_text()) if mode == "r+" and done_marker.is_file() else 0
    for lo, hi, images in _decoded_chunks(paths, size, threads, progress, done=done):
        array[lo:hi] = images
        array.flush()
        done_marker.write_text(str(hi))
    del array
    os.replace(partial, final)
    done_marker.unlink(missing_ok=True)


def clean_image_cache(root: str | Path, *, everything: bool = False, dry_run: bool = False) -> tuple[list[Path], int]:
    """Remove unfinished shards (``*.partial.npy`` and their markers), or with ``everything`` the whole cache folder
    ``root`` (an image cache, or the embedding cache); returns the files and their bytes. Nothing else is touched; a
    missing folder is nothing to clean."""
    root = Path(root)
    if not root.is_dir():
        return [], 0
    files = sorted(p for p in root.rglob("*") if p.is_file() and (everything or p.name.endswith((".partial.npy", ".done.txt"))))
    size = int(sum(p.stat().st_size for p in files))
    if not dry_run:
        if everything:
            import shutil

            shutil.rmtree(root)
        else:
            for path in files:
                path.unlink(missing_ok=True)
    return files, size


def cache_bytes(root: str | Path) -> int:
    """Bytes held by the image caches under ``root`` (the shards; their index files are small)."""
    return int(sum(p.stat().st_size for p in Path(root).rglob("shard-*.npy")))


@contextlib.contextmanager
def _decoder_pool(n_images: int, threads: int):
    """(pool, workers): processes over every usable core for large image sets (forkserver: no fork of a process
    holding torch threads), else ``threads`` threads (PIL decodes and resizes without the GIL)."""
    cores = usable_cores()
    if n_images >= PROCESS_POOL_FROM and cores > 1:
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload([decode_chunk.__module__])  # workers fork with the decoder imported, no torch
        with ProcessPoolExecutor(cores, mp_context=context) as pool:
            yield pool, cores
    else:
        with ThreadPoolExecutor(max(threads, 1)) as pool:
            yield pool, max(threads, 1)


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    """A CPU generator seeded by (seed, epoch): the source of each epoch's batch order."""
    return torch.Generator().manual_seed(int.from_bytes(hashlib.blake2b(f"{seed}:{epoch}".encode(), digest_size=7).digest(), "little"))


def epoch_permutation(n: int, seed: int, epoch: int) -> torch.Tensor:
    return torch.randperm(n, generator=epoch_generator(seed, epoch))


class IndexBatches:
    """Batches of rows ``x[idx]``, ``y[idx]`` built by indexing; shuffled per epoch when ``shuffle``.

    In training, a last batch of a single sample is skipped (BatchNorm needs two); which sample that is
    changes every epoch.
    """

    def __init__(self, x, y: torch.Tensor, batch_size: int, *, shuffle: bool, seed: int = 0,
                 device: torch.device | str = "cpu", prefetch: bool = False):
        self.x, self.y, self.batch_size, self.shuffle, self.seed = x, y, batch_size, shuffle, seed
        self.device = torch.device(device)
        self.n_samples = len(y)
        self.prefetch = prefetch
        full, rest = divmod(self.n_samples, batch_size)
        self._n_batches = full + (1 if rest > (1 if shuffle else 0) else 0)

    def __len__(self) -> int:
        return self._n_batches

    def gather_x(self, idx: torch.Tensor) -> torch.Tensor:
        return self.x.index_select(0, idx)

    def _batch(self, idx: torch.Tensor) -> dict:
        x, y = self.gather_x(idx), self.y.index_select(0, idx)
        if self.device.type != "cpu":
            x, y = x.pin_memory().to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)
        return {"x": self.prepare(x), "y": y, "index": idx, "size": len(idx)}

    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def order(self, epoch: int) -> torch.Tensor:
        return epoch_permutation(self.n_samples, self.seed, epoch) if self.shuffle else torch.arange(self.n_samples)

    def epoch(self, epoch: int, start: int = 0) -> Iterator[dict]:
        order = self.order(epoch)
        slices = (order[i * self.batch_size:(i + 1) * self.batch_size] for i in range(start, len(self)))
        if not self.prefetch:
            for idx in slices:
                yield self._batch(idx)
            return
        yield from _prefetched(self._batch, slices)


def _prefetched(make, slices, depth: int = 2) -> Iterator[dict]:
    """Build batches in a background thread (decoding-free numpy copies release the GIL)."""
    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = object()

    def work():
        try:
            for idx in slices:
                q.put(make(idx))
        except BaseException as exc:  # noqa: BLE001 - re-raised in the consumer
            q.put(exc)
        q.put(stop)

    threading.Thread(target=work, daemon=True).start()
    while (item := q.get()) is not stop:
        if isinstance(item, BaseException):
            raise item
        yield item


class RowView:
    """``view[i]`` = ``array[rows[i]]`` for a memmap, without copying it (slices and index arrays)."""

    def __init__(self, array: np.ndarray, rows: np.ndarray):
        self.array, self.rows = array, rows

    def __getitem__(self, index):
        return self.array[self.rows[index if isinstance(index, slice) else np.asarray(index)]]

    def __len__(self) -> int:
        return len(self.rows)


class EmbeddingBatches(IndexBatches):
    """Rows of a float32 embedding tensor held in memory."""


class MemberBatches:
    """The training batches of several members trained together (:class:`radfair.training.steps.EnsembleClassifierStep`).

    Batch ``i`` of an epoch is ``{"x": [S, B, d], "y": [S, B, labels], "index": [S, B], "size": B}`` where row ``s`` is
    exactly batch ``i`` of ``IndexBatches(x, y, batch_size, shuffle=True, seed=seeds[s])``: each member's data order is
    the one its own run draws from its (seed, epoch) generator (:func:`epoch_permutation`), so a resumed epoch replays
    it. Every member has the same rows, hence the same number and sizes of batches.
    """

    def __init__(self, x: torch.Tensor, y: torch.Tensor, batch_size: int, *, seeds: list[int], device: torch.device | str = "cpu"):
        self.members = [IndexBatches(x, y, batch_size, shuffle=True, seed=seed) for seed in seeds]
        self.x, self.y, self.batch_size = x, y, batch_size
        self.device = torch.device(device)
        self.n_samples = len(y)

    def __len__(self) -> int:
        return len(self.members[0])

    def epoch(self, epoch: int, start: int = 0) -> Iterator[dict]:
        orders = torch.stack([member.order(epoch) for member in self.members])  # [S, n]
        members = len(self.members)
        for i in range(start, len(self)):
            idx = orders[:, i * self.batch_size:(i + 1) * self.batch_size]
            flat = idx.reshape(-1)
            x = self.x.index_select(0, flat).view(members, idx.shape[1], -1)
            y = self.y.index_select(0, flat).view(members, idx.shape[1], -1)
            if self.device.type != "cpu":
                x, y = x.pin_memory().to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)
            yield {"x": x, "y": y, "index": idx, "size": idx.shape[1]}


class ImageBatches(IndexBatches):
    """Rows of a uint8 (n, s, s) memmap, scaled to [0, 1], then by ``scaling`` (:data:`PIXEL_SCALINGS`), as
    (b, 1, s, s) float tensors."""

    def __init__(self, images: np.ndarray, y: torch.Tensor, batch_size: int, *, shuffle: bool, seed: int = 0,
                 device: torch.device | str = "cpu", channels_last: bool = False, scaling: str = "standard"):
        super().__init__(images, y, batch_size, shuffle=shuffle, seed=seed, device=device, prefetch=True)
        self.channels_last = channels_last
        self.scaling = scaling

    def gather_x(self, idx: torch.Tensor) -> torch.Tensor:
        if not self.shuffle:  # consecutive rows: one slice of the memmap
            return torch.from_numpy(np.ascontiguousarray(self.x[int(idx[0]):int(idx[-1]) + 1]))
        return torch.from_numpy(self.x[idx.numpy()])

    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        x = scale_pixels(x.unsqueeze(1).float() / 255.0, self.scaling)
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x


class PairedImageBatches(IndexBatches):
    """(degraded, clean) uint8 image pairs as (b, 1, s, s) float tensors in [0, 1] (reconstructor training)."""

    def __init__(self, degraded: np.ndarray, clean: np.ndarray, batch_size: int, *, shuffle: bool, seed: int = 0,
                 device: torch.device | str = "cpu"):
        super().__init__(degraded, torch.zeros(len(clean), 0), batch_size, shuffle=shuffle, seed=seed, device=device, prefetch=True)
        self.clean = clean

    def _batch(self, idx: torch.Tensor) -> dict:
        rows = idx.numpy()
        pair = [torch.from_numpy(np.ascontiguousarray(a[rows])).unsqueeze(1).float().div_(255.0) for a in (self.x, self.clean)]
        if self.device.type != "cpu":
            pair = [t.pin_memory().to(self.device, non_blocking=True) for t in pair]
        return {"degraded": pair[0], "clean": pair[1], "index": idx, "size": len(idx)}
