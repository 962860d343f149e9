"""Bit-depth reduction (Xu et al. 2018, feature squeezing) in front of Inc-v3ens3.

The authors' group (VT code, from the ares library) quantises [0,1] pixels with `step_num - 1`
equally spaced thresholds k/step_num (a sharp sigmoid sum), giving `step_num` levels
{0, 1/(step_num-1), ..., 1}: 'threshold'. Feature squeezing's own rule rounds to the nearest
level instead: 'round'.
"""
import numpy as np

from svrens_tf.defenses import base

QUANTIZERS = ('threshold', 'round')


def check_options(step_num, quantizer):
    if step_num < 2:
        raise ValueError(f'step_num must be >= 2, got {step_num}')
    if quantizer not in QUANTIZERS:
        raise ValueError(f'quantizer must be one of {QUANTIZERS}, got {quantizer!r}')


def reduce_bit_depth(images, step_num=4, quantizer='threshold'):
    """uint8 images -> float32 in [0,1] taking `step_num` levels."""
    check_options(step_num, quantizer)
    x = images.astype(np.float32) / 255.0
    if quantizer == 'threshold':
        thresholds = np.arange(1, step_num, dtype=np.float32) / step_num
        steps = (x[..., None] > thresholds).sum(axis=-1)
    else:
        steps = np.round(x * (step_num - 1))
    return (steps / (step_num - 1)).astype(np.float32)


class BitReduction(base.TransformDefense):
    name = 'bit_red'

    def __init__(self, step_num=4, quantizer='threshold', classifier='ens3_adv_inc_v3',
                 checkpoint_dir=None, load_model=base.load_zoo_model):
        check_options(step_num, quantizer)
        self.step_num, self.quantizer = step_num, quantizer
        super().__init__(classifier, checkpoint_dir, load_model)

    def transform(self, images):
        return reduce_bit_depth(images, self.step_num, self.quantizer)
