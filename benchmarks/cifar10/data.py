"""CIFAR-10 as uint8 arrays, from the shared JPEG tarball or the standard python download.

Numpy and PIL only: decoding and augmentation do not depend on TensorFlow.
"""
import io
import pathlib
import pickle
import tarfile
import urllib.request

import numpy as np
from PIL import Image

from benchmarks import SHARED_DIR

CLASSES = ('airplane', 'automobile', 'bird', 'cat', 'deer',
           'dog', 'frog', 'horse', 'ship', 'truck')
SHARED_TARBALL = SHARED_DIR / 'cifar10' / 'cifar10-jpeg.tar.gz'
STANDARD_URL = 'https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz'


def default_source():
    """The shared JPEG tarball where it exists, else the standard archive in ~/.cache."""
    if SHARED_TARBALL.is_file():
        return SHARED_TARBALL
    return pathlib.Path.home() / '.cache' / 'svrens_tf' / 'cifar-10-python.tar.gz'


def download_standard(dest):
    """Fetch the standard CIFAR-10 python archive to `dest` (atomic: temporary file, then rename)."""
    dest = pathlib.Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_suffix('.part')
    urllib.request.urlretrieve(STANDARD_URL, tmp)
    tmp.rename(dest)
    return dest


def _read_jpeg_tarball(tar, splits):
    """{split: (x, y)} from members `<split>/<class>/NNNN.jpg`, sorted by class then name.

    Members are decoded in archive order: seeking backwards in a .tar.gz re-reads it from the start.
    """
    found = {split: [] for split in splits}
    for member in tar:
        parts = member.name.split('/')
        if member.isfile() and len(parts) == 3 and parts[0] in found and parts[1] in CLASSES:
            image = np.asarray(Image.open(io.BytesIO(tar.extractfile(member).read())).convert('RGB'))
            found[parts[0]].append((CLASSES.index(parts[1]), parts[2], image))
    arrays = {}
    for split, entries in found.items():
        entries.sort(key=lambda e: (e[0], e[1]))
        arrays[split] = (np.stack([image for _, _, image in entries]),
                         np.array([label for label, _, _ in entries], np.int64))
    return arrays


def _read_python_tarball(tar, splits):
    """{split: (x, y)} from the standard `cifar-10-batches-py` pickles."""
    def batch(name):
        d = pickle.load(tar.extractfile(f'cifar-10-batches-py/{name}'), encoding='bytes')
        return d[b'data'].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), np.array(d[b'labels'], np.int64)
    files = {'train': [f'data_batch_{i}' for i in range(1, 6)], 'test': ['test_batch']}
    arrays = {}
    for split in splits:
        parts = [batch(name) for name in files[split]]
        arrays[split] = (np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]))
    return arrays


def load(source=None, cache_dir=None, splits=('train', 'test')):
    """{split: (x, y)}: uint8 [N,32,32,3] images and int64 labels of 'train' and/or 'test'.

    `source` is the JPEG tarball or the standard python tarball (downloaded if missing);
    with `cache_dir`, each decoded split is kept there as an .npz and reused.
    """
    source = pathlib.Path(source or default_source())
    stem = source.name.split('.')[0]
    cached = {s: pathlib.Path(cache_dir) / f'{stem}-{s}.npz' for s in splits} if cache_dir else {}
    arrays = {}
    for split, path in cached.items():
        if path.is_file():
            with np.load(path) as d:
                arrays[split] = (d['x'], d['y'])
    missing = [s for s in splits if s not in arrays]
    if missing:
        if not source.is_file():
            download_standard(source)
        with tarfile.open(source) as tar:
            is_standard = tar.next().name.startswith('cifar-10-batches-py')
            reader = _read_python_tarball if is_standard else _read_jpeg_tarball
            arrays.update(reader(tar, missing))
        for split in missing:
            if split in cached:
                cached[split].parent.mkdir(parents=True, exist_ok=True)
                np.savez(cached[split], x=arrays[split][0], y=arrays[split][1])
    return {split: arrays[split] for split in splits}


def to_model_range(x):
    """uint8 pixels -> float32 in [-1, 1] (the slim Inception convention the attacks use)."""
    return x.astype(np.float32) / 127.5 - 1.0


def augment(x, rng, pad=4):
    """Random crop (zero padding `pad`) and horizontal flip of a uint8 batch [N,H,W,C]."""
    n, h, w, _ = x.shape
    padded = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    oy = rng.integers(0, 2 * pad + 1, n)
    ox = rng.integers(0, 2 * pad + 1, n)
    rows = (oy[:, None] + np.arange(h))[:, :, None]
    cols = (ox[:, None] + np.arange(w))[:, None, :]
    out = padded[np.arange(n)[:, None, None], rows, cols]
    flip = rng.random(n) < 0.5
    out[flip] = out[flip, :, ::-1]
    return out
