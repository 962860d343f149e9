"""What every in-process defense shares: the input check, the classifier adapter, the labels.

A defense maps uint8 images [B,299,299,3] to labels in 1..1000. Classifiers behind it are zoo
models (loaded with `svrens_tf.models.load`) or any TF-traceable callable on float32 images in
[-1,1] returning logits, a `(logits, aux_logits)` pair, or an object with `.logits` /
`.aux_logits`; 1001 outputs (slim, index 0 = background) and 1000 outputs are both understood.
"""
import pathlib

import numpy as np
import tensorflow as tf

from svrens_tf.models import zoo
from svrens_tf.models.zoo import IMAGE_SIZE
from svrens_tf.outputs import split_outputs
from svrens_tf.weights import store

IMAGE_SHAPE = (IMAGE_SIZE, IMAGE_SIZE, 3)


def check_images(images):
    """Return `images` as a uint8 array [B,299,299,3]; anything else is one ValueError."""
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[1:] != IMAGE_SHAPE:
        raise ValueError(f'defenses take uint8 images [B,299,299,3]; got {images.dtype} '
                         f'{list(images.shape)}')
    return images


def to_signed(images_unit):
    """[0,1] -> [-1,1], slim's Inception preprocessing."""
    return images_unit * 2.0 - 1.0


def resize_uint8(images, size, method='bilinear', antialias=False):
    """Resize to size x size and round back to uint8, as an image written to disk in between."""
    y = tf.image.resize(tf.convert_to_tensor(images, tf.float32), [size, size], method,
                        antialias=antialias)
    return tf.cast(tf.round(tf.clip_by_value(y, 0.0, 255.0)), tf.uint8).numpy()


def class_scores(scores):
    """Drop slim's background column: [B,1001] or [B,1000] -> [B,1000] (label = index + 1)."""
    width = scores.shape[-1]
    if width == 1001:
        return scores[..., 1:]
    if width == 1000:
        return scores
    raise ValueError(f'a classifier must output 1000 or 1001 scores per image, got {width}')


def labels_from_scores(scores):
    """Labels in 1..1000 from [B,1001] or [B,1000] scores (background never wins)."""
    return np.argmax(class_scores(np.asarray(scores)), axis=-1).astype(np.int64) + 1


def weights_folder(defense, weights=None, checkpoint_dir=None):
    """Where `defense` keeps converted weights: `weights` if given, else
    `<checkpoint_dir>/<defense>` (the default checkpoint folder when None)."""
    if weights is not None:
        return pathlib.Path(weights)
    if checkpoint_dir is None:
        checkpoint_dir = zoo.default_checkpoint_dir()
    return pathlib.Path(checkpoint_dir) / defense


def install_command(defense, checkpoint_dir=None):
    """The command that fetches and converts `defense`'s released weights."""
    where = f' --checkpoint_dir {checkpoint_dir}' if checkpoint_dir is not None else ''
    return f'svrens-download --defense {defense}{where}'


def load_weights(defense, model, weights=None, checkpoint_dir=None):
    """name -> ndarray of `model`'s converted weights (svrens_tf/weights/store.py), checked;
    a missing one is a CheckpointError ending with the command that installs it."""
    return store.load(weights_folder(defense, weights, checkpoint_dir), model,
                      install_command(defense, checkpoint_dir))


def load_zoo_model(zoo_name, checkpoint_dir):
    """Default classifier loader: the released slim checkpoint of `zoo_name`."""
    from svrens_tf import models
    return models.load(zoo_name, checkpoint_dir)


def resolve_classifier(classifier, checkpoint_dir, load_model):
    """(model callable, zoo names loaded) for a zoo name or a user-supplied callable."""
    if isinstance(classifier, str):
        return load_model(classifier, checkpoint_dir), (classifier,)
    if callable(classifier):
        return classifier, ()
    raise ValueError(f'classifier must be a zoo name or a callable, got {classifier!r}')


class Classifier:
    """A model behind one compiled forward pass returning (logits, aux_logits or None)."""

    def __init__(self, model):
        self.model = model
        self.forward = tf.function(lambda x: split_outputs(model(x)), reduce_retracing=True)

    def __call__(self, images_signed):
        logits, aux = self.forward(tf.convert_to_tensor(images_signed, tf.float32))
        return logits.numpy(), None if aux is None else aux.numpy()


class Defense:
    """Base: subclasses set `name` and implement `predict(images_uint8) -> labels`.

    `stored_weights(settings)` lists the converted weights (defense folder, model) that a
    defense built with `settings` (its options, defaults filled in) loads; `zoo_models` the zoo
    checkpoints. Both are known before anything is built, so missing files are reported first.
    """

    name = None

    @classmethod
    def stored_weights(cls, settings):
        return []

    @classmethod
    def missing_weights(cls, settings, checkpoint_dir):
        """None, or what of `stored_weights(settings)` is absent and the command installing it."""
        for defense, model in cls.stored_weights(settings):
            problem = store.missing(
                weights_folder(defense, settings.get('weights'), checkpoint_dir), model)
            if problem:
                return f'{problem}; install with: {install_command(defense, checkpoint_dir)}'
        return None

    @classmethod
    def zoo_models(cls, settings):
        classifier = settings.get('classifier')
        return [classifier] if isinstance(classifier, str) else []

    def __init__(self, classifiers):
        self.classifiers = tuple(classifiers)

    def __call__(self, images):
        return np.asarray(self.predict(check_images(images)), dtype=np.int64)

    def predict(self, images):
        raise NotImplementedError


class TransformDefense(Defense):
    """A fixed input transform (uint8 -> [0,1] float) in front of one classifier."""

    def __init__(self, classifier, checkpoint_dir=None, load_model=load_zoo_model):
        model, names = resolve_classifier(classifier, checkpoint_dir, load_model)
        super().__init__(names)
        self.classifier = Classifier(model)

    def transform(self, images):
        """uint8 [B,299,299,3] -> float32 [B,299,299,3] in [0,1]."""
        raise NotImplementedError

    def predict(self, images):
        logits, _ = self.classifier(to_signed(self.transform(images)))
        return labels_from_scores(logits)
