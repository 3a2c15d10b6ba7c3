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

What the registry and the server say is not trusted further than it must be. A registry's filenames must be plain
names (no folder, no leading dot), and every path is checked to lie inside the cache folder before it is read,
written or deleted; a cached file that fails its checksum is replaced only by a verified copy. No symlink is
followed where files are written (the `.lock` and `.part` files are opened with O_NOFOLLOW, a new `.part` with
O_EXCL). A download asks for the raw bytes (`Accept-Encoding: identity`) and refuses an encoded body, stops at the
registry's size (a `.part` longer than that is discarded), and must finish within a deadline per file:
$JAXMLP_FETCH_DEADLINE seconds (default 600), counted from the first request over all its tries.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import hashlib
import importlib.util
import os
import re
import stat
import sys
import threading
import time
import urllib.parse

from jaxmlp.errors import ConfigError, DataError
from jaxmlp.files import FileLock, open_nofollow, refuse_link
from jaxmlp.names import DOWNLOADABLE as DATASETS

MIRROR_ENV = "JAXMLP_DATA_MIRROR"  # replaces the registry's base URL: MIRROR/FILENAME, `{dataset}` filled in
REGISTRY_ENV = "JAXMLP_DATA_REGISTRY"  # a folder of NAME.txt files in TFDS's format, read instead of TFDS's
PROBE_SECONDS = 2.0  # how long a host gets to answer before the machine counts as offline
TRIES = 3  # transfers of one file per fetch when the connection drops
DEADLINE_ENV = "JAXMLP_FETCH_DEADLINE"  # seconds one file may take, over all its tries
DEADLINE_SECONDS = 600.0  # its default: the largest MNIST file (9.9 MB) at 17 kB/s
READ_TIMEOUT = 30.0  # seconds without a byte before a connection counts as dropped
_SHA256 = re.compile(r"[0-9a-f]{64}")
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
    try:
        infos = load_url_infos(path)
        entries = [
            Entry(
                info.filename or os.path.basename(urllib.parse.urlparse(url).path), url, int(info.size), info.checksum
            )
            for url, info in infos.items()
        ]
    except Exception as e:  # TFDS's parser raises what the line makes it raise
        raise DataError(
            f"{path}: malformed registry ({type(e).__name__}: {e}); each line is URL SIZE SHA256 [FILENAME]"
        ) from None
    if not entries:
        raise DataError(f"{path}: the registry lists no files; restore it or point {REGISTRY_ENV} elsewhere")
    for e in entries:
        _check_entry(e, path)
    return sorted(entries, key=lambda e: e.filename)


def _check_entry(entry: Entry, path: str) -> None:
    """A registry line that could reach outside the cache folder, or cannot be checked, is one line naming it."""
    name = entry.filename
    if not name or name.startswith(".") or os.path.basename(name) != name or "\\" in name or "\0" in name:
        raise DataError(
            f"{path}: filename {name!r} is not a plain file name (no folders, no leading dot); fix the registry"
        )
    if entry.size < 0 or not _SHA256.fullmatch(entry.sha256 or ""):
        raise DataError(f"{path}: the line of {name!r} needs a size >= 0 and a 64-digit hex sha256; fix the registry")


def _inside(folder: str, filename: str) -> str:
    """`folder/filename`, checked to resolve inside `folder` (a link there is the caller's to refuse or replace)."""
    path = os.path.join(folder, filename)
    if os.path.dirname(os.path.realpath(path)) != os.path.realpath(folder) and not os.path.islink(path):
        raise DataError(f"{path}: resolves outside the cache folder {folder}; fix the registry")
    return path


def cache_dir(name: str) -> str:
    """Where dataset `name` is cached: $XDG_CACHE_HOME/jaxmlp/NAME, XDG_CACHE_HOME defaulting to ~/.cache."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "jaxmlp", name)


def source_url(entry: Entry, name: str, mirror: str | None = None) -> str:
    """The URL to fetch `entry` from: the registry's, or MIRROR/FILENAME with `{dataset}` replaced by `name`."""
    mirror = mirror or os.environ.get(MIRROR_ENV)
    if not mirror:
        return _checked_url(entry.url, f"the registry's URL of {entry.filename}")
    url = mirror.replace("{dataset}", name).rstrip("/") + "/" + entry.filename
    return _checked_url(url, f"--mirror / {MIRROR_ENV} {mirror!r}")


def _checked_url(url: str, what: str) -> str:
    try:
        parts = urllib.parse.urlsplit(url)
        ok = parts.scheme in ("http", "https") and bool(parts.hostname) and (parts.port or 1) > 0
    except ValueError:
        ok = False
    if not ok or any(c.isspace() for c in url):
        raise DataError(f"{what}: not an http(s) URL such as https://example.org/mnist/; fix it")
    return url


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
    path = _inside(folder, entry.filename)
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


class _TooSlow(DataError):
    """The file did not arrive within its deadline."""


