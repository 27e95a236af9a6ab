import crc32c
import numpy as np
import pandas as pd
import pytest

from radfair.data.embeddings import (
    EMBEDDING_DIM,
    decode_example,
    encode_example,
    read_chexpert_embeddings,
    read_mimic_embedding,
    read_tfrecord,
    write_mimic_embedding,
)
from radfair.errors import RadfairInputError


def test_crc32c_known_answer():
    assert crc32c.crc32c(b"123456789") == 0xE3069283  # RFC 3720 check value


def test_example_roundtrip_packed_and_bytes():
    vec = np.arange(5, dtype=np.float32) / 3
    out = decode_example(encode_example({"embedding": vec, "image/id": b"abc"}))
    assert np.array_equal(out["embedding"], vec)
    assert out["image/id"] == [b"abc"]


def test_decodes_unpacked_float_list():
    # Feature.float_list with two non-packed fixed32 values (wire type 5), as some writers emit
    floats = b"".join(b"\x0d" + np.float32(v).tobytes() for v in (1.5, -2.0))
    feature = b"\x12" + bytes([len(floats)]) + floats
    entry = b"\x0a\x01e" + b"\x12" + bytes([len(feature)]) + feature
    features = b"\x0a" + bytes([len(entry)]) + entry
    example = b"\x0a" + bytes([len(features)]) + features
    assert decode_example(example)["e"].tolist() == [1.5, -2.0]


def test_tfrecord_roundtrip_and_corruption(tmp_path):
    vec = np.random.default_rng(0).normal(size=EMBEDDING_DIM).astype(np.float32)
    path = tmp_path / "files/p10/p10000001/s50000001/d.tfrecord"
    write_mimic_embedding(path, "d", vec)
    image_id, got = read_mimic_embedding(path)
    assert image_id == "d" and np.array_equal(got, vec)
    data = bytearray(path.read_bytes())
    data[40] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(RadfairInputError, match="checksum mismatch"):
        read_tfrecord(path)


def test_synthetic_embeddings_match_cohort_paths(synth_root):
    root, _ = synth_root
    mapping = read_chexpert_embeddings(root / "chexpert-embeddings/train.npz")
    train = pd.read_csv(root / "chexpert/CheXpert-v1.0/train.csv")
    assert set(train["Path"]) == set(mapping)
    assert next(iter(mapping.values())).shape == (EMBEDDING_DIM,)
    one = next((root / "mimic-cxr-embeddings/files").rglob("*.tfrecord"))
    image_id, vec = read_mimic_embedding(one)
    assert one.stem == image_id and vec.shape == (EMBEDDING_DIM,)


def test_E01_chexpert_embedding_keys(tmp_path):
    """CXR-Foundation CheXpert store: train.npz + validation.npz keyed by CheXpert-v1.0/... paths; read both,
    and match the full and the -small release on the part after the release folder."""
    import warnings

    from radfair.data.embeddings import chexpert_key, load_cohort_embeddings

    rng = np.random.default_rng(0)
    parts = {"train": [f"train/patient{i:05d}/study1/view1_frontal.jpg" for i in range(1, 5)],
             "valid": ["valid/patient64541/study1/view1_frontal.jpg", "valid/patient64542/study1/view1_frontal.jpg"]}
    store = tmp_path / "embeddings"
    store.mkdir()
    vectors = {}
    for part, npz in (("train", "train.npz"), ("valid", "validation.npz")):
        d = {f"CheXpert-v1.0/{p}": rng.normal(size=EMBEDDING_DIM).astype(np.float32) for p in parts[part]}
        vectors.update(d)
        np.savez(store / npz, d)  # one pickled dict, as the real store holds
    for folder in ("CheXpert-v1.0", "CheXpert-v1.0-small"):
        paths = [f"{folder}/{p}" for part in parts.values() for p in part] + [f"{folder}/train/patient09999/study1/view1_frontal.jpg"]
        cohort = pd.DataFrame({"dataset": "chexpert", "image_id": [f"chexpert:{p}" for p in paths], "path": paths})
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            matrix, found = load_cohort_embeddings(cohort, tmp_path)
        assert found.tolist() == [True] * 6 + [False], folder
        np.testing.assert_array_equal(matrix[4], vectors["CheXpert-v1.0/valid/patient64541/study1/view1_frontal.jpg"])
    assert chexpert_key("CheXpert-v1.0-small/valid/patient1/study1/view1_frontal.jpg") == "valid/patient1/study1/view1_frontal.jpg"


def test_synthetic_chexpert_store_is_written_like_the_real_one(synth_root):
    """train.npz holds train.csv rows, validation.npz valid.csv rows: every CheXpert image has an embedding."""
    from radfair.data.cohort import build_cohort
    from radfair.data.embeddings import load_cohort_embeddings

    root, _ = synth_root
    valid = pd.read_csv(root / "chexpert/CheXpert-v1.0/valid.csv")
    assert set(read_chexpert_embeddings(root / "chexpert-embeddings/validation.npz")) == set(valid["Path"])
    cohort, _ = build_cohort("all", root)
    _, found = load_cohort_embeddings(cohort, root)
    assert found.all()
