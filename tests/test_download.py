"""`jaxmlp.data.download` against a real HTTP server on 127.0.0.1, with a registry of files the tests write.

Every test points the cache (XDG_CACHE_HOME), TFDS's data dir and the registry (JAXMLP_DATA_REGISTRY) at
tmp_path; the registry's own URLs are on `registry.invalid`, a name that never resolves, so a test that
forgot its mirror cannot reach the internet either.
"""

import errno
import gzip
import hashlib
import http.server
import os
import socket
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import requests
import tensorflow_datasets as tfds
from tensorflow_datasets.core import constants as tfds_constants

from jaxmlp import cli
from jaxmlp.data import datasets as data
from jaxmlp.data import download
from jaxmlp.data.idx import write_idx
from jaxmlp.errors import DataError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRAIN_IMAGES = "train-images-idx3-ubyte.gz"


class _Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_HEAD(self):
        self._serve(head=True)

    def do_GET(self):
        self._serve(head=False)

    def _serve(self, head):
        mirror, name = self.server.mirror, self.path.rsplit("/", 1)[-1]
        mirror.requests.append((self.command, self.path, self.headers.get("Range")))
        if name not in mirror.files:
            self.send_error(404)
            return
        body = mirror.body(name)
        if mirror.hostile:
            return self._hostile(mirror, body, head)
        start = int(self.headers["Range"][6:-1]) if mirror.ranges and self.headers.get("Range") else 0
        if start >= len(body) > 0:
            self.send_error(416)
            return
        self.send_response(206 if start else 200)
        if start:
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        self.send_header("Content-Length", str(len(body) - start))
        self.end_headers()
        if not head:
            self._send(mirror, name, body[start:])

    def _hostile(self, mirror, body, head):
        """A mirror that sends 10x the file, with or without announcing it; gzip-encodes it; or dribbles it."""
        kind = mirror.hostile
        if kind == "gzip":
            body = gzip.compress(body)
        elif kind in ("10x", "10x unannounced"):
            body = body * 10
        self.send_response(200)
        if kind == "gzip":
            self.send_header("Content-Encoding", "gzip")
        if kind != "10x unannounced":
            self.send_header("Content-Length", str(len(body)))
        else:
            self.close_connection = True  # the body ends when the connection does
        self.end_headers()
        if head:
            return
        if kind == "slow loris":
            for byte in body[:50]:  # one byte a second: each read gets a byte well inside its timeout
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
                time.sleep(1.0)
            return
        self.wfile.write(body)

    def _send(self, mirror, name, payload):
        mirror.gate.wait()  # a test may hold every download here
        if mirror.drops.get(name, 0) > 0 and not self.command == "HEAD":
            mirror.drops[name] -= 1
            self.wfile.write(payload[: len(payload) // 2])  # then hang up mid-file
            self.close_connection = True
            return
        self.wfile.write(payload)


class Mirror:
    """A real HTTP server on 127.0.0.1 in this process: serves `files`, can hang up mid-file or send wrong bytes."""

    def __init__(self, files, wrong=(), drops=None, ranges=True, short=False, hostile=None):
        self.files, self.wrong, self.drops, self.short = dict(files), set(wrong), dict(drops or {}), short
        self.hostile = hostile  # "10x", "10x unannounced", "gzip" or "slow loris": see _Handler._hostile
        self.ranges, self.requests = ranges, []
        self.gate = threading.Event()
        self.gate.set()
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.server.daemon_threads = True
        self.server.mirror = self
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}/mnist/"

    def body(self, name):
        good = self.files[name]
        if name not in self.wrong:
            return good
        return good[: len(good) // 3] if self.short else bytes(reversed(good))  # a whole file, not the registry's

    def gets(self, name):
        return [r for r in self.requests if r[0] == "GET" and r[1].endswith("/" + name)]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def dead_port_url():
    """A loopback URL where nothing listens: connecting is refused at once."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


@pytest.fixture
def silent_url():
    """A loopback URL whose socket accepts connections (the kernel's backlog) and never answers a byte."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(16)
    yield f"http://127.0.0.1:{s.getsockname()[1]}/"
    s.close()


def write_registry(folder, files, name="mnist"):
    """A registry in TFDS's url_checksums format (URL, size, sha256, filename) for `files`."""
    os.makedirs(folder, exist_ok=True)
    lines = [
        f"http://registry.invalid/{name}/{f}\t{len(b)}\t{hashlib.sha256(b).hexdigest()}\t{f}\n"
        for f, b in sorted(files.items())
    ]
    with open(os.path.join(folder, name + ".txt"), "w") as out:
        out.writelines(lines)


def write_files(folder, n_train, n_test):
    """MNIST-shaped IDX files of random pixels: incompressible, so a file is big enough to be cut mid-transfer."""
    rng = np.random.default_rng(0)
    os.makedirs(folder)
    for split, n in (("train", n_train), ("t10k", n_test)):
        write_idx(os.path.join(folder, f"{split}-images-idx3-ubyte.gz"), rng.integers(0, 256, (n, 28, 28)))
        write_idx(os.path.join(folder, f"{split}-labels-idx1-ubyte.gz"), rng.integers(0, 10, n))
    return {f: open(os.path.join(folder, f), "rb").read() for f in os.listdir(folder)}


@pytest.fixture
def files(tmp_path, monkeypatch):
    """Four small IDX files (real 8x8 digits) as the registry's MNIST; an empty cache and TFDS dir."""
    content = write_files(tmp_path / "source", n_train=300, n_test=100)
    write_registry(tmp_path / "registry", content)
    monkeypatch.setenv(download.REGISTRY_ENV, str(tmp_path / "registry"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "tfds"))
    monkeypatch.setattr(tfds_constants, "DATA_DIR", str(tmp_path / "tfds"))
    monkeypatch.delenv(download.MIRROR_ENV, raising=False)
    return content


def cache_listing():
    return sorted(os.listdir(download.cache_dir("mnist")))


def test_registry_is_read_from_the_installed_tensorflow_datasets(monkeypatch):
    monkeypatch.delenv(download.REGISTRY_ENV, raising=False)
    entries = {e.filename: e for e in download.registry("mnist")}
    t10k = entries["t10k-images-idx3-ubyte.gz"]
    assert t10k.url == "https://storage.googleapis.com/cvdf-datasets/mnist/t10k-images-idx3-ubyte.gz"
    assert t10k.sha256.startswith("8d422c7b") and t10k.size == 1648877
    assert sorted(entries) == [t10k.filename, "t10k-labels-idx1-ubyte.gz", TRAIN_IMAGES, "train-labels-idx1-ubyte.gz"]
    tfds_folder = os.path.dirname(os.path.abspath(tfds.__file__))
    assert download._tfds_registry("mnist") == os.path.join(tfds_folder, "url_checksums", "mnist.txt")


def test_fetch_then_cache_hit_with_no_network(files, tmp_path):
    mirror = Mirror(files)
    try:
        folder = download.fetch("mnist", mirror=mirror.url, log=lambda m: None)
    finally:
        mirror.close()
    assert cache_listing() == sorted(files)
    for name, content in files.items():
        assert open(os.path.join(folder, name), "rb").read() == content
    assert sorted(r[1].rsplit("/", 1)[1] for r in mirror.requests if r[0] == "GET") == sorted(files)
    os.environ[download.MIRROR_ENV] = dead_port_url()  # (the fixture's monkeypatch restores it)
    ds = data.load_dataset(log=pytest.fail)  # no notice, no download: the verified cache
    assert ds.name == "mnist" and ds.x_train.shape == (300, 784) and ds.x_test.shape == (100, 784)
    assert download.fetch("mnist", log=pytest.fail) == folder


def test_default_dataset_downloads_mnist_when_a_mirror_answers(files, monkeypatch):
    mirror = Mirror(files)
    monkeypatch.setenv(download.MIRROR_ENV, mirror.url.replace("/mnist/", "/{dataset}/"))
    notes = []
    ds = data.load_dataset(log=notes.append)
    mirror.close()
    assert ds.name == "mnist" and len(ds.y_train) == 300
    assert all(r[1].startswith("/mnist/") for r in mirror.requests)
    assert [n for n in notes if "verified" in n] == [
        f"mnist: {f} ({len(files[f]):,} bytes) verified" for f in sorted(files)
    ]


@pytest.mark.parametrize("short", [False, True], ids=["same size", "shorter"])
def test_wrong_bytes_are_deleted_and_both_hashes_named(files, short):
    mirror = Mirror(files, wrong={TRAIN_IMAGES}, short=short)
    notes = []
    with pytest.raises(DataError) as e:
        download.fetch("mnist", mirror=mirror.url, log=notes.append)
    mirror.close()
    assert not [n for n in notes if "dropped" in n]  # a whole shorter file is a mismatch, not a hang-up
    served = mirror.body(TRAIN_IMAGES)
    message = str(e.value)
    assert f"{TRAIN_IMAGES} from {mirror.url}{TRAIN_IMAGES}: checksum mismatch" in message and "deleted" in message
    assert f"({len(served):,} bytes), expected" in message and len(mirror.gets(TRAIN_IMAGES)) == 1
    assert hashlib.sha256(served).hexdigest() in message and hashlib.sha256(files[TRAIN_IMAGES]).hexdigest() in message
    assert cache_listing() == sorted(f for f in files if f != TRAIN_IMAGES)


def test_dropped_connection_resumes_from_where_it_stopped(files):
    mirror = Mirror(files, drops={TRAIN_IMAGES: 1})
    notes = []
    folder = download.fetch("mnist", mirror=mirror.url, log=notes.append)
    mirror.close()
    resumed = [n for n in notes if n.startswith(f"{TRAIN_IMAGES}: resuming at byte ")]
    assert len(resumed) == 1 and resumed[0].endswith(f" of {len(files[TRAIN_IMAGES]):,}")
    got = int(resumed[0].split()[4].replace(",", ""))
    assert 0 < got < len(files[TRAIN_IMAGES])  # what arrived before the hang-up (less its last partial read)
    assert [r[2] for r in mirror.gets(TRAIN_IMAGES)] == [None, f"bytes={got}-"]
    assert open(os.path.join(folder, TRAIN_IMAGES), "rb").read() == files[TRAIN_IMAGES]


def test_dropped_connection_restarts_when_the_server_cannot_resume(files):
    mirror = Mirror(files, drops={TRAIN_IMAGES: 1}, ranges=False)
    notes = []
    folder = download.fetch("mnist", mirror=mirror.url, log=notes.append)
    mirror.close()
    assert any(n.startswith(f"{TRAIN_IMAGES}: 127.0.0.1") and "restarting from byte 0" in n for n in notes)
    assert open(os.path.join(folder, TRAIN_IMAGES), "rb").read() == files[TRAIN_IMAGES]


def test_a_server_that_keeps_dropping_leaves_a_partial_file_the_next_fetch_resumes(files):
    mirror = Mirror(files, drops={TRAIN_IMAGES: download.TRIES})
    with pytest.raises(DataError, match=f"{TRAIN_IMAGES}: the connection to 127.0.0.1.*dropped.*resumes it"):
        download.fetch("mnist", mirror=mirror.url, log=lambda m: None)
    assert TRAIN_IMAGES not in cache_listing() and f".{TRAIN_IMAGES}.part" in cache_listing()
    notes = []
    download.fetch("mnist", mirror=mirror.url, log=notes.append)
    mirror.close()
    assert any(n.startswith(f"{TRAIN_IMAGES}: resuming at byte") for n in notes)
    assert cache_listing() == sorted(files)


def test_a_partial_file_longer_than_the_servers_file_starts_over(files):
    mirror = Mirror(files, wrong={TRAIN_IMAGES}, short=True)
    os.makedirs(download.cache_dir("mnist"))
    part = os.path.join(download.cache_dir("mnist"), f".{TRAIN_IMAGES}.part")
    with open(part, "wb") as f:
        f.write(files[TRAIN_IMAGES][: len(files[TRAIN_IMAGES]) // 2])  # left by an earlier, dropped fetch
    with pytest.raises(DataError, match=f"{TRAIN_IMAGES} from .*: checksum mismatch"):
        download.fetch("mnist", mirror=mirror.url, log=lambda m: None)
    mirror.close()
    assert [r[2] for r in mirror.gets(TRAIN_IMAGES)][1:] == [None]  # after the 416, the whole file again
    assert not os.path.exists(part) and TRAIN_IMAGES not in cache_listing()


def test_http_error_names_the_file_and_the_status(files):
    mirror = Mirror({f: b for f, b in files.items() if f != TRAIN_IMAGES})
    with pytest.raises(DataError, match=f"{TRAIN_IMAGES}: HTTP 404 .*{mirror.url}{TRAIN_IMAGES}; check"):
        download.fetch("mnist", mirror=mirror.url, log=lambda m: None)
    mirror.close()
    assert TRAIN_IMAGES not in cache_listing() and len(cache_listing()) == 3


def test_disk_full_deletes_the_partial_file(files, monkeypatch):
    mirror = Mirror(files)
    part = os.path.join(download.cache_dir("mnist"), f".{TRAIN_IMAGES}.part")
    fsync = os.fsync

    def full_disk(fd):  # the train images' last write fails with ENOSPC, as on a full disk
        if os.path.realpath(f"/proc/self/fd/{fd}") == os.path.realpath(part):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        fsync(fd)

    monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(DataError, match=f"{TRAIN_IMAGES}: no space left on the disk of .*XDG_CACHE_HOME"):
        download.fetch("mnist", mirror=mirror.url, log=lambda m: None)
    mirror.close()
    assert not os.path.lexists(part) and TRAIN_IMAGES not in cache_listing()


class Hang:
    """A stand-in for a lookup that never returns (DNS on a dead network, a TFDS data dir on an unreachable share):
    it blocks until the test ends; `.returned` says whether it ever came back."""

    def __init__(self):
        self.release, self.returned = threading.Event(), threading.Event()

    def __call__(self, *args, **kwargs):
        self.release.wait(60)
        self.returned.set()
        raise requests.ConnectionError("the lookup came back")  # an OSError too: what a failed lookup raises


@pytest.fixture
def hang():
    h = Hang()
    yield h
    h.release.set()


@pytest.fixture
def hanging_lookup(monkeypatch, hang):
    """Every HTTP probe (`requests.head`) hangs."""
    monkeypatch.setattr(requests, "head", hang)
    return hang


# How long each wait below takes against its bound is measured by `python -m benchmarks.bounded_waits`; the tests
# check that the bound is what ends it.


@pytest.mark.parametrize("where", ["dead port", "silent socket"])
def test_unreachable_mirror_is_reported_by_the_probe(files, where, silent_url):
    url = dead_port_url() if where == "dead port" else silent_url
    with pytest.raises(DataError, match=f"did not answer within {download.PROBE_SECONDS:g} s.*--data-dir"):
        download.fetch("mnist", mirror=url, log=lambda m: None)


def test_the_probe_answers_while_a_lookup_still_hangs(files, hanging_lookup):
    with pytest.raises(DataError, match=f"did not answer within {download.PROBE_SECONDS:g} s.*--data-dir"):
        download.fetch("mnist", mirror="http://mirror.invalid/", log=lambda m: None)
    assert not hanging_lookup.returned.is_set()  # the probe's bound ended the wait, not the lookup


@pytest.mark.parametrize("where", ["dead port", "silent socket", "hanging lookup"])
def test_offline_default_falls_back_to_digits(files, monkeypatch, where, silent_url, hang):
    monkeypatch.setenv(download.MIRROR_ENV, dead_port_url() if where == "dead port" else silent_url)
    if where == "hanging lookup":
        monkeypatch.setattr(requests, "head", hang)
    notes = []
    ds = data.load_dataset(log=notes.append)
    assert ds.name == "digits" and len(notes) == 1 and "jaxmlp data fetch mnist" in notes[0]
    assert not hang.returned.is_set()
    with pytest.raises(DataError, match="fashion_mnist is neither prepared.*--data-dir.*--dataset digits"):
        write_registry(os.environ[download.REGISTRY_ENV], files, name="fashion_mnist")
        data.load_dataset("fashion_mnist")


def test_tfds_lookup_is_bounded(monkeypatch, hang):
    monkeypatch.setattr(tfds, "builder", hang)
    assert data.tfds_is_prepared("mnist", seconds=0.5) is False
    assert not hang.returned.is_set()  # the answer came while TFDS's lookup still hung


def test_verify_and_list_report_a_corrupted_cache(files, capsys):
    mirror = Mirror(files)
    download.fetch("mnist", mirror=mirror.url, log=lambda m: None)
    mirror.close()
    assert cli.main(["data", "verify", "mnist"]) == 0
    assert download.describe("mnist").split()[1:6] == ["4", "of", "4", "files,", "verified"]
    path = os.path.join(download.cache_dir("mnist"), TRAIN_IMAGES)
    with open(path, "r+b") as f:
        f.write(b"\xff")
    assert "1 failing checksums" in download.describe("mnist")
    capsys.readouterr()
    assert cli.main(["data", "verify", "mnist"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: mnist: {TRAIN_IMAGES}: checksum mismatch: sha256 ")
    assert hashlib.sha256(files[TRAIN_IMAGES]).hexdigest() in err[0] and "jaxmlp data fetch mnist" in err[0]
    assert not os.path.exists(path) and download.describe("mnist").split()[1:6] == [
        "3",
        "of",
        "4",
        "files,",
        "verified",
    ]
    write_registry(os.environ[download.REGISTRY_ENV], files, name="kmnist")
    assert download.describe("kmnist").split()[1:3] == ["not", "cached"]


def run_fetch(mirror_url, *extra):
    return subprocess.Popen(
        [sys.executable, "-m", "jaxmlp", "data", "fetch", "mnist", *extra],
        cwd=ROOT,
        env={**os.environ, download.MIRROR_ENV: mirror_url, "PYTHONPATH": ROOT},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for(condition, seconds=120):
    end = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.05)


def test_two_concurrent_fetches_end_with_one_good_copy(files):
    mirror = Mirror(files)
    mirror.gate.clear()  # the first fetch's first download waits here, holding the dataset's lock
    first = run_fetch(mirror.url)
    wait_for(lambda: mirror.gets("t10k-images-idx3-ubyte.gz"))
    second = run_fetch(mirror.url)
    said = []
    reader = threading.Thread(target=lambda: said.extend(second.stderr), daemon=True)
    reader.start()
    wait_for(lambda: any("another process is fetching" in line for line in said) or len(mirror.requests) > 2)
    mirror.gate.set()
    outs = [first.communicate(timeout=120), (second.wait(timeout=120), reader.join(timeout=10))]
    mirror.close()
    assert [first.returncode, second.returncode] == [0, 0], (outs, said)
    assert any("another process is fetching" in line for line in said), said  # it waited for the lock
    assert all(len(mirror.gets(f)) == 1 for f in files), mirror.requests  # then found the first's files
    assert cache_listing() == sorted(files)


def test_cli_bar_wrong_train_files_exit_2_and_keep_the_verified_test_files(files):
    """The issue's bar: the mirror serves the registry's t10k-* files and wrong train-* files."""
    mirror = Mirror(files, wrong={f for f in files if f.startswith("train-")})
    proc = run_fetch("http://127.0.0.1:1/unused/", "--mirror", mirror.url)
    out, err = proc.communicate(timeout=120)
    mirror.close()
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert proc.returncode == 2 and len(errors) == 1 and out == ""
    assert TRAIN_IMAGES in errors[0] and "checksum mismatch" in errors[0]
    assert cache_listing() == ["t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]


def test_a_prepared_tfds_copy_comes_before_the_cache(files, monkeypatch):
    mirror = Mirror(files)
    download.fetch("mnist", mirror=mirror.url, log=lambda m: None)
    mirror.close()
    monkeypatch.setattr(data, "_prepared", lambda name, data_dir: True)  # preparing a real copy needs TensorFlow
    with tfds.testing.mock_data(num_examples=24):
        ds = data.load_dataset("mnist", log=pytest.fail)
    assert len(ds.y_train) == 24 and ds.x_train.shape == (24, 784)  # TFDS's mock records, not the cached 300


# --- a registry or a server that is not to be trusted ----------------------------------------------------------


@pytest.fixture
def victim(tmp_path):
    """A user's file outside the cache, and a check that it survives byte for byte."""
    path = tmp_path / "victim" / "important.txt"
    path.parent.mkdir()
    path.write_bytes(b"the user's own bytes\n")
    return path


@pytest.mark.parametrize("how", ["./../../victim/important.txt", "../victim/important.txt", "absolute"])
def test_registry_filenames_cannot_leave_the_cache(files, tmp_path, victim, capsys, how):
    name = str(victim) if how == "absolute" else how
    registry = {**files, name: b"other bytes, so the victim fails the checksum"}
    write_registry(tmp_path / "registry", registry)
    mirror = Mirror(registry)
    for command in (["data", "fetch", "mnist", "--mirror", mirror.url], ["data", "verify", "mnist"]):
        assert cli.main(command) == 2
        err = capsys.readouterr().err.splitlines()
        assert len(err) == 1 and err[0].startswith("error:") and "not a plain file name" in err[0], err
    mirror.close()
    assert victim.read_bytes() == b"the user's own bytes\n" and mirror.requests == []


@pytest.mark.parametrize(
    "line, needle",
    [
        ("", "lists no files"),
        ("http://registry.invalid/x\tnot-a-size\tabc\tx.gz\n", "malformed registry"),
        ("http://registry.invalid/x\t12\n", "malformed registry"),
        (f"http://registry.invalid/x\t12\t{'0' * 63}\tx.gz\n", "sha256"),
        (f"http://registry.invalid/x\t12\t{'0' * 64}\t.lock\n", "not a plain file name"),
    ],
)
def test_a_malformed_or_empty_registry_is_one_line(files, tmp_path, capsys, line, needle):
    (tmp_path / "registry" / "mnist.txt").write_text(line)
    for command in (["data", "fetch", "mnist"], ["data", "verify", "mnist"]):
        assert cli.main(command) == 2
        err = capsys.readouterr().err.splitlines()
        assert len(err) == 1 and err[0].startswith("error:") and needle in err[0], err


@pytest.mark.parametrize("mirror", ["http://[::1", "ftp://example.org/", "not a url", "http://"])
def test_a_malformed_mirror_url_is_one_line(files, capsys, mirror):
    assert cli.main(["data", "fetch", "mnist", "--mirror", mirror]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and "not an http(s) URL" in err[0], err


@pytest.mark.parametrize("site", [".lock", f".{TRAIN_IMAGES}.part", "part to resume"])
def test_a_planted_symlink_is_refused_not_followed(files, victim, site):
    folder = download.cache_dir("mnist")
    os.makedirs(folder)
    link = os.path.join(folder, f".{TRAIN_IMAGES}.part" if site == "part to resume" else site)
    if site == "part to resume":  # shorter than the file: a fetch would append to it
        victim.write_bytes(b"x" * 10)
    os.symlink(victim, link)
    before = victim.read_bytes()
    mirror = Mirror(files)
    with pytest.raises(DataError, match="symlink") as e:
        download.fetch("mnist", mirror=mirror.url, log=lambda m: None)
    mirror.close()
    assert link in str(e.value) and victim.read_bytes() == before and os.path.islink(link)


@pytest.mark.parametrize("kind", ["10x", "10x unannounced", "gzip"])
def test_a_mirror_cannot_write_more_than_the_registry_size(files, monkeypatch, kind):
    mirror = Mirror(files, hostile=kind)
    sizes = []
    discard = download._discard

    def record(path):  # the size of each .part just before it is thrown away
        if os.path.isfile(path):
            sizes.append((os.path.basename(path), os.path.getsize(path)))
        discard(path)

    monkeypatch.setattr(download, "_discard", record)
    with pytest.raises(DataError) as e:
        download.fetch("mnist", mirror=mirror.url, log=lambda m: None)
    mirror.close()
    message = str(e.value)
    assert ("encoded" in message) if kind == "gzip" else ("more than the registry's" in message), message
    assert all(size <= len(files[name[1:-5]]) for name, size in sizes), sizes
    assert cache_listing() == []  # nothing kept, no partial file to resume


def test_a_slow_loris_mirror_ends_at_the_deadline(files, monkeypatch):
    monkeypatch.setenv(download.DEADLINE_ENV, "3")
    mirror = Mirror(files, hostile="slow loris")
    with pytest.raises(DataError, match=f"did not deliver it within 3 s.*{download.DEADLINE_ENV}") as e:
        download.fetch("mnist", mirror=mirror.url, log=lambda m: None)
    mirror.close()
    assert str(e.value).count("did not deliver it within 3 s") == 4  # each file ended by its own deadline


def test_a_partial_file_longer_than_the_registry_size_is_discarded(files):
    os.makedirs(download.cache_dir("mnist"))
    part = os.path.join(download.cache_dir("mnist"), f".{TRAIN_IMAGES}.part")
    with open(part, "wb") as f:
        f.write(files[TRAIN_IMAGES] + b"junk past the end")
    mirror = Mirror(files)
    download.fetch("mnist", mirror=mirror.url, log=lambda m: None)
    mirror.close()
    assert [r[2] for r in mirror.gets(TRAIN_IMAGES)] == [None]  # no Range: not resumed
    assert cache_listing() == sorted(files)


def test_a_bad_cached_file_stays_until_a_verified_copy_replaces_it(files):
    mirror = Mirror(files)
    download.fetch("mnist", mirror=mirror.url, log=lambda m: None)
    path = os.path.join(download.cache_dir("mnist"), TRAIN_IMAGES)
    with open(path, "r+b") as f:
        f.write(b"\xff")
    damaged = open(path, "rb").read()
    bad = Mirror(files, wrong={TRAIN_IMAGES})
    with pytest.raises(DataError, match="checksum mismatch"):
        download.fetch("mnist", mirror=bad.url, log=lambda m: None)
    bad.close()
    assert open(path, "rb").read() == damaged  # not deleted before a verified replacement
    download.fetch("mnist", mirror=mirror.url, log=lambda m: None)
    mirror.close()
    assert open(path, "rb").read() == files[TRAIN_IMAGES]
