"""CXR Foundation embedding files, read and written without TensorFlow.

* MIMIC (PhysioNet "generalized image embeddings"): one TFRecord per DICOM at
  ``files/pXX/pSUBJECT/sSTUDY/<dicom_id>.tfrecord`` holding one ``tf.train.Example`` with features
  ``embedding`` (float_list, 1376 values), ``image/id`` and ``image/format`` (bytes_list).
* CheXpert: ``train.npz`` and ``validation.npz`` (rows of ``train.csv`` and ``valid.csv``), each a
  mapping from the CheXpert ``Path`` (``CheXpert-v1.0/train/patient00001/study1/view1_frontal.jpg``)
  to a 1376-float vector. Keys are matched on the part after the release data folder
  (:func:`chexpert_key`), so the store serves the full and the ``-small`` release alike.

TFRecord framing: ``uint64 length, uint32 masked_crc32c(length), data, uint32 masked_crc32c(data)``.
The protobuf subset needed (Example > Features > map<string, Feature>) is encoded and decoded here.
"""

from __future__ import annotations

import re
import struct
from pathlib import Path

import crc32c
import numpy as np

from ..errors import BAD_VALUES, MISSING_FILE, RadfairInputError, preview
from ..readers import decoding, read_npz

EMBEDDING_DIM = 1376
#: The CheXpert store files (CXR Foundation ships both); every one present is read.
CHEXPERT_STORES = ("train.npz", "validation.npz")
_CHEXPERT_PREFIX = re.compile(r"^(?:.*/)?CheXpert-v1\.0(?:-small)?/")
#: Store file for datasets other than CheXpert and MIMIC: ``{image_id: vector}`` (written by ``radfair embed``).
GENERIC_STORE = "embeddings.npz"


