"""The versioned model file: one JSON document, weights packed as base64 little-endian arrays.

    {"format": "modelyard-router-model", "format_version": 1,
     "feature_set": {"dim_bits": 20, "max_words": 400, "blocks": {"words": {"ngrams": 2}, ...}},
     "heads": {"small_ok": {"hyper": {...}, "updates": N, "weights":
               {"index": b64 uint32[], "value": b64 float32[]}}, "large_ok": {...}},
     "training": {"data_digest": sha256, "rows": N, "group_by": "...", "groups": [...], "sources": [...], ...},
     "metrics": {...}, "routing": {"thresholds": {"quality": t, "balanced": t, "cost": t}, ...}}

``training.groups`` names every group (an MMLU subject, a tenant, a writing style) the model was
trained on, so an evaluation can leave those rows out. Optimiser state (FTRL's z and n) is written
only for a learner's checkpoint (``with_optimizer``): a served model needs the weights alone. A file
of another format, a newer version or an unknown feature block is refused with a message saying so.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import sys
from array import array
from collections.abc import Iterable, Mapping
from pathlib import Path

from .features import FeatureSet
from .linear import FtrlLogistic
from .model import HEADS, Example, RouterModel

FORMAT = "modelyard-router-model"
FORMAT_VERSION = 1


def _pack(kind: str, values: Iterable) -> str:
    arr = array(kind, values)
    if sys.byteorder != "little":
        arr.byteswap()
    return base64.b64encode(arr.tobytes()).decode("ascii")


def _unpack(kind: str, text: str) -> array:
    arr = array(kind)
    arr.frombytes(base64.b64decode(text))
    if sys.byteorder != "little":
        arr.byteswap()
    return arr


def _pack_map(values: Mapping[int, float]) -> dict:
    keys = sorted(values)
    return {"index": _pack("I", keys), "value": _pack("f", (values[k] for k in keys))}


def _unpack_map(obj: Mapping) -> dict[int, float]:
    keys, vals = _unpack("I", obj["index"]), _unpack("f", obj["value"])
    if len(keys) != len(vals):
        raise ValueError("model file: index and value arrays differ in length")
    return dict(zip(keys, vals))


def data_digest(examples: Iterable[Example]) -> str:
    """sha256 over each example's text and labels, in order: names the exact training data."""
    h = hashlib.sha256()
    for e in examples:
        h.update(json.dumps([e.query.text, e.slm_ok, e.llm_ok, e.group], ensure_ascii=False).encode())
        h.update(b"\n")
    return h.hexdigest()


def to_json(
    model: RouterModel,
    *,
    training: Mapping | None = None,
    metrics: Mapping | None = None,
    routing: Mapping | None = None,
    with_optimizer: bool = False,
) -> dict:
    heads = {}
    for name in HEADS:
        head = model.heads[name]
        entry = {"hyper": head.hyper(), "updates": head.updates, "weights": _pack_map(head.weights)}
        if with_optimizer:
            entry["z"], entry["n"] = _pack_map(head.z), _pack_map(head.n)
        heads[name] = entry
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "feature_set": model.feature_set.to_json(),
        "heads": heads,
        "training": dict(training or {}),
        "metrics": dict(metrics or {}),
        "routing": dict(routing or {}),
    }


def from_json(doc: Mapping) -> RouterModel:
    if doc.get("format") != FORMAT:
        raise ValueError(f"not a router model file (format {doc.get('format')!r}, expected {FORMAT!r})")
    version = doc.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ValueError(f"router model format_version {version!r} is newer than this reader ({FORMAT_VERSION})")
    try:
        feature_set = FeatureSet.from_json(doc["feature_set"])
        heads = {}
        for name in HEADS:
            entry = doc["heads"][name]
            state = {"hyper": entry["hyper"], "updates": entry.get("updates", 0), "weights": _unpack_map(entry["weights"])}
            if "z" in entry:
                state["z"], state["n"] = _unpack_map(entry["z"]), _unpack_map(entry["n"])
            heads[name] = FtrlLogistic.from_state(state)
    except KeyError as exc:
        raise ValueError(f"router model file: missing field {exc.args[0]!r}") from None
    except (TypeError, binascii.Error) as exc:
        raise ValueError(f"router model file: malformed ({exc})") from None
    return RouterModel(feature_set, heads)


def save(model: RouterModel, path: str | Path, **meta) -> dict:
    doc = to_json(model, **meta)
    write(doc, path)
    return doc


def write(doc: Mapping, path: str | Path) -> None:
    tmp = Path(str(path) + ".tmp")
    tmp.write_text(json.dumps(doc, separators=(",", ":")))
    tmp.replace(path)  # a reader never sees half a file


def load(path: str | Path) -> tuple[RouterModel, dict]:
    try:
        doc = json.loads(Path(path).read_text())
    except OSError as exc:
        raise ValueError(f"{path}: cannot read the router model ({exc.strerror})") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not a router model file (not JSON: {exc.msg})") from None
    if not isinstance(doc, dict):
        raise ValueError(f"{path}: not a router model file")
    return from_json(doc), doc


def trained_groups(doc: Mapping) -> frozenset[str]:
    """The groups a model file says it was trained on (empty when it does not say)."""
    return frozenset(str(g) for g in (doc.get("training") or {}).get("groups") or ())


def canonical(doc: Mapping) -> bytes:
    """The model file's JSON with sorted keys: what ``digest`` hashes (and what a store may keep)."""
    return json.dumps(doc, separators=(",", ":"), sort_keys=True).encode()


def digest(doc: Mapping) -> str:
    """sha256 of the canonical JSON: a model's identity (decisions name its first 12 hex digits)."""
    return hashlib.sha256(canonical(doc)).hexdigest()
