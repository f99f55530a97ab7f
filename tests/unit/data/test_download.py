"""Downloads that try to break `kerasrun.data.download.get_file`.

Hashes are checked, a partial download is never trusted, and extracting an archive writes
nothing outside its folder. Archives are built in tmp_path and served by an http.server on
127.0.0.1; a killed download is a real subprocess killed mid-transfer.
"""

import functools
import hashlib
import http.server
import io
import os
import stat
import subprocess
import sys
import tarfile
import threading
import time
import zipfile
from pathlib import Path

import pytest

from kerasrun.data.download import get_file
from kerasrun.errors import ConfigError

INSTEAD = "set data.root= to a local folder"


class _Site:
    """http.server in a thread serving one folder on 127.0.0.1; counts the requests.

    `next_mode` changes how the next request is answered: "cut" sends half the file and
    closes the connection, "stall" sends half and waits (until `close`) so that the client
    can be killed mid-download.
    """

    def __init__(self, folder):
        self.folder = folder
        handler = functools.partial(_Handler, directory=str(folder))
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.requests = 0
        self.httpd.next_mode = None
        self.httpd.release = threading.Event()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        serve = functools.partial(self.httpd.serve_forever, poll_interval=0.05)
        threading.Thread(target=serve, daemon=True).start()  # a fast shutdown

    def put(self, name, data):
        """Serves `data` as `name`; returns its URL."""
        (self.folder / name).write_bytes(data)
        return f"{self.url}/{name}"

    @property
    def requests(self):
        return self.httpd.requests

    def close(self):
        self.httpd.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


