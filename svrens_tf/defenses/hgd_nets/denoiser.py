"""HGD's denoiser: the U-Net `Denoise` of lfz/Guided-Denoise `nips_deploy/` (all four members).

Forward path: five groups of `Conv` blocks (3x3 conv pad 1 + BatchNorm eps 1e-5 + ReLU), the
first block of groups 1-4 with stride 2 (299 -> 150 -> 75 -> 38 -> 19); backward path: from
the deepest group up, bilinear upsampling to the skip's size with align_corners=True (PyTorch
<= 0.3.1, which trained the released weights), `concat([upsampled, skip])`, a group of `Conv`
blocks; then a 1x1 conv without bias, added to the input. Keys `<prefix>.fwd.<group>.<block>`,
`<prefix>.back.<group>.<block>`, `<prefix>.final`.
"""
import tensorflow as tf

from svrens_tf.defenses.hgd_nets import torch_layers

NUM_FWD = (2, 3, 3, 3, 3)
NUM_BACK = (2, 3, 3, 3)
BN_EPS = 1e-5


def _conv_block(params, x, key, stride=1):
    return params.conv(x, f'{key}.conv', stride, 1, bn=f'{key}.bn', eps=BN_EPS, relu=True)


def denoise(params, x, prefix):
    """x: [B,299,299,3] in the member's normalised space -> the denoised image, same space."""
    skips, out = [], x
    for group, blocks in enumerate(NUM_FWD):
        for block in range(blocks):
            stride = 2 if group > 0 and block == 0 else 1
            out = _conv_block(params, out, f'{prefix}.fwd.{group}.{block}', stride)
        skips.append(out)
    for group in reversed(range(len(NUM_BACK))):
        skip = skips[group]
        out = torch_layers.upsample_bilinear_align_corners(out, skip.shape[1:3])
        out = tf.concat([out, skip], axis=-1)
        for block in range(NUM_BACK[group]):
            out = _conv_block(params, out, f'{prefix}.back.{group}.{block}')
    return params.conv(out, f'{prefix}.final') + x
