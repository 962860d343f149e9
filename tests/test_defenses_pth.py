"""The safe .pth reader: every real torch.save container of ../shared, refusals, corrupt files."""
import ast
import hashlib
import io
import json
import os
import pickle
import re
import shutil
import zipfile

import numpy as np
import pytest

import pth_writer
from benchmarks import shared_module
from svrens_tf.weights import pth


@pytest.fixture(scope='module')
def tiny(shared_dir):
    folder = shared_dir / 'torch_reference' / 'tiny_ckpts'
    return folder, json.loads((folder / 'tiny_ckpts.json').read_text())['files']


@pytest.fixture(scope='module')
def gen_weights(shared_dir):
    return shared_module('torch_reference/gen_weights.py')


def _sha(array):
    return hashlib.sha256(np.ascontiguousarray(array).astype(array.dtype.newbyteorder('<'))
                          .tobytes()).hexdigest()


def _plain(value):
    """A flattened non-tensor value as tiny_ckpts.json writes it."""
    if isinstance(value, pth.argparse.Namespace):
        return vars(value)
    return value


def _expected_plain(value):
    if isinstance(value, str) and value.startswith('argparse.Namespace('):
        call = ast.parse(value[len('argparse.'):], mode='eval').body
        return {k.arg: ast.literal_eval(k.value) for k in call.keywords}
    return value


TINY_FILES = ['nrp_tiny.pth', 'nrp_tiny_legacy.pth', 'nrp_resg_tiny.pth',
              'nrp_resg_tiny_legacy.pth', 'hgd_v3_subset_train.ckpt',
              'hgd_v3_subset_train_legacy.ckpt', 'hgd_v3_subset_train_torch03.ckpt',
              'hgd_v3_subset_plain.ckpt', 'hgd_v3_subset_plain_legacy.ckpt',
              'hgd_v3_subset_plain_torch03.ckpt', 'cohen_subset.pth.tar',
              'cohen_subset_legacy.pth.tar']


def test_the_list_covers_every_tiny_file(tiny):
    assert sorted(TINY_FILES) == sorted(tiny[1])


@pytest.mark.parametrize('name', TINY_FILES)
def test_every_tiny_container_reads_as_listed(tiny, gen_weights, name):
    folder, files = tiny
    info = files[name]
    path = folder / name
    assert hashlib.sha256(path.read_bytes()).hexdigest() == info['sha256']
    obj = pth.load(path)
    assert list(obj) == info['top_level_keys']
    flat = pth.flatten(obj)
    tensors = {k: v for k, v in flat.items() if isinstance(v, np.ndarray)}
    assert [[k, list(v.shape), str(v.dtype), _sha(v)] for k, v in tensors.items()] == \
        info['tensors']
    others = {k: _plain(v) for k, v in flat.items() if not isinstance(v, np.ndarray)}
    params = [k for k in others if '/params[' in k]
    if params:   # the json lists the optimizer's param index list as one string
        others[params[0].split('[')[0] + '[0]/params'] = str([others.pop(k) for k in params])
    assert others == {k: _expected_plain(v) for k, v in info['non_tensor_values'].items()}
    # an independent derivation: the generator that filled the file, keyed like state_dict()
    generator = info['generator']
    expected = gen_weights.generate_state_dict(
        {'model': generator['model'], 'state_dict': generator['manifest_state_dict']},
        generator['seed'])
    got = pth.state_dict(path)
    assert list(got) == list(expected)
    assert all(np.array_equal(got[k], expected[k]) and got[k].dtype == expected[k].dtype
               for k in expected)
    assert gen_weights.arrays_digest(got) == generator['arrays_sha256']


@pytest.mark.parametrize('legacy,rebuild', [(False, '_rebuild_tensor_v2'),
                                            (True, '_rebuild_tensor_v2'),
                                            (True, '_rebuild_tensor')])
def test_written_containers_round_trip(tmp_path, rng, legacy, rebuild):
    arrays = {'a.weight': rng.randn(4, 3, 3, 3).astype(np.float32),
              'a.bias': rng.randn(4).astype(np.float64),
              'n': np.array(7, np.int64), 'empty': np.zeros((0, 3), np.float32),
              'h': rng.randn(5).astype(np.float16), 'm': np.array([True, False])}
    container = {'epoch': 3, 'state_dict': pth.collections.OrderedDict(arrays),
                 'args': pth.argparse.Namespace(lr=0.1, name='x')}
    path = pth_writer.save(container, tmp_path / 'c.pth', legacy=legacy, rebuild=rebuild)
    obj = pth.load(path)
    assert obj['epoch'] == 3 and vars(obj['args']) == {'lr': 0.1, 'name': 'x'}
    got = pth.state_dict(obj)
    assert list(got) == list(arrays)
    for k, v in arrays.items():
        assert got[k].dtype == v.dtype and got[k].shape == v.shape
        np.testing.assert_array_equal(got[k], v)


def test_strided_tensor_sharing_a_storage(tmp_path):
    """A transposed view over a shared storage (offset, non-contiguous strides) reads right."""
    base = np.arange(24, dtype=np.float32)
    storage = pth_writer._Storage('0', base)

    class View:
        def __reduce__(self):
            return (pth_writer.Global('torch._utils', '_rebuild_tensor_v2'),
                    (storage, 4, (3, 4), (1, 3), False, pth.collections.OrderedDict()))
    body = io.BytesIO()
    pth_writer._Pickler(body, legacy=False).dump({'t': View(), 'u': View()})
    path = tmp_path / 'v.pth'
    with zipfile.ZipFile(path, 'w') as archive:
        archive.writestr('v/data.pkl', body.getvalue())
        archive.writestr('v/data/0', base.tobytes())
    got = pth.load(path)
    expected = np.lib.stride_tricks.as_strided(base[4:], (3, 4), (4, 12))
    np.testing.assert_array_equal(got['t'], expected)
    assert got['t'].flags.c_contiguous and got['u'] is not got['t']


class _Evil:
    def __init__(self, call, *args):
        self.call, self.args = call, args

    def __reduce__(self):
        return self.call, self.args


def _zip_with_pickle(tmp_path, payload, name='evil.pth'):
    path = tmp_path / name
    with zipfile.ZipFile(path, 'w') as archive:
        archive.writestr('evil/data.pkl', payload)
        archive.writestr('evil/byteorder', 'little')
    return path


def _legacy_with_pickle(tmp_path, payload, name='evil_legacy.pth'):
    path = tmp_path / name
    with open(path, 'wb') as f:
        for header in (pth.LEGACY_MAGIC, pth.LEGACY_PROTOCOL, {'little_endian': True}):
            pickle.dump(header, f, protocol=2)
        f.write(payload)
    return path


@pytest.mark.parametrize('container', ['zip', 'legacy'])
@pytest.mark.parametrize('protocol', [2, 4])
def test_code_in_the_pickle_is_refused_and_never_runs(tmp_path, container, protocol):
    marker = tmp_path / 'ran'
    payload = pickle.dumps({'w': _Evil(os.system, f'touch {marker}')}, protocol=protocol)
    write = _zip_with_pickle if container == 'zip' else _legacy_with_pickle
    path = write(tmp_path, payload)
    with pytest.raises(pth.PthError) as err:
        pth.load(path)
    message = str(err.value)
    assert str(path) in message and f'{os.system.__module__}.system' in message
    assert not marker.exists()


@pytest.mark.parametrize('call,args,global_name', [
    (eval, ('1+1',), 'builtin.*eval'),
    (pth_writer.Global('torch.storage', '_load_from_bytes'), (b'',),
     'torch.storage._load_from_bytes'),
    (pth_writer.Global('numpy.core.multiarray', '_reconstruct'), (), 'numpy.core.multiarray'),
])
def test_globals_outside_the_allowlist_are_named(tmp_path, call, args, global_name):
    body = io.BytesIO()
    pth_writer._Pickler(body, legacy=False).dump({'w': _Evil(call, *args)})
    with pytest.raises(pth.PthError, match=global_name):
        pth.load(_zip_with_pickle(tmp_path, body.getvalue()))


