"""`TrainConfig`: every knob of a run, its validation, and the named recipes that preset them.

Defaults follow the user's PyTorch setup: 784-128-64-10, ReLU, Adam at 1e-3, batch 64.
A recipe is a small JSON file in `jaxmlp/recipes/`; command-line options override it.
"""

from __future__ import annotations

import dataclasses
import json
import math
from importlib import resources

from jaxmlp.errors import ConfigError
from jaxmlp.names import ACTIVATIONS, DATASETS, NORMALIZATIONS, NORMS, OPTIMIZERS, SCHEDULES

MAX_WIDTH = 65536  # units per hidden layer: wider than any MLP for these images, small enough to allocate


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    dataset: str | None = None  # None: MNIST if available, else digits
    data_dir: str | None = None
    normalization: str = "standardize"  # like torchvision's Normalize((0.1307,), (0.3081,))
    val_fraction: float = 0.0  # held out of the training set, for tuning
    epochs: int = 50
    batch_size: int = 64
    lr: float = 1e-3
    optimizer: str = "adam"
    schedule: str = "constant"
    warmup_epochs: float = 0.0
    weight_decay: float = 0.0
    momentum: float = 0.9
    clip_norm: float = 0.0  # 0: no clipping
    hidden: tuple[int, ...] = (128, 64)
    activation: str = "relu"
    dropout: float = 0.0
    norm: str = "none"
    augment_shift: int = 0  # random shifts of up to this many pixels
    label_smoothing: float = 0.0
    seed: int = 0
    bf16: bool = False  # bfloat16 compute, float32 params and loss (for GPU/TPU)
    chunks_per_epoch: int = 0  # device calls per epoch (progress, Ctrl-C); 0 = auto, 1 = one scan per epoch
    recipe: str | None = None

    def validate(self) -> TrainConfig:
        """Reject what cannot run, with the option to change; `warnings()` names what can but should not."""

        def bad(msg):
            raise ConfigError(msg)

        for name in FLOAT_FIELDS:
            if not math.isfinite(getattr(self, name)):
                bad(f"--{name.replace('_', '-')} {getattr(self, name)}: must be a finite number")
        if self.dataset is not None and self.dataset not in DATASETS and self.data_dir is None:
            bad(f"unknown dataset {self.dataset!r}; choose one of {', '.join(DATASETS)}, or pass --data-dir DIR")
        if self.normalization not in NORMALIZATIONS:
            bad(f"--pixel-scaling {self.normalization!r}: choose one of {', '.join(NORMALIZATIONS)}")
        if self.epochs < 1:
            bad(f"--epochs {self.epochs}: must be at least 1")
        if self.batch_size < 1:
            bad(f"--batch-size {self.batch_size}: must be at least 1")
        if not self.lr > 0:
            bad(f"--lr {self.lr}: the learning rate must be > 0 (try 1e-3 for adam, 0.1 for sgd)")
        if self.optimizer not in OPTIMIZERS:
            bad(f"--optimizer {self.optimizer!r}: choose one of {', '.join(OPTIMIZERS)}")
        if self.schedule not in SCHEDULES:
            bad(f"--schedule {self.schedule!r}: choose one of {', '.join(SCHEDULES)}")
        if not 0 <= self.dropout < 1:
            bad(f"--dropout {self.dropout}: must be in [0, 1)")
        if not self.hidden or any(not 1 <= h <= MAX_WIDTH for h in self.hidden):
            bad(
                f"--hidden {','.join(map(str, self.hidden)) or '(empty)'}: give layer sizes from 1 to {MAX_WIDTH} "
                "such as 128,64"
            )
        if self.activation not in ACTIVATIONS:
            bad(f"--activation {self.activation!r}: choose one of {', '.join(ACTIVATIONS)}")
        if self.norm not in NORMS:
            bad(f"--hidden-norm {self.norm!r}: choose one of {', '.join(NORMS)}")
        if not 0 <= self.val_fraction < 1:
            bad(f"--val-fraction {self.val_fraction}: must be in [0, 1)")
        for name in ("weight_decay", "clip_norm", "warmup_epochs", "augment_shift", "label_smoothing"):
            if getattr(self, name) < 0:
                bad(f"--{name.replace('_', '-')} {getattr(self, name)}: must be >= 0")
        if self.label_smoothing >= 1:
            bad(f"--label-smoothing {self.label_smoothing}: must be in [0, 1) (it is the probability mass spread)")
        if not 0 <= self.seed < 2**32:
            bad(f"--seed {self.seed}: must be in 0..{2**32 - 1}")
        if self.chunks_per_epoch < 0:
            bad(f"--chunks-per-epoch {self.chunks_per_epoch}: must be 0 (auto) or more")
        return self

    def warnings(self) -> list[str]:
        """Values that are allowed but almost surely a mistake."""
        out = []
        if self.lr > 10:
            out.append(f"--lr {self.lr:g} is far above any usable learning rate (1e-4..1); expect the loss to diverge")
        if self.dropout > 0.9:
            out.append(f"--dropout {self.dropout:g} drops nearly every unit; the model will barely learn")
        return out

    def to_json(self) -> dict:
        d = dataclasses.asdict(self)
        d["hidden"] = list(self.hidden)
        return d

    @classmethod
    def from_json(cls, d: dict, complete: bool = False) -> TrainConfig:
        """A config from JSON (a recipe, or a run's config.json with `complete=True`: every key present).

        Each value must have its field's type, so a damaged file is an error here, not a traceback later."""
        if not isinstance(d, dict):
            raise ConfigError(f"expected a JSON object of config keys, got {type(d).__name__}")
        fields = {f.name: f for f in dataclasses.fields(cls)}
        unknown, missing = sorted(set(d) - set(fields)), sorted(set(fields) - set(d))
        if unknown:
            raise ConfigError(f"unknown config keys {unknown}; valid keys: {', '.join(sorted(fields))}")
        if complete and missing:
            raise ConfigError(f"config keys {missing} are missing")
        d = dict(d)
        if isinstance(d.get("hidden"), list):
            d["hidden"] = tuple(d["hidden"])
        for name, value in d.items():
            if not _has_type(value, fields[name].type):
                raise ConfigError(f"config key {name!r} is {value!r}; expected {fields[name].type}")
        return cls(**d)


