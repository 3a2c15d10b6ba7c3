"""Train a small model and print its metrics and parameters as JSON: run by test_parallel.py in subprocesses.

python -m tests.parallel_worker DEVICES NORM [COORDINATOR NUM_PROCESSES PROCESS_ID]
"""

import json
import sys

if len(sys.argv) > 3:  # multi-process: join the run before anything else touches JAX
    from jaxmlp.core.parallel import initialize_distributed

    initialize_distributed(sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))

import jax  # noqa: E402

from jaxmlp.config import TrainConfig  # noqa: E402
from jaxmlp.core.parallel import to_host  # noqa: E402
from jaxmlp.data.datasets import load_dataset  # noqa: E402
from jaxmlp.runs.loop import Reporting, fit  # noqa: E402

devices = int(sys.argv[1]) if sys.argv[1] != "all" else None
norm = sys.argv[2]
# With batch norm, the bias of the Linear before it has an exactly-zero true gradient; Adam would blow its
# rounding noise up to full-size steps, so that comparison uses SGD.
config = TrainConfig(
    dataset="digits",
    epochs=2,
    batch_size=64,
    hidden=(32,),
    norm=norm,
    dropout=0.1,
    optimizer="sgd" if norm == "batch" else "adam",
    lr=0.1 if norm == "batch" else 1e-3,
).validate()
ds = load_dataset("digits", normalization=config.normalization)
out = fit(config, ds, reporting=Reporting(verbose=False), devices=devices)
params = to_host(out.state.params)
if jax.process_index() == 0:
    print(
        json.dumps(
            {
                "devices": len(jax.devices()),
                "processes": jax.process_count(),
                "metrics": [
                    {k: v for k, v in r.items() if k not in ("seconds", "samples_per_second")} for r in out.metrics
                ],
                "params": [a.ravel().tolist() for a in jax.tree.leaves(params)],
            }
        )
    )
