"""Read PyTorch `.pth` / `.ckpt` / `.pth.tar` files with numpy alone, never running pickled code.

    obj = pth.load('NRP.pth')            # the saved container, every tensor a numpy array
    sd = pth.state_dict('model.ckpt')    # name -> np.ndarray (plain or {'state_dict': ...})

`torch.save` pickles the container and refers to tensor data by persistent id. A pickle can
call any importable function, so the unpickler here resolves only the few globals such files
hold: tensor rebuilding (`torch._utils._rebuild_tensor_v2`, PyTorch <= 0.3's
`_rebuild_tensor`, `_rebuild_parameter`), the storage types (`torch.FloatStorage`, ...,
also `torch.cuda.*` of files saved from a GPU), `collections.OrderedDict` and
`argparse.Namespace` (the `args` of HGD's training dict, which `torch.load(weights_only=True)`
refuses); any other global is refused with an error naming the file and the global. Both
containers are read: the zip format (`torch.save` since 1.6: `<stem>/data.pkl` + one record
per storage) and the legacy one (magic, protocol and system-info pickles, the object pickle,
the storage keys, then each storage as an int64 element count and its raw bytes), as
PyTorch 0.2-1.5 and `_use_new_zipfile_serialization=False` write it.
"""
import argparse
import collections
import io
import pickle
import struct
import zipfile

import numpy as np

LEGACY_MAGIC = 0x1950a86a20f9469cfc6c
LEGACY_PROTOCOL = 1001

STORAGE_DTYPES = {
    'DoubleStorage': 'f8', 'FloatStorage': 'f4', 'HalfStorage': 'f2', 'LongStorage': 'i8',
    'IntStorage': 'i4', 'ShortStorage': 'i2', 'CharStorage': 'i1', 'ByteStorage': 'u1',
    'BoolStorage': '?',
}
STORAGE_MODULES = ('torch', 'torch.cuda')


class PthError(ValueError):
    """A file that is not a readable PyTorch weight file, or one that holds code."""


class _NoState:
    """Refuses pickle state (BUILD), so a file cannot alter the reader's own objects."""

    __slots__ = ()

    def __setstate__(self, state):
        raise pickle.UnpicklingError(f'state assigned to {type(self).__name__}')


class _Function(_NoState):
    """An allowed function global."""

    __slots__ = ('fn',)

    def __init__(self, fn):
        self.fn = fn

    def __call__(self, *args):
        return self.fn(*args)


class _StorageType(_NoState):
    """Stand-in for `torch.<X>Storage`: only its dtype matters."""

    __slots__ = ('dtype',)

    def __init__(self, dtype):
        self.dtype = dtype


class _Storage(_NoState):
    """One storage (flat typed buffer); `data` is filled when its bytes are read; a legacy
    storage view is `numel` elements of `root` from `offset`."""

    __slots__ = ('dtype', 'numel', 'key', 'data', 'root', 'offset')

    def __init__(self, dtype, numel, key, root=None, offset=0):
        self.dtype, self.numel, self.key, self.data = dtype, numel, key, None
        self.root, self.offset = root, offset


class _Tensor(_NoState):
    """A tensor as the pickle describes it; turned into an ndarray once storages are read."""

    __slots__ = ('storage', 'offset', 'size', 'stride')

    def __init__(self, storage, offset, size, stride):
        if not isinstance(storage, _Storage):
            raise pickle.UnpicklingError('tensor rebuilt from something that is not a storage')
        if not (_ints(size) and _ints(stride) and len(size) == len(stride)
                and isinstance(offset, int) and offset >= 0
                and min(size, default=0) >= 0 and min(stride, default=0) >= 0):
            raise pickle.UnpicklingError(f'bad tensor geometry: offset {offset!r}, size '
                                         f'{size!r}, stride {stride!r}')
        if all(size) and offset + sum((n - 1) * s for n, s in zip(size, stride)) >= storage.numel:
            raise pickle.UnpicklingError(f'tensor of size {list(size)} reads past its storage '
                                         f'{storage.key!r} of {storage.numel} elements')
        self.storage, self.offset, self.size, self.stride = storage, offset, tuple(size), tuple(stride)

    def array(self):
        """C-contiguous native-endian copy."""
        data = self.storage.data
        dtype = data.dtype.newbyteorder('=')
        if not self.size:
            return np.array(data[self.offset], dtype)
        if not all(self.size):
            return np.zeros(self.size, dtype)
        view = np.lib.stride_tricks.as_strided(
            data[self.offset:], self.size, [s * data.itemsize for s in self.stride],
            writeable=False)
        return np.ascontiguousarray(view, dtype=dtype)


def _ints(values):
    return isinstance(values, tuple) and all(isinstance(v, int) for v in values)


def _rebuild_tensor(storage, storage_offset, size, stride, *unused):
    """`torch._utils._rebuild_tensor` (PyTorch <= 0.3) and `_rebuild_tensor_v2`
    (+ requires_grad, backward_hooks, metadata: irrelevant to the values)."""
    return _Tensor(storage, storage_offset, size, stride)


