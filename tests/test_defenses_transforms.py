"""Bit-Red, JPEG, FD and R&P transforms against independent computations."""
import io

import imageio.v3 as iio
import numpy as np
import pytest
import scipy.fft
import scipy.special
import tensorflow as tf

from svrens_tf.defenses import bit_red, fd, jpeg, rp


def random_images(rng, b=2, side=299):
    return rng.randint(0, 256, size=(b, side, side, 3)).astype(np.uint8)


def test_bit_red_threshold_levels_match_the_ares_sigmoid_formula():
    values = np.arange(256, dtype=np.uint8).reshape(1, 1, 256, 1)
    x = values.astype(np.float64) / 255.0
    steps = np.arange(1, 4) / 4.0
    expected = scipy.special.expit(1e6 * (x[..., None] - steps)).sum(-1) / 3.0
    got = bit_red.reduce_bit_depth(values, 4, 'threshold')
    np.testing.assert_allclose(got, expected, atol=1e-6)
    np.testing.assert_allclose(np.unique(got), [0, 1 / 3, 2 / 3, 1], atol=1e-7)


def test_bit_red_round_picks_the_nearest_of_step_num_levels():
    values = np.arange(256, dtype=np.uint8).reshape(1, 1, 256, 1)
    got = bit_red.reduce_bit_depth(values, 8, 'round')
    levels = np.arange(8) / 7.0
    distance = np.abs(values / 255.0 - got)
    nearest = np.abs(values[..., None] / 255.0 - levels).min(-1)
    np.testing.assert_allclose(distance, nearest, atol=1e-6)
    assert len(np.unique(got)) == 8


def test_bit_red_rejects_bad_options():
    with pytest.raises(ValueError, match='step_num'):
        bit_red.reduce_bit_depth(np.zeros((1, 2, 2, 3), np.uint8), 1)
    with pytest.raises(ValueError, match='quantizer'):
        bit_red.reduce_bit_depth(np.zeros((1, 2, 2, 3), np.uint8), 4, 'floor')


@pytest.mark.parametrize('quality', [95, 75])
def test_jpeg_accurate_round_trip_equals_imageio(quality, shared_dir):
    image = iio.imread(sorted((shared_dir / 'nips17' / 'images').glob('*.png'))[0])
    got = jpeg.jpeg_round_trip(image[None], quality, 'INTEGER_ACCURATE')[0]
    buffer = io.BytesIO()
    iio.imwrite(buffer, image, extension='.jpg', quality=quality)
    expected = iio.imread(buffer.getvalue(), extension='.jpg')
    np.testing.assert_array_equal(got, expected)
    assert np.any(got != image)


def test_jpeg_default_decodes_like_the_vt_code(rng):
    images = random_images(rng, b=1, side=64)
    encoded = tf.io.encode_jpeg(images[0], quality=95)
    np.testing.assert_array_equal(jpeg.jpeg_round_trip(images)[0],
                                  tf.io.decode_jpeg(encoded).numpy())


def dct_matrix(n=8):
    """Orthonormal DCT-II basis from its definition (rows = frequencies)."""
    k, i = np.meshgrid(np.arange(n), np.arange(n), indexing='ij')
    m = np.sqrt(2.0 / n) * np.cos(np.pi * (2 * i + 1) * k / (2 * n))
    m[0] /= np.sqrt(2.0)
    return m


def test_fd_block_quantisation_matches_scipy_and_the_dct_definition(rng):
    images = rng.uniform(0, 255, size=(2, 16, 24, 3))
    table = fd.quantization_table()
    assert table[0, 0] == table[3, 3] == 25 and table[4, 0] == table[0, 4] == table[7, 7] == 30
    out = fd.quantize_blocks(images, table)
    block = images[1, 8:16, 16:24, 2]
    coefficients = scipy.fft.dct(scipy.fft.dct(block, axis=0, norm='ortho'), axis=1, norm='ortho')
    np.testing.assert_allclose(coefficients, dct_matrix() @ block @ dct_matrix().T, atol=1e-9)
    dequantized = np.round(coefficients / table) * table
    expected = dct_matrix().T @ dequantized @ dct_matrix()
    np.testing.assert_allclose(out[1, 8:16, 16:24, 2], expected, atol=1e-9)
    assert np.abs(out - images).max() > 1.0


def test_fd_keeps_blocks_already_on_the_quantisation_grid():
    table = fd.quantization_table()
    coefficients = table * (np.arange(64).reshape(8, 8) % 7 - 3)
    block = dct_matrix().T @ coefficients @ dct_matrix()
    images = np.tile(block[None, :, :, None], (1, 1, 1, 3))
    np.testing.assert_allclose(fd.quantize_blocks(images, table), images, atol=1e-9)


def test_fd_distill_shape_and_range(rng):
    out = fd.distill(random_images(rng))
    assert out.shape == (2, 299, 299, 3) and out.dtype == np.float32
    assert out.min() >= 0.0 and out.max() <= 1.0


def test_rp_resize_pad_matches_tf1_nearest_indexing(rng):
    images = rng.uniform(-1, 1, size=(2, 299, 299, 3)).astype(np.float32)
    size, top, left = 317, 5, 9
    out = rp.resize_pad(tf.constant(images), size, top, left, 331).numpy()
    assert out.shape == (2, 331, 331, 3)
    source = np.arange(size) * 299 // size
    window = out[:, top:top + size, left:left + size]
    np.testing.assert_array_equal(window, images[:, source][:, :, source])
    outside = np.ones((331, 331), bool)
    outside[top:top + size, left:left + size] = False
    assert np.all(out[:, outside] == 0.0)


class MeanClassifier:
    """Stand-in: 1001 logits peaking at 1 + round((mean(x) + 1) / 2 * 999), zero aux logits."""

    def __call__(self, x):
        centers = tf.linspace(-1.0, 1.0, 1000)
        mean = tf.reduce_mean(x, axis=[1, 2, 3])[:, None]
        logits = -tf.abs(mean - centers)
        aux = tf.zeros_like(logits)
        return (tf.concat([tf.fill([tf.shape(x)[0], 1], -9.0), logits], 1),
                tf.concat([tf.zeros_like(aux[:, :1]), aux], 1))


def test_rp_draws_stay_in_range_and_follow_the_seed():
    def draws(seed, **kw):
        defense = rp.RandomResizePad(classifier=MeanClassifier(), seed=seed, **kw)
        return [defense.draw() for _ in range(200)]
    first = draws(3)
    assert first == draws(3) and first != draws(4)
    sizes = {size for _, size, _, _ in first}
    assert min(sizes) == 310 and max(sizes) == 330
    assert all(0 <= top and 0 <= left and top + size <= 331 and left + size <= 331
               for _, size, top, left in first)
    assert {flip for flip, *_ in first} == {True, False}
    paper = draws(3, min_size=299, flip=False)
    assert min(s for _, s, _, _ in paper) == 299 and not any(f for f, *_ in paper)


def test_rp_predicts_from_the_summed_passes():
    images = np.full((2, 299, 299, 3), 255, np.uint8)
    images[1] = 0
    model = MeanClassifier()
    defense = rp.RandomResizePad(passes=3, classifier=model, seed=0)
    labels = defense(images)
    # White images padded with zeros: mean in (0, 1); black images: mean in (-1, 0).
    assert 500 < labels[0] <= 1000 and 1 <= labels[1] < 500
    with pytest.raises(ValueError, match='min_size'):
        rp.RandomResizePad(min_size=290, classifier=model)
