"""`jaxmlp --help`, `jaxmlp train --help` and option errors answer before any framework is imported."""

import subprocess
import sys

import pytest

FRAMEWORKS = ("jax", "flax", "optax", "orbax", "tensorflow_datasets", "torch")

# Runs the command in-process, then reports which frameworks it imported (on stderr, after the command's own lines).
PROBE = (
    "import sys\n"
    "from jaxmlp.cli import main\n"
    "try:\n"
    "    code = main(sys.argv[1:])\n"
    "except SystemExit as e:\n"
    "    code = e.code\n"
    f"loaded = sorted({{m.split('.')[0] for m in sys.modules}} & set({FRAMEWORKS!r}))\n"
    "print('loaded:', ','.join(loaded), 'exit:', code, file=sys.stderr)\n"
)


@pytest.mark.parametrize(
    ("args", "code", "said"),
    [
        (["--help"], 0, "usage: jaxmlp"),
        (["train", "--help"], 0, "--lr"),
        (["train", "--lr", "0"], 2, "error: --lr 0.0: the learning rate must be > 0"),
        (["train", "--dropout", "1.5"], 2, "error: --dropout"),
        ([], 0, "commands:"),
    ],
)
def test_answers_without_importing_a_framework(args, code, said):
    r = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, timeout=60)
    last = r.stderr.strip().splitlines()[-1]
    assert last == f"loaded:  exit: {code}", r.stderr  # nothing loaded, and the expected exit status
    assert said in r.stdout + r.stderr
