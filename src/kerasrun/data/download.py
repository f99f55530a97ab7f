"""A thin wrapper over `keras.utils.get_file`: a sha256 check and a clear offline error.

Files are cached where Keras caches them (`$KERAS_HOME/datasets`, by default
`~/.keras/datasets/`), so a file put there by hand is used without a download.
"""

import hashlib
import os
import shutil
import tarfile
import tempfile
import urllib.parse
import zipfile
from pathlib import Path

from kerasrun.errors import ConfigError, require


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
        ConfigError: the download failed (offline, wrong URL) or the sha256 does not match.
    """
    import keras

    fname = os.path.basename(urllib.parse.urlsplit(url).path)
    require(
        fname,
        f"data.url must end with a file name. Received: data.url={url!r}. Fix the URL.",
    )
    folder = cache_folder(cache_dir)
    target = folder / fname
    hash_kwargs = {"file_hash": sha256, "hash_algorithm": "sha256"} if sha256 else {}
    if size and target.is_file() and target.stat().st_size != size:
        target.unlink()  # a partial or stale file in the cache: download it again
    try:
        keras.utils.get_file(
            fname=fname,
            origin=url,
            cache_dir=str(folder.parent),
            cache_subdir="datasets",
            **hash_kwargs,
        )
    except ValueError as e:  # get_file's "Incomplete or corrupted file detected"
        actual = _sha256(target) if target.exists() else "unknown"
        # Never leave a file that failed its check where a later run would trust it.
        target.unlink(missing_ok=True)
        raise ConfigError(
            f"The file downloaded from {url} does not match data.sha256 (its sha256 is "
            f"{actual}; it was deleted). Received: data.sha256={sha256!r}. Check the URL, or "
            "fix data.sha256 (null skips the check)."
        ) from e
    except Exception as e:  # get_file raises a plain Exception for URL fetch failures
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ConfigError(
            f"Could not download {url} ({reason}). Received: data.url={url!r}. Offline? "
            f"Download it by hand to {target}{', or ' + instead if instead else ''}."
        ) from e
    if size and target.stat().st_size != size:
        actual = target.stat().st_size
        target.unlink()
        raise ConfigError(
            f"The file downloaded from {url} has {actual:,} bytes, not {size:,} (it was deleted). "
            f"Received: data.size={size!r}. Try again (a cut connection?), check the URL, or "
            "fix data.size (null skips the check)."
        )
    return _extract(target, url) if extract else target


def _sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _extract(archive, url):
    """Extracts `archive` once into `<name>_extracted/` (again if the archive is newer).

    Unlike `get_file(extract=True)`, which extracts again on every call, this extracts into
    a temporary folder and renames it: a run never reads a half-written folder, and runs
    of a sweep do not overwrite files another run is reading.
    """
    name = archive.name[: archive.name.find(".")] if "." in archive.name else archive.name
    out = archive.parent / f"{name}_extracted"
    if out.is_dir() and out.stat().st_mtime >= archive.stat().st_mtime:
        return out
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}_", dir=archive.parent))
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as z:
                z.extractall(tmp)  # zipfile drops absolute paths and ".." components
        else:
            with tarfile.open(archive) as t:
                t.extractall(tmp, filter="data")  # no absolute paths, escaping links, devices
    except (zipfile.BadZipFile, tarfile.TarError, OSError) as e:
        shutil.rmtree(tmp, ignore_errors=True)
        raise ConfigError(
            f"The file downloaded from {url} is not a readable zip or tar archive ({e}). "
            f"Received: data.url={url!r}. Delete {archive} and try again, or check the URL."
        ) from e
    shutil.rmtree(out, ignore_errors=True)  # a stale extraction of an older archive
    try:
        tmp.rename(out)
    except OSError:  # another run renamed its extraction first: use that one
        shutil.rmtree(tmp, ignore_errors=True)
    return out
