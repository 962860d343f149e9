"""Randomized smoothing (Cohen et al. 2019): PREDICT with N noisy samples, a binomial test, abstention.

Gaussian noise of std `sigma` is added in [0,1] pixel space (Cohen's models normalise inside),
the base classifier labels `n` noisy copies, and the top label is returned only when a two-sided
binomial test of its count against the runner-up's rejects p = 1/2 at level `alpha`; otherwise
the defense abstains (label 0, counted in `abstentions`). Defaults are the VT group's run
(sigma 0.25, N 100, alpha 0.001). Their base classifier, a noise-trained ResNet-50 (PyTorch
weights), is not in the zoo: pass any callable as `classifier`, or run Cohen's code through
`defenses.external`.
"""
import numpy as np
import scipy.stats
import tensorflow as tf

from svrens_tf.defenses import base
from svrens_tf.outputs import split_outputs

ABSTAIN = 0
NUM_LABELS = 1000


class RandomizedSmoothing(base.Defense):
    name = 'rs'

    def __init__(self, sigma=0.25, n=100, alpha=0.001, batch_size=100,
                 classifier='ens3_adv_inc_v3', seed=0, checkpoint_dir=None,
                 load_model=base.load_zoo_model):
        if sigma < 0 or n < 1 or batch_size < 1 or not 0 < alpha < 1:
            raise ValueError(f'need sigma >= 0, n >= 1, batch_size >= 1, 0 < alpha < 1; got '
                             f'{sigma}, {n}, {batch_size}, {alpha}')
        model, names = base.resolve_classifier(classifier, checkpoint_dir, load_model)
        super().__init__(names)
        self.sigma, self.n, self.alpha, self.batch_size = sigma, n, alpha, batch_size
        self.model = model
        self.generator = tf.random.Generator.from_seed(seed)
        self.noisy_labels = tf.function(self._noisy_labels)
        self.abstentions = 0

    def _noisy_labels(self, image_unit, copies):
        """Labels (1..1000) of `copies` noisy copies of one [299,299,3] image in [0,1]."""
        batch = tf.repeat(image_unit[None], copies, axis=0)
        noisy = batch + self.sigma * self.generator.normal(tf.shape(batch))
        logits, _ = split_outputs(self.model(base.to_signed(noisy)))
        return tf.argmax(base.class_scores(logits), axis=-1, output_type=tf.int32) + 1

    def counts(self, images):
        """[B,1001] int: how many of the n noisy copies of each image got each label (column 0 unused)."""
        counts = np.zeros((len(images), NUM_LABELS + 1), np.int64)
        for i, image in enumerate(images.astype(np.float32) / 255.0):
            image = tf.constant(image)
            for start in range(0, self.n, self.batch_size):
                labels = self.noisy_labels(image, min(self.batch_size, self.n - start)).numpy()
                counts[i] += np.bincount(labels, minlength=NUM_LABELS + 1)
        return counts

    def decide(self, counts):
        """Cohen's PREDICT on one count vector: the top label, or ABSTAIN."""
        runner_up, top = np.argsort(counts, kind='stable')[-2:]
        n_top, n_runner_up = int(counts[top]), int(counts[runner_up])
        p_value = scipy.stats.binomtest(n_top, n_top + n_runner_up, 0.5).pvalue
        return ABSTAIN if p_value > self.alpha else int(top)

    def predict(self, images):
        labels = np.array([self.decide(c) for c in self.counts(images)], np.int64)
        self.abstentions += int(np.sum(labels == ABSTAIN))
        return labels