def deadline_seconds() -> float:
    """The per-file deadline: $JAXMLP_FETCH_DEADLINE seconds, or DEADLINE_SECONDS."""
    text = os.environ.get(DEADLINE_ENV, "")
    try:
        seconds = float(text) if text else DEADLINE_SECONDS
    except ValueError:
        seconds = -1.0
    if not 0 < seconds < float("inf"):
        raise DataError(f"{DEADLINE_ENV}={text!r}: give the seconds one file may take, such as 600")
    return seconds


def _get(url: str, headers: dict, end: float):
    """requests.get, streamed, bounded by `end` even when the server dribbles its headers a byte at a time."""
    import requests

    left = end - time.monotonic()
    timeout = (10, min(READ_TIMEOUT, max(left, 0.01)))
    outcome = Deadline(lambda: _capture(requests.get, url, headers=headers, stream=True, timeout=timeout), left)
    outcome = outcome.result()
    if outcome is None:
        raise _TooSlow("no response within the deadline")
    if isinstance(outcome, BaseException):
        raise outcome
    return outcome


def _capture(fn, *args, **kwargs):
    """`fn(...)`, or the exception it raised (to be raised again in the caller's thread)."""
    try:
        return fn(*args, **kwargs)
    except Exception as e:
        return e


def _open(url: str, have: int, entry: Entry, end: float):
    """GET `url` (from byte `have` on, if any) as a stream; a refused connection or HTTP error is a DataError."""
    import requests

    headers = {"Accept-Encoding": "identity", **({"Range": f"bytes={have}-"} if have else {})}
    try:
        response = _get(url, headers, end)
    except requests.RequestException as e:
        raise DataError(
            f"{entry.filename}: cannot connect to {_host(url)} ({type(e).__name__}); "
            f"check the network, or point {MIRROR_ENV} (or --mirror) at a reachable mirror"
        ) from None
    if response.status_code == 416 and have:  # the partial file is longer than the server's file: start over
        response.close()
        return _open(url, 0, entry, end)
    if response.status_code not in (200, 206):
        response.close()
        raise DataError(
            f"{entry.filename}: HTTP {response.status_code} {response.reason} from {url}; "
            f"check that this server (or the mirror given by --mirror / {MIRROR_ENV}) has {entry.filename}"
        )
    encoding = response.headers.get("Content-Encoding", "identity").strip().lower()
    length = response.headers.get("Content-Length", "")
    if encoding not in ("", "identity"):
        response.close()
        raise _Mismatch(f"{entry.filename} from {url}: the server sent it {encoding}-encoded; only raw bytes are taken")
    if length.isdigit() and int(length) > entry.size - (have if response.status_code == 206 else 0):
        response.close()
        raise _Mismatch(
            f"{entry.filename} from {url}: the server announces {int(length):,} bytes, more than the registry's "
            f"{entry.size:,}"
        )
    return response


def _chunks(response, end: float, entry: Entry):
    """The raw (undecoded) body, as it arrives; each read waits at most until `end`."""
    import urllib3

    raw = response.raw
    sock = getattr(getattr(raw, "connection", None), "sock", None)
    while True:
        left = end - time.monotonic()
        if left <= 0:
            raise _TooSlow("not complete within the deadline")
        if sock is not None:
            sock.settimeout(min(READ_TIMEOUT, left))
        try:
            chunk = raw.read1(_CHUNK, decode_content=False)
        except urllib3.exceptions.HTTPError:
            if time.monotonic() >= end:
                raise _TooSlow("not complete within the deadline") from None
            raise _Dropped(-1) from None
        if not chunk:
            return
        yield chunk


def _write(chunks, part: str, start: int, entry: Entry, progress: bool) -> None:
    """Append `chunks` to `part` from byte `start` (0: start over), with a progress bar when `progress`; never more
    than the registry's size, never through a symlink, a new file created exclusively."""
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
    if not start:
        _discard(part)
    fd = open_nofollow(part, os.O_WRONLY | (os.O_APPEND if start else os.O_CREAT | os.O_EXCL), 0o644)
    with os.fdopen(fd, "wb") as f, bar:
        written = start
        for chunk in chunks:
            if written + len(chunk) > entry.size:
                f.write(chunk[: entry.size - written])
                raise _Mismatch(f"{entry.filename}: the server sent more than the registry's {entry.size:,} bytes")
            f.write(chunk)
            written += len(chunk)
            bar.update(len(chunk))
        f.flush()
        os.fsync(f.fileno())


def _discard(path: str) -> None:
    """Delete a file of ours (a regular file); a symlink there is refused, not followed or removed."""
    refuse_link(path)
    try:
        if stat.S_ISREG(os.lstat(path).st_mode):
            os.unlink(path)
    except FileNotFoundError:
        pass


