"""Feature distillation (Liu et al. 2019): JPEG-style 8x8 DCT quantisation in front of Inc-v3ens3.

As the VT code runs it: resize 299 -> 304 (bicubic, uint8), per channel and 8x8 block an
orthonormal 2-D DCT-II (no level shift), quantise with a flat table of 30 (25 in the low 4x4
band), dequantise, inverse DCT, store as uint8, resize back to 299.
"""
import numpy as np
import scipy.fft

from svrens_tf.defenses import base

BLOCK = 8


def quantization_table(step=30, low_step=25, low_band=4):
    """The 8x8 table: `step` everywhere, `low_step` on the low_band x low_band frequencies."""
    table = np.full((BLOCK, BLOCK), float(step))
    table[:low_band, :low_band] = low_step
    return table


def quantize_blocks(images, table):
    """Quantise each 8x8 block of each channel in the DCT domain; float [B,H,W,C] -> same."""
    b, h, w, c = images.shape
    if h % BLOCK or w % BLOCK:
        raise ValueError(f'image sides must be multiples of {BLOCK}, got {h}x{w}')
    blocks = images.reshape(b, h // BLOCK, BLOCK, w // BLOCK, BLOCK, c)
    coefficients = scipy.fft.dctn(blocks, axes=(2, 4), norm='ortho')
    table = table[None, None, :, None, :, None]
    quantized = np.round(coefficients / table) * table
    return scipy.fft.idctn(quantized, axes=(2, 4), norm='ortho').reshape(b, h, w, c)


def distill(images, size=304, table=None):
    """uint8 [B,299,299,3] -> float32 in [0,1] after feature distillation at `size`."""
    table = quantization_table() if table is None else table
    enlarged = base.resize_uint8(images, size, 'bicubic', antialias=True).astype(np.float64)
    distilled = np.clip(quantize_blocks(enlarged, table), 0, 255).astype(np.uint8)
    back = base.resize_uint8(distilled, images.shape[1], 'bicubic', antialias=True)
    return back.astype(np.float32) / 255.0


class FeatureDistillation(base.TransformDefense):
    name = 'fd'

    def __init__(self, size=304, step=30, low_step=25, low_band=4,
                 classifier='ens3_adv_inc_v3', checkpoint_dir=None,
                 load_model=base.load_zoo_model):
        if size % BLOCK:
            raise ValueError(f'size must be a multiple of {BLOCK}, got {size}')
        self.size = size
        self.table = quantization_table(step, low_step, low_band)
        super().__init__(classifier, checkpoint_dir, load_model)

    def transform(self, images):
        return distill(images, self.size, self.table)
