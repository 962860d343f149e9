"""The converted-weights store: npz + manifest, sha256 checked on load, NaN/inf refused."""
import json

import numpy as np
import pytest

from svrens_tf import files
from svrens_tf.models.checkpoint import CheckpointError
from svrens_tf.weights import store


@pytest.fixture
def source(tmp_path):
    path = tmp_path / 'released.pth'
    path.write_bytes(b'released bytes')
    return path


def test_round_trip_records_both_checksums(tmp_path, source, rng):
    arrays = {'a.weight': rng.randn(2, 3).astype(np.float32), 'n': np.array(3, np.int64)}
    folder = tmp_path / 'nrp'
    assert store.missing(folder, 'nrp') is not None
    path = store.save(arrays, folder, 'nrp', source)
    assert store.missing(folder, 'nrp') is None
    manifest = json.loads(store.manifest_path(folder, 'nrp').read_text())
    assert manifest['sha256'] == files.sha256_file(path)
    assert manifest['sources'] == {'released.pth': files.sha256_file(source)}
    got = store.load(folder, 'nrp')
    assert sorted(got) == sorted(arrays)
    for k in arrays:
        np.testing.assert_array_equal(got[k], arrays[k])
        assert got[k].dtype == arrays[k].dtype


def test_changed_npz_is_refused(tmp_path, source, rng):
    path = store.save({'w': rng.randn(100).astype(np.float32)}, tmp_path, 'm', source)
    data = bytearray(path.read_bytes())
    data[-200] ^= 1
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match='m.npz: sha256 differs'):
        store.load(tmp_path, 'm')
    path.unlink()
    with pytest.raises(CheckpointError, match='m.npz is missing'):
        store.load(tmp_path, 'm')


def test_nan_is_refused_on_save_and_on_load(tmp_path, source):
    bad = {'ok': np.ones(3, np.float32), 'layer.bias': np.array([1.0, np.nan], np.float32)}
    with pytest.raises(CheckpointError, match='released.pth: variable layer.bias holds 1 NaN'):
        store.save(bad, tmp_path, 'm', source)
    assert store.missing(tmp_path, 'm') is not None
    store.save({'ok': np.ones(3, np.float32)}, tmp_path, 'm', source)
    np.savez(store.npz_path(tmp_path, 'm'), **bad)   # replaced behind the manifest's back,
    manifest = json.loads(store.manifest_path(tmp_path, 'm').read_text())
    manifest['sha256'] = files.sha256_file(store.npz_path(tmp_path, 'm'))   # and re-recorded
    store.manifest_path(tmp_path, 'm').write_text(json.dumps(manifest))
    with pytest.raises(CheckpointError, match='m.npz: variable layer.bias holds 1 NaN'):
        store.load(tmp_path, 'm')