def _rebuild_parameter(data, requires_grad, backward_hooks):
    """`torch._utils._rebuild_parameter`: an nn.Parameter is its tensor."""
    if not isinstance(data, _Tensor):
        raise pickle.UnpicklingError('parameter rebuilt from something that is not a tensor')
    return data


ALLOWED_GLOBALS = {
    ('torch._utils', '_rebuild_tensor'): _Function(_rebuild_tensor),
    ('torch._utils', '_rebuild_tensor_v2'): _Function(_rebuild_tensor),
    ('torch._utils', '_rebuild_parameter'): _Function(_rebuild_parameter),
    ('collections', 'OrderedDict'): collections.OrderedDict,
    ('argparse', 'Namespace'): argparse.Namespace,
}
ALLOWED_GLOBALS.update({(module, name): _StorageType(np.dtype(code))
                        for module in STORAGE_MODULES for name, code in STORAGE_DTYPES.items()})


class _Unpickler(pickle.Unpickler):
    """Resolves only ALLOWED_GLOBALS; storages by persistent id through `storage(...)`."""

    def __init__(self, file, path, storage):
        super().__init__(file, encoding='utf-8')
        self.path, self.storage = path, storage

    def find_class(self, module, name):
        try:
            return ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise PthError(f'{self.path}: refusing to load the global {module}.{name}: a weight '
                           'file may hold only tensors, storages, OrderedDict and '
                           'argparse.Namespace; this one would run code if loaded with '
                           'torch.load') from None

    def persistent_load(self, saved_id):
        if not isinstance(saved_id, tuple) or not saved_id:
            raise pickle.UnpicklingError(f'unexpected persistent id {saved_id!r}')
        kind = _text(saved_id[0])
        if kind == 'module':
            raise PthError(f'{self.path}: holds a pickled nn.Module (its source code), not a '
                           'state dict; save model.state_dict() instead')
        if kind != 'storage':
            raise pickle.UnpicklingError(f'unexpected persistent id {kind!r}')
        return self.storage(*saved_id[1:])


def _text(value):
    return value.decode('ascii') if isinstance(value, bytes) else value


def _storage_args(storage_type, key, numel):
    if not isinstance(storage_type, _StorageType):
        raise pickle.UnpicklingError(f'storage of unknown type {storage_type!r}')
    key = _text(key)
    if not isinstance(key, str) or not isinstance(numel, int) or numel < 0:
        raise pickle.UnpicklingError(f'bad storage record {key!r}, {numel!r}')
    return storage_type.dtype, numel, key


def _materialize(obj, seen=None):
    """Copy of the unpickled tree with every _Tensor an ndarray (Namespace kept, cycles refused)."""
    seen = set() if seen is None else seen
    if isinstance(obj, _Tensor):
        return obj.array()
    if isinstance(obj, (dict, list, tuple, argparse.Namespace)):
        if id(obj) in seen:
            raise pickle.UnpicklingError('the container refers to itself')
        seen = seen | {id(obj)}
        if isinstance(obj, argparse.Namespace):
            return argparse.Namespace(**_materialize(vars(obj), seen))
        if isinstance(obj, dict):
            items = [(k, _materialize(v, seen)) for k, v in obj.items()]
            return collections.OrderedDict(items) if isinstance(obj, collections.OrderedDict) \
                else dict(items)
        return type(obj)(_materialize(v, seen) for v in obj)
    return obj


def _load_zip(path, archive):
    names = archive.namelist()
    pickles = [n for n in names if n.count('/') == 1 and n.endswith('/data.pkl')]
    if len(pickles) != 1:
        raise PthError(f'{path}: a zip file but not a torch.save archive (no <stem>/data.pkl)')
    prefix = pickles[0][:-len('data.pkl')]
    byteorder = archive.read(prefix + 'byteorder').decode() if prefix + 'byteorder' in names \
        else 'little'
    if byteorder not in ('little', 'big'):
        raise PthError(f'{path}: unknown byte order {byteorder!r}')
    storages = {}

    def storage(storage_type, key, location, numel):
        dtype, numel, key = _storage_args(storage_type, key, numel)
        if key not in storages:
            entry = f'{prefix}data/{key}'
            if entry not in names:
                raise PthError(f'{path}: storage record {entry} is missing')
            dtype = dtype.newbyteorder('<' if byteorder == 'little' else '>')
            raw = archive.read(entry)
            if len(raw) < numel * dtype.itemsize:
                raise PthError(f'{path}: storage record {entry} holds {len(raw)} bytes, '
                               f'{numel} x {dtype.itemsize} expected')
            storages[key] = _Storage(dtype, numel, key)
            storages[key].data = np.frombuffer(raw, dtype, numel)
        return storages[key]

    return _Unpickler(io.BytesIO(archive.read(pickles[0])), path, storage).load()


