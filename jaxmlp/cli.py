"""`jaxmlp` command line: train, eval, plot, recipes, study, explain, data.

JAX is imported inside the commands, after flags that must precede its
initialization (`--deterministic`) are applied, and so `--help` is instant.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import errno
import os
import sys
from typing import TYPE_CHECKING

from jaxmlp.config import TrainConfig, list_recipes, load_recipe
from jaxmlp.errors import ConfigError, UserError
from jaxmlp.runs import interrupts

if TYPE_CHECKING:
    from jaxmlp.runs.lifecycle import TrainingRun  # imports JAX: only its name is needed here

DEFAULTS = TrainConfig()
STUDIES = ("optimizers", "dropout", "normalization")
DISK_ERRORS = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EACCES, errno.EPERM)
PATH_ERRORS = {
    errno.EEXIST: "a file is in the way of a folder to be made there",
    errno.ENOTDIR: "a part of this path is a file, not a folder",
    errno.EISDIR: "is a folder, where a file is to be written",
    errno.ELOOP: "too many symlinks (or a symlink where jaxmlp writes)",
}

# (flag, config field, type, help). Defaults come from TrainConfig so --help cannot drift from the code.
TRAIN_OPTIONS = [
    (
        "--dataset",
        "dataset",
        "dataset",
        "mnist, fashion_mnist, kmnist (downloaded once, checked against TFDS's sha256 sums, cached; "
        "see `jaxmlp data`) or digits (bundled 8x8). Default: mnist, or digits when offline with no cached MNIST",
    ),
    (
        "--data-dir",
        "data_dir",
        str,
        "folder of LeCun IDX files (train-images, train-labels, t10k-images, "
        "t10k-labels; gzip or raw) to train on instead of a named dataset",
    ),
    (
        "--pixel-scaling",
        "normalization",
        "choice",
        "how input pixels are scaled: scale (to [0,1]) or standardize (training-set mean 0, std 1)",
    ),
    (
        "--val-fraction",
        "val_fraction",
        float,
        "hold out this fraction of the training images as a validation set (tune on it, not on the test set)",
    ),
    ("--epochs", "epochs", int, "passes over the training set"),
    ("--batch-size", "batch_size", int, "samples per optimizer step"),
    ("--lr", "lr", float, "peak learning rate"),
    ("--optimizer", "optimizer", "choice", "sgd, momentum, nesterov, rmsprop, adam or adamw"),
    ("--schedule", "schedule", "choice", "learning-rate schedule: constant, cosine or warmup_cosine"),
    ("--warmup-epochs", "warmup_epochs", float, "linear warm-up length for warmup_cosine, in epochs"),
    ("--weight-decay", "weight_decay", float, "L2 added to the gradient (decoupled for adamw, as in PyTorch)"),
    ("--momentum", "momentum", float, "momentum for the momentum and nesterov optimizers"),
    ("--clip-norm", "clip_norm", float, "clip gradients to this global norm; 0 turns clipping off"),
    ("--hidden", "hidden", "sizes", "hidden layer sizes, comma-separated (e.g. 512,512)"),
    ("--activation", "activation", "choice", "relu, gelu, tanh or silu"),
    ("--dropout", "dropout", float, "dropout rate after each hidden layer, in [0, 1)"),
    (
        "--hidden-norm",
        "norm",
        "choice",
        "a normalization layer after each hidden Linear: none, batch (BatchNorm) or layer (LayerNorm)",
    ),
    ("--augment-shift", "augment_shift", int, "random on-device shifts of up to this many pixels; 0 = off"),
    ("--label-smoothing", "label_smoothing", float, "label smoothing of the cross-entropy targets"),
    ("--seed", "seed", int, "seed for initialization, shuffling, dropout and augmentation"),
    ("--bf16", "bf16", "flag", "compute in bfloat16 (parameters, optimizer and loss stay float32); for GPU/TPU"),
    (
        "--chunks-per-epoch",
        "chunks_per_epoch",
        int,
        "device calls per epoch (progress and Ctrl-C granularity); "
        "0 picks about 250 steps per call, 1 runs each epoch as one lax.scan",
    ),
]


# Old spellings still accepted (with a warning): both named "normalization", they were easy to confuse.
OLD_SPELLINGS = {"--normalization": "--pixel-scaling", "--norm": "--hidden-norm"}


def _choice(text: str) -> str:
    """A choice such as an optimizer or activation name: case and `-` for `_` do not matter."""
    return text.strip().lower().replace("-", "_")


def _dataset_name(text: str) -> str:
    """A named dataset in its canonical spelling (`Fashion-MNIST` is `fashion_mnist`); other names as given."""
    from jaxmlp.data.datasets import DATASETS

    return _choice(text) if _choice(text) in DATASETS else text


class _OldSpelling(argparse.Action):
    """Store the value; warn when the option was given by its deprecated spelling."""

    def __call__(self, parser, namespace, values, option_string=None):
        if option_string in OLD_SPELLINGS:
            print(f"warning: {option_string} is the old spelling of {OLD_SPELLINGS[option_string]}", file=sys.stderr)
        setattr(namespace, self.dest, values)


class Parser(argparse.ArgumentParser):
    """argparse, except that an unknown option is reported under its own subcommand's usage, with the nearest
    valid spelling (`jaxmlp train --epocs 3` suggests `--epochs`)."""

    def parse_args(self, args=None, namespace=None):
        parsed, extras = self.parse_known_args(args, namespace)
        if extras:
            parser = self._innermost(parsed)
            options = [s for action in parser._actions for s in action.option_strings]
            hints = []
            for extra in extras:
                near = difflib.get_close_matches(extra.split("=")[0], options, n=1) if extra.startswith("-") else []
                hints += [f"did you mean {near[0]} (for {extra})?"] if near else []
            parser.error(f"unrecognized arguments: {' '.join(extras)}" + ("; " + " ".join(hints) if hints else ""))
        return parsed

    def _innermost(self, parsed: argparse.Namespace) -> argparse.ArgumentParser:
        """The (sub)command parser that handled the last word of the command."""
        for action in self._actions:
            if isinstance(action, argparse._SubParsersAction) and getattr(parsed, action.dest, None):
                return action.choices[getattr(parsed, action.dest)]._innermost(parsed)
        return self


def _sizes(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(s) for s in text.split(",") if s.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of integers such as 128,64") from None
    return sizes


def _default_text(field: str) -> str:
    value = getattr(DEFAULTS, field)
    if isinstance(value, tuple):
        value = ",".join(map(str, value))
    return "" if value is None else f" (default: {value})"


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="jaxmlp", description="Train and inspect an MLP on MNIST with JAX.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    _add_train_parser(sub)
    ev = sub.add_parser("eval", help="evaluate a trained run: loss, accuracy, per-class accuracy, confusion matrix")
    _add_run_argument(ev)
    ev.add_argument(
        "--dataset", type=_dataset_name, help="evaluate on this dataset's test split instead of the run's own"
    )
    ev.add_argument("--data-dir", help="evaluate on the t10k-* IDX files in this folder")

    plot = sub.add_parser("plot", help="write a run's figures (learning curves, confusion matrix, ...) to RUN/figures/")
    _add_run_argument(plot)

    recipes = sub.add_parser("recipes", help="list the named recipes for `jaxmlp train --recipe` and what each sets")
    recipes.add_argument("name", nargs="?", help="show only this recipe's settings")

    _add_study_parser(sub)

    explain = sub.add_parser("explain", help="explain how autograd works, on the user's MLP (tracer vs jax.grad)")
    explain.add_argument("topic", type=_choice, choices=["autograd"], help="what to explain")
    explain.add_argument(
        "--out", default="explain-autograd", help="folder for the graph figure (default: explain-autograd)"
    )
    _add_data_parser(sub)
    return parser


def _add_train_parser(sub) -> None:
    train = sub.add_parser(
        "train",
        help="train a model (default: the user's 784-128-64-10 MLP, Adam 1e-3, batch 64)",
        description="Train the MLP. A recipe sets a group of options; options given here override it.",
    )
    train.add_argument("--recipe", help="start from a named recipe (see `jaxmlp recipes`)")
    _add_train_options(train)
    train.add_argument("--out", help="run directory (default: a new folder under runs/)")
    train.add_argument(
        "--overwrite",
        action="store_true",
        help="replace the run at --out (only a jaxmlp run; the old one stays until the new one's first checkpoint)",
    )
    train.add_argument("--resume", metavar="DIR", help="continue the run in DIR from its latest checkpoint, exactly")
    train.add_argument(
        "--checkpoint-interval",
        type=float,
        default=30.0,
        help="seconds between checkpoints; one is always written after the first epoch, at the end and on Ctrl-C "
        "(default: 30)",
    )
    train.add_argument(
        "--devices",
        type=int,
        help="split each batch over this many devices, params replicated (default: every device of the run)",
    )
    train.add_argument(
        "--coordinator",
        metavar="HOST:PORT",
        help="multi-process run: process 0's address; start "
        "one `jaxmlp train` per process with the same --out (on a shared file system)",
    )
    train.add_argument(
        "--num-processes", type=int, default=1, help="multi-process run: how many processes (default: 1)"
    )
    train.add_argument("--process-id", type=int, default=0, help="multi-process run: this process's index, 0..N-1")
    train.add_argument(
        "--deterministic",
        action="store_true",
        help="on GPU, make XLA use deterministic reductions (CPU runs are always bitwise reproducible)",
    )
    train.add_argument("--no-progress", action="store_true", help="plain lines instead of a progress bar")
    train.add_argument("--no-figures", action="store_true", help="skip writing figures to RUN/figures/ at the end")


def _add_study_parser(sub) -> None:
    study = sub.add_parser(
        "study",
        help="run a study and write its figures and report.md",
        description="Measured experiments: optimizers (SGD vs Adam and friends), dropout, "
        "normalization. Each writes PNGs, results.json and report.md to --out.",
    )
    study.add_argument("name", type=_choice, choices=STUDIES, help="which study")
    study.add_argument(
        "--quick",
        action="store_true",
        help="smoke test: a tiny version (digits, a small MLP, 2-3 epochs, no learning-rate tuning) that checks the "
        "study runs; its numbers mean nothing. Under 4 minutes on 2 CPU cores",
    )
    study.add_argument("--out", help="output folder (default: a new folder under studies/)")
    study.add_argument(
        "--dataset", type=_dataset_name, help="dataset name, as for `jaxmlp train` (default: MNIST, or digits offline)"
    )
    study.add_argument("--data-dir", help="folder of IDX files, as for `jaxmlp train`")
    study.add_argument("--seeds", type=int, default=3, help="seeds per configuration (at least 3; default: 3)")
    study.add_argument("--epochs", type=int, help="epochs per run (default: the study's own)")
    study.add_argument(
        "--train-size",
        type=int,
        default=10_000,
        help="use at most this many training images, to keep a study to minutes (default: 10000)",
    )


def _add_train_options(train: argparse.ArgumentParser) -> None:
    """The options that set TrainConfig fields; an option with an old spelling accepts both."""
    types = {"sizes": _sizes, "choice": _choice, "dataset": _dataset_name}
    for flag, field, typ, text in TRAIN_OPTIONS:
        if typ == "flag":
            train.add_argument(flag, dest=field, action="store_true", default=argparse.SUPPRESS, help=text)
            continue
        old = [o for o, new in OLD_SPELLINGS.items() if new == flag]
        train.add_argument(
            flag,
            *old,
            dest=field,
            metavar=flag[2:].upper().replace("-", "_"),
            type=types.get(typ, typ),
            nargs="+" if typ == "sizes" else None,  # so that `--hidden 128 64` can be told it needs a comma
            action=_OldSpelling,
            default=argparse.SUPPRESS,
            help=text + _default_text(field) + "".join(f"; {o} is its deprecated old spelling" for o in old),
        )


def _add_run_argument(command: argparse.ArgumentParser) -> None:
    command.add_argument("run", nargs="?", metavar="RUN_DIR", help="run directory written by `jaxmlp train`")
    command.add_argument("--run", dest="run_option", metavar="RUN_DIR", help="the same, as an option")


def run_dir(args: argparse.Namespace) -> str:
    """The run folder of `eval` and `plot`, given as RUN_DIR or as --run RUN_DIR."""
    if args.run and args.run_option and args.run != args.run_option:
        raise ConfigError(f"two run folders given ({args.run} and --run {args.run_option}); give one")
    if not (args.run or args.run_option):
        raise ConfigError(f"which run? give its folder: jaxmlp {args.command} RUN_DIR")
    return args.run or args.run_option


def _add_data_parser(sub) -> None:
    from jaxmlp.data.download import DATASETS, DEADLINE_ENV, DEADLINE_SECONDS, MIRROR_ENV, REGISTRY_ENV

    data = sub.add_parser(
        "data",
        help="fetch, list and verify the cached MNIST, Fashion-MNIST and KMNIST files",
        description="Datasets are cached in $XDG_CACHE_HOME/jaxmlp/NAME (default ~/.cache/jaxmlp/NAME), each file "
        "checked against the size and sha256 in tensorflow-datasets' registry. "
        f"{MIRROR_ENV}=URL fetches FILENAME from URL/FILENAME ({{dataset}} in URL becomes the name); "
        f"{REGISTRY_ENV}=DIR reads DIR/NAME.txt, in TFDS's url_checksums format, instead of TFDS's registry "
        f"(for testing a mirror). Each file must arrive within {DEADLINE_ENV} seconds (default {DEADLINE_SECONDS:g}), "
        "as raw bytes no longer than the registry's size.",
    )
    actions = data.add_subparsers(dest="action", required=True, metavar="ACTION")
    fetch = actions.add_parser("fetch", help="download and verify a dataset ahead of time")
    fetch.add_argument("name", type=_dataset_name, choices=DATASETS, help="which dataset")
    fetch.add_argument("--mirror", metavar="URL", help=f"fetch from URL/FILENAME instead (default: ${MIRROR_ENV})")
    actions.add_parser("list", help="show each dataset: cached or not, verified or not, size, folder")
    verify = actions.add_parser("verify", help="re-check a cached dataset's checksums; delete any file that fails")
    verify.add_argument("name", type=_dataset_name, choices=DATASETS, help="which dataset")


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    overrides = {field: getattr(args, field) for _, field, _, _ in TRAIN_OPTIONS if hasattr(args, field)}
    if "hidden" in overrides:
        if len(overrides["hidden"]) > 1:
            given = " ".join(",".join(map(str, h)) for h in overrides["hidden"])
            joined = ",".join(str(n) for h in overrides["hidden"] for n in h)
            raise ConfigError(f"--hidden {given}: give the sizes comma-separated, as --hidden {joined}")
        overrides["hidden"] = overrides["hidden"][0]
    base = load_recipe(args.recipe) if args.recipe else {}
    return TrainConfig.from_json({**base, **overrides}).validate()


def cmd_train(args: argparse.Namespace) -> int:
    """Check everything, then train; the run folder appears at the first checkpoint (see `jaxmlp.runs.lifecycle`)."""
    if args.coordinator or args.num_processes > 1:
        _join_processes(args)
    if args.devices is not None and args.devices < 1:
        raise ConfigError(f"--devices {args.devices}: must be at least 1 (or leave it out to use every device)")
    import jax

    lead = jax.process_index() == 0  # the process that writes files and prints
    training = open_training(args, lead)
    try:
        return _train(args, training, lead)
    except KeyboardInterrupt:
        if training.run.committed:
            print(f"interrupted; the run is as its last checkpoint left it. Resume with: {training.resume_command()}")
            return interrupts.EXIT_STATUS
        return interrupts.interrupted("interrupted before the first checkpoint; nothing was written")
    finally:
        training.run.release()


def _join_processes(args: argparse.Namespace) -> None:
    if not (args.coordinator and args.num_processes > 1 and 0 <= args.process_id < args.num_processes):
        raise ConfigError(
            "a multi-process run needs --coordinator HOST:PORT, --num-processes N > 1 and --process-id in 0..N-1"
        )
    if not (args.out or args.resume):
        raise ConfigError("a multi-process run needs the same --out DIR for every process")
    host, _, port = args.coordinator.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536 or any(c.isspace() for c in args.coordinator):
        raise ConfigError(
            f"--coordinator {args.coordinator!r}: give process 0's address as HOST:PORT, such as 10.0.0.1:1234"
        )
    from jaxmlp.core.parallel import initialize_distributed

    initialize_distributed(args.coordinator, args.num_processes, args.process_id)


def open_training(args: argparse.Namespace, lead: bool) -> TrainingRun:
    """The run to train (see `jaxmlp.runs.lifecycle`): the one `--resume` names, or a new one at `--out`; its warnings
    said."""
    from jaxmlp.runs.lifecycle import resume_training, start_training

    if args.resume:
        given = [flag for flag, field, _, _ in TRAIN_OPTIONS if hasattr(args, field) and field != "epochs"] + (
            ["--recipe"] if args.recipe else []
        )
        if given or args.out or args.overwrite:
            drop = ", ".join(given + (["--out"] if args.out else []) + (["--overwrite"] if args.overwrite else []))
            raise ConfigError(f"--resume continues a run as it was configured (only --epochs may change); drop {drop}")
        training = resume_training(args.resume, getattr(args, "epochs", None), lead)
    else:
        config = config_from_args(args)
        if lead:
            for warning in config.warnings():
                print(f"warning: {warning}", file=sys.stderr)
        if config.dataset is None and config.data_dir is None:  # resolved now, so the run's folder is named after it
            from jaxmlp.data.datasets import default_dataset

            config = dataclasses.replace(config, dataset=default_dataset(log=_lead_log(lead)))
        training = start_training(args.out, config, args.overwrite, lead)
    for warning in training.warnings if lead else []:
        print(f"warning: {warning}", file=sys.stderr)
    return training


def _lead_log(lead: bool):
    """Where notices go: stderr in the process that prints (the lead of a multi-process run), nowhere else."""
    return (lambda msg: print(msg, file=sys.stderr)) if lead else (lambda msg: None)


def _train(args: argparse.Namespace, training: TrainingRun, lead: bool) -> int:
    from jaxmlp.data.datasets import load_dataset
    from jaxmlp.runs.loop import Reporting, Saving, fit

    run, config = training.run, training.config
    if training.complete:
        if lead:
            print(
                f"{run.path} is complete ({training.epochs_done} of {config.epochs} epochs); nothing to do. "
                f"To train it longer: {training.resume_command()} --epochs {config.epochs + 10}"
            )
        return 0
    ds = load_dataset(config.dataset, config.data_dir, config.normalization, log=_lead_log(lead))
    if lead:
        print(
            f"training {'-'.join(map(str, (ds.num_features, *config.hidden, ds.num_classes)))} MLP on {ds.name} "
            f"({len(ds.y_train)} train / {len(ds.y_test)} test), {config.optimizer} lr {config.lr:g}, "
            f"batch {config.batch_size}, {config.epochs} epochs -> {run.path}",
            flush=True,
        )
    saving = Saving(run, resume=training.resumed, interval=args.checkpoint_interval)
    reporting = Reporting(progress=False if args.no_progress else None, verbose=lead)
    out = fit(config, ds, saving, reporting, devices=args.devices)
    if not lead:
        return 0 if out.status == "finished" else interrupts.EXIT_STATUS
    if out.status == "interrupted":
        print(f"interrupted; checkpoint and metrics saved. Resume with: {training.resume_command()}")
        return interrupts.EXIT_STATUS
    last = out.metrics[-1]
    sps = sum(r["samples_per_second"] for r in out.metrics) / len(out.metrics)
    print(
        f"done: test accuracy {last['test_accuracy']:.4f} (loss {last['test_loss']:.4f}) "
        f"after {last['epoch']} epochs; wall {out.wall_seconds:.1f}s (compile {out.compile_seconds:.1f}s), "
        f"{sps:,.0f} samples/s; results in {run.path}"
    )
    if not args.no_figures:
        from jaxmlp.runs.evaluate import evaluate_state
        from jaxmlp.show.figures import write_run_figures

        print("writing figures…", flush=True)
        write_run_figures(run, evaluate_state(config, ds, out.state), out.state)
        print(f"figures in {run.figures_dir}")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from jaxmlp.runs.evaluate import evaluate_run, format_report

    report, _ = evaluate_run(run_dir(args), args.dataset, args.data_dir)
    print(format_report(report))
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    from jaxmlp.runs.evaluate import evaluate_run
    from jaxmlp.runs.lifecycle import RunDir
    from jaxmlp.show.figures import write_run_figures

    report, state = evaluate_run(run_dir(args))
    run = RunDir.open(run_dir(args))
    try:
        run.check_history()
    finally:
        run.release()
    for path in write_run_figures(run, report, state):
        print(path)
    return 0


def cmd_recipes(args: argparse.Namespace) -> int:
    """Each recipe (or the one named): its description, then the options it sets, as `jaxmlp train` takes them."""
    recipes = list_recipes()
    names = [load_recipe(args.name)["recipe"]] if args.name else list(recipes)
    flags = {field: flag for flag, field, _, _ in TRAIN_OPTIONS}
    for name in names:
        settings = {k: v for k, v in load_recipe(name).items() if k != "recipe"}
        words = [f"{flags[k]} {','.join(map(str, v)) if isinstance(v, list) else v}" for k, v in settings.items()]
        print(f"{name:16s} {recipes[name]}\n{'':16s} sets {' '.join(words)}")
    if args.name:
        print(f"train with: jaxmlp train --recipe {names[0]} (options given after it override the recipe's)")
    return 0


def cmd_study(args: argparse.Namespace) -> int:
    import importlib

    from jaxmlp.show.studies.common import StudyOptions

    if args.seeds < 1 or (args.epochs is not None and args.epochs < 1) or args.train_size < 1:
        raise ConfigError("--seeds, --epochs and --train-size must be positive")
    options = StudyOptions(
        quick=args.quick,
        out=args.out,
        dataset=args.dataset,
        data_dir=args.data_dir,
        seeds=args.seeds,
        epochs=args.epochs,
        train_size=args.train_size,
    )
    report = importlib.import_module(f"jaxmlp.show.studies.{args.name}").run(options)
    print(f"report: {report}")
    return 0


def cmd_explain(args: argparse.Namespace) -> int:
    from jaxmlp.show.explain import explain_autograd

    explain_autograd(args.out)
    return 0


def cmd_data(args: argparse.Namespace) -> int:
    from jaxmlp.data.download import command

    return command(args.action, getattr(args, "name", None), getattr(args, "mirror", None))


def _cache_compilations() -> None:
    """Keep XLA's compiled programs in $XDG_CACHE_HOME/jaxmlp/xla (JAX's persistent compilation cache), so a
    command run again with the same shapes loads them instead of compiling. $JAX_COMPILATION_CACHE_DIR,
    if set, is used instead; an unwritable cache costs only the time it would have saved."""
    import jax

    from jaxmlp.data.download import cache_dir

    if not os.environ.get("JAX_COMPILATION_CACHE_DIR"):
        jax.config.update("jax_compilation_cache_dir", cache_dir("xla"))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.2)


def commands_overview(parser: argparse.ArgumentParser) -> str:
    """What `jaxmlp` alone prints: each command on one line, then where to read more."""
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    width = max(map(len, sub.choices))
    lines = [f"  {c.dest:<{width}}  {c.help}" for c in sub._choices_actions]
    return "\n".join(
        [f"jaxmlp: {parser.description[0].lower()}{parser.description[1:]}", "", "usage: jaxmlp COMMAND [options]"]
        + ["", "commands:", *lines, ""]
        + ["`jaxmlp COMMAND --help` explains a command's options; start with `jaxmlp train`."]
    )


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    if not (sys.argv[1:] if argv is None else argv):
        print(commands_overview(parser))
        return 0
    args = parser.parse_args(argv)
    # The command writes figures to files, never to a window (the library leaves this alone). Set before
    # matplotlib is imported, so that commands which draw nothing never import it.
    if "matplotlib" in sys.modules:
        sys.modules["matplotlib"].use("Agg")
    else:
        os.environ["MPLBACKEND"] = "Agg"
    if getattr(args, "deterministic", False):
        os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_gpu_deterministic_ops=true").strip()
    command = {
        "train": cmd_train,
        "eval": cmd_eval,
        "plot": cmd_plot,
        "recipes": cmd_recipes,
        "study": cmd_study,
        "explain": cmd_explain,
        "data": cmd_data,
    }[args.command]
    try:
        if args.command == "train" and not args.resume:
            config_from_args(args)  # a bad option is answered here, before any framework is imported
        if args.command in ("train", "eval", "plot", "study", "explain"):
            _cache_compilations()
        code = command(args)
        sys.stdout.flush()  # a closed pipe (`jaxmlp eval ... | head -1`) shows here, inside the handlers
        return code
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return getattr(e, "exit_code", 2)
    except KeyboardInterrupt:  # Ctrl-C, SIGTERM or SIGHUP outside the training loop: nothing is half-written
        return interrupts.interrupted()
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # so the exit's flush cannot fail again
        return 141  # as if killed by SIGPIPE, like other commands in a pipeline
    except OSError as e:  # a full or read-only disk, or a file where a folder was to be
        if e.errno in PATH_ERRORS:
            print(f"error: {e.filename}: {PATH_ERRORS[e.errno]}; give another path", file=sys.stderr)
            return 2
        if e.errno not in DISK_ERRORS:
            raise
        print(f"error: {e.filename}: {e.strerror}; free space or fix its permissions, then rerun", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
