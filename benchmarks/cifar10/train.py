"""Train the CIFAR-10 zoo: write `<weights_dir>/<name>.weights.h5` and `<name>.json` (accuracy).

Backend-agnostic Keras 3 with a numpy input pipeline (random crop + flip), so the same script
trains on a GPU under KERAS_BACKEND=jax and on a CPU under TensorFlow:

    KERAS_BACKEND=jax python -m benchmarks.cifar10.train --epochs 30
"""
import json
import pathlib
import time

import numpy as np
from absl import app, flags

import keras

from benchmarks.cifar10 import data, models

WEIGHTS_DIR = pathlib.Path(__file__).resolve().parent / 'weights'

FLAGS = flags.FLAGS
flags.DEFINE_string('source', None, 'CIFAR-10 JPEG tarball or standard python tarball '
                    '(default: ../shared/cifar10/cifar10-jpeg.tar.gz, else download)')
flags.DEFINE_string('cache_dir', None, 'keep the decoded dataset here as .npz')
flags.DEFINE_string('weights_dir', str(WEIGHTS_DIR), 'where the trained weights go')
flags.DEFINE_list('models', list(models.BUILDERS), 'zoo names to train')
flags.DEFINE_integer('epochs', 30, 'training epochs per model')
flags.DEFINE_integer('train_images', None, 'images per epoch, drawn afresh each epoch '
                     '(default: the whole training set)')
flags.DEFINE_integer('batch_size', 256, 'training batch size')
flags.DEFINE_float('learning_rate', 0.1, 'peak SGD learning rate (linear warm-up, cosine decay)')
flags.DEFINE_float('weight_decay', 5e-4, 'decoupled weight decay')
flags.DEFINE_integer('seed', 0, 'random seed (weights init and augmentation)')


def recalibrate_batch_norm(model, x_train, rng, batches=20, batch_size=500):
    """Replace every BatchNormalization moving mean/variance by the exact average of the batch
    statistics over `batches` training batches (no weight update).

    After a short run (a few hundred steps) the moving averages, with momentum 0.99, still
    carry much of their initial (0, 1) and the model predicts one class at test time.
    """
    norms = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    for i in range(batches):
        for layer in norms:
            layer.momentum = i / (i + 1)
        pick = rng.integers(0, len(x_train), batch_size)
        model(data.to_model_range(x_train[pick]), training=True)
    for layer in norms:
        layer.momentum = 0.99


def train_one(name, x_train, y_train, x_test, y_test, rng):
    """Train zoo model `name`; returns (model, test accuracy, seconds)."""
    keras.utils.set_random_seed(FLAGS.seed)
    model = models.build(name)
    per_epoch = FLAGS.train_images or len(x_train)
    steps = FLAGS.epochs * -(-per_epoch // FLAGS.batch_size)
    schedule = keras.optimizers.schedules.CosineDecay(
        0.0, decay_steps=steps - steps // 15, warmup_target=FLAGS.learning_rate,
        warmup_steps=steps // 15)
    model.compile(
        optimizer=keras.optimizers.SGD(schedule, momentum=0.9, nesterov=True,
                                       weight_decay=FLAGS.weight_decay),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=['accuracy'])
    start = time.time()
    for epoch in range(FLAGS.epochs):
        pick = rng.permutation(len(x_train))[:per_epoch]
        history = model.fit(data.to_model_range(data.augment(x_train[pick], rng)), y_train[pick],
                            batch_size=FLAGS.batch_size, epochs=epoch + 1, initial_epoch=epoch,
                            shuffle=True, verbose=0)
        print(f'{name} epoch {epoch + 1}/{FLAGS.epochs} loss {history.history["loss"][-1]:.3f} '
              f'train acc {history.history["accuracy"][-1]:.3f} ({time.time() - start:.0f} s)',
              flush=True)
    recalibrate_batch_norm(model, x_train, rng)
    _, accuracy = model.evaluate(data.to_model_range(x_test), y_test, batch_size=1000, verbose=0)
    return model, float(accuracy), time.time() - start


def main(argv):
    del argv
    splits = data.load(FLAGS.source, FLAGS.cache_dir)
    (x_train, y_train), (x_test, y_test) = splits['train'], splits['test']
    weights_dir = pathlib.Path(FLAGS.weights_dir)
    weights_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(FLAGS.seed)
    for name in FLAGS.models:
        model, accuracy, seconds = train_one(name, x_train, y_train, x_test, y_test, rng)
        model.save_weights(str(weights_dir / f'{name}.weights.h5'))
        record = {'test_accuracy': accuracy, 'params': model.count_params(),
                  'epochs': FLAGS.epochs, 'train_images_per_epoch': len(x_train[:FLAGS.train_images]),
                  'batch_size': FLAGS.batch_size, 'train_seconds': round(seconds, 1),
                  'backend': keras.backend.backend()}
        (weights_dir / f'{name}.json').write_text(json.dumps(record, indent=2) + '\n')
        print(f'{name}: test accuracy {accuracy:.4f} in {seconds:.0f} s', flush=True)


if __name__ == '__main__':
    app.run(main)
