"""A run directory: where one training run keeps everything it produced.

runs/<name>/
  config.json      the full TrainConfig (what `--resume` and `eval` rebuild from)
  metrics.jsonl    one JSON line per epoch
  steps.npz        every step's loss, per-layer gradient norm and update/param ratio
  checkpoints/     orbax checkpoints (params, batch stats, optimizer state, step, key)
  figures/         PNGs from `jaxmlp plot`
"""

from __future__ import annotations

import datetime
import io
import json
import os
import shutil

import numpy as np

from jaxmlp.checkpoint import Checkpointer
from jaxmlp.config import TrainConfig
from jaxmlp.errors import ConfigError
from jaxmlp.files import write_atomic, write_json


class RunDir:
    def __init__(self, path: str):
        self.path = path
        self.config_path = os.path.join(path, "config.json")
        self.metrics_path = os.path.join(path, "metrics.jsonl")
        self.steps_path = os.path.join(path, "steps.npz")
        self.checkpoint_dir = os.path.join(path, "checkpoints")
        self.figures_dir = os.path.join(path, "figures")

    @staticmethod
    def default_path(config: TrainConfig, root: str = "runs") -> str:
        stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
        base = os.path.join(root, f"{stamp}-{config.recipe or config.dataset or 'auto'}")
        path, i = base, 1
        while os.path.exists(path):
            i += 1
            path = f"{base}-{i}"
        return path

    @classmethod
    def create(cls, path: str, config: TrainConfig, overwrite: bool = False) -> RunDir:
        """Start a new run at `path`; an existing non-empty folder is an error unless `overwrite`."""
        if os.path.exists(path) and (not os.path.isdir(path) or os.listdir(path)):
            if not overwrite:
                raise ConfigError(
                    f"--out {path} already holds a run; pick another --out, continue it with "
                    f"--resume {path}, or replace it with --overwrite"
                )
            shutil.rmtree(path) if os.path.isdir(path) else os.remove(path)
        os.makedirs(path, exist_ok=True)
        run = cls(path)
        write_json(run.config_path, config.to_json())
        return run

    @classmethod
    def open(cls, path: str) -> RunDir:
        run = cls(path)
        if not os.path.isfile(run.config_path):
            raise ConfigError(f"{path}: not a run directory (no config.json); pass the folder `jaxmlp train` printed")
        return run

    def config(self) -> TrainConfig:
        try:
            with open(self.config_path) as f:
                return TrainConfig.from_json(json.load(f)).validate()
        except json.JSONDecodeError as e:
            raise ConfigError(f"{self.config_path}: not valid JSON ({e}); restore it or start a new run") from None

    def read_metrics(self) -> list[dict]:
        if not os.path.exists(self.metrics_path):
            return []
        with open(self.metrics_path) as f:
            return [json.loads(line) for line in f if line.strip()]

    def write_metrics(self, rows: list[dict]) -> None:
        write_atomic(self.metrics_path, "".join(json.dumps(r) + "\n" for r in rows))

    def read_steps(self) -> dict[str, np.ndarray]:
        """Per optimizer step: loss, and per layer the gradient norm and update/param ratio."""
        if not os.path.exists(self.steps_path):
            return {}
        with np.load(self.steps_path) as f:
            return dict(f)

    def write_steps(self, arrays: dict[str, np.ndarray]) -> None:
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        write_atomic(self.steps_path, buf.getvalue())

    def checkpointer(self) -> Checkpointer:
        return Checkpointer(self.checkpoint_dir)
