"""ComDefend: safe loading of the released weights, npz conversion, inference against numpy."""
import io
import pickle
import shutil
import zipfile

import imageio.v3 as iio
import numpy as np
import pytest
import tensorflow as tf

from svrens_tf import files
from svrens_tf.defenses import base, comdefend
from svrens_tf.models import CheckpointError


@pytest.fixture(scope='module')
def released(shared_dir):
    return shared_dir / 'comdefend'


@pytest.fixture(scope='module')
def weights(released):
    return comdefend.read_released_pair(released)


def conv_same(x, kernel, bias):
    """3x3 SAME convolution (cross-correlation, zero padding) in numpy."""
    h, w, _ = x.shape
    padded = np.pad(x, ((1, 1), (1, 1), (0, 0)))
    out = sum(np.einsum('hwi,io->hwo', padded[dy:dy + h, dx:dx + w], kernel[dy, dx])
              for dy in range(3) for dx in range(3))
    return out + bias


def reference_purify(rgb_unit, encoder, decoder):
    """The authors' inference written out in numpy for one patch: BGR, -0.5, code > 0, sigmoid."""
    def stack(x, arrays):
        n = len(arrays) // 2
        for i in range(n):
            x = conv_same(x, arrays[2 * i].astype(np.float64), arrays[2 * i + 1])
            if i < n - 1:
                x = np.where(x > 0, x, np.expm1(np.minimum(x, 0)))
        return x
    code = stack(rgb_unit[..., ::-1] - 0.5, encoder)
    out = 1 / (1 + np.exp(-stack((code > 0).astype(np.float64), decoder)))
    return out[..., ::-1]


def test_released_weights_load_with_the_documented_layout(weights):
    encoder, decoder = weights
    assert [k.shape for k in encoder[::2]] == [
        (3, 3, a, b) for a, b in zip(comdefend.ENCODER_CHANNELS, comdefend.ENCODER_CHANNELS[1:])]
    assert decoder[-2].shape == (3, 3, 16, 3) and decoder[-1].shape == (3,)
    assert all(np.all(np.isfinite(a)) and a.std() > 0 for a in encoder + decoder)


def test_purifier_matches_numpy_on_each_patch(weights, rng):
    images = rng.uniform(0, 1, size=(1, 16, 8, 3)).astype(np.float32)
    got = comdefend.Purifier(*weights, patch_size=8)(tf.constant(images)).numpy()
    for top in (0, 8):
        expected = reference_purify(images[0, top:top + 8].astype(np.float64), *weights)
        np.testing.assert_allclose(got[0, top:top + 8], expected, atol=2e-4)


def test_patches_round_trip(rng):
    x = tf.constant(rng.uniform(size=(2, 64, 96, 3)).astype(np.float32))
    patches = comdefend.to_patches(x, 32)
    assert patches.shape == (12, 32, 32, 3)
    np.testing.assert_array_equal(patches[1], x[0, :32, 32:64])
    np.testing.assert_array_equal(comdefend.from_patches(patches, 64, 96), x)


def test_real_weights_reconstruct_nips17_crops(weights, shared_dir):
    paths = sorted((shared_dir / 'nips17' / 'images').glob('*.png'))[:2]
    small = base.resize_uint8(np.stack([iio.imread(p) for p in paths]), 224)[:, 64:128, 96:160]
    purified = comdefend.purify_uint8(comdefend.Purifier(*weights), small)
    assert purified.shape == small.shape and purified.dtype == np.uint8
    assert np.all(tf.image.psnr(small, purified, 255).numpy() > 24.0)


def test_npz_conversion_round_trips(released, weights, tmp_path):
    path = comdefend.convert_to_npz(released, tmp_path / comdefend.NPZ_FILE)
    assert [p.name for p in tmp_path.iterdir()] == [comdefend.NPZ_FILE]
    for loaded in (comdefend.read_weights(path), comdefend.read_weights(tmp_path)):
        for got, expected in zip(loaded[0] + loaded[1], weights[0] + weights[1]):
            np.testing.assert_array_equal(got, expected)
    with pytest.raises(ValueError, match='not a ComDefend npz'):
        comdefend.read_weights(released / comdefend.ENCODER_FILE)


