"""A thin wrapper over `keras.utils.get_file`: checked, never partial, safely extracted;
and `keras_load`, `keras.datasets`' own downloads with the same one-line offline error.

Adds a sha256 and size check, a one-line offline error, a download that only takes the
cache name once complete, and an extraction that writes nothing outside its folder.

Files are cached where Keras caches them (`$KERAS_HOME/datasets`, by default
`~/.keras/datasets/`), so a file put there by hand is used without a download.
"""

import glob
import hashlib
import lzma
import os
import shutil
import tarfile
import tempfile
import time
import urllib.parse
import uuid
import zipfile
import zlib
from pathlib import Path

from kerasrun.errors import ConfigError, download_failed, require

# Where keras.datasets downloads its files from (`<url><name>.npz`), for the offline hints.
KERAS_DATASETS_URL = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"


def keras_load(name, hint, **kwargs):
    """`keras.datasets.<name>.load_data(**kwargs)`; a failed download becomes a `ConfigError`.

    Args:
        name: the `keras.datasets` module, e.g. `"mnist"`.
        hint: what to do offline, e.g. `"download <url> and set data.path=/path/to/it"`.
    """
    import keras  # lazy: importing Keras (and TensorFlow) takes seconds

    try:
        return getattr(keras.datasets, name).load_data(**kwargs)
    except Exception as e:
        if not download_failed(e):  # a bug, or an unreadable cached file: its own traceback
            raise
        raise ConfigError(
            f"keras.datasets.{name}.load_data() failed ({_reason(e)}). Received: data.path=None. "
            f"Offline? {hint[0].upper()}{hint[1:]}."
        ) from e


def cache_folder(cache_dir=None):
    """The folder `keras.utils.get_file` saves to: `<cache_dir>/datasets`.

    `cache_dir` defaults to `$KERAS_HOME` or `~/.keras`; like Keras, fall back to
    `<tmp>/.keras` when that is not writable.
    """
    base = Path(os.path.expanduser(cache_dir or os.environ.get("KERAS_HOME") or "~/.keras"))
    try:
        # Create it first: get_file falls back to /tmp when the folder does not exist yet.
        base.mkdir(parents=True, exist_ok=True)
    except OSError:
        pass
    if not os.access(base, os.W_OK):
        base = Path(tempfile.gettempdir()) / ".keras"
    return base / "datasets"


def get_file(url, *, sha256=None, size=None, cache_dir=None, extract=False, instead=""):
    """Downloads `url` once into the Keras cache and returns the local path.

    The download goes to a hidden `.<name>.<random>.part` file that is renamed to `<name>`
    only once it is complete and has passed its checks, so a run killed mid-download never
    leaves a partial file that a later run would trust (even with no `sha256` or `size`).

    Args:
        url: where to download from.
        sha256: expected sha256 of the file, or `None` to skip the check.
        size: expected size in bytes, or `None`. Checked whether or not `sha256` is known,
            so a partial download (or a cached file cut short) is never trusted.
        cache_dir: Keras's `cache_dir` (the file goes to `<cache_dir>/datasets/`).
        extract: also extract the zip/tar archive into `<name>_extracted/` next to it (the
            folder name `keras.utils.get_file(extract=True)` uses) and return that folder.
        instead: the other way out for the error message, e.g. "set data.root=...".

    Raises:
        ConfigError: the download failed (offline, wrong URL), the sha256 or size does not
            match, or the archive is unreadable or holds paths that escape its folder.
    """
    fname = os.path.basename(urllib.parse.urlsplit(url).path)
    require(
        fname,
        f"data.url must end with a file name. Received: data.url={url!r}. Fix the URL.",
    )
    folder = cache_folder(cache_dir)
    target = folder / fname
    _remove_stale_parts(target)
    # A cached file is used as is unless it fails a check it can be given (a file put there
    # by hand is trusted); one that fails is downloaded again, as keras.utils.get_file does.
    if not (target.is_file() and _passes(target, sha256, size)):
        _download(url, target, sha256, size, instead)
    return _extract(target, url, instead) if extract else target


def _passes(path, sha256, size):
    if size and path.stat().st_size != size:
        return False
    return not sha256 or _sha256(path) == sha256