def _has_type(value, annotation: str) -> bool:
    """Whether a JSON value fits a field annotation such as 'int', 'float', 'str | None' or 'tuple[int, ...]'."""
    if value is None:
        return annotation.endswith("| None")
    base = annotation.removesuffix(" | None")
    if base == "tuple[int, ...]":
        return isinstance(value, tuple) and all(_has_type(v, "int") for v in value)
    if base == "float":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    kind = {"int": int, "str": str, "bool": bool}[base]
    return isinstance(value, kind) and (kind is bool or not isinstance(value, bool))


# --- recipes -----------------------------------------------------------------


def _recipe_files():
    return {p.name[:-5]: p for p in resources.files("jaxmlp.recipes").iterdir() if p.name.endswith(".json")}


def list_recipes() -> dict[str, str]:
    """Recipe name -> one-line description."""
    return {name: _read_recipe(p).get("description", "") for name, p in sorted(_recipe_files().items())}


def _read_recipe(path) -> dict:
    """A recipe file's JSON object; a damaged one is one line naming it."""
    try:
        d = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: recipe is not valid JSON ({e}); restore the file") from None
    if not isinstance(d, dict):
        raise ConfigError(f"{path}: recipe is not a JSON object; restore the file")
    return d


def load_recipe(name: str) -> dict:
    """The config overrides a recipe sets (its description removed); `_` and `-`, upper and lower case alike."""
    files = _recipe_files()
    name = name.strip().lower().replace("_", "-")
    if name not in files:
        raise ConfigError(f"unknown recipe {name!r}; `jaxmlp recipes` lists them: {', '.join(sorted(files))}")
    d = _read_recipe(files[name])
    d.pop("description", None)
    d["recipe"] = name
    TrainConfig.from_json(d)  # reject unknown keys and wrong types early
    return d


FLOAT_FIELDS = tuple(f.name for f in dataclasses.fields(TrainConfig) if f.type == "float")
