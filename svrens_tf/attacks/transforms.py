"""Input transforms drawn afresh at every gradient evaluation: DI, SI and Admix.

All randomness comes from stateless ops keyed by a [2] seed, so a gradient evaluation is a
pure function of (input, seed).  SI and Admix stack copies along the batch axis (copy-major,
so labels are tiled); the gradient with respect to the original input then sums the copies'
gradients through the chain rule, which is the authors' weighted sum over SI scales.
"""
import tensorflow as tf

# The authors' DI pads 299-pixel inputs to 331: other sizes keep that ratio.
DI_REFERENCE_SIZE, DI_REFERENCE_PAD = 299, 331


def default_pad_size(size):
    """DI padded size for `size`-pixel inputs: 331 for 299, the same ratio elsewhere."""
    return max(size * DI_REFERENCE_PAD // DI_REFERENCE_SIZE, size + 1)


def _resize_nearest(images, size):
    """TF1 `resize_images(NEAREST_NEIGHBOR)`: no half-pixel centres, as the authors' graphs."""
    return tf.raw_ops.ResizeNearestNeighbor(images=images, size=size, align_corners=False,
                                            half_pixel_centers=False)


def diverse_input(x, seed, prob, pad_size, per_image=False):
    """DI: with probability `prob`, resize to rnd in [size, pad_size), pad randomly to pad_size
    and resize back to size; otherwise x unchanged.

    One coin for the whole batch (authors' code) or, with `per_image`, one coin per image;
    the resize and padding draw is shared by the batch either way.
    """
    size = x.shape[1]
    if x.shape[2] != size:
        raise ValueError(f'DI needs square images, got {x.shape[1]}x{x.shape[2]}')
    if pad_size <= size:
        raise ValueError(f'DI pad size {pad_size} must exceed the image size {size}')
    rnd_seed, top_seed, left_seed, coin_seed = tf.unstack(
        tf.random.experimental.stateless_split(seed, 4))
    rnd = tf.random.stateless_uniform((), rnd_seed, size, pad_size, dtype=tf.int32)
    remainder = pad_size - rnd
    top = tf.random.stateless_uniform((), top_seed, 0, remainder, dtype=tf.int32)
    left = tf.random.stateless_uniform((), left_seed, 0, remainder, dtype=tf.int32)
    padded = tf.pad(_resize_nearest(x, tf.stack([rnd, rnd])),
                    [[0, 0], [top, remainder - top], [left, remainder - left], [0, 0]])
    padded = tf.ensure_shape(padded, [None, pad_size, pad_size, x.shape[3]])
    transformed = _resize_nearest(padded, tf.constant([size, size]))
    coins = tf.shape(x)[:1] if per_image else [1]
    apply = tf.random.stateless_uniform(coins, coin_seed) < prob
    return tf.where(tf.reshape(apply, [-1, 1, 1, 1]), transformed, x)


def scale_copies(x, copies):
    """SI: the copies x / 2^i, i = 0..copies-1, stacked along the batch."""
    return tf.concat([x / 2.0 ** i for i in range(copies)], axis=0)


def admix(x, pool, seed, copies, portion):
    """Admix: `copies` stacked images x + portion * p, each p drawn uniformly from `pool`
    (per image and copy; the authors' SVRE script mixes in clean images of the same chunk)."""
    batch = tf.shape(x)[0]
    partners = tf.random.stateless_uniform([copies, batch], seed, 0, tf.shape(pool)[0],
                                           dtype=tf.int32)
    return tf.concat([x + portion * tf.gather(pool, partners[c]) for c in range(copies)],
                     axis=0)
