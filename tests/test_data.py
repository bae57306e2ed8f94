import multiprocessing as mp
import os
import warnings

import numpy as np
import pytest

from mxstyle.data import BatchLoader, PhotoDataset, SkippedImageWarning, list_images
from mxstyle.errors import ConfigError
from mxstyle.io import encode_image, write_image

SIZE = 16


def _photo(seed, h=24, w=32):
    """A random but structured small image, different for each seed."""
    rng = np.random.RandomState(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.stack([255 * x / w, 255 * y / h, np.full_like(x, 20.0 * seed % 255)], axis=2)
    return np.clip(img + rng.normal(0, 10, img.shape), 0, 255).astype(np.float32)


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "photos"
    for i in range(7):
        ext = [".png", ".jpg", ".bmp"][i % 3]
        sub = root / "sub" if i % 2 else root
        write_image(sub / f"img{i}{ext}", _photo(i, 24 + i, 32 - i))
    return root


def _loader(dataset, steps, **kw):
    with BatchLoader(dataset, kw.pop("batch_size", 3), **kw) as loader:
        return [next(loader) for _ in range(steps)]


def _assert_same(a, b):
    assert [s for s, _ in a] == [s for s, _ in b]
    for (_, x), (_, y) in zip(a, b):
        np.testing.assert_array_equal(x, y)


# ---------------------------------------------------------------------------- listing

def test_list_images_recursive_sorted_and_filtered(tmp_path):
    for name in ["b.JPG", "a.png", "sub/deep/c.Tiff", "sub/d.webp", "e.jpeg", "f.BMP", "g.gif", "h.HEIC"]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    for name in ["notes.txt", "i.pdf", ".hidden.png", ".cache/h.png", "noext"]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    found = list_images(tmp_path)
    assert found == sorted(found)
    assert [os.path.relpath(p, tmp_path) for p in found] == [
        "a.png", "b.JPG", "e.jpeg", "f.BMP", "g.gif", "h.HEIC", os.path.join("sub", "d.webp"),
        os.path.join("sub", "deep", "c.Tiff")]


def test_list_images_errors(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        list_images(tmp_path / "missing")
    (tmp_path / "readme.txt").write_text("no images here")
    with pytest.raises(ConfigError, match="no images"):
        list_images(tmp_path)
    with pytest.raises(ConfigError, match="no images"):
        PhotoDataset(tmp_path)
    with pytest.raises(ConfigError):
        PhotoDataset([])


@pytest.mark.parametrize("kw", [dict(image_size=0), dict(seed=-1), dict(scale=(0.5, 1.0)),
                                dict(scale=(1.5, 1.2))])
def test_dataset_rejects_bad_options(folder, kw):
    with pytest.raises(ConfigError):
        PhotoDataset(folder, **kw)


# ---------------------------------------------------------------------------- samples

def test_sample_is_deterministic_and_shaped(folder):
    a = PhotoDataset(folder, image_size=SIZE, seed=3)
    b = PhotoDataset(folder, image_size=SIZE, seed=3)
    s = a.sample(2, 4)
    assert s.shape == (3, SIZE, SIZE) and s.dtype == np.float32 and s.flags.c_contiguous
    assert 0 <= s.min() and s.max() <= 255
    np.testing.assert_array_equal(s, b.sample(2, 4))
    np.testing.assert_array_equal(s, a.sample(2, 4))
    assert not np.array_equal(s, a.sample(3, 4))  # another epoch, another crop
    assert not np.array_equal(s, PhotoDataset(folder, image_size=SIZE, seed=4).sample(2, 4))


def test_crops_and_flips_vary(tmp_path):
    # The same photo many times: only the augmentation differs between samples.
    path = tmp_path / "one.png"
    write_image(path, _photo(0, 40, 60))
    ds = PhotoDataset([path] * 40, image_size=SIZE, scale=(1.0, 2.0))
    samples = [ds.sample(0, i) for i in range(40)]
    distinct = {s.tobytes() for s in samples}
    assert len(distinct) > 30
    # Channel 0 is a left-to-right ramp: a flip makes it decrease.
    slopes = [np.sign(s[0, :, -1].mean() - s[0, :, 0].mean()) for s in samples]
    assert 5 < slopes.count(-1) < 35 and slopes.count(-1) + slopes.count(1) == 40


def test_batch_order_covers_each_image_once_per_epoch(folder):
    ds = PhotoDataset(folder, image_size=SIZE, seed=1)
    n = len(ds)
    assert n == 7
    seen = [ix for step in range(n * 3) for ix in ds.batch_indices(step, 2)]  # 6 epochs
    for epoch in range(6):
        indices = [i for e, i in seen if e == epoch]
        assert sorted(indices) == list(range(n))
    assert [e for e, _ in seen] == sorted(e for e, _ in seen)
    orders = {tuple(i for e, i in seen if e == epoch) for epoch in range(6)}
    assert len(orders) > 1  # reshuffled every epoch
    assert ds.batch_indices(5, 2) == PhotoDataset(folder, seed=1).batch_indices(5, 2)


# ---------------------------------------------------------------------------- loader

def test_workers_and_start_step_do_not_change_batches(folder):
    ds = PhotoDataset(folder, image_size=SIZE, seed=5)
    ref = _loader(ds, 8, workers=0)
    assert [s for s, _ in ref] == list(range(8))
    assert all(b.shape == (3, 3, SIZE, SIZE) and b.dtype == np.float32 for _, b in ref)
    _assert_same(_loader(ds, 8, workers=2, prefetch=2), ref)
    _assert_same(_loader(ds, 3, workers=0, start_step=5), ref[5:])
    _assert_same(_loader(ds, 3, workers=1, start_step=5), ref[5:])
    # Each batch is the samples named by batch_indices, in order.
    expect = np.stack([ds.sample(e, i) for e, i in ds.batch_indices(6, 3)])
    np.testing.assert_array_equal(ref[6][1], expect)


def _with_bad_files(folder):
    (folder / "corrupt.jpg").write_bytes(os.urandom(500))
    whole = encode_image(_photo(9, 30, 30), ".jpg")
    (folder / "sub" / "truncated.jpg").write_bytes(whole[:len(whole) // 2])
    write_image(folder / "huge.png", _photo(10, 60, 60))  # over max_pixels below
    return {str(folder / "corrupt.jpg"), str(folder / "sub" / "truncated.jpg"),
            str(folder / "huge.png")}


@pytest.mark.parametrize("workers", [0, 2])
def test_bad_images_are_skipped_with_one_warning_each(folder, workers):
    bad = _with_bad_files(folder)
    ds = PhotoDataset(folder, image_size=SIZE, seed=2, max_pixels=50 * 50)
    assert len(ds) == 10
    with pytest.warns(SkippedImageWarning) as record:
        batches = _loader(ds, 12, batch_size=4, workers=workers)  # almost 5 epochs
    warned = [str(w.message) for w in record if issubclass(w.category, SkippedImageWarning)]
    assert len(warned) == 3
    assert {p for p in bad if any(p in m for m in warned)} == bad
    assert all(b.shape == (4, 3, SIZE, SIZE) for _, b in batches)
    if workers == 0:
        # The replacement is the photo at the next position of the permutation.
        (epoch, pos), = [(e, p) for e, p in ds.positions(0, 40)
                         if ds.paths[ds.permutation(e)[p]] in bad][:1]
        perm, k = ds.permutation(epoch), 0
        while ds.paths[perm[(pos + k) % 10]] in bad:
            k += 1
        step, j = divmod(epoch * 10 + pos, 4)
        index, photo = int(perm[pos]), int(perm[(pos + k) % 10])
        np.testing.assert_array_equal(batches[step][1][j], ds.sample(epoch, index, photo))


def test_bad_images_callback_and_same_batches_with_workers(folder):
    _with_bad_files(folder)
    ds = PhotoDataset(folder, image_size=SIZE, seed=2, max_pixels=50 * 50)
    calls = []
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # with a callback there is no warning
        ref = _loader(ds, 6, workers=0, on_skip=lambda p, m: calls.append(p))
        _assert_same(_loader(ds, 3, workers=2, start_step=3, on_skip=lambda p, m: None), ref[3:])
    assert len(calls) == len(set(calls)) == 3


@pytest.mark.parametrize("workers", [0, 1])
def test_all_bad_raises_config_error(tmp_path, workers):
    (tmp_path / "a.jpg").write_bytes(b"not an image")
    (tmp_path / "b.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 20)
    ds = PhotoDataset(tmp_path, image_size=SIZE)
    loader = BatchLoader(ds, 2, workers=workers, on_skip=lambda p, m: None)
    with pytest.raises(ConfigError, match="none of the 2 training images"):
        next(loader)
    loader.close()
    assert not mp.active_children()


def test_close_leaves_no_processes(folder):
    ds = PhotoDataset(folder, image_size=SIZE)
    loader = BatchLoader(ds, 2, workers=2, prefetch=3)
    procs = list(loader._procs)
    assert len(procs) == 2 and all(p.is_alive() for p in procs)
    next(loader)
    loader.close()  # with batches still in flight
    loader.close()  # idempotent
    assert not any(p.is_alive() for p in procs)
    assert not mp.active_children()
    with pytest.raises(StopIteration):
        next(loader)
    with BatchLoader(ds, 2, workers=1) as loader:
        procs = list(loader._procs)
    assert not any(p.is_alive() for p in procs)


def test_loader_rejects_bad_options(folder):
    ds = PhotoDataset(folder, image_size=SIZE)
    for kw in (dict(batch_size=0), dict(batch_size=2, workers=-1),
               dict(batch_size=2, start_step=-1), dict(batch_size=2, prefetch=0)):
        with pytest.raises(ConfigError):
            BatchLoader(ds, **kw)
