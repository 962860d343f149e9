"""Loading slim checkpoints by name: V1 file, V2 prefix, directory, renamed scope, and errors."""
import os
import shutil

import numpy as np
import pytest
import tensorflow as tf

from conftest import write_v1_checkpoint
from svrens_tf import models
from svrens_tf.models import checkpoint, layers
from svrens_tf.models.checkpoint import CheckpointError


class Tiny(layers.SlimModel):
    """A two-layer slim-style model: loads in milliseconds, names like a real one."""
    default_scope = 'Tiny'

    def forward(self, x):
        net = self.conv2d(x, 4, 3, 'Conv2d_1a_3x3', stride=8, padding='VALID')
        net = tf.reduce_mean(net, [1, 2])
        return layers.ModelOutput(self.fully_connected(net, self.num_classes, 'Logits'), None)


def tiny_arrays(scope='Tiny', seed=0):
    """Random weights for every Tiny variable, under `scope`."""
    rng = np.random.RandomState(seed)
    model = Tiny().build()
    return {scope + name[len('Tiny'):]: rng.normal(size=var.shape).astype(np.float32)
            for name, var in model.variables_by_name.items()}


@pytest.fixture
def tiny(monkeypatch):
    """Registers Tiny as architecture 'tiny' for the test."""
    monkeypatch.setitem(models.ARCHITECTURES, 'tiny', Tiny)
    return Tiny


def write_v1(arrays, path):
    """An old single-file V1 checkpoint at `path` (parent folders created)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_v1_checkpoint(arrays, path)


@pytest.fixture
def write_v2(slim_reference):
    def write(arrays, prefix):
        return slim_reference.gen_ckpt.write_tf1_checkpoint(arrays, str(prefix))
    return write


def assert_holds(model, arrays):
    """The model's variables equal `arrays`, compared below the top-level scope."""
    values = {n.split('/', 1)[1]: v.numpy() for n, v in model.variables_by_name.items()}
    expected = {n.split('/', 1)[1]: a for n, a in arrays.items()}
    assert values.keys() == expected.keys()
    for name, array in expected.items():
        np.testing.assert_array_equal(values[name], array, err_msg=name)


def test_v2_prefix_index_file_directory_and_v1_file_all_load(tiny, write_v2, tmp_path):
    arrays = tiny_arrays()
    prefix = write_v2(arrays, tmp_path / 'v2' / 'model.ckpt')
    v1_file = write_v1(arrays, tmp_path / 'v1' / 'model.ckpt')
    for path in [prefix, prefix + '.index', tmp_path / 'v2', v1_file, tmp_path / 'v1']:
        assert_holds(models.load('tiny', path), arrays)


def test_renamed_scope_loads_and_training_extras_are_ignored(tiny, write_v2, tmp_path):
    arrays = tiny_arrays(scope='EnsAdvTiny')
    extras = {'global_step': np.array(7, np.int64),
              'EnsAdvTiny/Logits/weights/ExponentialMovingAverage':
                  np.zeros_like(arrays['EnsAdvTiny/Logits/weights']),
              'EnsAdvTiny/Logits/weights/RMSProp_1': np.ones_like(arrays['EnsAdvTiny/Logits/weights']),
              'EnsAdvTiny/Logits/biases/Momentum': np.ones_like(arrays['EnsAdvTiny/Logits/biases'])}
    prefix = write_v2({**arrays, **extras}, tmp_path / 'model.ckpt')
    model = models.load('tiny', prefix)
    assert model.scope == 'Tiny'
    assert_holds(model, arrays)


def test_inception_v3_v1_file_and_renamed_copy_give_the_v2_logits(synthetic_checkpoint):
    model = models.build('inception_v3')
    x = np.random.RandomState(7).uniform(-1, 1, (1, 299, 299, 3)).astype(np.float32)
    outputs = []
    for path in [synthetic_checkpoint('inception_v3', 'v2'),
                 synthetic_checkpoint('inception_v3', 'v1'),
                 synthetic_checkpoint('inception_v3', 'v2', scope='Ens3AdvInceptionV3')]:
        for var in model.variables_by_name.values():  # a restore that skipped a variable shows
            var.assign(tf.zeros_like(var))
        checkpoint.restore(model, path)
        outputs.append(model(x))
    reference = outputs[0]
    assert np.abs(reference.logits.numpy()).max() > 0.1
    for out in outputs[1:]:
        np.testing.assert_array_equal(out.logits.numpy(), reference.logits.numpy())
        np.testing.assert_array_equal(out.aux_logits.numpy(), reference.aux_logits.numpy())


def test_missing_file_is_named(tiny, tmp_path):
    with pytest.raises(CheckpointError, match=r'nope\.ckpt: no such checkpoint'):
        models.load('tiny', tmp_path / 'nope.ckpt')


@pytest.mark.parametrize('content', ['junk', 'truncated_v1'])
def test_file_that_is_not_a_checkpoint_is_named(tiny, tmp_path, content):
    path = tmp_path / 'model.ckpt'
    if content == 'junk':
        path.write_text('not a checkpoint\n')
    else:
        good = write_v1(tiny_arrays(), tmp_path / 'good' / 'model.ckpt')
        path.write_bytes(good.read_bytes()[:-20])
    with pytest.raises(CheckpointError, match=r'model\.ckpt: not a readable checkpoint'):
        models.load('tiny', path)


def test_truncated_v2_data_file_is_reported_not_loaded(tiny, write_v2, tmp_path):
    prefix = write_v2(tiny_arrays(), tmp_path / 'model.ckpt')
    data = tmp_path / 'model.ckpt.data-00000-of-00001'
    data.write_bytes(data.read_bytes()[:100])
    with pytest.raises(CheckpointError, match=r'cannot read Tiny/.*corrupt or truncated'):
        models.load('tiny', prefix)


@pytest.mark.parametrize('fmt,bad', [('v2', np.nan), ('v1', np.inf), ('v2', -np.inf)])
def test_nan_or_inf_weight_is_refused_naming_file_and_variable(tiny, write_v2, tmp_path,
                                                                fmt, bad):
    arrays = tiny_arrays()
    arrays['Tiny/Logits/biases'][17] = bad
    if fmt == 'v2':
        path = write_v2(arrays, tmp_path / 'model.ckpt')
    else:
        path = write_v1(arrays, tmp_path / 'model.ckpt')
    with pytest.raises(CheckpointError, match=rf'{tmp_path}/model\.ckpt: variable '
                                              r'Tiny/Logits/biases holds 1 NaN/inf value\(s\) '
                                              r'of 1001'):
        models.load('tiny', path)


def test_missing_variable_is_named_and_unused_ones_listed(tiny, write_v2, tmp_path):
    arrays = tiny_arrays(scope='Renamed')
    arrays['Renamed/Logits/bias'] = arrays.pop('Renamed/Logits/biases')
    prefix = write_v2(arrays, tmp_path / 'model.ckpt')
    with pytest.raises(CheckpointError) as err:
        models.load('tiny', prefix)
    message = str(err.value)
    assert 'missing variable Renamed/Logits/biases' in message
    assert 'unused checkpoint variables: Renamed/Logits/bias' in message
    assert 'checkpoint scope Renamed mapped onto Tiny' in message


def test_shape_mismatch_names_variable_and_both_shapes(tiny, write_v2, tmp_path):
    arrays = tiny_arrays()
    arrays['Tiny/Logits/weights'] = np.zeros([4, 10], np.float32)
    prefix = write_v2(arrays, tmp_path / 'model.ckpt')
    with pytest.raises(CheckpointError, match=r'shape mismatch for Tiny/Logits/weights: '
                                              r'model expects \(4, 1001\), checkpoint has \(4, 10\)'):
        models.load('tiny', prefix)


def test_unused_variable_of_the_scope_is_an_error(tiny, write_v2, tmp_path):
    arrays = tiny_arrays()
    arrays['Tiny/AuxLogits/weights'] = np.zeros([4, 1001], np.float32)
    arrays['OtherNet/weights'] = np.zeros([2], np.float32)
    prefix = write_v2(arrays, tmp_path / 'model.ckpt')
    with pytest.raises(CheckpointError, match=r'1 unused checkpoint variables: '
                                              r'Tiny/AuxLogits/weights$'):
        models.load('tiny', prefix)


def test_checkpoint_of_another_network_is_rejected(tiny, write_v2, tmp_path):
    prefix = write_v2({'OtherNet/conv/weights': np.zeros([3], np.float32)},
                      tmp_path / 'model.ckpt')
    with pytest.raises(CheckpointError, match=r'no variable of Tiny found under any of its '
                                              r'scopes \(OtherNet\)'):
        models.load('tiny', prefix)


def test_directory_with_several_checkpoints_lists_them(tiny, tmp_path):
    arrays = tiny_arrays()
    first = write_v1(arrays, tmp_path / 'a.ckpt')
    second = write_v1(arrays, tmp_path / 'sub' / 'b.ckpt')
    with pytest.raises(CheckpointError, match='several checkpoints') as err:
        models.load('tiny', tmp_path)
    assert str(first) in str(err.value) and str(second) in str(err.value)
    os.remove(first)
    shutil.rmtree(tmp_path / 'sub')
    with pytest.raises(CheckpointError, match='no checkpoint in this directory'):
        checkpoint.resolve(tmp_path)


def test_zoo_name_without_download_says_what_to_run(monkeypatch, tmp_path):
    monkeypatch.setenv('SVRENS_CHECKPOINT_DIR', str(tmp_path / 'default'))
    with pytest.raises(CheckpointError, match='run: svrens-download --models ens3_adv_inc_v3 '
                                              f'--checkpoint_dir {tmp_path / "default"}$'):
        models.load('ens3_adv_inc_v3')
    (tmp_path / 'other' / 'inc_v4').mkdir(parents=True)
    (tmp_path / 'other' / 'inc_v4' / 'manifest.json').write_text('{}')
    with pytest.raises(CheckpointError, match='run: svrens-download --models ens3_adv_inc_v3 '
                                              f'--checkpoint_dir {tmp_path / "other"}$'):
        models.load('ens3_adv_inc_v3', tmp_path / 'other')
