"""The four members of HGD (Liao et al. 2018, the NIPS17 winner), one module per network.

`MEMBERS` maps each member's name to its class, in the order `nips_deploy/defense.py` sums
their logits; each class names its released checkpoint (`released_file`).
"""
from svrens_tf.defenses.hgd_nets.inception_resnet_v2 import InceptionResNetV2
from svrens_tf.defenses.hgd_nets.inception_v3 import InceptionV3
from svrens_tf.defenses.hgd_nets.resnet152 import ResNet152
from svrens_tf.defenses.hgd_nets.resnext101 import ResNeXt101

MEMBERS = {cls.key: cls for cls in (ResNet152, InceptionResNetV2, InceptionV3, ResNeXt101)}
