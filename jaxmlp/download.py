"""Fetch the IDX files of MNIST, Fashion-MNIST and KMNIST, checked against TFDS's own registry.

The installed tensorflow-datasets package lists each file's URL, size and sha256 in
`tensorflow_datasets/url_checksums/NAME.txt`; `registry` reads that file at run time, so the
sums here are always TFDS's. Files are streamed with `requests` rather than through TFDS's
`DownloadManager`: that one downloads without TensorFlow, but it retries a dead host for minutes,
cannot resume, and leaves a partial or wrong file behind in its `downloads/` folder.

The cache is `$XDG_CACHE_HOME/jaxmlp/NAME/` (`~/.cache/jaxmlp/NAME/` by default): the XDG base-directory
spec's place for non-essential data, which these files are, since they can be fetched again. Each file keeps
its canonical name, so a cached folder is also a valid `--data-dir`. A file gets that name only
after its size and sha256 match: it is written as `.FILENAME.part` and renamed. The `.part` file
survives a dropped connection and the next fetch resumes it with an HTTP Range request.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import hashlib
import importlib.util
import os
import sys
import threading
import time
import urllib.parse

from jaxmlp.errors import DataError
from jaxmlp.names import DOWNLOADABLE as DATASETS

MIRROR_ENV = "JAXMLP_DATA_MIRROR"  # replaces the registry's base URL: MIRROR/FILENAME, `{dataset}` filled in
REGISTRY_ENV = "JAXMLP_DATA_REGISTRY"  # a folder of NAME.txt files in TFDS's format, read instead of TFDS's
PROBE_SECONDS = 2.0  # how long a host gets to answer before the machine counts as offline
TRIES = 3  # transfers of one file per fetch when the connection drops
_CHUNK = 1 << 16
_stderr = lambda msg: print(msg, file=sys.stderr, flush=True)


@dataclasses.dataclass(frozen=True)
class Entry:
    """One file of a dataset as the registry describes it."""

    filename: str
    url: str
    size: int
    sha256: str


def _tfds_registry(name: str) -> str:
    """The path of TFDS's checksum file for `name`, found without importing all of TFDS."""
    spec = importlib.util.find_spec("tensorflow_datasets")
    if spec is None or not spec.submodule_search_locations:
        raise DataError("tensorflow-datasets is not installed; pip install tensorflow-datasets")
    return os.path.join(spec.submodule_search_locations[0], "url_checksums", name + ".txt")


def registry(name: str) -> list[Entry]:
    """The files of dataset `name` from TFDS's registry (or from $JAXMLP_DATA_REGISTRY/NAME.txt), by filename."""
    from tensorflow_datasets.core.download.checksums import load_url_infos

    folder = os.environ.get(REGISTRY_ENV)
    path = os.path.join(folder, name + ".txt") if folder else _tfds_registry(name)
    if not os.path.isfile(path):
        raise DataError(f"{path}: no registry of {name}'s files; choose one of {', '.join(DATASETS)}")
    infos = load_url_infos(path)
    entries = [
        Entry(info.filename or os.path.basename(urllib.parse.urlparse(url).path), url, int(info.size), info.checksum)
        for url, info in infos.items()
    ]
    return sorted(entries, key=lambda e: e.filename)


def cache_dir(name: str) -> str:
    """Where dataset `name` is cached: $XDG_CACHE_HOME/jaxmlp/NAME, XDG_CACHE_HOME defaulting to ~/.cache."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "jaxmlp", name)


def source_url(entry: Entry, name: str, mirror: str | None = None) -> str:
    """The URL to fetch `entry` from: the registry's, or MIRROR/FILENAME with `{dataset}` replaced by `name`."""
    mirror = mirror or os.environ.get(MIRROR_ENV)
    if not mirror:
        return entry.url
    return mirror.replace("{dataset}", name).rstrip("/") + "/" + entry.filename


def sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def mismatch(path: str, entry: Entry) -> str | None:
    """None when `path` holds exactly the registry's bytes, else a sentence naming both hashes and sizes."""
    size, digest = os.path.getsize(path), sha256(path)
    if size == entry.size and digest == entry.sha256:
        return None
    return (
        f"checksum mismatch: sha256 {digest} ({size:,} bytes), "
        f"expected {entry.sha256} ({entry.size:,} bytes) from the registry"
    )


def _is_good(folder: str, entry: Entry) -> bool:
    path = os.path.join(folder, entry.filename)
    return os.path.isfile(path) and mismatch(path, entry) is None


def has_files(name: str) -> bool:
    """Whether the cache folder of `name` holds any dataset file (verified or not), seen without the registry."""
    folder = cache_dir(name)
    return os.path.isdir(folder) and any(not f.startswith(".") for f in os.listdir(folder))


def cached(name: str) -> str | None:
    """The cache folder of `name` when every file is there and verified, else None."""
    folder = cache_dir(name)
    return folder if all(_is_good(folder, e) for e in registry(name)) else None


class Deadline:
    """Run `fn` in a daemon thread now; `result()` waits at most `seconds` from the start, then gives `default`.

    Socket timeouts do not cover DNS lookups (getaddrinfo blocks), so a thread is the one way to bound them.
    """

    def __init__(self, fn, seconds: float, default=None):
        self._out, self._default = [], default
        self._end = time.monotonic() + seconds
        self._thread = threading.Thread(target=lambda: self._out.append(fn()), daemon=True)
        self._thread.start()

    def result(self):
        self._thread.join(max(0.0, self._end - time.monotonic()))
        return self._out[0] if self._out else self._default


def _answers(url: str, timeout: float) -> bool:
    import requests

    try:
        requests.head(url, timeout=timeout).close()  # any HTTP status is an answer
        return True
    except requests.RequestException:
        return False


def probe(url: str, seconds: float = PROBE_SECONDS) -> Deadline:
    """Start asking whether `url`'s server answers over HTTP; `.result()` is True or False within `seconds`."""
    return Deadline(lambda: _answers(url, seconds), seconds, default=False)


def _dataset_answers(name: str) -> bool:
    try:
        return _answers(source_url(registry(name)[0], name), PROBE_SECONDS)
    except DataError:  # no registry: the caller's own look at it says so
        return False


def probe_dataset(name: str) -> Deadline:
    """`probe` of the first file of dataset `name`; its registry is read in the probe's thread, on the clock."""
    return Deadline(lambda: _dataset_answers(name), PROBE_SECONDS, default=False)


def _host(url: str) -> str:
    return urllib.parse.urlparse(url).netloc


class _Mismatch(DataError):
    """A whole file arrived and is not the registry's."""


class _Dropped(Exception):
    """The connection ended before the whole file arrived; `.got` bytes are in the .part file."""

    def __init__(self, got: int):
        super().__init__(got)
        self.got = got


def _open(url: str, have: int, entry: Entry):
    """GET `url` (from byte `have` on, if any) as a stream; a refused connection or HTTP error is a DataError."""
    import requests

    headers = {"Range": f"bytes={have}-"} if have else {}
    try:
        response = requests.get(url, headers=headers, stream=True, timeout=(10, 30))
    except requests.RequestException as e:
        raise DataError(
            f"{entry.filename}: cannot connect to {_host(url)} ({type(e).__name__}); "
            f"check the network, or point {MIRROR_ENV} (or --mirror) at a reachable mirror"
        ) from None
    if response.status_code == 416 and have:  # the partial file is longer than the server's file: start over
        response.close()
        return _open(url, 0, entry)
    if response.status_code not in (200, 206):
        response.close()
        raise DataError(
            f"{entry.filename}: HTTP {response.status_code} {response.reason} from {url}; "
            f"check that this server (or the mirror given by --mirror / {MIRROR_ENV}) has {entry.filename}"
        )
    return response


