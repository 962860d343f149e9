"""The attack record names the checkpoint each surrogate was read from, with the sha256 of its
bytes (each file hashed once per process: a manifest check's digests are reused); a resume from other bytes is refused naming the model, the
same bytes under another path are accepted. A record written before a config field existed
resumes when the field keeps its default, and is refused otherwise."""
import collections
import hashlib
import json
import os
import shutil

import pytest

from svrens_tf import attacks, data, files, models, pipeline, report
from svrens_tf.models import checkpoint, manifest, zoo
from test_checkpoint_loading import tiny, tiny_arrays, write_v1, write_v2  # noqa: F401 (fixtures)

CFG = attacks.AttackConfig(base='i_fgsm', ensemble='ens', num_iter=1)


def expected_sha256(paths):
    """The sha256 of the lines of each file's sha256, by hashlib on the bytes."""
    lines = ''.join(hashlib.sha256(open(p, 'rb').read()).hexdigest() + '\n' for p in paths)
    return hashlib.sha256(lines.encode()).hexdigest()


def weights(seed):
    """Tiny's random weights with a positive batch-norm variance (finite gradients)."""
    return {name: abs(value) + 1 if name.endswith('moving_variance') else value
            for name, value in tiny_arrays(seed=seed).items()}


def cache_of(paths):
    """A ModelCache loading surrogate `name` as the tiny architecture from paths[name]."""
    return pipeline.ModelCache(lambda name, _: models.load('tiny', paths[name]))


def test_the_record_names_each_checkpoint_and_a_resume_needs_its_bytes(
        tiny, write_v2, nips17_pair, tmp_path, monkeypatch):
    prefix = write_v2(weights(0), tmp_path / 'a' / 'model.ckpt')
    v1_file = str(write_v1(weights(1), tmp_path / 'b' / 'model.ckpt'))
    sha_a = expected_sha256([prefix + '.data-00000-of-00001', prefix + '.index'])
    sha_b = expected_sha256([v1_file])
    assert (checkpoint.sha256(prefix), checkpoint.sha256(v1_file)) == (sha_a, sha_b)

    hashed = []
    sha256 = checkpoint.sha256
    monkeypatch.setattr(checkpoint, 'sha256', lambda path, digests=None: hashed.append(path)
                        or sha256(path, digests))
    cache = cache_of({'a': prefix, 'b': v1_file})
    out = tmp_path / 'adv'
    for folder in (out, tmp_path / 'again'):      # one cache, two runs: each file hashed once
        pipeline.attack_folder(nips17_pair, folder, CFG, ['a', 'b'], batch_size=1,
                               models=cache)
    assert hashed == [prefix, v1_file]
    record = json.loads((out / 'attack_run.json').read_text())
    assert record['settings']['checkpoint_sha256'] == {'a': sha_a, 'b': sha_b}
    assert record['invocations'][0]['checkpoints'] == {'a': prefix, 'b': v1_file}
    # the report reads them as settings of the run
    items = report.Run('', str(out), record['settings'], {}, {}).items()
    assert (items['checkpoint a'], items['checkpoint b']) == (sha_a, sha_b)

    # the same bytes elsewhere: the resume attacks the missing image
    moved = tmp_path / 'moved'
    shutil.copytree(prefix.rsplit('/', 1)[0], moved)
    missing = sorted(out.glob('*.png'))[0]
    missing.unlink()
    pipeline.attack_folder(nips17_pair, out, CFG, ['a', 'b'], batch_size=1,
                           models=cache_of({'a': str(moved / 'model.ckpt'), 'b': v1_file}))
    record = json.loads((out / 'attack_run.json').read_text())
    assert missing.is_file() and record['invocations'][1]['attacked'] == 1
    assert record['invocations'][1]['checkpoints']['a'] == str(moved / 'model.ckpt')
    assert record['settings']['checkpoint_sha256'] == {'a': sha_a, 'b': sha_b}

    # other bytes of b: refused, naming b and both sha256s, nothing written
    other = str(write_v1(weights(2), tmp_path / 'other' / 'model.ckpt'))
    missing.unlink()
    with pytest.raises(data.DataError) as refused:
        pipeline.attack_folder(nips17_pair, out, CFG, ['a', 'b'], batch_size=1,
                               models=cache_of({'a': prefix, 'b': other}))
    assert str(refused.value) == (
        f'{out / "attack_run.json"}: this folder was attacked with another checkpoint of b '
        f'(sha256 {sha_b}; now {expected_sha256([other])}, read from {other}); attack with the '
        'recorded checkpoint or use another --output_dir')
    assert not missing.exists()
    assert json.loads((out / 'attack_run.json').read_text()) == record

    # nothing left to attack: no model is loaded, and the record keeps the images' checkpoints
    done = tmp_path / 'again'
    loads = []
    pipeline.attack_folder(nips17_pair, done, CFG, ['a', 'b'], batch_size=1,
                           models=pipeline.ModelCache(lambda name, _: loads.append(name)))
    record = json.loads((done / 'attack_run.json').read_text())
    assert loads == [] and record['settings']['checkpoint_sha256'] == {'a': sha_a, 'b': sha_b}
    assert record['invocations'][-1]['checkpoints'] == {}


