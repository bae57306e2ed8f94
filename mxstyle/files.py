"""File helpers shared by the stages (no heavy imports): hashing, the cache folder, and the one
way mxstyle writes files so that a kill at any moment leaves the old file or the new one, never
a half-written one (write to a hidden temporary name beside the target, flush, rename)."""
import hashlib
import os
import secrets
import shutil
from contextlib import contextmanager
from pathlib import Path

__all__ = ["sha256_file", "mxstyle_home", "fsync_path", "fsync_tree", "atomic_path", "write_bytes_atomic",
           "write_text_atomic", "rename_into_place"]


def sha256_file(path, chunk=1 << 20):
    """Hex sha256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def mxstyle_home():
    """The cache folder (VGG16 weights, Gatys references): ``$MXSTYLE_HOME`` or ``~/.mxstyle``."""
    return Path(os.environ.get("MXSTYLE_HOME") or Path.home() / ".mxstyle").expanduser()


def fsync_path(path, *, strict=True):
    """Flush a file (or a folder's entries) to disk. ``strict=False`` ignores file systems that
    cannot fsync a folder."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        if strict:
            raise
        return
    try:
        os.fsync(fd)
    except OSError:
        if strict:
            raise
    finally:
        os.close(fd)


def fsync_tree(folder):
    """Flush every file directly in ``folder``, then the folder itself."""
    for entry in Path(folder).iterdir():
        if entry.is_file():
            fsync_path(entry)
    fsync_path(folder, strict=False)


def _temporary_name(path):
    path = Path(path)
    return path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")


@contextmanager
def atomic_path(path):
    """``with atomic_path(p) as tmp:`` write the file ``tmp`` (by any means: a library's own
    ``save``); on success it is flushed and renamed to ``p``, on an error it is removed and ``p``
    is left as it was. The parent folder is created."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temporary_name(path)
    try:
        yield tmp
        fsync_path(tmp)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.remove(tmp)
        except OSError:
            pass
        raise
    fsync_path(path.parent, strict=False)


def write_bytes_atomic(path, data):
    """Replace ``path`` with ``data`` atomically."""
    with atomic_path(path) as tmp:
        # os.open with mode 0o666 lets the umask decide the permissions, as for open().
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
        with os.fdopen(fd, "wb") as f:
            f.write(data)


def write_text_atomic(path, text):
    """Replace ``path`` with ``text`` (UTF-8) atomically."""
    write_bytes_atomic(path, text.encode("utf-8"))


def rename_into_place(tmp_dir, final_dir):
    """Move the finished folder ``tmp_dir`` to ``final_dir`` (a folder of the same parent),
    replacing an older one; its files are flushed first, so the new name never points at a
    folder whose content is not on disk yet. An older folder is renamed aside before the new one
    takes its name and deleted after, so the old content is never half gone."""
    tmp_dir, final_dir = Path(tmp_dir), Path(final_dir)
    fsync_tree(tmp_dir)
    old = None
    if final_dir.exists():
        old = final_dir.with_name(f".{final_dir.name}.replaced-{os.getpid()}-{secrets.token_hex(4)}")
        os.rename(final_dir, old)
    os.rename(tmp_dir, final_dir)
    fsync_path(final_dir.parent, strict=False)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