def _write(chunks, part: str, start: int, entry: Entry, progress: bool) -> None:
    """Append `chunks` to `part` from byte `start` (0: start over), with a progress bar when `progress`."""
    from tqdm import tqdm

    bar = tqdm(
        total=entry.size,
        initial=start,
        unit="B",
        unit_scale=True,
        desc=entry.filename,
        disable=not progress,
        leave=False,
    )
    with open(part, "ab" if start else "wb") as f, bar:
        for chunk in chunks:
            f.write(chunk)
            bar.update(len(chunk))
        f.flush()
        os.fsync(f.fileno())


def _transfer(url: str, part: str, entry: Entry, log, progress: bool) -> None:
    """Stream `url` into `part`, resuming it when the server honours Range; raise `_Dropped` if the connection breaks.

    A response that ends cleanly is the server's whole file, even when its size is not the registry's: the
    checksum that follows names the difference.
    """
    import requests

    have = os.path.getsize(part) if os.path.isfile(part) else 0
    have = have if have < entry.size else 0
    with _open(url, have, entry) as response:
        resumed = response.status_code == 206
        if have:
            log(
                f"{entry.filename}: resuming at byte {have:,} of {entry.size:,}"
                if resumed
                else f"{entry.filename}: {_host(url)} does not resume downloads; restarting from byte 0"
            )
        try:
            _write(response.iter_content(_CHUNK), part, have if resumed else 0, entry, progress)
        except requests.RequestException:  # cut off before Content-Length bytes: what arrived is in `part`
            raise _Dropped(os.path.getsize(part)) from None


def _transfer_tries(url: str, part: str, entry: Entry, name: str, log, progress: bool) -> None:
    """Transfer `url`, up to TRIES times if the connection drops; a full disk deletes the partial file."""
    for attempt in range(1, TRIES + 1):
        try:
            return _transfer(url, part, entry, log, progress)
        except _Dropped as e:
            if attempt == TRIES:
                raise DataError(
                    f"{entry.filename}: the connection to {_host(url)} dropped at byte {e.got:,} of {entry.size:,}, "
                    f"{TRIES} times; the partial file is kept and `jaxmlp data fetch {name}` resumes it"
                ) from None
            log(f"{entry.filename}: connection dropped at byte {e.got:,} of {entry.size:,}; try {attempt + 1}/{TRIES}")
        except OSError as e:
            if e.errno not in (errno.ENOSPC, errno.EDQUOT):
                raise
            with contextlib.suppress(FileNotFoundError):
                os.unlink(part)
            raise DataError(
                f"{entry.filename}: no space left on the disk of {os.path.dirname(part)} "
                f"({entry.size / 1e6:.1f} MB needed); the partial file is deleted; free some space, "
                "or set XDG_CACHE_HOME to a folder on a disk with room"
            ) from None


def _fetch_one(entry: Entry, url: str, folder: str, name: str, log, progress: bool) -> None:
    """Bring `entry` into `folder` under its own name, verified, or raise a DataError saying why and what to do."""
    part = os.path.join(folder, f".{entry.filename}.part")
    _transfer_tries(url, part, entry, name, log, progress)
    problem = mismatch(part, entry)
    if problem:
        os.unlink(part)
        raise _Mismatch(f"{entry.filename} from {url}: {problem}; deleted")
    os.replace(part, os.path.join(folder, entry.filename))
    log(f"{name}: {entry.filename} ({entry.size:,} bytes) verified")


@contextlib.contextmanager
def _lock(folder: str, name: str, log):
    """Hold `folder`'s lock file, so that two processes fetching one dataset take turns (POSIX flock)."""
    import fcntl

    with open(os.path.join(folder, ".lock"), "w") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log(f"{name}: another process is fetching into {folder}; waiting for it")
            fcntl.flock(f, fcntl.LOCK_EX)
        yield


def _make_dir(folder: str) -> None:
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as e:
        raise DataError(
            f"{folder}: cannot create the cache folder ({e.strerror}); set XDG_CACHE_HOME elsewhere"
        ) from None


