"""A numpy-only `torch.save` for tests: writes the zip or legacy container of an object tree
whose tensors are numpy arrays, with the same globals and records PyTorch writes (see
`svrens_tf/weights/pth.py` for the layout), so loaders can be tested on full-size synthetic
state dicts without torch.
"""
import collections
import io
import pickle
import struct
import zipfile

import numpy as np

from svrens_tf.weights import pth

STORAGE_NAMES = {np.dtype(code): name for name, code in pth.STORAGE_DTYPES.items()}


class Global:
    """Pickled as `GLOBAL module name` (the callable is never called here)."""

    def __init__(self, module, name):
        self.module, self.name = module, name

    def __call__(self, *args):
        raise AssertionError('never called')


class _Storage:
    def __init__(self, key, array):
        self.key, self.array = key, array


class _Tensor:
    def __init__(self, storage, shape, rebuild):
        self.storage, self.shape, self.rebuild = storage, shape, rebuild

    def __reduce__(self):
        stride = tuple(int(s) // self.storage.array.itemsize
                       for s in np.empty(self.shape, self.storage.array.dtype).strides)
        args = (self.storage, 0, tuple(self.shape), stride)
        if self.rebuild == '_rebuild_tensor_v2':
            args += (False, collections.OrderedDict())
        return Global('torch._utils', self.rebuild), args


class _Pickler(pickle._Pickler):
    dispatch = pickle._Pickler.dispatch.copy()

    def _save_global_object(self, obj):
        self.write(pickle.GLOBAL + f'{obj.module}\n{obj.name}\n'.encode())
        self.memoize(obj)

    dispatch[Global] = _save_global_object

    def __init__(self, file, legacy):
        super().__init__(file, protocol=2)
        self.legacy = legacy

    def persistent_id(self, obj):
        if not isinstance(obj, _Storage):
            return None
        kind = Global('torch', STORAGE_NAMES[obj.array.dtype])
        record = ('storage', kind, obj.key, 'cpu', obj.array.size)
        return record + (None,) if self.legacy else record


def _wrap(obj, storages, rebuild):
    """The tree with each ndarray replaced by a tensor over its own storage."""
    if isinstance(obj, np.ndarray):
        storage = _Storage(str(len(storages)), np.ascontiguousarray(obj).ravel())
        storages.append(storage)
        return _Tensor(storage, obj.shape, rebuild)
    if isinstance(obj, dict):
        return type(obj)((k, _wrap(v, storages, rebuild)) for k, v in obj.items())
    if isinstance(obj, (list, tuple)):
        return type(obj)(_wrap(v, storages, rebuild) for v in obj)
    return obj


def save(obj, path, legacy=False, rebuild='_rebuild_tensor_v2'):
    """Write `obj` as torch.save would: zip (default) or legacy (`legacy=True`); `rebuild=
    '_rebuild_tensor'` pickles tensors as PyTorch <= 0.3 did."""
    storages = []
    wrapped = _wrap(obj, storages, rebuild)
    body = io.BytesIO()
    _Pickler(body, legacy).dump(wrapped)
    if legacy:
        with open(path, 'wb') as f:
            for header in (pth.LEGACY_MAGIC, pth.LEGACY_PROTOCOL,
                           {'protocol_version': 1001, 'little_endian': True,
                            'type_sizes': {'short': 2, 'int': 4, 'long': 4}}):
                pickle.dump(header, f, protocol=2)
            f.write(body.getvalue())
            pickle.dump([s.key for s in storages], f, protocol=2)
            for s in storages:
                f.write(struct.pack('<q', s.array.size))
                f.write(s.array.astype(s.array.dtype.newbyteorder('<')).tobytes())
        return path
    stem = 'archive'
    with zipfile.ZipFile(path, 'w', zipfile.ZIP_STORED) as archive:
        archive.writestr(f'{stem}/data.pkl', body.getvalue())
        archive.writestr(f'{stem}/byteorder', 'little')
        for s in storages:
            archive.writestr(f'{stem}/data/{s.key}', s.array.tobytes())
        archive.writestr(f'{stem}/version', '3\n')
    return path