def _masked_crc(data: bytes) -> int:
    crc = crc32c.crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field."""
    return _varint((number << 3) | 2) + _varint(len(payload)) + payload


def encode_example(features: dict[str, np.ndarray | bytes]) -> bytes:
    """Serialise a ``tf.train.Example``: float arrays -> float_list, bytes -> bytes_list."""
    entries = b""
    for key in sorted(features):
        value = features[key]
        if isinstance(value, bytes):
            feature = _field(1, _field(1, value))  # Feature.bytes_list(1) > BytesList.value(1)
        else:
            packed = np.asarray(value, dtype="<f4").tobytes()
            feature = _field(2, _field(1, packed))  # Feature.float_list(2) > FloatList.value(1, packed)
        entries += _field(1, _field(1, key.encode()) + _field(2, feature))  # Features.feature map entry
    return _field(1, entries)  # Example.features(1)


def _read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def _fields(buf: bytes):
    """Yield (field number, wire type, payload) for a protobuf message."""
    pos = 0
    while pos < len(buf):
        tag, pos = _read_varint(buf, pos)
        number, wire = tag >> 3, tag & 7
        if wire == 2:
            length, pos = _read_varint(buf, pos)
            yield number, wire, buf[pos : pos + length]
            pos += length
        elif wire == 0:
            value, pos = _read_varint(buf, pos)
            yield number, wire, value
        elif wire == 5:
            yield number, wire, buf[pos : pos + 4]
            pos += 4
        elif wire == 1:
            yield number, wire, buf[pos : pos + 8]
            pos += 8
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")


def decode_example(data: bytes) -> dict[str, np.ndarray | list[bytes]]:
    """Parse a serialised ``tf.train.Example`` into {key: float32 array | list of bytes | int64 array}."""
    out: dict = {}
    for number, _, features in _fields(data):
        if number != 1:
            continue
        for _, _, entry in _fields(features):
            key, feature = None, b""
            for n, _, payload in _fields(entry):
                if n == 1:
                    key = payload.decode()
                elif n == 2:
                    feature = payload
            for kind, _, inner in _fields(feature):
                values = [(wire, p) for _, wire, p in _fields(inner)]
                if kind == 2:  # float_list: packed (wire 2) or repeated fixed32 (wire 5)
                    raw = b"".join(p for _, p in values)
                    out[key] = np.frombuffer(raw, dtype="<f4").astype(np.float32)
                elif kind == 1:
                    out[key] = [p for _, p in values]
                elif kind == 3:
                    ints = []
                    for wire, p in values:
                        if wire == 0:
                            ints.append(p)
                        else:
                            pos = 0
                            while pos < len(p):
                                v, pos = _read_varint(p, pos)
                                ints.append(v)
                    out[key] = np.array(ints, dtype=np.int64)
    return out


def write_tfrecord(path: str | Path, records: list[bytes]) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:
        for data in records:
            length = struct.pack("<Q", len(data))
            fh.write(length + struct.pack("<I", _masked_crc(length)) + data + struct.pack("<I", _masked_crc(data)))


def read_tfrecord(path: str | Path, verify: bool = True) -> list[bytes]:
    """The serialised records of a TFRecord file; CRCs checked when ``verify``."""
    path = Path(path)
    if not path.is_file():
        raise RadfairInputError(MISSING_FILE.format(path=path, what="embedding TFRecord"))
    buf = path.read_bytes()
    records, pos = [], 0
    while pos < len(buf):
        if pos + 12 > len(buf):
            raise RadfairInputError(f"{path}: truncated TFRecord header at byte {pos}")
        length_bytes = buf[pos : pos + 8]
        (length,) = struct.unpack("<Q", length_bytes)
        (length_crc,) = struct.unpack("<I", buf[pos + 8 : pos + 12])
        data = buf[pos + 12 : pos + 12 + length]
        if len(data) != length or pos + 16 + length > len(buf):
            raise RadfairInputError(f"{path}: truncated TFRecord record at byte {pos}")
        (data_crc,) = struct.unpack("<I", buf[pos + 12 + length : pos + 16 + length])
        if verify and (length_crc != _masked_crc(length_bytes) or data_crc != _masked_crc(data)):
            raise RadfairInputError(f"{path}: TFRecord checksum mismatch at byte {pos} (corrupt file)")
        records.append(data)
        pos += 16 + length
    return records


def write_mimic_embedding(path: str | Path, dicom_id: str, vector: np.ndarray) -> None:
    example = encode_example({"embedding": vector, "image/id": dicom_id.encode(), "image/format": b"png"})
    write_tfrecord(path, [example])


def read_mimic_embedding(path: str | Path) -> tuple[str, np.ndarray]:
    """(image id, float vector) from one MIMIC CXR-Foundation TFRecord (1376 floats for CXR Foundation;
    stores written by ``radfair embed`` hold their encoder's width)."""
    records = read_tfrecord(path)
    with decoding(path, "a TFRecord holding one tf.train.Example"):
        example = decode_example(records[0])
    vector = example.get("embedding")
    if vector is None or not isinstance(vector, np.ndarray) or len(vector) == 0:
        got = None if vector is None else len(vector)
        raise RadfairInputError(BAD_VALUES.format(path=path, column="embedding", values=preview([got]), expected="expected a float_list of embedding values"))
    image_id = example.get("image/id", [b""])[0].decode()
    return image_id, vector


def read_chexpert_embeddings(path: str | Path) -> dict[str, np.ndarray]:
    """{CheXpert Path: vector} from ``train.npz`` (a pickled dict or named arrays)."""
    arrays = read_npz(path, "CheXpert embeddings .npz")
    with decoding(path, "CheXpert embeddings .npz (a dict of Path -> vector, or named arrays)"):
        if len(arrays) == 1 and next(iter(arrays.values())).dtype == object:
            return dict(next(iter(arrays.values())).item())
        return arrays


def chexpert_key(path: str) -> str:
    """A CheXpert ``Path`` (or store key) without its release data folder:
    ``CheXpert-v1.0-small/valid/patient64541/study1/view1_frontal.jpg`` -> ``valid/patient64541/study1/view1_frontal.jpg``.
    A key without that folder is returned unchanged."""
    return _CHEXPERT_PREFIX.sub("", str(path).replace("\\", "/"), count=1)


def read_chexpert_store(folder: str | Path) -> dict[str, np.ndarray]:
    """{:func:`chexpert_key`: vector} from every ``train.npz`` / ``validation.npz`` in ``folder``."""
    mapping: dict[str, np.ndarray] = {}
    for name in CHEXPERT_STORES:
        if (Path(folder) / name).is_file():
            mapping.update({chexpert_key(k): v for k, v in read_chexpert_embeddings(Path(folder) / name).items()})
    return mapping


def _find_below(root: Path, predicate, max_depth: int = 4) -> Path | None:
    """The first folder at or below ``root`` (breadth first) satisfying ``predicate``; None if none (or no ``root``)."""
    level = [Path(root)] if Path(root).is_dir() else []
    for _ in range(max_depth + 1):
        for folder in level:
            if predicate(folder):
                return folder
        level = sorted(c for f in level for c in f.iterdir() if c.is_dir() and not c.name.startswith(("p1", "patient", ".")))
        if not level:
            return None
    return None


def load_cohort_embeddings(cohort, root: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Embedding matrix (n, d) aligned with the cohort rows, and a mask of rows that have one.

    CheXpert rows are looked up by ``Path`` (the part after ``CheXpert-v1.0[-small]/``) in both
    ``train.npz`` and ``validation.npz`` of the first folder below ``root`` holding either; MIMIC rows by
    ``files/pXX/pSUBJECT/sSTUDY/<dicom_id>.tfrecord`` below the first folder holding a ``files``
    tree of TFRecords; rows of any other dataset by ``image_id`` in the first ``embeddings.npz`` below
    ``root`` (written by ``radfair embed``). ``d`` is the store's width (1376 for CXR Foundation); a
    store whose vectors differ in width is an error. Rows without a vector are ``False`` in the mask;
    callers report them with a count (``radfair train`` refuses them unless told to drop them).
    """
    root = Path(root)
    vectors: dict[int, np.ndarray] = {}
    datasets = set(cohort["dataset"])
    if "chexpert" in datasets:
        folder = _find_below(root, lambda f: any((f / name).is_file() for name in CHEXPERT_STORES))
        mapping = read_chexpert_store(folder) if folder else {}
        for i, (dataset, image_id) in enumerate(zip(cohort["dataset"], cohort["image_id"], strict=True)):
            key = chexpert_key(image_id.removeprefix("chexpert:"))
            if dataset == "chexpert" and key in mapping:
                vectors[i] = mapping[key]
    if "mimic" in datasets:
        folder = _find_below(root, lambda f: (f / "files").is_dir() and any((f / "files").rglob("*.tfrecord")))
        if folder is not None:
            for i, (dataset, path) in enumerate(zip(cohort["dataset"], cohort["path"], strict=True)):
                if dataset != "mimic":
                    continue
                rel = Path(*Path(path).parts[-5:]).with_suffix(".tfrecord")  # files/pXX/pSUBJ/sSTUDY/<id>
                record = folder / rel
                if record.is_file():
                    vectors[i] = read_mimic_embedding(record)[1]
    if datasets - {"chexpert", "mimic"}:
        folder = _find_below(root, lambda f: (f / GENERIC_STORE).is_file())
        mapping = read_chexpert_embeddings(folder / GENERIC_STORE) if folder else {}
        for i, (dataset, image_id) in enumerate(zip(cohort["dataset"], cohort["image_id"], strict=True)):
            if dataset not in ("chexpert", "mimic") and image_id in mapping:
                vectors[i] = mapping[image_id]
    widths = {len(v) for v in vectors.values()}
    if len(widths) > 1:
        raise RadfairInputError(f"{root}: embedding store mixes vector widths {sorted(widths)}; expected one width")
    out = np.zeros((len(cohort), widths.pop() if widths else EMBEDDING_DIM), dtype=np.float32)
    found = np.zeros(len(cohort), dtype=bool)
    for i, vector in vectors.items():
        out[i], found[i] = vector, True
    return out, found
