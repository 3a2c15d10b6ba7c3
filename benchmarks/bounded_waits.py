"""How long jaxmlp waits on what never answers, against the bound it promises.

    python -m benchmarks.bounded_waits --repeats 5

Each case starts a wait that only its bound can end, in this process, and divides the seconds it took by that
bound (1.000 is a wait that ends exactly at its bound; the overshoot is thread start-up and scheduling):

- `probe, port where nothing listens`: `jaxmlp.data.download.fetch` from a loopback mirror that refuses connections
  (it fails at once: well under the bound);
- `probe, silent socket`: the same from a socket that accepts connections and never sends a byte;
- `probe, hanging lookup`: the same while the HTTP request never returns (as DNS on a dead network);
- `offline fallback to digits`: `jaxmlp.data.datasets.load_dataset()` naming no dataset, its mirror hanging;
- `TFDS lookup, hanging`: `jaxmlp.data.datasets.tfds_is_prepared(seconds=0.5)` while TFDS's builder never returns;
- `slow-loris mirror`: `fetch` of a one-file dataset from a server that sends one byte a second, with
  $JAXMLP_FETCH_DEADLINE at 3 s (1 s with --quick);
- `IDX header claiming 10⁹ images`: `jaxmlp.data.idx.read_idx` rejecting it (no bound: its seconds and the peak
  memory Python traced while it ran are reported).

The cache, TFDS's data dir and the registry point at a temporary folder, so nothing real is fetched or looked up.
The unit tests (tests/test_download.py, tests/test_reliability.py) check that each bound is what ends its wait;
this measures how long that takes here.
"""

from __future__ import annotations

import gzip
import hashlib
import http.server
import os
import socket
import statistics
import tempfile
import threading
import time
import tracemalloc

from benchmarks.common import arguments, base_parser, command_line, machine, output_dir, write_outputs

FILENAME = "train-images-idx3-ubyte.gz"


class _SlowLoris(http.server.BaseHTTPRequestHandler):
    """Answers HEAD at once; to GET, announces the file and sends it one byte a second."""

    def log_message(self, *args):
        pass

    def do_HEAD(self):
        self._headers()

    def do_GET(self):
        self._headers()
        try:
            for byte in self.server.body:
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
                time.sleep(1.0)
        except OSError:  # the client gave up
            pass

    def _headers(self):
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.server.body)))
        self.end_headers()


class _Hang:
    """A call that blocks until released, then fails: a lookup that never returns within the measurement."""

    def __init__(self):
        self.release = threading.Event()

    def __call__(self, *args, **kwargs):
        import requests

        self.release.wait(600)
        raise requests.ConnectionError("released")  # an OSError too: caught as a failed lookup, as a real one is


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _raises(fn, error) -> None:
    try:
        fn()
    except error:
        return
    raise AssertionError(f"{fn} did not raise {error.__name__}")


def _ports():
    """(a URL where nothing listens, a URL whose socket accepts and never answers, that socket)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}/"
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)
    return dead, f"http://127.0.0.1:{silent.getsockname()[1]}/", silent


def probe_cases(hang: _Hang) -> dict:
    """The probe's three cases, the offline fallback and the TFDS lookup: {case: (seconds, bound)}."""
    import requests
    import tensorflow_datasets as tfds

    from jaxmlp.data import datasets as data
    from jaxmlp.data import download
    from jaxmlp.errors import DataError

    dead, silent, sock = _ports()
    fetch = lambda url: lambda: _raises(lambda: download.fetch("mnist", mirror=url, log=lambda m: None), DataError)
    bound = download.PROBE_SECONDS
    out = {
        "probe, port where nothing listens": (_timed(fetch(dead)), bound),
        "probe, silent socket": (_timed(fetch(silent)), bound),
    }
    sock.close()
    head, builder = requests.head, tfds.builder
    requests.head, tfds.builder = hang, hang
    try:
        out["probe, hanging lookup"] = (_timed(fetch("http://mirror.invalid/")), bound)
        data.load_digits()  # scikit-learn's import is not the fallback's to pay for
        os.environ[download.MIRROR_ENV] = "http://mirror.invalid/"
        out["offline fallback to digits"] = (_timed(lambda: data.load_dataset(log=lambda m: None)), bound)
        del os.environ[download.MIRROR_ENV]
        out["TFDS lookup, hanging"] = (_timed(lambda: data.tfds_is_prepared("mnist", seconds=0.5)), 0.5)
    finally:
        requests.head, tfds.builder = head, builder
    return out


