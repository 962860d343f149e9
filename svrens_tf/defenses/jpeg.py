"""JPEG re-encoding (Guo et al. 2018) in front of Inc-v3ens3.

The VT code round-trips through `tf.image.encode_jpeg` at quality 95 and decodes with
TensorFlow's default (fast integer IDCT); quality 75 is the common alternative. The accurate
IDCT ('INTEGER_ACCURATE') is libjpeg's standard decoder, the one imageio/Pillow use.
"""
import numpy as np
import tensorflow as tf

from svrens_tf.defenses import base

DCT_METHODS = ('INTEGER_FAST', 'INTEGER_ACCURATE')


def check_options(quality, dct_method):
    if not 1 <= quality <= 100:
        raise ValueError(f'quality must be in 1..100, got {quality}')
    if dct_method not in DCT_METHODS:
        raise ValueError(f'dct_method must be one of {DCT_METHODS}, got {dct_method!r}')


def jpeg_round_trip(images, quality=95, dct_method='INTEGER_FAST'):
    """uint8 [B,H,W,3] -> uint8 after JPEG encoding at `quality` and decoding."""
    check_options(quality, dct_method)
    return np.stack([
        tf.io.decode_jpeg(tf.io.encode_jpeg(image, quality=quality), dct_method=dct_method).numpy()
        for image in images])


class Jpeg(base.TransformDefense):
    name = 'jpeg'

    def __init__(self, quality=95, dct_method='INTEGER_FAST', classifier='ens3_adv_inc_v3',
                 checkpoint_dir=None, load_model=base.load_zoo_model):
        check_options(quality, dct_method)
        self.quality, self.dct_method = quality, dct_method
        super().__init__(classifier, checkpoint_dir, load_model)

    def transform(self, images):
        return jpeg_round_trip(images, self.quality, self.dct_method).astype(np.float32) / 255.0
