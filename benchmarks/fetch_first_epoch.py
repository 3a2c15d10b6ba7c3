"""Seconds from `jaxmlp train` to a fetched, verified dataset and to the end of the first epoch, from a loopback mirror.

    python -m benchmarks.fetch_first_epoch --data-dir data/mnist-mini

The folder's IDX files are served by an HTTP server on 127.0.0.1 in this process; a registry in TFDS's
url_checksums format, listing their sizes and sha256, is written to a temporary folder and handed to jaxmlp
through JAXMLP_DATA_REGISTRY, with JAXMLP_DATA_MIRROR pointing at the server. Each repeat starts
`jaxmlp train --epochs 1` in a fresh process with an empty cache and stamps each line of its output as it
arrives; `fetch_cost_s` is how much later training starts than with `--data-dir` on the same files. The
same command with the mirror on a port where nothing listens times the offline fallback to `digits`;
`fallback_cost_s` is how much later its training starts than with `--dataset digits` given, and
`silent_fallback_cost_s` the same with the mirror on a socket that accepts connections and never answers.
Network time on a real link is not in these numbers: the loopback mirror only shows what jaxmlp adds.
"""

from __future__ import annotations

import functools
import hashlib
import http.server
import os
import socket
import statistics
import tempfile
import threading

from benchmarks.common import arguments, base_parser, command_line, first, machine, output_dir, stamped_run


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def serve(folder: str) -> str:
    handler = functools.partial(_Quiet, directory=folder)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_port}/"


def write_registry(folder: str, served: str) -> None:
    lines = []
    for name in sorted(os.listdir(served)):
        content = open(os.path.join(served, name), "rb").read()
        lines.append(f"http://registry.invalid/mnist/{name}\t{len(content)}\t{hashlib.sha256(content).hexdigest()}\n")
    with open(os.path.join(folder, "mnist.txt"), "w") as f:
        f.writelines(lines)


def fresh_run(registry: str, mirror: str, *extra: str) -> list[tuple[float, str]]:
    """`stamped_run` with an empty cache and TFDS data dir of its own."""
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "XDG_CACHE_HOME": tmp, "TFDS_DATA_DIR": tmp, "JAXMLP_DATA_REGISTRY": registry}
        return stamped_run({**env, "JAXMLP_DATA_MIRROR": mirror}, os.path.join(tmp, "run"), *extra)


def dataset_of(lines: list[tuple[float, str]]) -> str:
    return next(line for _, line in lines if line.startswith("training")).split(" on ")[1].split()[0]


def one_repeat(mirror: str, registry: str, data_dir: str) -> dict:
    """Fresh processes: fetch from the mirror; the same files by --data-dir; two offline fallbacks; digits by name."""
    online = fresh_run(registry, mirror)
    local = fresh_run(registry, mirror, "--data-dir", data_dir)  # the same files, no fetch
    with socket.socket() as s:  # a port where nothing listens
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}/"
    offline = fresh_run(registry, dead)
    with socket.socket() as s:  # a port that accepts connections and never answers
        s.bind(("127.0.0.1", 0))
        s.listen(16)
        silent = fresh_run(registry, f"http://127.0.0.1:{s.getsockname()[1]}/")
    digits = fresh_run(registry, dead, "--dataset", "digits")  # no probe, no TFDS lookup
    verified = [t for t, line in online if line.startswith("mnist: ") and line.endswith(" verified")]
    assert dataset_of(online) == "mnist" and dataset_of(offline) == dataset_of(silent) == "digits"
    row = {
        "fetched_s": max(verified),
        "first_epoch_done_s": first(online, "epoch"),
        "fetch_cost_s": first(online, "training") - first(local, "training"),
        "offline_notice_s": first(offline, "note:"),
        "fallback_cost_s": first(offline, "training") - first(digits, "training"),
        "silent_fallback_cost_s": first(silent, "training") - first(digits, "training"),
    }
    print(", ".join(f"{k} {v:.2f}" for k, v in row.items()), flush=True)
    return row


def main(argv: list[str] | None = None) -> None:
    argv = arguments(argv)
    p = base_parser("fetch_first_epoch", __doc__, "fresh-process runs, median reported (default 3)")
    p.add_argument("--data-dir", required=True, help="folder of the four IDX .gz files to serve")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as registry:
        write_registry(registry, args.data_dir)
        mirror = serve(args.data_dir)
        runs = [one_repeat(mirror, registry, args.data_dir) for _ in range(args.repeats or 3)]
    median = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    results = {"command": command_line("fetch_first_epoch", argv), "machine": machine()}
    results.update(runs=runs, median=median)
    out = output_dir(args, "fetch_first_epoch")
    os.makedirs(out, exist_ok=True)
    from jaxmlp.files import write_json

    write_json(os.path.join(out, "fetch_first_epoch.json"), results)
    for key, value in median.items():
        print(f"{key:28s} {value:6.2f}   (runs: {', '.join(f'{r[key]:.2f}' for r in runs)})")


if __name__ == "__main__":
    main()