def slow_loris(body: bytes, deadline: float) -> tuple[float, float]:
    from jaxmlp.data import download
    from jaxmlp.errors import DataError

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _SlowLoris)
    server.daemon_threads, server.body = True, body
    threading.Thread(target=server.serve_forever, daemon=True).start()
    os.environ[download.DEADLINE_ENV] = f"{deadline:g}"
    try:
        url = f"http://127.0.0.1:{server.server_port}/"
        return _timed(
            lambda: _raises(lambda: download.fetch("mnist", mirror=url, log=lambda m: None), DataError)
        ), deadline
    finally:
        del os.environ[download.DEADLINE_ENV]
        server.shutdown()
        server.server_close()


def huge_header(folder: str) -> dict:
    from jaxmlp.data.idx import read_idx
    from jaxmlp.errors import DataError

    path = os.path.join(folder, "huge.idx.gz")
    with open(path, "wb") as f:
        f.write(gzip.compress(bytes([0, 0, 8, 3]) + (10**9).to_bytes(4, "big") + (28).to_bytes(4, "big") * 2))
    tracemalloc.start()
    try:
        seconds = _timed(lambda: _raises(lambda: read_idx(path, 3), DataError))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return {"seconds": seconds, "peak_traced_bytes": peak}


def one_repeat(folder: str, deadline: float) -> dict:
    body = os.urandom(64)
    registry = os.path.join(folder, "registry")
    os.makedirs(registry, exist_ok=True)
    with open(os.path.join(registry, "mnist.txt"), "w") as f:
        f.write(f"http://registry.invalid/mnist/{FILENAME}\t{len(body)}\t{hashlib.sha256(body).hexdigest()}\n")
    hang = _Hang()
    with tempfile.TemporaryDirectory(dir=folder) as cache:
        os.environ.update(XDG_CACHE_HOME=cache, JAXMLP_DATA_REGISTRY=registry)
        try:
            waits = probe_cases(hang)
            waits["slow-loris mirror"] = slow_loris(body, deadline)
        finally:
            hang.release.set()
    return {"waits": waits, "idx": huge_header(folder)}


def table(rows: list[dict], idx: dict, load: tuple[float, float, float]) -> str:
    lines = ["| wait | bound s | seconds (median) | min–max | ÷ bound |", "|---|---|---|---|---|"]
    for r in rows:
        lines.append(
            f"| {r['case']} | {r['bound_s']:g} | {r['seconds']:.3f} | {r['min_s']:.3f}–{r['max_s']:.3f} | "
            f"{r['vs_bound']:.3f} |"
        )
    lines.append(
        f"\nIDX header claiming 10⁹ images: rejected in {idx['seconds'] * 1e3:.2f} ms (median), "
        f"{idx['peak_traced_bytes'] / 1024:.0f} KiB traced at the peak. Load average when done: "
        f"{load[0]:.2f}, {load[1]:.2f}, {load[2]:.2f} (1, 5, 15 min) on {os.cpu_count()} cores."
    )
    return "\n".join(lines)


def chart(rows: list[dict]):
    import matplotlib.pyplot as plt

    from jaxmlp.show import plots

    with plots.style():
        fig, ax = plt.subplots(figsize=(6.5, 3.2))
        ax.barh([r["case"] for r in rows][::-1], [r["vs_bound"] for r in rows][::-1], color=plots.COLORS["test"])
        ax.axvline(1.0, color="0.3", linestyle="--", linewidth=1)
        ax.set(xlabel="seconds ÷ the bound (median)", title="bounded waits")
        fig.tight_layout()
    return fig


def main(argv: list[str] | None = None) -> None:
    argv = arguments(argv)
    p = base_parser("bounded_waits", __doc__, "rounds of every case, median reported (default 3; --quick: 1)")
    args = p.parse_args(argv)
    deadline = 1.0 if args.quick else 3.0
    with tempfile.TemporaryDirectory() as folder:
        os.environ["TFDS_DATA_DIR"] = os.path.join(folder, "tfds")  # before TFDS is imported, which reads it
        runs = [one_repeat(folder, deadline) for _ in range(args.repeats or (1 if args.quick else 3))]
    rows = []
    for case in runs[0]["waits"]:
        seconds = [r["waits"][case][0] for r in runs]
        bound = runs[0]["waits"][case][1]
        median = statistics.median(seconds)
        rows.append(
            {"case": case, "bound_s": bound, "seconds": median, "min_s": min(seconds), "max_s": max(seconds)}
            | {"vs_bound": median / bound, "all_s": seconds}
        )
    idx = {k: statistics.median(r["idx"][k] for r in runs) for k in ("seconds", "peak_traced_bytes")}
    results = {"command": command_line("bounded_waits", argv), "machine": machine(), "rows": rows, "idx": idx}
    results["load_average"] = load = os.getloadavg()
    for path in write_outputs(
        output_dir(args, "bounded_waits"), "bounded_waits", results, table(rows, idx, load), chart(rows)
    ):
        print(path)


if __name__ == "__main__":
    main()