@pytest.mark.parametrize('installed', [True, False], ids=['manifest', 'by_hand'])
def test_load_and_record_read_each_checkpoint_file_once(
        installed, tiny, write_v2, nips17_pair, tmp_path, monkeypatch):
    folder = tmp_path / 'ck' / 'tiny_zoo'
    prefix = write_v2(weights(0), folder / 'model.ckpt')
    shards = [prefix + '.data-00000-of-00001', prefix + '.index']
    if installed:  # as svrens-download leaves it: the release's files and their manifest
        (folder / 'README').write_text('tiny\n')
        entry = zoo.ZooEntry('tiny_zoo', 'tiny', 'tiny.tar.gz')
        manifest.write_manifest(folder, entry, 'model.ckpt')
        monkeypatch.setitem(zoo.ZOO, 'tiny_zoo', entry)
        cache, where = pipeline.ModelCache(), str(tmp_path / 'ck')  # the programs' loader
        listed = [p for p in folder.iterdir() if p.name != manifest.MANIFEST]
    else:
        cache, where, listed = cache_of({'tiny_zoo': prefix}), None, shards
    reads = collections.Counter()
    sha256_file = files.sha256_file
    monkeypatch.setattr(files, 'sha256_file',
                        lambda path: reads.update([os.path.abspath(path)]) or sha256_file(path))
    out = tmp_path / 'adv'
    pipeline.attack_folder(nips17_pair, out, CFG, ['tiny_zoo'], batch_size=1,
                           checkpoint_dir=where, models=cache)
    assert reads == collections.Counter(os.path.abspath(p) for p in listed)
    record = json.loads((out / 'attack_run.json').read_text())
    assert record['settings']['checkpoint_sha256'] == {'tiny_zoo': expected_sha256(shards)}


def test_a_record_from_before_a_new_config_field_resumes_only_at_its_default(
        tiny, write_v2, nips17_pair, tmp_path):
    prefix = write_v2(weights(0), tmp_path / 'a' / 'model.ckpt')
    cache = cache_of({'a': prefix})
    out = tmp_path / 'adv'
    pipeline.attack_folder(nips17_pair, out, CFG, ['a'], batch_size=1, models=cache)
    first = {p.name: p.read_bytes() for p in out.glob('*.png')}
    path = out / 'attack_run.json'
    record = json.loads(path.read_text())
    del record['settings']['config']['estimator']    # as written before the field existed
    path.write_text(json.dumps(record))
    missing = sorted(out.glob('*.png'))[0]
    missing.unlink()
    saga = attacks.AttackConfig(base='i_fgsm', ensemble='svre', estimator='saga', num_iter=1)
    with pytest.raises(data.DataError, match='other settings .config differ'):
        pipeline.attack_folder(nips17_pair, out, saga, ['a'], batch_size=1, models=cache)
    pipeline.attack_folder(nips17_pair, out, CFG, ['a'], batch_size=1, models=cache)
    assert {p.name: p.read_bytes() for p in out.glob('*.png')} == first
