"""Speed of the slim architectures: build time, first traced call, warm forward + backward.

For each architecture, in a fresh process (so peak memory is its own): `models.build` time,
the first call of a `tf.function` computing logits and d loss / d x (trace, graph optimisation
and one run), then `--steps` warm calls on the same batch shape, reported as images per second
and as the process's CPU seconds per step (less sensitive than wall time to other load on the
machine, whose load average each row reports). Peak memory is the process's maximum RSS on
CPU, or TF's peak allocation on GPU. Weights are the zeros `build` creates: the cost of a dense
conv net does not depend on their values.

    TF_ENABLE_ONEDNN_OPTS=1 python -m benchmarks.model_speed --archs inception_v3 --steps 2
"""
import os
import time

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')

from absl import app, flags

from benchmarks import timing

ARCHS = ['inception_v3', 'inception_v4', 'inception_resnet_v2',
         'resnet_v2_50', 'resnet_v2_101', 'resnet_v2_152']

flags.DEFINE_list('archs', ARCHS, 'Architectures (models.ARCHITECTURES keys).')
flags.DEFINE_integer('batch_size', 8, 'Images per batch.')
flags.DEFINE_integer('image_size', 299, 'Image side.')
flags.DEFINE_integer('steps', 5, 'Warm steps timed after the first call.')
FLAGS = flags.FLAGS


def measure(arch, batch_size, image_size, steps):
    """One architecture's row; runs in its own process."""
    import tensorflow as tf
    from svrens_tf import models

    start = time.perf_counter()
    model = models.build(arch)
    build_s = time.perf_counter() - start

    x = tf.random.uniform([batch_size, image_size, image_size, 3], -1, 1, seed=0)
    labels = tf.random.uniform([batch_size], 1, 1001, tf.int64, seed=0)

    @tf.function
    def loss_and_input_grad(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
                labels, model(x).logits))
        return loss, tape.gradient(loss, x)

    def step():
        loss_and_input_grad(x)[1].numpy()

    first_s, step_s, cpu_s = timing.timed(step, [step] * steps, steps)
    device, peak_mib = timing.device_and_peak_mib()
    return {'arch': arch, 'params_m': sum(v.shape.num_elements() for v in model.variables) / 1e6,
            'build_s': build_s, 'first_s': first_s, 'step_s': step_s, 'cpu_s': cpu_s,
            'images_per_s': batch_size / step_s, 'peak_mib': peak_mib, 'device': device}


def main(_):
    print(f'batch {FLAGS.batch_size}, {FLAGS.image_size}x{FLAGS.image_size}, '
          f'{FLAGS.steps} warm steps; {timing.machine()}', flush=True)
    timing.print_header(['arch', 'params (M)', 'device', 'build (s)', 'first call (s)',
                         'fwd+bwd step (s)', 'CPU s/step', 'images/s', 'peak memory (MiB)'])
    for arch in FLAGS.archs:
        row = timing.run_isolated(measure, arch, FLAGS.batch_size, FLAGS.image_size,
                                  FLAGS.steps)
        timing.print_row([row['arch'], f"{row['params_m']:.1f}", row['device'],
                          f"{row['build_s']:.1f}", f"{row['first_s']:.1f}",
                          f"{row['step_s']:.2f}", f"{row['cpu_s']:.2f}",
                          f"{row['images_per_s']:.2f}", f"{row['peak_mib']:.0f}"])


if __name__ == '__main__':
    app.run(main)