def _transfer(url: str, part: str, entry: Entry, log, progress: bool, end: float) -> None:
    """Stream `url` into `part`, resuming it when the server honours Range; raise `_Dropped` if the connection breaks.

    A response that ends cleanly is the server's whole file, even when its size is not the registry's: the
    checksum that follows names the difference.
    """
    refuse_link(part)
    have = os.lstat(part).st_size if os.path.isfile(part) else 0
    if have >= entry.size:
        _discard(part)  # as long as the file or longer: not resumed
        have = 0
    with _open(url, have, entry, end) as response:
        resumed = response.status_code == 206
        if have:
            log(
                f"{entry.filename}: resuming at byte {have:,} of {entry.size:,}"
                if resumed
                else f"{entry.filename}: {_host(url)} does not resume downloads; restarting from byte 0"
            )
        try:
            _write(_chunks(response, end, entry), part, have if resumed else 0, entry, progress)
        except _Dropped:  # cut off before Content-Length bytes: what arrived is in `part`
            raise _Dropped(os.lstat(part).st_size) from None


def _transfer_tries(url: str, part: str, entry: Entry, name: str, log, progress: bool) -> None:
    """Transfer `url`, up to TRIES times if the connection drops; a full disk deletes the partial file."""
    seconds = deadline_seconds()
    end = time.monotonic() + seconds
    for attempt in range(1, TRIES + 1):
        try:
            return _transfer(url, part, entry, log, progress, end)
        except _TooSlow as e:
            raise _TooSlow(
                f"{entry.filename}: {_host(url)} did not deliver it within {seconds:g} s ({e}); the partial file is "
                f"kept and `jaxmlp data fetch {name}` resumes it; {DEADLINE_ENV} sets the deadline per file"
            ) from None
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
    part = _inside(folder, f".{entry.filename}.part")
    try:
        _transfer_tries(url, part, entry, name, log, progress)
    except ConfigError as e:  # a symlink, or something other than a file, where the .part goes
        raise DataError(str(e)) from None
    except _Mismatch as e:
        _discard(part)
        raise _Mismatch(f"{e}; deleted") from None
    problem = mismatch(part, entry)
    if problem:
        _discard(part)
        raise _Mismatch(f"{entry.filename} from {url}: {problem}; deleted")
    os.replace(part, _inside(folder, entry.filename))  # replaces a link there, never writes through it
    log(f"{name}: {entry.filename} ({entry.size:,} bytes) verified")


@contextlib.contextmanager
def _lock(folder: str, name: str, log):
    """Hold `folder`'s lock file, so that two processes fetching one dataset take turns (POSIX flock)."""
    said = lambda _: log(f"{name}: another process is fetching into {folder}; waiting for it")
    lock = FileLock(os.path.join(folder, ".lock"), f"{folder} is in use", wait=said)
    try:
        lock.acquire()
    except ConfigError as e:
        raise DataError(str(e)) from None
    try:
        yield
    finally:
        lock.release()


def _make_dir(folder: str) -> None:
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as e:
        raise DataError(
            f"{folder}: cannot create the cache folder ({e.strerror}); set XDG_CACHE_HOME elsewhere"
        ) from None


def _stale(folder: str, entries: list[Entry], log) -> list[Entry]:
    """The entries that need fetching: missing, or failing their checksum (kept until a verified copy replaces it)."""
    todo = []
    for entry in entries:
        path = _inside(folder, entry.filename)
        if os.path.isfile(path) and mismatch(path, entry) is not None:
            log(f"{path}: failed its checksum; fetching it again (replaced once the new copy is verified)")
            todo.append(entry)
        elif not os.path.isfile(path):
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
    absent = [e.filename for e in entries if not os.path.isfile(_inside(folder, e.filename))]
    if len(absent) == len(entries):
        raise DataError(f"{name} is not cached in {folder}; run `jaxmlp data fetch {name}`")
    bad = []
    with _lock(folder, name, _stderr):
        for entry in entries:
            path = _inside(folder, entry.filename)
            problem = None if entry.filename in absent else mismatch(path, entry)
            if problem:
                try:
                    _discard(path)
                except ConfigError as e:
                    raise DataError(str(e)) from None
                bad.append(f"{entry.filename}: {problem}")
    if bad:
        raise DataError(f"{name}: " + "; ".join(bad) + f"; deleted; run `jaxmlp data fetch {name}` to fetch again")
    if absent:
        raise DataError(f"{name}: {', '.join(absent)} missing from {folder}; run `jaxmlp data fetch {name}`")
    return folder


def describe(name: str) -> str:
    """One line for `jaxmlp data list`: cached or not, verified or not, size, folder."""
    entries, folder = registry(name), cache_dir(name)
    present = [e for e in entries if os.path.isfile(_inside(folder, e.filename))]
    if not present:
        return f"{name:14s} {'not cached':34s} {'':9s}  {folder}"
    size = sum(os.path.getsize(_inside(folder, e.filename)) for e in present)
    bad = [e.filename for e in present if mismatch(_inside(folder, e.filename), e)]
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