def test_state_on_an_allowed_global_is_refused(tmp_path):
    """BUILD on the reader's own objects (e.g. to change a storage dtype) is refused."""
    payload = (b'\x80\x02ctorch\nFloatStorage\n}X\x05\x00\x00\x00dtypeK\x01sb.')
    with pytest.raises(pth.PthError, match='state assigned'):
        pth.load(_zip_with_pickle(tmp_path, payload))
    assert pth.ALLOWED_GLOBALS[('torch', 'FloatStorage')].dtype == np.float32


def test_a_pickled_module_is_refused(tmp_path):
    class Module:
        pass
    body = io.BytesIO()
    pickler = pth_writer._Pickler(body, legacy=True)
    pickler.persistent_id = lambda obj: ('module', 'Net', 'net.py', 'class Net: ...') \
        if isinstance(obj, Module) else None
    pickler.dump(Module())
    with pytest.raises(pth.PthError, match='nn.Module'):
        pth.load(_legacy_with_pickle(tmp_path, body.getvalue()))


@pytest.fixture
def copies(tiny, tmp_path):
    folder, _ = tiny

    def copy(name):
        return shutil.copy(folder / name, tmp_path / name)
    return copy


@pytest.mark.parametrize('name', ['nrp_resg_tiny.pth', 'nrp_resg_tiny_legacy.pth',
                                  'hgd_v3_subset_train_torch03.ckpt'])
@pytest.mark.parametrize('fraction', [0.02, 0.5, 0.999])
def test_truncated_files_are_refused_naming_the_file(copies, name, fraction):
    path = copies(name)
    data = open(path, 'rb').read()
    open(path, 'wb').write(data[:int(len(data) * fraction)])
    with pytest.raises(pth.PthError, match=re.escape(str(path))):
        pth.load(path)


def test_corrupt_files_are_refused(copies, tmp_path):
    path = copies('nrp_resg_tiny.pth')
    data = bytearray(open(path, 'rb').read())
    with zipfile.ZipFile(path) as archive:
        record = archive.read('nrp_resg_tiny/data/2')
    data[data.find(record) + 100] ^= 0xFF          # inside a storage record: CRC mismatch
    open(path, 'wb').write(bytes(data))
    with pytest.raises(pth.PthError, match='corrupt'):
        pth.load(path)
    for content in (b'', b'not a checkpoint at all', np.arange(10).tobytes()):
        other = tmp_path / 'other.pth'
        other.write_bytes(content)
        with pytest.raises(pth.PthError, match='other.pth'):
            pth.load(other)


def test_tensor_past_its_storage_is_refused(tmp_path):
    storage = pth_writer._Storage('0', np.zeros(4, np.float32))

    class Oversized:
        def __reduce__(self):
            return (pth_writer.Global('torch._utils', '_rebuild_tensor_v2'),
                    (storage, 0, (1000, 1000), (1000, 1), False, pth.collections.OrderedDict()))
    body = io.BytesIO()
    pth_writer._Pickler(body, legacy=False).dump({'t': Oversized()})
    path = _zip_with_pickle(tmp_path, body.getvalue())
    with zipfile.ZipFile(path, 'a') as archive:
        archive.writestr('evil/data/0', np.zeros(4, np.float32).tobytes())
    with pytest.raises(pth.PthError, match='reads past its storage'):
        pth.load(path)


def test_state_dict_needs_named_tensors(tmp_path):
    path = pth_writer.save({'epoch': 1, 'arch': 'x'}, tmp_path / 'no_sd.pth')
    with pytest.raises(pth.PthError, match='not a state dict'):
        pth.state_dict(path)
