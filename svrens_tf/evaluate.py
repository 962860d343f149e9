"""Predictions, success rates and losses of classifiers on clean and adversarial folders.

Success rate as the paper computes it: % of all images whose prediction (argmax over the 1001
classes) differs from the true label, clean-misclassified images included. Also reported: the
rate over the images the classifier gets right when clean, its clean accuracy, and the average
cross-entropy of the adversarial images (models only; defenses give labels, not logits).

An evaluation keeps each classifier's predictions in PROGRESS_FILE as soon as it finishes, so a
rerun with the same settings resumes after the last finished classifier.
"""
import json
import pathlib

import numpy as np
import tensorflow as tf

from svrens_tf import data, files

PROGRESS_FILE = 'eval_progress.json'
from svrens_tf.outputs import split_outputs


def model_classifier(model):
    """uint8 [B,299,299,3], labels [B] -> (predictions [B], cross-entropy [B]), one traced call."""
    @tf.function(reduce_retracing=True)
    def classify(images, labels):
        x = tf.cast(images, tf.float32) / 127.5 - 1.0
        logits, _ = split_outputs(model(x))
        loss = tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits)
        return tf.argmax(logits, axis=1, output_type=tf.int32), loss

    def run(images, labels):
        predictions, loss = classify(tf.constant(images), tf.constant(labels, tf.int32))
        return predictions.numpy(), loss.numpy()
    return run


def defense_classifier(defense):
    """A defense callable (uint8 batch -> labels) in the same shape as model_classifier; no loss."""
    def run(images, labels):
        return np.asarray(defense(images), np.int32), None
    return run


def predict(classify, dataset, folders, batch_size):
    """{folder: (predictions [N], losses [N] or None)} over dataset.image_ids, one pass for all."""
    ids = dataset.image_ids
    labels = np.array([dataset.labels[i] for i in ids], np.int32)
    predictions = {f: np.zeros(len(ids), np.int32) for f in folders}
    losses = {f: np.zeros(len(ids), np.float32) for f in folders}
    has_loss = True
    start = 0
    for batch, images in data.batches(dataset, data.plan_batches(ids, batch_size), folders):
        stop = start + len(batch)
        for folder in folders:
            predicted, loss = classify(images[folder], labels[start:stop])
            predictions[folder][start:stop] = predicted
            if loss is None:
                has_loss = False
            else:
                losses[folder][start:stop] = loss
        start = stop
    return {f: (predictions[f], losses[f] if has_loss else None) for f in folders}


def summarize(labels, clean_predictions, predictions, losses=None):
    """Success rates (%), clean accuracy (%), average loss and counts for one classifier/folder."""
    labels = np.asarray(labels)
    clean_correct = np.asarray(clean_predictions) == labels
    fooled = np.asarray(predictions) != labels
    return {
        'success_rate': 100.0 * float(fooled.mean()),
        'success_rate_clean_correct': (100.0 * float(fooled[clean_correct].mean())
                                       if clean_correct.any() else None),
        'clean_accuracy': 100.0 * float(clean_correct.mean()),
        'avg_loss': None if losses is None else float(np.mean(losses)),
        'abstained': int(np.sum(np.asarray(predictions) == 0)),
        'num_images': int(labels.size),
        'num_clean_correct': int(clean_correct.sum()),
    }


def max_perturbation(dataset, folder, batch_size):
    """Largest |adversarial - clean| over every pixel of a folder, in 0..255 levels."""
    largest = 0
    planned = data.plan_batches(dataset.image_ids, batch_size)
    for _, images in data.batches(dataset, planned, [dataset.image_dir, folder]):
        diff = np.abs(images[folder].astype(np.int32) - images[dataset.image_dir].astype(np.int32))
        largest = max(largest, int(diff.max()))
    return largest


class Progress:
    """The predictions of the classifiers an evaluation finished, in `output_dir`/PROGRESS_FILE.

    Each classifier's entry carries the settings it was computed under (clean set, folders,
    seed, options, ...); a rerun reuses it only when they are the same.
    """

    def __init__(self, output_dir):
        self.path = pathlib.Path(output_dir) / PROGRESS_FILE
        self.saved = {}
        if self.path.is_file():
            try:
                self.saved = json.loads(self.path.read_text())['classifiers']
            except (OSError, ValueError, KeyError, TypeError) as err:
                raise data.DataError(f'{self.path}: unreadable ({err}); delete it to evaluate '
                                     'from scratch') from None

    def finished(self, name, settings):
        """{folder: (predictions, losses or None)} saved for `name` under `settings`, or None."""
        entry = self.saved.get(name)
        if entry is None or entry.get('settings') != _plain(settings):
            return None
        return {pathlib.Path(folder): (np.asarray(result['predictions'], np.int32),
                                       None if result['losses'] is None
                                       else np.asarray(result['losses'], np.float32))
                for folder, result in entry['folders'].items()}

    def save(self, name, settings, by_folder):
        """Record `name`'s predictions (as from `predict`) and write the file atomically."""
        self.saved[name] = {'settings': _plain(settings), 'folders': {
            str(folder): {'predictions': predicted.tolist(),
                          'losses': None if losses is None else losses.tolist()}
            for folder, (predicted, losses) in by_folder.items()}}
        files.write_atomic(self.path, json.dumps({'classifiers': self.saved}) + '\n')


def _plain(value):
    return json.loads(json.dumps(value))
