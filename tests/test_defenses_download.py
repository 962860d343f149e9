"""svrens-download --defense: released files found (file, archive, folder) or fetched, checked
by the TF port, converted into the weight store once, refused when wrong."""
import json
import pickle
import shutil
import tarfile
import zipfile

import numpy as np
import pytest

import pth_writer
import torch_reference
from svrens_tf import defenses, files
from svrens_tf.defenses import comdefend
from svrens_tf.downloads import defense_weights
from svrens_tf.models.checkpoint import CheckpointError
from svrens_tf.weights import store

COHEN_MEMBER = 'models/imagenet/resnet50/noise_0.25/checkpoint.pth.tar'


@pytest.fixture(scope='module')
def cohen_tar(shared_dir, tmp_path_factory):
    """models.tar as Cohen et al. publish it: their training dict, legacy format, inside."""
    folder = tmp_path_factory.mktemp('released')
    sd = dict(torch_reference.state_dict('cohen_resnet50'))
    container = {'epoch': 90, 'arch': 'resnet50', 'state_dict': sd,
                 'optimizer': {'state': {}, 'param_groups': [{'lr': 0.0001, 'params': [0]}]}}
    pth_writer.save(container, folder / 'checkpoint.pth.tar', legacy=True)
    with tarfile.open(folder / 'models.tar', 'w') as tar:
        tar.add(folder / 'checkpoint.pth.tar', COHEN_MEMBER)
    return folder / 'models.tar'


def test_rs_from_an_archive_converts_once_and_reconverts_a_changed_file(cohen_tar, tmp_path,
                                                                         capsys):
    folder = defense_weights.install('rs', tmp_path, source=cohen_tar)
    assert defenses.missing_weights('rs', tmp_path) is None
    got = store.load(folder, 'cohen_resnet50')
    expected = torch_reference.state_dict('cohen_resnet50')
    assert sorted(got) == sorted(expected)
    assert all(np.array_equal(got[k], expected[k]) for k in expected)
    manifest = json.loads(store.manifest_path(folder, 'cohen_resnet50').read_text())
    with tarfile.open(cohen_tar) as tar:
        released = tar.extractfile(COHEN_MEMBER).read()
    assert list(manifest['sources']) == ['checkpoint.pth.tar']
    assert manifest['sources']['checkpoint.pth.tar'] == files.hashlib.sha256(released).hexdigest()
    assert sorted(p.name for p in folder.iterdir()) == ['cohen_resnet50.manifest.json',
                                                        'cohen_resnet50.npz']
    capsys.readouterr()
    defense_weights.install('rs', tmp_path, source=cohen_tar)
    assert 'verified' in capsys.readouterr().out
    store.npz_path(folder, 'cohen_resnet50').write_bytes(b'changed')
    defense_weights.install('rs', tmp_path, source=cohen_tar)
    assert 'reconverting' in capsys.readouterr().out
    assert store.load(folder, 'cohen_resnet50').keys() == expected.keys()


def test_a_state_dict_the_port_does_not_use_is_refused(shared_dir, tmp_path):
    sd = dict(torch_reference.state_dict('nrp_resg'))
    del sd['recon_trunk.5.conv2.bias']
    source = tmp_path / 'src'
    source.mkdir()
    pth_writer.save(sd, source / 'NRP_resG.pth', legacy=True)
    pth_writer.save(torch_reference.state_dict('nrp_resg'), source / 'NRP.pth')
    with pytest.raises(CheckpointError, match=r'NRP.pth \(nrp nrp\): not the released network'):
        defense_weights.install('nrp', tmp_path, source=source)
    assert defenses.missing_weights('nrp', tmp_path) is not None


def test_code_in_a_released_file_is_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ('pwned',))
    source = tmp_path / 'checkpoint.pth.tar'
    with zipfile.ZipFile(source, 'w') as z:
        z.writestr('checkpoint/data.pkl', pickle.dumps({'state_dict': Evil()}, protocol=2))
    with pytest.raises(CheckpointError, match='refusing to load the global __builtin__.print'):
        defense_weights.install('rs', tmp_path, source=source)


def test_comdefend_is_fetched_pinned_and_the_downloads_removed(shared_dir, tmp_path,
                                                              monkeypatch):
    mirror = tmp_path / 'mirror'
    shutil.copytree(shared_dir / 'comdefend', mirror)
    monkeypatch.setattr(defense_weights, 'COMDEFEND_RAW', mirror.as_uri() + '/')
    folder = defense_weights.install('comdefend', tmp_path / 'ckpt', progress=False)
    assert sorted(p.name for p in folder.iterdir()) == ['comdefend.manifest.json', 'comdefend.npz']
    assert defenses.missing_weights('comdefend', tmp_path / 'ckpt') is None
    released = comdefend.read_released_pair(shared_dir / 'comdefend')
    for got, want in zip(comdefend.read_weights(folder), released):
        assert all(np.array_equal(a, b) for a, b in zip(got, want))
    manifest = json.loads(store.manifest_path(folder, 'comdefend').read_text())
    assert manifest['sources'] == comdefend.PUBLISHED_SHA256


def test_a_tampered_download_is_refused_by_its_pin(shared_dir, tmp_path, monkeypatch):
    mirror = tmp_path / 'mirror'
    shutil.copytree(shared_dir / 'comdefend', mirror)
    with open(mirror / comdefend.DECODER_FILE, 'ab') as f:
        f.write(b'\0')
    monkeypatch.setattr(defense_weights, 'COMDEFEND_RAW', mirror.as_uri() + '/')
    with pytest.raises(defense_weights.fetch.FetchError, match='sha256'):
        defense_weights.install('comdefend', tmp_path / 'ckpt', progress=False)
    assert not (tmp_path / 'ckpt' / 'comdefend' / comdefend.DECODER_FILE).exists()


def test_a_web_page_instead_of_the_weights_is_named_and_removed(tmp_path, monkeypatch):
    host = tmp_path / 'host'
    host.mkdir()
    (host / '1h_TpbXm5haY5f-l4--IKylmdz6tvPoR4').write_text(
        '<html>Google Drive can\'t scan this file for viruses</html>')
    monkeypatch.setattr(defense_weights, 'DRIVE', host.as_uri() + '/')
    with pytest.raises(CheckpointError, match='does not hold it.*--defense_source'):
        defense_weights.install('rs', tmp_path / 'ckpt', progress=False)
    assert [p.name for p in (tmp_path / 'ckpt' / 'rs').iterdir()] == []


def test_missing_offline_file_says_where_to_get_it(tmp_path):
    with pytest.raises(CheckpointError, match='NRP.pth: not found in .*Muzammal-Naseer/NRP'):
        defense_weights.install('nrp', tmp_path, source=tmp_path)
