"""Randomization (Xie et al. 2018, R&P): random resize and pad, many passes, in front of ens_adv IncRes-v2.

As the authors' NIPS17 submission runs it (the code the VT group points to): 30 passes; in
each pass the batch is flipped left-right with probability 1/2 (flips accumulate over passes),
resized NEAREST (TF1 semantics) to a random side in [min_size, max_size], and placed at a random
offset on a zero (mid-grey) canvas of `out_size`; the label maximises the sum over passes of
softmax(logits) + 0.4 softmax(aux_logits). The paper draws sides from 299..330 and does not
flip: `min_size=299, flip=False`. One draw per pass is shared by the whole batch.
"""
import numpy as np
import tensorflow as tf

from svrens_tf.defenses import base


def resize_pad(images_signed, size, top, left, out_size):
    """Nearest resize to size x size (TF1 corner-aligned indexing) and zero pad to out_size."""
    resized = tf.raw_ops.ResizeNearestNeighbor(images=images_signed, size=tf.stack([size, size]),
                                               align_corners=False, half_pixel_centers=False)
    padded = tf.pad(resized, [[0, 0], [top, out_size - size - top],
                              [left, out_size - size - left], [0, 0]])
    return tf.ensure_shape(padded, [None, out_size, out_size, images_signed.shape[-1]])


class RandomResizePad(base.Defense):
    name = 'rp'

    def __init__(self, passes=30, min_size=310, max_size=330, out_size=331, flip=True,
                 aux_weight=0.4, classifier='ens_adv_incres_v2', seed=0, checkpoint_dir=None,
                 load_model=base.load_zoo_model):
        if not base.IMAGE_SHAPE[0] <= min_size <= max_size <= out_size:
            raise ValueError(f'need 299 <= min_size <= max_size <= out_size, got '
                             f'{min_size}, {max_size}, {out_size}')
        if passes < 1:
            raise ValueError(f'passes must be >= 1, got {passes}')
        model, names = base.resolve_classifier(classifier, checkpoint_dir, load_model)
        super().__init__(names)
        self.passes, self.min_size, self.max_size = passes, min_size, max_size
        self.out_size, self.flip, self.aux_weight = out_size, flip, aux_weight
        self.rng = np.random.RandomState(seed)
        self.classifier = base.Classifier(model)

    def draw(self):
        """(flip, size, top, left) of one pass."""
        flip = bool(self.flip and self.rng.randint(2))
        size = self.rng.randint(self.min_size, self.max_size + 1)
        top, left = self.rng.randint(0, self.out_size - size + 1, size=2)
        return flip, size, int(top), int(left)

    def predict(self, images):
        x = base.to_signed(images.astype(np.float32) / 255.0)
        total = 0.0
        for _ in range(self.passes):
            flip, size, top, left = self.draw()
            if flip:
                x = x[:, :, ::-1]
            logits, aux = self.classifier(resize_pad(tf.constant(x), tf.constant(size),
                                                     tf.constant(top), tf.constant(left),
                                                     self.out_size))
            scores = tf.nn.softmax(logits).numpy()
            if aux is not None:
                scores += self.aux_weight * tf.nn.softmax(aux).numpy()
            total = total + scores
        return base.labels_from_scores(total)
