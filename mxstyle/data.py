"""Training photos for the feed-forward trainer: listing, augmentation, ordered batches.

Everything here is a pure function of ``(seed, file list, step)``, so a run resumes exactly:

* Sample ``k`` of the run (``k = step * batch_size + j``) belongs to epoch ``k // n`` and
  sits at position ``k % n`` of that epoch's permutation (seeded by ``(seed, epoch)``).
* A sample's augmentation (scale, crop, flip) uses an RNG seeded by ``(seed, epoch, index)``.

So the "position in the data" of a run is just its step number: a trainer restarted with
``BatchLoader(dataset, batch_size, start_step=step)`` sees the very batches it would have
seen, as long as the seed, the image list and ``image_size``/``scale`` are unchanged.

An unreadable photo is replaced by the photo at the next permutation position (wrapping),
so a batch does not depend on which process loads it. Loaders report each bad file once,
from the main process. No mxnet here: worker processes only need numpy and OpenCV.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue
import signal
import time
import traceback
import warnings

import cv2
import numpy as np

from mxstyle.values import is_integer
from mxstyle.errors import ConfigError, ImageError, MxstyleError
from mxstyle.io import DEFAULT_MAX_PIXELS, READ_EXTENSIONS, read_image, resize

__all__ = ["SkippedImageWarning", "list_images", "PhotoDataset",
           "BatchLoader"]

# Leading words of the RNG seeds. numpy's SeedSequence pads with zeros, so [s, e] and
# [s, e, 0] would give the same stream; a distinct first word keeps the streams apart.
_PERM, _SAMPLE = 0x5045524D, 0x53414D50


class SkippedImageWarning(UserWarning):
    """A training photo could not be read and was replaced by another one."""


def list_images(folder) -> list:
    """Sorted paths of the images under ``folder`` (recursive; hidden files and folders skipped)."""
    folder = os.fspath(folder)
    if not os.path.isdir(folder):
        raise ConfigError(f"training image folder {folder!r} does not exist or is not a folder")
    found = []
    for root, dirs, files in os.walk(folder, followlinks=True):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        found += [os.path.join(root, f) for f in files
                  if not f.startswith(".") and os.path.splitext(f)[1].lower() in READ_EXTENSIONS]
    if not found:
        raise ConfigError(f"no images in {folder!r} (looked recursively for "
                          f"{', '.join(READ_EXTENSIONS)} files)")
    return sorted(found)


class PhotoDataset:
    """Random square crops of training photos, each a pure function of (seed, epoch, index).

    ``folder_or_paths`` is a folder (see :func:`list_images`) or a list of image paths, used
    in the given order. A sample is ``3 x image_size x image_size`` float32 in [0, 255]:
    the photo resized so its shorter side is ``image_size * u`` (``u`` uniform in ``scale``),
    a random crop, and a horizontal flip half of the time.
    """

    def __init__(self, folder_or_paths, image_size: int = 256, seed: int = 0,
                 scale=(1.0, 1.5), *, max_pixels=DEFAULT_MAX_PIXELS):
        if isinstance(folder_or_paths, (str, os.PathLike)):
            self.paths = list_images(folder_or_paths)
        else:
            self.paths = [os.fspath(p) for p in folder_or_paths]
            if not self.paths:
                raise ConfigError("PhotoDataset needs at least one image path")
        if not is_integer(image_size) or image_size < 1:
            raise ConfigError(f"image_size must be a positive integer, got {image_size!r}")
        if not is_integer(seed) or seed < 0:
            raise ConfigError(f"seed must be a non-negative integer, got {seed!r}")
        lo, hi = (float(v) for v in scale)
        if not 1.0 <= lo <= hi:  # below 1 the shorter side could not hold the crop
            raise ConfigError(f"scale must be (low, high) with 1 <= low <= high, got {scale!r}")
        self.image_size, self.seed, self.scale = int(image_size), int(seed), (lo, hi)
        self.max_pixels = max_pixels
        self._perms = {}  # epoch -> permutation (the last few only)
        self._bad = {}    # index -> error message, so a bad file is read once per process

    def __len__(self) -> int:
        return len(self.paths)

    def permutation(self, epoch: int) -> np.ndarray:
        """The order in which epoch ``epoch`` visits the photos (indices into ``paths``)."""
        if epoch not in self._perms:
            if len(self._perms) >= 4:
                self._perms.pop(next(iter(self._perms)))
            rng = np.random.default_rng([_PERM, self.seed, epoch])
            self._perms[epoch] = rng.permutation(len(self.paths))
        return self._perms[epoch]

    def positions(self, step: int, batch_size: int) -> list:
        """``(epoch, position in that epoch's permutation)`` of each sample of step ``step``."""
        n, first = len(self.paths), step * batch_size
        return [divmod(k, n) for k in range(first, first + batch_size)]

    def batch_indices(self, step: int, batch_size: int) -> list:
        """``(epoch, index into paths)`` of each sample of global step ``step`` (0-based)."""
        return [(e, int(self.permutation(e)[p])) for e, p in self.positions(step, batch_size)]

    def sample(self, epoch: int, index: int, photo: int = None) -> np.ndarray:
        """Sample ``index`` of ``epoch`` as a CHW array. Raises ImageError for a bad file.

        ``photo`` substitutes another photo while keeping the sample's own randomness.
        """
        img = read_image(self.paths[index if photo is None else photo],
                         max_pixels=self.max_pixels)
        rng = np.random.default_rng([_SAMPLE, self.seed, epoch, index])
        size, (h, w) = self.image_size, img.shape[:2]
        short = max(size, round(size * rng.uniform(*self.scale)))
        h, w = max(size, round(h * short / min(h, w))), max(size, round(w * short / min(h, w)))
        top, left = rng.integers(0, h - size + 1), rng.integers(0, w - size + 1)
        flip = rng.random() < 0.5
        img = resize(img, (h, w))[top:top + size, left:left + size]
        if flip:
            img = img[:, ::-1]
        return np.ascontiguousarray(img.transpose(2, 0, 1), dtype=np.float32)

    def load(self, epoch: int, position: int):
        """The sample at ``position`` of ``epoch``, with bad photos replaced by the photo at
        the next position (wrapping). Returns ``(chw, [(path, error message), ...])``."""
        perm, failed = self.permutation(epoch), []
        index = int(perm[position])
        for offset in range(len(perm)):
            photo = int(perm[(position + offset) % len(perm)])
            if photo not in self._bad:
                try:
                    return self.sample(epoch, index, photo), failed
                except ImageError as e:
                    self._bad[photo] = str(e)
            failed.append((self.paths[photo], self._bad[photo]))
        raise ConfigError(f"none of the {len(perm)} training images can be read, e.g. "
                          f"{failed[0][1]}")

    def load_batch(self, step: int, batch_size: int):
        """``(N x 3 x S x S float32 batch, failures)`` of global step ``step``."""
        samples, failed = [], []
        for epoch, position in self.positions(step, batch_size):
            chw, bad = self.load(epoch, position)
            samples.append(chw)
            failed += bad
        return np.stack(samples), failed


def _worker(dataset, batch_size, tasks, results):
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    cv2.setNumThreads(1)  # the workers already use the cores; don't oversubscribe
    parent = mp.parent_process()
    while True:
        try:
            step = tasks.get(timeout=1.0)
        except queue.Empty:
            if parent is not None and not parent.is_alive():
                # The parent died without closing us. Exit now, without waiting to flush
                # batches into a pipe that nobody will ever read.
                results.cancel_join_thread()
                return
            continue
        if step is None:
            return
        try:
            results.put((step, dataset.load_batch(step, batch_size), None))
        except MxstyleError as e:
            results.put((step, None, e))
        except Exception:  # a bug: keep its traceback (and don't send what may not pickle)
            results.put((step, None, RuntimeError("data loader worker failed:\n"
                                                  + traceback.format_exc())))


class BatchLoader:
    """Iterator of ``(step, batch)`` for step = start_step, start_step + 1, ... forever.

    ``batch`` is ``batch_size x 3 x S x S`` float32. ``workers`` processes (``0``: load in
    this process) keep up to ``workers * prefetch`` batches in flight; the result never
    depends on ``workers`` or ``start_step``. Bad photos are reported once each through
    ``on_skip(path, message)``, by default a :class:`SkippedImageWarning`. Use as a context
    manager or call :meth:`close`. Workers are spawned, not forked (the parent may hold
    mxnet's OpenMP threads), so they re-import the main script: keep its work and heavy
    imports under ``if __name__ == "__main__":``.
    """

    def __init__(self, dataset: PhotoDataset, batch_size: int, start_step: int = 0,
                 workers: int = 2, prefetch: int = 2, on_skip=None):
        for name, value, low in (("batch_size", batch_size, 1), ("start_step", start_step, 0),
                                 ("workers", workers, 0), ("prefetch", prefetch, 1)):
            if not is_integer(value) or value < low:
                raise ConfigError(f"{name} must be an integer >= {low}, got {value!r}")
        self.dataset, self.batch_size, self.step = dataset, int(batch_size), int(start_step)
        self.on_skip, self._reported, self._procs = on_skip, set(), []
        self._ready, self._closed = {}, False
        if workers:
            ctx = mp.get_context("spawn")
            self._tasks, self._results = ctx.Queue(), ctx.Queue()
            self._procs = [ctx.Process(target=_worker, daemon=True, name=f"mxstyle-data-{i}",
                                       args=(dataset, self.batch_size, self._tasks, self._results))
                           for i in range(workers)]
            for p in self._procs:
                p.start()
            self._next_task = self.step
            for _ in range(workers * prefetch):
                self._submit()

    def _submit(self):
        self._tasks.put(self._next_task)
        self._next_task += 1

    def __iter__(self):
        return self

    def __next__(self):
        if self._closed:
            raise StopIteration
        if not self._procs:
            batch, failed = self.dataset.load_batch(self.step, self.batch_size)
        else:
            while self.step not in self._ready:  # results may arrive out of order
                try:
                    step, out, err = self._results.get(timeout=1.0)
                except queue.Empty:
                    if not all(p.is_alive() for p in self._procs):
                        self.close()
                        raise RuntimeError("a data loader worker died unexpectedly "
                                           "(out of memory?)") from None
                    continue
                if err is not None:
                    self.close()
                    raise err
                self._ready[step] = out
            batch, failed = self._ready.pop(self.step)
            self._submit()
        for path, message in failed:
            if path not in self._reported:
                self._reported.add(path)
                if self.on_skip is not None:
                    self.on_skip(path, message)
                else:
                    warnings.warn(f"skipping unreadable training image: {message}",
                                  SkippedImageWarning, stacklevel=2)
        self.step += 1
        return self.step - 1, batch

    def close(self):
        """Stop the workers (politely, then by force) and free the queues. Idempotent."""
        if self._closed:
            return
        self._closed, self._ready = True, {}
        if not self._procs:
            return
        for _ in self._procs:
            self._tasks.put(None)
        deadline = time.monotonic() + 5.0
        while any(p.is_alive() for p in self._procs) and time.monotonic() < deadline:
            try:  # a worker cannot exit while its unread batches fill the pipe: drain them
                self._results.get(timeout=0.05)
            except (queue.Empty, OSError, EOFError):
                pass
        for p in self._procs:
            if p.is_alive():
                p.kill()
            p.join()
        for q in (self._tasks, self._results):
            q.cancel_join_thread()
            q.close()
        self._procs = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass
