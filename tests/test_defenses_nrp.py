"""NRP's purifiers against the original PyTorch modules (../shared/torch_reference), and the defense.

NRP at 299x299 is 1.5 TMAC per image, so its full-size check runs on the first reference image
only (the reference's batch-1 and batch-2 outputs are identical); NRP_resG runs on both.
"""
import numpy as np
import pytest
import tensorflow as tf

import torch_reference
from svrens_tf import defenses
from svrens_tf.defenses import nrp


def _nchw(x):
    return np.asarray(x).transpose(0, 3, 1, 2)


def check_purifier(variant, count):
    ref = torch_reference.reference(variant)
    compare = torch_reference.compare()
    u8 = torch_reference.reference_images(variant)
    x = compare.input_01(u8)
    assert compare.check_input(ref, x)
    purifier = nrp.Purifier(torch_reference.state_dict(variant), variant)
    purified = _nchw(purifier(u8[:count].astype(np.float32) / np.float32(255)))
    trunk = 'RRDB_trunk' if variant == 'nrp' else 'recon_trunk'
    first = purifier.params.conv(u8.astype(np.float32) / np.float32(255), 'conv_first',
                                 padding=1, bias=True).numpy().mean(axis=(1, 2))
    rows = {key: ref[key][:count] for key in ('purified',)}
    report = compare.compare(rows, {'purified': purified}, None)
    probe = compare.compare(ref, {'probe_conv_first_chmean': first})
    assert report['ok'] and probe['ok'], (report, probe, trunk)
    return purified


def test_nrp_resg_matches_the_pytorch_reference(shared_dir):
    check_purifier('nrp_resg', 2)


def test_nrp_matches_the_pytorch_reference_on_one_image(shared_dir):
    check_purifier('nrp', 1)


def test_a_state_dict_the_network_does_not_use_is_refused(shared_dir):
    arrays = dict(torch_reference.state_dict('nrp_resg'))
    arrays['recon_trunk.23.conv1.weight'] = arrays['recon_trunk.0.conv1.weight']
    with pytest.raises(ValueError, match='recon_trunk.23.conv1.weight'):
        nrp.Purifier(arrays, 'nrp_resg')
    with pytest.raises(ValueError, match='unknown purifier'):
        nrp.Purifier(arrays, 'nrp_v2')


def test_dynamic_step_stays_in_the_ball_and_the_image_range(rng):
    x = rng.uniform(0, 1, (2, 8, 8, 3)).astype(np.float32)
    x[0, 0, 0] = [0.0, 1.0, 0.5]
    noise = rng.normal(0, 0.05, x.shape)
    moved = nrp.dynamic_input(x, noise)
    assert moved.dtype == np.float32 and moved.min() >= 0 and moved.max() <= 1
    assert np.abs(moved - x).max() <= nrp.DYNAMIC_EPS + 1e-7
    inside = (np.abs(noise) < nrp.DYNAMIC_EPS) & (x + noise > 0) & (x + noise < 1)
    np.testing.assert_allclose(moved[inside], (x + noise)[inside], atol=1e-6)


def test_defense_classifies_the_stored_purified_image(shared_dir, tmp_path_factory):
    """The classifier sees round(clip(purified) * 255) / 255 in [-1,1]: a stand-in answers
    1 + round(1000 * mean brightness) of what it is given."""
    root = torch_reference.install(tmp_path_factory.mktemp('weights'), 'nrp', 'nrp_resg')

    def classifier(x):
        brightness = tf.reduce_mean((x + 1) / 2, axis=[1, 2, 3])
        return tf.one_hot(1 + tf.cast(tf.round(1000 * brightness), tf.int32), 1001)
    defense = defenses.build('nrp', root, purifier='nrp_resg', classifier=classifier)
    u8 = torch_reference.reference_images('nrp_resg')[:1]
    ref = torch_reference.reference('nrp_resg')['purified'][:1].transpose(0, 2, 3, 1)
    stored = np.round(np.clip(ref, 0, 1) * 255) / 255
    got = defense.transform(u8)
    # where the reference sits on a rounding boundary, float noise may move one level
    assert np.mean(np.abs(got - stored) > 1e-6) < 1e-4
    assert np.abs(got - stored).max() <= 1 / 255 + 1e-6
    assert defense(u8).tolist() == [1 + round(1000 * stored.mean())]


def test_missing_weights_are_named_with_the_install_command(tmp_path):
    message = defenses.missing_weights('nrp', tmp_path)
    assert 'nrp.manifest.json' in message and \
        f'svrens-download --defense nrp --checkpoint_dir {tmp_path}' in message
    assert 'nrp_resg' in defenses.missing_weights('nrp', tmp_path, purifier='nrp_resg')
    with pytest.raises(ValueError, match='svrens-download --defense nrp'):
        defenses.build('nrp', tmp_path)
