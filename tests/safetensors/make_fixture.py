#!/usr/bin/env python3
"""An independent safetensors implementation (struct + json only) for septa's tests.

  make_fixture.py write DIR   writes DIR/foreign.safetensors and a sharded model in DIR/sharded/
  make_fixture.py dump FILE   prints FILE's tensors as JSON {name: [dtype, shape, values]}

It shares no code with septa: the header is built by json.dumps with its own key order and the
tensors are laid out in a different order from the header's, as other writers may do.
"""
import json
import os
import struct
import sys

PACK = {"F32": "f", "F64": "d", "F16": "e", "I64": "q", "I32": "i", "U8": "B", "I8": "b"}
SIZE = {"F32": 4, "F64": 8, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "U8": 1, "I8": 1, "BOOL": 1}


def encode(dtype, values):
    if dtype == "BF16":  # the top 16 bits of float32 (values chosen to be exact in bfloat16)
        return b"".join(struct.pack("<f", v)[2:] for v in values)
    return struct.pack("<%d%s" % (len(values), PACK[dtype]), *values)


def decode(dtype, raw):
    n = len(raw) // SIZE[dtype]
    if dtype == "BF16":
        return [struct.unpack("<f", b"\0\0" + raw[2 * i:2 * i + 2])[0] for i in range(n)]
    return list(struct.unpack("<%d%s" % (n, PACK[dtype]), raw))


def write_file(path, tensors, metadata):
    """tensors: list of (name, dtype, shape, values); data laid out in reverse order."""
    header, blobs, offset = {}, [], 0
    for name, dtype, shape, values in reversed(tensors):
        raw = encode(dtype, values)
        header[name] = {"data_offsets": [offset, offset + len(raw)], "shape": shape, "dtype": dtype}
        blobs.append(raw)
        offset += len(raw)
    if metadata is not None:
        header["__metadata__"] = metadata
    # Header order: by name, metadata last (json.dumps keeps insertion order).
    ordered = {k: header[k] for k in sorted(k for k in header if k != "__metadata__")}
    if metadata is not None:
        ordered["__metadata__"] = metadata
    text = json.dumps(ordered, separators=(", ", ": ")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as out:
        out.write(struct.pack("<Q", len(text)))
        out.write(text)
        for blob in blobs:
            out.write(blob)


TENSORS = [
    ("embed.weight", "F32", [2, 3], [0.5, -1.25, 3.0, 1e-3, -7.5, 100.0]),
    ("layer.0.bias", "F16", [4], [1.0, -2.0, 0.099975586, 65504.0]),
    ("layer.0.w", "BF16", [2, 2], [1.0, -0.5, 3.140625, -1024.0]),
    ("step", "I64", [], [42]),
    ("empty", "F32", [0, 3], []),
]


def main():
    if sys.argv[1] == "write":
        root = sys.argv[2]
        os.makedirs(root, exist_ok=True)
        write_file(os.path.join(root, "foreign.safetensors"), TENSORS, {"format": "pt", "note": "caf\u00e9 \"q\""})
        shard_dir = os.path.join(root, "sharded")
        os.makedirs(shard_dir, exist_ok=True)
        parts = [TENSORS[:2], TENSORS[2:]]
        weight_map = {}
        for i, part in enumerate(parts):
            name = "model-%05d-of-%05d.safetensors" % (i + 1, len(parts))
            write_file(os.path.join(shard_dir, name), part, None)
            weight_map.update({t[0]: name for t in part})
        total = sum(len(encode(t[1], t[3])) for t in TENSORS)
        with open(os.path.join(shard_dir, "model.safetensors.index.json"), "w") as out:
            json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, out, indent=2)
    elif sys.argv[1] == "dump":
        with open(sys.argv[2], "rb") as f:
            data = f.read()
        (n,) = struct.unpack("<Q", data[:8])
        header = json.loads(data[8:8 + n])
        meta = header.pop("__metadata__", {})
        out = {"__metadata__": meta}
        for name, info in header.items():
            b, e = info["data_offsets"]
            out[name] = [info["dtype"], info["shape"], decode(info["dtype"], data[8 + n + b:8 + n + e])]
        print(json.dumps(out, sort_keys=True))
    else:
        sys.exit("usage: make_fixture.py write DIR | dump FILE")


if __name__ == "__main__":
    main()