def _stale(folder: str, entries: list[Entry], log) -> list[Entry]:
    """The entries that need fetching; a cached file that fails its checksum is deleted first."""
    todo = []
    for entry in entries:
        path = os.path.join(folder, entry.filename)
        if os.path.isfile(path) and mismatch(path, entry) is not None:
            os.unlink(path)
            log(f"{path}: failed its checksum; deleted, fetching it again")
        if not os.path.isfile(path):
            todo.append(entry)
    return todo


def fetch(name: str, mirror: str | None = None, log=_stderr, progress: bool | None = None) -> str:
    """Download and verify every missing file of dataset `name` into its cache folder; return the folder.

    Each file is fetched even when another fails, so one run keeps every good file and names every bad one.
    """
    entries, folder = registry(name), cache_dir(name)
    progress = sys.stderr.isatty() if progress is None else progress
    _make_dir(folder)
    problems, fix = [], ""
    with _lock(folder, name, log):
        todo = _stale(folder, entries, log)
        if todo and not probe(first := source_url(todo[0], name, mirror)).result():
            raise DataError(
                f"{name}: {_host(first)} did not answer within {PROBE_SECONDS:g} s, so {todo[0].filename} cannot be "
                f"fetched; connect to the internet, point {MIRROR_ENV} (or --mirror) at a reachable mirror, "
                "or train on a folder of IDX files with --data-dir DIR"
            )
        for entry in todo:
            try:
                _fetch_one(entry, source_url(entry, name, mirror), folder, name, log, progress)
            except _Mismatch as e:
                problems.append(str(e))
                fix = f". That server does not serve TFDS's files: fix --mirror / {MIRROR_ENV}, or retry later"
            except DataError as e:
                problems.append(str(e))
    if problems:
        raise DataError(f"{name}: " + "; ".join(problems) + fix)
    return folder


def verify(name: str) -> str:
    """Re-check every cached file of `name` against the registry; delete any that fails; return the folder."""
    entries, folder = registry(name), cache_dir(name)
    absent = [e.filename for e in entries if not os.path.isfile(os.path.join(folder, e.filename))]
    if len(absent) == len(entries):
        raise DataError(f"{name} is not cached in {folder}; run `jaxmlp data fetch {name}`")
    bad = []
    with _lock(folder, name, _stderr):
        for entry in entries:
            path = os.path.join(folder, entry.filename)
            problem = None if entry.filename in absent else mismatch(path, entry)
            if problem:
                os.unlink(path)
                bad.append(f"{entry.filename}: {problem}")
    if bad:
        raise DataError(f"{name}: " + "; ".join(bad) + f"; deleted; run `jaxmlp data fetch {name}` to fetch again")
    if absent:
        raise DataError(f"{name}: {', '.join(absent)} missing from {folder}; run `jaxmlp data fetch {name}`")
    return folder


def describe(name: str) -> str:
    """One line for `jaxmlp data list`: cached or not, verified or not, size, folder."""
    entries, folder = registry(name), cache_dir(name)
    present = [e for e in entries if os.path.isfile(os.path.join(folder, e.filename))]
    if not present:
        return f"{name:14s} {'not cached':34s} {'':9s}  {folder}"
    size = sum(os.path.getsize(os.path.join(folder, e.filename)) for e in present)
    bad = [e.filename for e in present if mismatch(os.path.join(folder, e.filename), e)]
    state = f"{len(present)} of {len(entries)} files, " + (f"{len(bad)} failing checksums" if bad else "verified")
    return f"{name:14s} {state:34s} {size / 1e6:6.1f} MB  {folder}"


def command(action: str, name: str | None = None, mirror: str | None = None) -> int:
    """`jaxmlp data fetch|list|verify`."""
    if action == "list":
        for each in DATASETS:
            try:
                print(describe(each))
            except DataError as e:  # no registry for this one: say so and go on with the others
                print(f"{each:14s} {e}")
    elif action == "fetch":
        print(f"{name}: every file verified in {fetch(name, mirror)}")
    else:
        print(f"{name}: every file verified in {verify(name)}")
    return 0
