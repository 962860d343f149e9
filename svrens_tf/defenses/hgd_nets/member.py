"""One HGD member: input normalisation, its denoiser, its classifier, from one state dict.

A member is built from the released checkpoint's state dict ({key: ndarray}, keys starting
with `net.`, the `Net` wrapper of GD_train) and maps images in [0,1] to (denoised image in
the member's normalised space, logits [B,1000]), as `net(input, defense=True)` in
lfz/Guided-Denoise `nips_deploy/defense.py`. Construction traces the forward pass once, which
converts every weight and refuses a state dict whose keys the network does not use.
"""
import numpy as np
import tensorflow as tf

from svrens_tf.defenses.hgd_nets import denoiser, torch_layers

IMAGE_SIZE = 299
# float32 constants, as defense.py builds them: (x - mean) / std
TF_NORMALISATION = (np.full(3, 0.5, np.float32), np.full(3, 0.5, np.float32))
TORCH_NORMALISATION = (np.array([0.485, 0.456, 0.406], np.float32),
                       np.array([0.229, 0.224, 0.225], np.float32))


class Member(tf.Module):
    """Subclasses set `key`, `released_file`, `normalisation`, `denoiser_prefix`, `features`
    (a function (params, normalised image) -> feature map) and `classifier` (the key of the
    final nn.Linear, on the features' global mean)."""

    key = None
    released_file = None
    normalisation = None
    denoiser_prefix = None
    features = None
    classifier = None

    def __init__(self, state_dict):
        super().__init__(name=f'hgd_{self.key}')
        self.params = torch_layers.StateDict(state_dict, f'HGD {self.key} ({self.released_file})')
        self._forward = self.params.trace(self.forward, [IMAGE_SIZE, IMAGE_SIZE, 3])

    def normalise(self, images_unit):
        mean, std = self.normalisation
        return (images_unit - mean) / std

    def classify(self, x):
        """Normalised image [B,299,299,3] -> logits [B,1000] (a 1001-way layer's background
        column, index 0, dropped as `x[:, 1:]`)."""
        logits = self.params.linear(torch_layers.global_mean(self.features(self.params, x)),
                                    self.classifier)
        return logits[:, 1:] if logits.shape[-1] == 1001 else logits

    def forward(self, images_unit):
        denoised = denoiser.denoise(self.params, self.normalise(images_unit), self.denoiser_prefix)
        return denoised, self.classify(denoised)

    def __call__(self, images_unit):
        """float32 [B,299,299,3] in [0,1] -> (denoised [B,299,299,3], logits [B,1000])."""
        images_unit = tf.convert_to_tensor(images_unit, tf.float32)
        return self.forward(images_unit) if tf.inside_function() else self._forward(images_unit)
