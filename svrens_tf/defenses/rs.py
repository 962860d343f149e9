"""Randomized smoothing (Cohen et al. 2019): PREDICT with N noisy samples, a binomial test, abstention.

Gaussian noise of std `sigma` is added in [0,1] pixel space (Cohen's models normalise inside),
the base classifier labels `n` noisy copies, and the top label is returned only when a two-sided
binomial test of its count against the runner-up's rejects p = 1/2 at level `alpha`; otherwise
the defense abstains (label 0, counted in `abstentions`). Defaults are the VT group's run
(sigma 0.25, N 100, alpha 0.001) on Cohen et al.'s noise-trained ResNet-50
(`svrens_tf/defenses/cohen_resnet50.py`, their resize 256 / centre crop 224, converted weights
in `<checkpoint_dir>/rs`, installed by `svrens-download --defense rs`); a zoo name or a
callable on [-1,1] images as `classifier` smooths that model at 299 instead.
"""
import numpy as np
import scipy.stats
import tensorflow as tf

from svrens_tf.defenses import base, cohen_resnet50
from svrens_tf.outputs import split_outputs

ABSTAIN = 0
NUM_LABELS = 1000
COHEN = 'cohen_resnet50'


class RandomizedSmoothing(base.Defense):
    name = 'rs'

    @classmethod
    def stored_weights(cls, settings):
        return [(cls.name, COHEN)] if settings['classifier'] == COHEN else []

    @classmethod
    def zoo_models(cls, settings):
        return [] if settings['classifier'] == COHEN else super().zoo_models(settings)

    def __init__(self, sigma=0.25, n=100, alpha=0.001, batch_size=100, classifier=COHEN,
                 weights=None, seed=0, checkpoint_dir=None, load_model=base.load_zoo_model):
        if sigma < 0 or n < 1 or batch_size < 1 or not 0 < alpha < 1:
            raise ValueError(f'need sigma >= 0, n >= 1, batch_size >= 1, 0 < alpha < 1; got '
                             f'{sigma}, {n}, {batch_size}, {alpha}')
        if classifier == COHEN:
            self.model = cohen_resnet50.CohenResNet50(
                base.load_weights(self.name, COHEN, weights, checkpoint_dir))
            self.prepare = cohen_resnet50.preprocess
            names = ()
        else:
            model, names = base.resolve_classifier(classifier, checkpoint_dir, load_model)
            self.model = lambda x_unit: model(base.to_signed(x_unit))
            self.prepare = lambda images: images
        super().__init__(names)
        self.sigma, self.n, self.alpha, self.batch_size = sigma, n, alpha, batch_size
        self.generator = tf.random.Generator.from_seed(seed)
        self.noisy_labels = tf.function(self._noisy_labels)
        self.abstentions = 0

    def _noisy_labels(self, image_unit, copies):
        """Labels (1..1000) of `copies` noisy copies of one [H,W,3] image in [0,1]."""
        batch = tf.repeat(image_unit[None], copies, axis=0)
        noisy = batch + self.sigma * self.generator.normal(tf.shape(batch))
        logits, _ = split_outputs(self.model(noisy))
        return tf.argmax(base.class_scores(logits), axis=-1, output_type=tf.int32) + 1

    def counts(self, images):
        """[B,1001] int: how many of the n noisy copies of each image got each label (column 0 unused)."""
        counts = np.zeros((len(images), NUM_LABELS + 1), np.int64)
        for i, image in enumerate(self.prepare(images).astype(np.float32) / np.float32(255)):
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
