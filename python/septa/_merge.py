"""septa.merge: merge separately trained checkpoints (safetensors), as ``septa merge`` does."""

import os

from . import _septa

__all__ = ["merge"]


def merge(config=None, out_dir=None, *, dry_run=False, threads=None, out_shard_size=None, **settings):
    """Merge checkpoints into ``out_dir`` (``model.safetensors``, or shards plus the index).

    ``config`` is the path of a mergekit-style YAML file, or a dict of the same shape::

        septa.merge({
            "merge_method": "ties",            # linear, task_arithmetic, ties,
                                               # dare_linear, dare_ties, slerp
            "base_model": "base/",
            "models": [{"model": "a/", "parameters": {"weight": 1.0, "density": 0.5}},
                       {"model": "b/", "parameters": {"weight": 0.5, "density": 0.5}}],
            "parameters": {"normalize": True, "lambda": 1.0},   # "t" for slerp
            "dtype": "float16",                # output dtype; computation is float32
            "seed": 0,                         # DARE's random drops
        }, "merged/")

    A model is a ``.safetensors`` file, a directory with ``model.safetensors`` or shards and
    ``model.safetensors.index.json``, or ``"BASE+ADAPTER"`` (a PEFT LoRA adapter directory
    merged into BASE). Keyword arguments (``merge_method=...``, ``models=[...]``, ...) override
    the config's top-level keys. ``threads`` (default: all cores) does not change the output;
    ``out_shard_size`` is bytes per shard (an int or a string such as ``"5GB"``).

    With ``dry_run=True`` nothing is written and the result's ``"plan"`` holds the resolved
    per-tensor plan. Returns a dict: ``files``, ``tensors``, ``input_bytes``, ``output_bytes``,
    ``plan``.

    Raises ``septa.ModelError`` (a ValueError) for corrupt, truncated or mismatched checkpoints
    (the message names the file, the tensor, what was expected and what was found),
    ValueError for a bad config, OSError for unreadable or unwritable files, and
    KeyboardInterrupt on Ctrl-C; nothing is left in ``out_dir`` when one is raised.
    """
    config_path = ""
    values = {}
    if isinstance(config, dict):
        values.update(config)
    elif config is not None:
        config_path = os.fspath(config)
    values.update(settings)
    if threads is not None:
        values["threads"] = threads
    if out_shard_size is not None:
        values["out_shard_size"] = out_shard_size
    if out_dir is None and not dry_run:
        raise TypeError("merge() needs out_dir unless dry_run=True")
    return _septa.merge(config_path, values, os.fspath(out_dir) if out_dir is not None else "", dry_run)