def _load_legacy(path, f, size):
    def header():
        return _Unpickler(f, path, None).load()
    if header() != LEGACY_MAGIC:
        raise PthError(f'{path}: not a PyTorch file (no torch.save magic number)')
    if header() != LEGACY_PROTOCOL:
        raise PthError(f'{path}: unsupported torch.save protocol version')
    sys_info = header()
    little = sys_info.get('little_endian', True) if isinstance(sys_info, dict) else True
    storages = {}

    def storage(storage_type, root_key, location, numel, view_metadata=None):
        dtype, numel, root_key = _storage_args(storage_type, root_key, numel)
        root = storages.setdefault(root_key, _Storage(
            dtype.newbyteorder('<' if little else '>'), numel, root_key))
        if view_metadata is None:
            return root
        view_key, offset, view_numel = view_metadata
        if not (isinstance(offset, int) and isinstance(view_numel, int) and offset >= 0
                and view_numel >= 0 and offset + view_numel <= numel):
            raise pickle.UnpicklingError(f'bad storage view {view_metadata!r}')
        return _Storage(root.dtype, view_numel, _text(view_key), root, offset)

    obj = _Unpickler(f, path, storage).load()
    keys = header()
    if not isinstance(keys, list) or sorted(map(_text, keys)) != sorted(storages):
        raise PthError(f'{path}: its storage list does not match the tensors it holds')
    for key in map(_text, keys):
        root = storages[key]
        count = struct.unpack('<q' if little else '>q', _read(f, 8, path, size))[0]
        if count != root.numel:
            raise PthError(f'{path}: storage {key} has {count} elements, {root.numel} expected')
        root.data = np.frombuffer(_read(f, count * root.dtype.itemsize, path, size), root.dtype)
    _resolve_views(obj)
    return obj


def _resolve_views(obj, seen=None):
    """Point the storages of legacy storage views at their slice of the root storage."""
    seen = set() if seen is None else seen
    if id(obj) in seen:
        return
    seen.add(id(obj))
    if isinstance(obj, _Tensor) and obj.storage.root is not None:
        view = obj.storage
        view.data = view.root.data[view.offset:view.offset + view.numel]
    elif isinstance(obj, dict):
        for value in obj.values():
            _resolve_views(value, seen)
    elif isinstance(obj, (list, tuple)):
        for value in obj:
            _resolve_views(value, seen)
    elif isinstance(obj, argparse.Namespace):
        _resolve_views(vars(obj), seen)


def _read(f, n, path, size):
    if f.tell() + n > size:
        raise PthError(f'{path}: truncated ({size} bytes; the storage data runs past the end)')
    return f.read(n)


def load(path):
    """The object `torch.save` wrote to `path`, tensors as numpy arrays (C-contiguous, native
    byte order), OrderedDicts, dicts, lists, tuples, scalars, strings and argparse.Namespace
    as themselves. Raises PthError naming the file for anything else."""
    path = str(path)
    try:
        with open(path, 'rb') as f:
            head = f.read(512)
            f.seek(0, io.SEEK_END)
            size = f.tell()
            f.seek(0)
            if head.startswith(b'PK\x03\x04'):
                with zipfile.ZipFile(f) as archive:
                    obj = _load_zip(path, archive)
            elif head[257:262] == b'ustar':
                raise PthError(f'{path}: the tar container of PyTorch < 0.1.10 is not supported')
            else:
                obj = _load_legacy(path, f, size)
        return _materialize(obj)
    except PthError:
        raise
    except (pickle.UnpicklingError, zipfile.BadZipFile, EOFError, ValueError, TypeError,
            AttributeError, IndexError, KeyError, struct.error, MemoryError,
            RecursionError) as e:
        raise PthError(f'{path}: not a readable PyTorch weight file, truncated or corrupt '
                       f'({type(e).__name__}: {e})') from None


def state_dict(source):
    """name -> np.ndarray of a state dict file (or an object `load` returned): the file itself
    when it is a plain state dict, else its 'state_dict' entry (training checkpoints)."""
    obj = load(source) if not isinstance(source, dict) else source
    where = str(source) if not isinstance(source, dict) else 'the container'
    if isinstance(obj, dict) and isinstance(obj.get('state_dict'), dict):
        obj = obj['state_dict']
    if not isinstance(obj, dict) or not obj:
        raise PthError(f'{where}: holds no state dict (a non-empty name -> tensor mapping)')
    bad = [k for k, v in obj.items() if not isinstance(k, str) or not isinstance(v, np.ndarray)]
    if bad:
        raise PthError(f'{where}: not a state dict: entries {bad[:3]} are not named tensors')
    return dict(obj)


def flatten(obj, prefix=''):
    """{path: leaf} with dict keys joined by '/' and list items as '[i]' (for listing a file)."""
    if isinstance(obj, argparse.Namespace) or not isinstance(obj, (dict, list, tuple)):
        return {prefix: obj}
    items = obj.items() if isinstance(obj, dict) else (
        (f'[{i}]', v) for i, v in enumerate(obj))
    out = {}
    for key, value in items:
        sep = '' if not prefix or str(key).startswith('[') else '/'
        out.update(flatten(value, f'{prefix}{sep}{key}'))
    return out
