"""septa.merge: the Python entry of the merge engine (files written and read with struct/json)."""
import json
import os
import struct

import numpy as np
import pytest

import septa


def write_safetensors(path, tensors):
    """tensors: {name: float32 ndarray}; an independent minimal writer."""
    header, blobs, offset = {}, [], 0
    for name, array in tensors.items():
        raw = np.ascontiguousarray(array, dtype="<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(array.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as out:
        out.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    header.pop("__metadata__", None)
    out = {}
    for name, info in header.items():
        begin, end = info["data_offsets"]
        dtype = {"F32": "<f4", "F16": "<f2"}[info["dtype"]]
        out[name] = np.frombuffer(data[8 + n + begin:8 + n + end], dtype=dtype).astype(np.float32).reshape(info["shape"])
    return out


@pytest.fixture
def models(tmp_path):
    rng = np.random.default_rng(0)
    base = {"w": rng.normal(size=(6, 5)).astype(np.float32), "b": rng.normal(size=(5,)).astype(np.float32)}
    a = {k: v + rng.normal(scale=0.1, size=v.shape).astype(np.float32) for k, v in base.items()}
    b = {k: v + rng.normal(scale=0.1, size=v.shape).astype(np.float32) for k, v in base.items()}
    for name, tensors in (("base", base), ("a", a), ("b", b)):
        write_safetensors(tmp_path / (name + ".safetensors"), tensors)
    return tmp_path, base, a, b


def ties_reference(base, deltas, weights, densities, lam=1.0):
    """mergekit's TIES in numpy: trim (stable order for ties), elect, disjoint mean."""
    trimmed = []
    for d, density in zip(deltas, densities):
        flat = d.reshape(-1)
        k = int(density * flat.size)
        keep = np.argsort(-np.abs(flat), kind="stable")[:k]
        t = np.zeros_like(flat)
        t[keep] = flat[keep]
        trimmed.append(t.reshape(d.shape))
    w = np.array(weights, dtype=np.float32).reshape(-1, *([1] * base.ndim))
    wd = np.stack(trimmed) * w
    sign = np.where(wd.sum(axis=0) >= 0, 1.0, -1.0)
    mask = np.sign(wd) == sign
    divisor = (w * mask).sum(axis=0)
    divisor[divisor == 0] = 1
    return base + lam * (wd * mask).sum(axis=0) / divisor


def test_ties_from_a_dict_matches_numpy(models):
    root, base, a, b = models
    result = septa.merge({
        "merge_method": "ties",
        "base_model": str(root / "base.safetensors"),
        "models": [{"model": str(root / "a.safetensors"), "parameters": {"weight": 1.0, "density": 0.5}},
                   {"model": root / "b.safetensors", "parameters": {"weight": 0.5, "density": 0.4}}],
        "parameters": {"lambda": 0.7},
    }, root / "out", threads=2)
    assert result["files"] == ["model.safetensors"]
    merged = read_safetensors(root / "out" / "model.safetensors")
    for name in base:
        expected = ties_reference(base[name], [a[name] - base[name], b[name] - base[name]], [1.0, 0.5], [0.5, 0.4], 0.7)
        np.testing.assert_allclose(merged[name], expected, rtol=1e-5, atol=1e-6)


def test_yaml_config_with_overrides_and_dry_run(models):
    root, base, a, _ = models
    config = root / "merge.yml"
    config.write_text("merge_method: linear\nmodels:\n  - model: %s\n    parameters: {weight: 1}\n"
                      "  - model: %s\n    parameters: {weight: 3}\n" % (root / "base.safetensors", root / "a.safetensors"))
    plan = septa.merge(config, root / "dry", dry_run=True)["plan"]
    assert "merge_method: linear" in plan and "w [6, 5] F32->F32 linear" in plan
    assert not (root / "dry").exists()
    # F16 output in shards of at most 40 bytes: w (60 bytes) and b (10 bytes) in one shard each.
    result = septa.merge(str(config), root / "half", dtype="float16", out_shard_size="40B")
    assert result["files"] == ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors",
                               "model.safetensors.index.json"]
    index = json.loads((root / "half" / "model.safetensors.index.json").read_text())
    merged = {}
    for f in sorted(set(index["weight_map"].values())):
        merged.update(read_safetensors(root / "half" / f))
    for name in base:
        np.testing.assert_allclose(merged[name], (base[name] + 3 * a[name]) / 4, rtol=1e-3, atol=1e-3)


def test_errors_name_file_and_tensor_and_write_nothing(models):
    root, base, a, _ = models
    write_safetensors(root / "bad.safetensors", {"w": a["w"][:3], "b": a["b"]})
    with pytest.raises(septa.ModelError, match=r"bad\.safetensors: tensor 'w': shape \[3, 5\], expected \[6, 5\]"):
        septa.merge({"merge_method": "task_arithmetic", "base_model": str(root / "base.safetensors"),
                     "models": [{"model": str(root / "bad.safetensors"), "parameters": {"weight": 1}}]}, root / "out")
    assert not (root / "out").exists()
    with pytest.raises(ValueError, match="unknown key 'wieght'"):
        septa.merge({"merge_method": "ties", "base_model": str(root / "base.safetensors"),
                     "models": [{"model": str(root / "a.safetensors"), "parameters": {"wieght": 1}}]}, root / "out")
    with pytest.raises(ValueError, match="not one of"):
        septa.merge({"merge_method": "magic", "models": []}, root / "out")
    with pytest.raises(OSError):
        septa.merge({"merge_method": "linear", "models": [{"model": str(root / "none.safetensors"),
                                                          "parameters": {"weight": 1}}]}, root / "out")