def _download(url, target, sha256, size, instead):
    """Downloads `url` to a `.part` file, checks it, then renames it to `target`."""
    import keras

    part = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.part")
    try:
        # keras.utils.get_file deletes its file on an error or Ctrl-C; a kill leaves the
        # .part file, which is never read and is removed later by `_remove_stale_parts`.
        part = Path(
            keras.utils.get_file(
                fname=part.name,
                origin=url,
                cache_dir=str(target.parent.parent),
                cache_subdir=target.parent.name,
                force_download=True,
            )
        )
    except Exception as e:
        part.unlink(missing_ok=True)
        if not download_failed(e):  # a bug: its own traceback, not "offline?"
            raise
        raise ConfigError(
            f"Could not download {url} ({_reason(e)}). Received: data.url={url!r}. Offline? "
            f"Download it by hand to {target}{', or ' + instead if instead else ''}."
        ) from e
    actual_size = part.stat().st_size
    if size and actual_size != size:
        part.unlink()
        raise ConfigError(
            f"The file downloaded from {url} has {actual_size:,} bytes, not {size:,} (it was "
            f"deleted). Received: data.size={size!r}. Try again (a cut connection?), check the "
            "URL, or fix data.size (null skips the check)."
        )
    if sha256 and (actual := _sha256(part)) != sha256:
        part.unlink()
        raise ConfigError(
            f"The file downloaded from {url} does not match data.sha256 (its sha256 is "
            f"{actual}; it was deleted). Received: data.sha256={sha256!r}. Check the URL, or "
            "fix data.sha256 (null skips the check)."
        )
    os.replace(part, target)  # atomic: another run sees the old file or the whole new one


def _remove_stale_parts(target, age_s=3600):
    # .part files of runs killed mid-download; a live download writes to its file all the
    # time, so one untouched for an hour is dead (another run's live one is left alone).
    for part in target.parent.glob(f".{glob.escape(target.name)}.*.part"):
        try:
            if time.time() - part.stat().st_mtime > age_s:
                part.unlink()
        except OSError:  # removed meanwhile by another run
            pass


def _reason(error):
    # The first line only: the message must stay one line (tarfile's ReadError has several).
    text = str(error).strip()
    return text.splitlines()[0].rstrip(":") if text else type(error).__name__


def _sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


# A cut or corrupt archive fails anywhere in the reader: EOFError (gzip, bz2), zlib.error
# (zip deflate), lzma.LZMAError (xz), ...: all mean the same to the user.
_UNREADABLE = (zipfile.BadZipFile, tarfile.TarError, OSError, EOFError, zlib.error, lzma.LZMAError)


def _extract(archive, url, instead=""):
    """Extracts `archive` once into `<name>_extracted/` (again if the archive is newer).

    Unlike `get_file(extract=True)`, which extracts again on every call, this extracts into
    a temporary folder and renames it: a run never reads a half-written folder, and runs
    of a sweep do not overwrite files another run is reading. Nothing is written outside
    the folder: zipfile drops absolute paths and ".." and never makes links; tar's "data"
    filter refuses paths and links that escape the folder, and device files.
    """
    name = archive.name[: archive.name.find(".")] if "." in archive.name else archive.name
    out = archive.parent / f"{name}_extracted"
    if out.is_dir() and out.stat().st_mtime >= archive.stat().st_mtime:
        return out
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}_", dir=archive.parent))
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as z:
                z.extractall(tmp)
        else:
            with tarfile.open(archive) as t:
                t.extractall(tmp, filter="data")
    except tarfile.FilterError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        raise ConfigError(
            f"The archive downloaded from {url} was not extracted: it writes outside its folder "
            f"or holds a device file ({_reason(e)}). Received: data.url={url!r}. Check the URL"
            f"{', or ' + instead if instead else ''}."
        ) from e
    except _UNREADABLE as e:
        shutil.rmtree(tmp, ignore_errors=True)
        raise ConfigError(
            f"The file downloaded from {url} is not a readable zip or tar archive ({_reason(e)}). "
            f"Received: data.url={url!r}. Delete {archive} and try again, or check the URL."
        ) from e
    except BaseException:  # Ctrl-C or a bug: still leave no half-extracted folder behind
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    shutil.rmtree(out, ignore_errors=True)  # a stale extraction of an older archive
    try:
        tmp.rename(out)
    except OSError:  # another run renamed its extraction first: use that one
        shutil.rmtree(tmp, ignore_errors=True)
    return out
