"""A run's history: `metrics.jsonl` (one row per epoch) and `steps.npz` (every step's loss and layer statistics).

Each checkpoint records the checksums of both files as they were when it was committed (see `jaxmlp.runs.lifecycle`);
`History.checked` gives the rows and step log of a checkpoint, checked against those checksums, and remembers
what it checked, so one command hashes the history once however often it asks.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import zipfile

import numpy as np

from jaxmlp.errors import ConfigError
from jaxmlp.files import sha256_text, write_atomic

STEP_ARRAYS = {"loss", "stats_step", "grad_norm", "update_ratio", "layers"}


def metrics_text(rows: list[dict]) -> str:
    return "".join(json.dumps(r) + "\n" for r in rows)


def steps_digest(arrays: dict[str, np.ndarray]) -> str:
    """A checksum of the step log's arrays (names, dtypes, shapes and bytes)."""
    h = hashlib.sha256()
    for name, a in sorted(arrays.items()):
        h.update(f"{name}:{a.dtype.str}:{a.shape}:".encode())
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def steps_before(arrays: dict[str, np.ndarray], step: int) -> dict[str, np.ndarray]:
    """The step log as it stood before step `step` ran: its losses, and the layer statistics taken before it."""
    if set(arrays) != STEP_ARRAYS:
        return arrays  # damaged or missing: its checksum will not match
    keep = arrays["stats_step"] < step
    return {
        "loss": arrays["loss"][:step],
        **{k: arrays[k][keep] for k in ("stats_step", "grad_norm", "update_ratio")},
        "layers": arrays["layers"],
    }


def digests(metrics: list[dict], steps: dict[str, np.ndarray]) -> dict[str, str]:
    """The checksums a checkpoint records of the history committed with it."""
    return {"metrics_sha256": sha256_text(metrics_text(metrics)), "steps_sha256": steps_digest(steps)}


class History:
    """The metrics rows and step log in `folder` (a run's folder, or its staging folder before the first commit)."""

    def __init__(self, folder: str):
        self.folder = folder
        self._checked: tuple[tuple, tuple[list[dict], dict[str, np.ndarray]]] | None = None

    metrics_path = property(lambda self: os.path.join(self.folder, "metrics.jsonl"))
    steps_path = property(lambda self: os.path.join(self.folder, "steps.npz"))

    def read_metrics(self) -> list[dict]:
        if not os.path.exists(self.metrics_path):
            return []
        try:
            with open(self.metrics_path) as f:
                rows = [json.loads(line) for line in f if line.strip()]
            if not all(isinstance(r, dict) and isinstance(r.get("epoch"), int) for r in rows):
                raise ValueError("a line is not an epoch's row")
        except (ValueError, UnicodeDecodeError) as e:
            raise ConfigError(f"{self.metrics_path}: damaged ({e}); restore it or start the run again") from None
        return rows

    def read_steps(self) -> dict[str, np.ndarray]:
        """Per optimizer step: loss, and per layer the gradient norm and update/param ratio."""
        if not os.path.exists(self.steps_path):
            return {}
        try:
            with np.load(self.steps_path) as f:
                return dict(f)
        except (ValueError, OSError, EOFError, zipfile.BadZipFile) as e:
            raise ConfigError(f"{self.steps_path}: damaged ({e}); restore it or start the run again") from None

    def write(self, metrics: list[dict], steps: dict[str, np.ndarray]) -> None:
        """Both files, each atomically (a checkpoint committed after this records their checksums)."""
        write_atomic(self.metrics_path, metrics_text(metrics))
        buf = io.BytesIO()
        np.savez(buf, **steps)
        write_atomic(self.steps_path, buf.getvalue())
        self._checked = None

    def checked(self, meta: dict, step: int) -> tuple[list[dict], dict[str, np.ndarray]]:
        """The metrics rows and step log as they were when the checkpoint (`meta`, at `step`) was committed."""
        key = (self.folder, step, meta["epoch"], meta.get("metrics_sha256"), meta.get("steps_sha256"))
        if self._checked is not None and self._checked[0] == key:
            metrics, steps = self._checked[1]
            return list(metrics), dict(steps)  # copies: the caller may extend them
        metrics = [r for r in self.read_metrics() if r["epoch"] <= meta["epoch"]]
        _check(self.metrics_path, sha256_text(metrics_text(metrics)), meta.get("metrics_sha256"))
        steps = steps_before(self.read_steps(), step)
        _check(self.steps_path, steps_digest(steps), meta.get("steps_sha256"))
        self._checked = (key, (list(metrics), dict(steps)))
        return metrics, steps


def _check(path: str, digest: str, expected: str | None) -> None:
    if expected is not None and digest != expected:
        what = "is missing" if not os.path.exists(path) else "does not match the latest checkpoint"
        raise ConfigError(
            f"{path} {what}; restore it from a copy, or start the run again with --overwrite "
            "(a resume needs the full history to continue exactly)"
        )