@pytest.mark.parametrize('bad', [np.nan, np.inf])
def test_non_finite_weights_are_refused_naming_file_and_array(weights, tmp_path, bad):
    arrays = {f'encoder/{i}': a for i, a in enumerate(weights[0])}
    arrays.update({f'decoder/{i}': a.copy() for i, a in enumerate(weights[1])})
    arrays['decoder/5'][0] = bad
    np.savez(tmp_path / comdefend.NPZ_FILE, **arrays)
    with pytest.raises(ValueError, match=rf'{tmp_path / comdefend.NPZ_FILE}: variable '
                                         r'decoder/5 holds 1 NaN/inf'):
        comdefend.read_weights(tmp_path)


def test_a_truncated_npz_is_named(released, tmp_path):
    path = comdefend.convert_to_npz(released, tmp_path / comdefend.NPZ_FILE)
    whole = path.read_bytes()
    for size in (len(whole) // 2, len(whole) - 30):
        path.write_bytes(whole[:size])
        with pytest.raises(ValueError, match=rf'{path}: not a ComDefend npz .*truncated'):
            comdefend.read_weights(tmp_path)


def test_a_tampered_weight_file_is_refused(released, tmp_path):
    for name in (comdefend.ENCODER_FILE, comdefend.DECODER_FILE):
        shutil.copy(released / name, tmp_path / name)
    data = bytearray((tmp_path / comdefend.DECODER_FILE).read_bytes())
    data[len(data) // 2] ^= 0x01
    (tmp_path / comdefend.DECODER_FILE).write_bytes(bytes(data))
    with pytest.raises(ValueError, match='sha256'):
        comdefend.read_weights(tmp_path)
    with pytest.raises(ValueError, match='sha256'):
        comdefend.convert_to_npz(tmp_path, tmp_path / comdefend.NPZ_FILE)
    assert not (tmp_path / comdefend.NPZ_FILE).exists()


class _RunsCode:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (shutil.copy, (__file__, str(self.marker)))


def test_a_pickle_that_would_run_code_is_refused_even_with_a_matching_hash(tmp_path):
    marker = tmp_path / 'code_ran'
    payload = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        payload, {'descr': '|O', 'fortran_order': False, 'shape': (18,)})
    payload.write(pickle.dumps([_RunsCode(marker)], protocol=2))
    path = tmp_path / comdefend.ENCODER_FILE
    with zipfile.ZipFile(path, 'w') as archive:
        archive.writestr('w.npy', payload.getvalue())
    with pytest.raises(ValueError, match='refusing shutil.copy'):
        comdefend.read_released(path, files.sha256_file(path), comdefend.ENCODER_CHANNELS)
    assert not marker.exists()


def test_defense_purifies_at_size_then_classifies_at_299(released, shared_dir):
    with pytest.raises(ValueError, match='weights'):
        comdefend.ComDefend(classifier=lambda x: x)
    with pytest.raises(CheckpointError, match='no ComDefend weights'):
        comdefend.ComDefend(checkpoint_dir=released, classifier=lambda x: x)
    with pytest.raises(ValueError, match='divide'):
        comdefend.ComDefend(weights=released, size=100, classifier=lambda x: x)
    defense = comdefend.ComDefend(weights=released, size=64,
                                  classifier=lambda x: 9.0 * tf.one_hot([7] * x.shape[0], 1001))
    image = iio.imread(sorted((shared_dir / 'nips17' / 'images').glob('*.png'))[0])[None]
    purified = defense.transform(image)
    assert purified.shape == (1, 299, 299, 3) and 0 <= purified.min() and purified.max() <= 1
    assert 0 < np.abs(purified * 255 - image).mean() < 40
    assert defense(image).tolist() == [7] and defense.classifiers == ()