class _Handler(http.server.SimpleHTTPRequestHandler):
    def do_GET(self):
        self.server.requests += 1
        mode, self.server.next_mode = self.server.next_mode, None
        if mode is None:
            return super().do_GET()
        data = Path(self.translate_path(self.path)).read_bytes()
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data[: len(data) // 2])
        self.wfile.flush()
        if mode == "stall":
            self.server.release.wait(60)

    def log_message(self, *args):
        pass


@pytest.fixture
def site(tmp_path, monkeypatch):
    """A `_Site` serving `tmp_path/site` over HTTP on 127.0.0.1."""
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")  # never through a proxy
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    folder = tmp_path / "site"
    folder.mkdir()
    server = _Site(folder)
    yield server
    server.close()


@pytest.fixture
def datasets(tmp_path):
    """The cache folder `get_file(cache_dir=tmp_path / "keras_home")` downloads into."""
    return tmp_path / "keras_home" / "datasets"


def fetch(url, datasets, **kwargs):
    """`get_file(url, extract=True)` into the test's cache."""
    kwargs.setdefault("instead", INSTEAD)
    return get_file(url, cache_dir=str(datasets.parent), extract=True, **kwargs)


def zip_of(entries):
    """A zip of `(name or ZipInfo, bytes)` entries, deflated."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for entry, data in entries:
            archive.writestr(entry, data)
    return buffer.getvalue()


def tar_of(members, mode="w:gz"):
    """A tar of an ordinary `ok.txt` followed by `(TarInfo, bytes)` members."""
    ok = tarfile.TarInfo("ok.txt")
    ok.size = 2
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode=mode) as archive:
        archive.addfile(ok, io.BytesIO(b"ok"))
        for info, data in members:
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def tar_member(name, type=tarfile.REGTYPE, linkname=""):
    info = tarfile.TarInfo(name)
    info.type, info.linkname = type, linkname
    info.devmajor, info.devminor = 1, 3  # /dev/null's numbers, for the device file
    return info


def leftovers(datasets):
    """What is in the cache folder besides the archives: folders, `.part` files, ..."""
    return sorted(p.name for p in datasets.iterdir() if p.suffix not in (".zip", ".gz", ".xz"))


def evil_files(tmp_path):
    return sorted(p for p in tmp_path.rglob("evil.txt"))


# --- paths that escape: neutralised ----------------------------------------------------------


@pytest.mark.parametrize(
    "kind, entry, landed",
    [
        ("zip", "../../evil.txt", "evil.txt"),
        ("zip", "a/../../evil.txt", "a/evil.txt"),
        ("zip", "{tmp}/abs/evil.txt", "{tmp_relative}/abs/evil.txt"),
        ("tar", "{tmp}/abs/evil.txt", "{tmp_relative}/abs/evil.txt"),
    ],
    ids=["zip_dotdot", "zip_nested_dotdot", "zip_absolute", "tar_absolute"],
)
def test_an_escaping_path_lands_inside_the_folder(tmp_path, site, datasets, kind, entry, landed):
    # zipfile drops ".." and the leading "/"; tar's "data" filter drops the leading "/".
    names = {"tmp": str(tmp_path), "tmp_relative": str(tmp_path).lstrip("/")}
    entry = entry.format(**names)
    if kind == "zip":
        url = site.put("bad.zip", zip_of([("ok.txt", b"ok"), (entry, b"evil")]))
    else:
        url = site.put("bad.tar.gz", tar_of([(tar_member(entry), b"evil")]))
    out = fetch(url, datasets)
    landed = out / landed.format(**names)
    assert evil_files(tmp_path) == [landed]  # the only evil.txt under tmp_path
    assert (out / "ok.txt").read_text() == "ok" and landed.read_text() == "evil"
    assert leftovers(datasets) == ["bad_extracted"]


@pytest.mark.parametrize("link", ["/etc/passwd", "../secret.txt"])
def test_a_zip_symlink_becomes_a_plain_file(site, datasets, link):
    # A zip entry with S_IFLNK in its Unix mode: zipfile never creates links.
    info = zipfile.ZipInfo("link")
    info.create_system = 3  # Unix, so external_attr holds the mode
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    url = site.put("links.zip", zip_of([("ok.txt", b"ok"), (info, link.encode())]))
    out = fetch(url, datasets)
    assert not (out / "link").is_symlink() and (out / "link").read_text() == link
    assert not [p for p in datasets.parent.rglob("*") if p.is_symlink()]


# --- paths that escape in a tar: refused -------------------------------------------------------


TAR_ATTACKS = {
    "dotdot": [(tar_member("../evil.txt"), b"evil")],
    "nested_dotdot": [(tar_member("a/../../evil.txt"), b"evil")],
    "symlink_absolute": [(tar_member("link", tarfile.SYMTYPE, "/etc/passwd"), b"")],
    "symlink_out": [(tar_member("link", tarfile.SYMTYPE, "../secret.txt"), b"")],
    "symlink_then_write_through_it": [
        (tar_member("up", tarfile.SYMTYPE, ".."), b""),
        (tar_member("up/evil.txt"), b"evil"),
    ],
    "hardlink_out": [
        (tar_member("hard", tarfile.LNKTYPE, "../secret.txt"), b""),
        (tar_member("hard"), b"overwritten"),  # would write into secret.txt through the link
    ],
    "hardlink_absolute": [(tar_member("hard", tarfile.LNKTYPE, "/etc/passwd"), b"")],
    "device": [(tar_member("null", tarfile.CHRTYPE), b"")],
    "fifo": [(tar_member("pipe", tarfile.FIFOTYPE), b"")],
}


@pytest.mark.parametrize("attack", TAR_ATTACKS)
def test_a_tar_that_escapes_is_refused(tmp_path, site, datasets, attack):
    datasets.mkdir(parents=True)
    (datasets / "secret.txt").write_text("secret")  # what "../secret.txt" would reach
    url = site.put("bad.tar.gz", tar_of(TAR_ATTACKS[attack]))
    with pytest.raises(ConfigError) as error:
        fetch(url, datasets)
    message = str(error.value)
    assert "\n" not in message and message.startswith(f"The archive downloaded from {url} was")
    assert f"Received: data.url='{url}'" in message and message.endswith(f"or {INSTEAD}.")
    # No extraction folder and no half-extracted temporary `.bad_*` folder, nothing outside.
    assert leftovers(datasets) == ["secret.txt"]
    assert (datasets / "secret.txt").read_text() == "secret" and evil_files(tmp_path) == []
    assert not [p for p in datasets.parent.rglob("*") if p.is_symlink()]


# --- hashes and partial downloads ---------------------------------------------------------------


def test_a_wrong_sha256_deletes_the_file_and_the_right_one_extracts(site, datasets):
    data = zip_of([("cats/cat.0.txt", b"meow")])
    good = hashlib.sha256(data).hexdigest()
    url = site.put("pets.zip", data)
    with pytest.raises(ConfigError, match="does not match data.sha256") as error:
        fetch(url, datasets, sha256="0" * 64)
    assert f"its sha256 is {good}; it was deleted" in str(error.value)
    assert sorted(p.name for p in datasets.iterdir()) == []  # no archive, no .part file
    out = fetch(url, datasets, sha256=good)
    assert (out / "cats" / "cat.0.txt").read_text() == "meow" and site.requests == 2


def test_a_cached_archive_that_fails_its_sha256_is_downloaded_again(site, datasets):
    data = tar_of([(tar_member("new.txt"), b"new")])
    url = site.put("pets.tar.gz", data)
    # A download cut short by an older run, and the extraction of an older archive.
    datasets.mkdir(parents=True)
    (datasets / "pets.tar.gz").write_bytes(data[: len(data) // 2])
    (datasets / "pets_extracted").mkdir()
    (datasets / "pets_extracted" / "old.txt").write_text("old")
    os.utime(datasets / "pets.tar.gz", (time.time() - 60,) * 2)
    os.utime(datasets / "pets_extracted", (time.time() - 60,) * 2)
    out = fetch(url, datasets, sha256=hashlib.sha256(data).hexdigest())
    assert sorted(p.name for p in out.iterdir()) == ["new.txt", "ok.txt"]
    assert (datasets / "pets.tar.gz").read_bytes() == data and site.requests == 1


def test_a_cut_connection_leaves_nothing_in_the_cache(site, datasets):
    url = site.put("pets.zip", zip_of([("a.txt", os.urandom(50_000))]))
    site.httpd.next_mode = "cut"
    with pytest.raises(ConfigError, match=f"Could not download {url} ") as error:
        fetch(url, datasets)
    assert "\n" not in str(error.value) and INSTEAD in str(error.value)
    assert list(datasets.iterdir()) == []
    assert (fetch(url, datasets) / "a.txt").stat().st_size == 50_000


def test_a_download_killed_midway_is_never_trusted(site, datasets):
    # No sha256 and no size, so nothing but the download itself can tell the file is partial.
    data = os.urandom(1 << 20)  # half of it is several blocks on disk before the stall
    url = site.put("weights.bin", data)
    site.httpd.next_mode = "stall"
    code = (
        "import sys; from kerasrun.data.download import get_file; "
        "get_file(sys.argv[1], cache_dir=sys.argv[2])"
    )
    run = subprocess.Popen(
        [sys.executable, "-c", code, url, str(datasets.parent)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        _wait_for_bytes_on_disk(datasets, run)
    finally:
        run.kill()  # SIGKILL: no cleanup code of the run gets to run
        run.wait()
    site.httpd.release.set()
    assert get_file(url, cache_dir=str(datasets.parent)).read_bytes() == data
    assert site.requests == 2
    # The killed run's hidden .part file is removed once stale (an hour untouched).
    killed = [p for p in datasets.iterdir() if p.name != "weights.bin"]
    assert [p.name.endswith(".part") and p.name.startswith(".") for p in killed] == [True]
    os.utime(killed[0], (time.time() - 7200,) * 2)
    get_file(url, cache_dir=str(datasets.parent))
    assert [p.name for p in datasets.iterdir()] == ["weights.bin"] and site.requests == 2


def _wait_for_bytes_on_disk(datasets, run, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if datasets.is_dir() and any(p.stat().st_size > 0 for p in datasets.iterdir()):
            return
        assert run.poll() is None, run.stderr.read().decode()
        time.sleep(0.05)
    raise AssertionError(f"nothing written to {datasets} after {timeout} s")


# --- corrupt archives -----------------------------------------------------------------------


def _corrupt_zip():
    data = bytearray(zip_of([("a.txt", os.urandom(4000) * 5)]))  # ~4 kB deflated
    for i in range(60, 300):  # inside the deflated data; the directory at the end is intact
        data[i] ^= 0x55
    return bytes(data)


def _cut(data):
    return data[: len(data) // 2]


_BIG = [(tar_member(f"f{i}.bin"), os.urandom(20_000)) for i in range(5)]
CORRUPT = {
    "truncated_tar_gz": ("data.tar.gz", lambda: _cut(tar_of(_BIG))),
    "truncated_tar_xz": ("data.tar.xz", lambda: _cut(tar_of(_BIG, mode="w:xz"))),
    "truncated_zip": ("data.zip", lambda: _cut(zip_of([("a.txt", os.urandom(50_000))]))),
    "corrupt_zip_data": ("data.zip", _corrupt_zip),
    "an_html_page": ("data.zip", lambda: b"<html><body>Sign in to download</body></html>"),
    "empty": ("data.tar.gz", lambda: b""),
}


@pytest.mark.parametrize("case", CORRUPT)
def test_a_corrupt_archive_is_one_line_and_leaves_nothing(site, datasets, case):
    name, make = CORRUPT[case]
    url = site.put(name, make())
    with pytest.raises(ConfigError, match="is not a readable zip or tar archive") as error:
        fetch(url, datasets)
    message = str(error.value)
    assert "\n" not in message and message.startswith(f"The file downloaded from {url} is")
    assert message.endswith(f"Delete {datasets / name} and try again, or check the URL.")
    assert leftovers(datasets) == []  # no data_extracted/, no half-extracted .data_* folder


# --- a failed download is one line; a bug keeps its traceback ---------------------------------


def closed_port():
    """A port on 127.0.0.1 that nothing listens on: a connection to it is refused."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def mnist_download(tmp_path, monkeypatch):
    """Points `keras.datasets.mnist`'s download at `origin`, through Keras's real `get_file`."""
    import keras
    from keras.src.datasets import mnist

    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")

    def point_at(origin=None, error=None):
        def get_file(fname, **kwargs):
            if error is not None:
                raise error
            kwargs.pop("file_hash", None)
            kwargs.update(origin=origin, cache_dir=str(tmp_path / "keras_home"))
            return keras.utils.get_file(fname, **kwargs)

        monkeypatch.setattr(mnist, "get_file", get_file)

    return point_at


def test_keras_datasets_from_an_unreachable_host_is_one_line(mnist_download):
    from kerasrun.data import build_data

    mnist_download(f"http://127.0.0.1:{closed_port()}/mnist.npz")
    with pytest.raises(ConfigError, match="Offline?") as error:
        build_data("mnist", seed=0)
    message = str(error.value)
    assert "\n" not in message and "URL fetch failure" in message, message


def test_a_bug_inside_keras_datasets_keeps_its_traceback(mnist_download):
    from kerasrun.data import build_data

    mnist_download(error=TypeError("get_file() got an unexpected keyword argument 'x'"))
    with pytest.raises(TypeError, match="unexpected keyword"):
        build_data("mnist", seed=0)


def test_a_url_on_an_unreachable_host_is_one_line_and_a_bug_keeps_its_traceback(
    datasets, monkeypatch
):
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    url = f"http://127.0.0.1:{closed_port()}/pets.zip"
    with pytest.raises(ConfigError, match=f"Could not download {url} ") as error:
        fetch(url, datasets)
    assert "\n" not in str(error.value) and "Offline?" in str(error.value)
    assert not datasets.exists() or list(datasets.iterdir()) == []

    import keras

    def broken(*args, **kwargs):
        raise TypeError("a bug in the download code")

    monkeypatch.setattr(keras.utils, "get_file", broken)
    with pytest.raises(TypeError, match="a bug in the download code"):
        fetch(url, datasets)
