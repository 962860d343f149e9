"""Cohen et al.'s noise-trained ImageNet ResNet-50 (locuslab/smoothing) in TF2, with their input.

The released `models/imagenet/resnet50/noise_<sigma>/checkpoint.pth.tar` holds
`{'epoch', 'arch', 'state_dict', 'optimizer'}`; the model is `Sequential(NormalizeLayer,
DataParallel(torchvision resnet50))`, hence the `1.module.` key prefix, and normalises inside
(ImageNet mean/std, plain attributes, not in the state dict), so it takes [0,1] images and the
smoothing noise is added in [0,1]. torchvision ResNet-50 v1.5: conv1 7x7/2 pad 3, max-pool 3/2
pad 1 (symmetric padding, explicit here: TF 'SAME' pads 0/1 on the even sizes 224, 112, 56,
28, 14), bottlenecks [3, 4, 6, 3] with the stride on the 3x3 conv2 and a 1x1 conv + BN
downsample on each layer's first block, BN eps 1e-5, global mean, fc 2048 -> 1000.
Their test input (`datasets.py`): PIL `Scale(256)` (bilinear, antialiased, uint8) and
`CenterCrop(224)`. Label = class index + 1 (the NIPS17 convention). The trunk is torchvision's, shared with
HGD's ResNet-152 (`resnet_trunk` in `svrens_tf/defenses/hgd_nets/resnet152.py`).
"""
import numpy as np
import PIL.Image
import tensorflow as tf

from svrens_tf.defenses.hgd_nets.resnet152 import resnet_trunk
from svrens_tf.defenses.hgd_nets.torch_layers import StateDict, global_mean

PREFIX = '1.module'
BLOCKS = (3, 4, 6, 3)
MEAN = np.array([0.485, 0.456, 0.406], np.float32)
STD = np.array([0.229, 0.224, 0.225], np.float32)
RESIZE, CROP = 256, 224


def preprocess(images_uint8):
    """uint8 [B,H,W,3] -> uint8 [B,224,224,3]: PIL bilinear resize to 256x256, centre crop."""
    top = (RESIZE - CROP) // 2
    return np.stack([np.asarray(PIL.Image.fromarray(image).resize(
        (RESIZE, RESIZE), PIL.Image.BILINEAR))[top:top + CROP, top:top + CROP]
        for image in images_uint8])


def resnet50(params, x_unit):
    """[B,224,224,3] in [0,1] -> logits [B,1000]."""
    x = (x_unit - MEAN) / STD                                            # NormalizeLayer
    x = resnet_trunk(params, x, (f'{PREFIX}.conv1', f'{PREFIX}.bn1'),
                     lambda stage, block: f'{PREFIX}.layer{stage + 1}.{block}', BLOCKS)
    return params.linear(global_mean(x), f'{PREFIX}.fc')


class CohenResNet50(tf.Module):
    """The base classifier from its state dict (the checkpoint's `state_dict`, `1.module.` keys).

    Construction traces once, converting every weight, and refuses missing or unused keys."""

    def __init__(self, state_dict):
        super().__init__(name='cohen_resnet50')
        self.params = StateDict(state_dict, "Cohen et al.'s ResNet-50 (checkpoint.pth.tar)")
        self._forward = self.params.trace(lambda x: resnet50(self.params, x), [CROP, CROP, 3])

    def __call__(self, x_unit):
        """float32 [B,224,224,3] in [0,1] -> logits [B,1000]; traced inline inside a tf.function."""
        x_unit = tf.convert_to_tensor(x_unit, tf.float32)
        return resnet50(self.params, x_unit) if tf.inside_function() else self._forward(x_unit)
