"""The gradient oracle: input gradients of the ensemble loss and of one surrogate's loss J_k.

A gradient evaluation applies the configured transforms (Admix, SI, then each model's own DI
draw) to the current images, runs the model(s) and differentiates the loss with respect to
the untransformed images.  Model k is picked inside the graph with `tf.switch_case`, so one
call site traces each surrogate once, whatever the number of inner steps.
"""
import tensorflow as tf

from svrens_tf.attacks import losses, randomness, tracing, transforms
from svrens_tf.outputs import split_outputs


class GradientOracle:
    """Gradients for `surrogates` on square images of side `image_size`: `cfg` decides which
    transforms run, `settings` (AttackConfig.settings, numbers or tensors) their values."""

    def __init__(self, surrogates, cfg, image_size, settings):
        self.surrogates = list(surrogates)
        self.cfg = cfg
        self.settings = settings
        self.pad_size = cfg.di_pad_size or transforms.default_pad_size(image_size)

    @property
    def num_models(self):
        return len(self.surrogates)

    def _expand(self, x, clean, labels, key):
        """Admix and SI copies of x (shared by all models of one evaluation), labels tiled."""
        cfg = self.cfg
        if cfg.admix_copies:
            x = transforms.admix(x, clean, randomness.derive(key, 0), cfg.admix_copies,
                                 self.settings['admix_portion'])
        if cfg.si_copies > 1:
            x = transforms.scale_copies(x, cfg.si_copies)
        return x, tf.tile(labels, [max(cfg.admix_copies, 1) * cfg.si_copies])

    def _outputs(self, k, x, key):
        """(logits, aux) of surrogate k on its own DI draw of x."""
        cfg = self.cfg
        if cfg.di_prob > 0:
            x = transforms.diverse_input(x, randomness.derive(key, 1 + k),
                                         self.settings['di_prob'],
                                         self.pad_size, cfg.di_per_image)
        tracing.count(self.surrogates[k])
        return split_outputs(self.surrogates[k](x))

    def _aggregate(self, grad):
        """The authors' Admix script averages the SI scales instead of summing them."""
        return grad / self.cfg.si_copies if self.cfg.si_aggregate == 'mean' else grad

    def ensemble(self, x, clean, labels, key, with_members=False):
        """Gradient of the fused ensemble loss at x (K single-model passes).

        With `with_members`, also the K gradients of the J_k, stacked, from the same forward
        passes and transform draws (K more backward passes): the cached anchor gradients.
        """
        cfg, aux_weight = self.cfg, self.settings['aux_weight']
        with tf.GradientTape(persistent=with_members) as tape:
            tape.watch(x)
            batch, tiled = self._expand(x, clean, labels, key)
            outputs = [self._outputs(k, batch, key) for k in range(self.num_models)]
            loss = losses.ensemble_loss(outputs, tiled, cfg.fusion, aux_weight,
                                        cfg.targeted)
            members = [losses.single_model_loss(out, tiled, aux_weight, cfg.targeted)
                       for out in outputs] if with_members else []
        grad = self._aggregate(tape.gradient(loss, x))
        if not with_members:
            return grad
        return grad, tf.stack([self._aggregate(tape.gradient(m, x)) for m in members])

    def _single(self, k, x, clean, labels, key):
        """Gradient of J_k at x for a Python int k."""
        cfg = self.cfg
        with tf.GradientTape() as tape:
            tape.watch(x)
            batch, tiled = self._expand(x, clean, labels, key)
            loss = losses.single_model_loss(self._outputs(k, batch, key), tiled,
                                            self.settings['aux_weight'], cfg.targeted)
        return self._aggregate(tape.gradient(loss, x))

    def single(self, index, x, clean, labels, key):
        """Gradient of J_index at x for a scalar int32 tensor `index` (one pass)."""
        branches = [lambda k=k: self._single(k, x, clean, labels, key)
                    for k in range(self.num_models)]
        return tf.switch_case(index, branches)

    def singles(self, ks, xs, clean, labels, keys):
        """Gradients of J_{ks[i]} at xs[i] with keys[i], stacked; one switch_case call site."""
        count = tf.shape(ks)[0]

        def body(i, grads):
            return i + 1, grads.write(i, self.single(ks[i], xs[i], clean, labels, keys[i]))

        _, grads = tf.while_loop(
            lambda i, grads: i < count, body,
            (tf.constant(0), tf.TensorArray(xs.dtype, size=count, element_shape=xs.shape[1:])))
        return grads.stack()
