"""HGD's ResNeXt-101 64x4d member (`resnext101.py`, `resnext.py`, `resnext_features/`).

A Torch7 conversion kept as nested `nn.Sequential`s, hence the numeric keys, on torchvision's
trunk (`resnet152.resnet_trunk`): `features.0` conv 7x7/2 pad 3, `.1` BN, max pool 3/2 pad 1,
stages `features.4`-`.7` of [3, 4, 23, 3] blocks. Block `features.<stage>.<block>.0` is a
ConcatTable: `.0` the residual branch (`.0.0` 1x1 conv, `.0.1` BN, `.0.3` 3x3 conv with 64
groups carrying the stride, `.0.4` BN, `.1` 1x1 conv, `.2` BN) and, on each stage's first
block, `.1` the shortcut (`.0` 1x1 conv with the stride, `.1` BN); their sum goes through
ReLU. BatchNorm eps 1e-5, global mean, 1000-way `fc`. Input in torchvision's normalisation.
Keys as in `denoise_rex_001.ckpt`.
"""
from svrens_tf.defenses.hgd_nets import member
from svrens_tf.defenses.hgd_nets.resnet152 import resnet_trunk

BLOCKS = (3, 4, 23, 3)
BLOCK_KEYS = (('0.0.0', '0.0.1'), ('0.0.3', '0.0.4'), ('0.1', '0.2'), ('1.0', '1.1'))


def features(params, x):
    """Normalised image -> features [B,10,10,2048]."""
    return resnet_trunk(params, x, ('net.features.0', 'net.features.1'),
                        lambda stage, block: f'net.features.{stage + 4}.{block}.0', BLOCKS,
                        BLOCK_KEYS)


class ResNeXt101(member.Member):
    key = 'resnext101'
    released_file = 'denoise_rex_001.ckpt'
    normalisation = member.TORCH_NORMALISATION
    denoiser_prefix = 'net.denoise'
    features = staticmethod(features)
    classifier = 'net.fc'
