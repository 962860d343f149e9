"""CPU (or GPU) cost per image of each Table 3 defense at 299x299, with its default settings.

Each defense runs in a fresh process (its own peak memory): build it, label one image (tracing
and graph optimisation: "first call"), then label `--num_images` NIPS17 images in batches of
`--batch_size`, reported as wall and process-CPU seconds per image (CPU time is less sensitive
to other load on the machine; the load average is printed per row). Weights: zoo classifiers
are the zeros `models.build` creates (a dense net's cost does not depend on the values); NRP,
HGD and Cohen's ResNet-50 get the synthetic state dicts of ../shared/torch_reference
(`gen_weights.py`, released key names and shapes), converted into a temporary weight store;
ComDefend its released files in ../shared/comdefend.

    python -m benchmarks.defense_speed --defenses jpeg,nrp --num_images 2
"""
import os
import pathlib
import tempfile
import time

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')

from absl import app, flags

from benchmarks import SHARED_DIR, shared_module, synthetic, timing

ROOT = pathlib.Path(__file__).resolve().parents[1]
TABLE3 = ('bit_red', 'jpeg', 'fd', 'rp', 'nips_r3', 'rs', 'comdefend', 'nrp', 'hgd')

flags.DEFINE_list('defenses', list(TABLE3), 'Defenses (svrens_tf.defenses.NAMES).')
flags.DEFINE_integer('num_images', 2, 'Images timed after the first call.')
flags.DEFINE_integer('batch_size', 2, 'Images per defense call.')
flags.DEFINE_string('images', str(SHARED_DIR / 'nips17' / 'images'), 'Folder of NIPS17 PNGs.')
FLAGS = flags.FLAGS


def _zoo_model(zoo_name, checkpoint_dir):
    from svrens_tf import models
    return models.build(models.ZOO[zoo_name].arch)


def _synthetic_state_dict(model):
    gen_weights = shared_module('torch_reference/gen_weights.py')
    return gen_weights.generate_state_dict(gen_weights.load_manifest(model), synthetic.SEED)


def _options(name, folder):
    """Build options giving `name` its weights (see the module docstring)."""
    from svrens_tf.weights import store
    if name == 'nrp':
        store.save(_synthetic_state_dict('nrp'), folder / 'nrp', 'nrp', __file__)
    elif name == 'rs':
        store.save(_synthetic_state_dict('cohen_resnet50'), folder / 'rs', 'cohen_resnet50',
                   __file__)
    elif name == 'hgd':
        return {'weights': lambda member: _synthetic_state_dict(f'hgd_{member}')}
    elif name == 'comdefend':
        return {'weights': str(SHARED_DIR / 'comdefend')}
    return {}


def measure(name, images_dir, num_images, batch_size):
    """One defense's row; runs in its own process."""
    import imageio.v3 as iio
    import numpy as np
    from svrens_tf import defenses

    paths = sorted(pathlib.Path(images_dir).glob('*.png'))[:num_images + 1]
    images = np.stack([iio.imread(p) for p in paths])
    with tempfile.TemporaryDirectory() as tmp:
        options = _options(name, pathlib.Path(tmp))
        if 'load_model' in defenses.options(name):
            options['load_model'] = _zoo_model
        start = time.perf_counter()
        defense = defenses.build(name, tmp, seed=0, **options)
        build_s = time.perf_counter() - start
    first_s, wall_s, cpu_s = timing.timed(
        lambda: defense(images[:1]),
        [lambda i=i: defense(images[i:min(i + batch_size, num_images + 1)])
         for i in range(1, num_images + 1, batch_size)], num_images)
    device, peak_mib = timing.device_and_peak_mib()
    return {'defense': name, 'device': device, 'build_s': build_s, 'first_s': first_s,
            'wall_s': wall_s, 'cpu_s': cpu_s, 'peak_mib': peak_mib}


def main(_):
    print(f'{FLAGS.num_images} images timed after one first call, batch {FLAGS.batch_size}, '
          f'299x299, default settings; {timing.machine()}', flush=True)
    timing.print_header(['defense', 'device', 'build (s)', 'first call (s)', 'wall s/image',
                         'CPU s/image', 'peak memory (MiB)'])
    for name in FLAGS.defenses:
        row = timing.run_isolated(measure, name, FLAGS.images, FLAGS.num_images,
                                  FLAGS.batch_size)
        timing.print_row([row['defense'], row['device'], f"{row['build_s']:.1f}",
                          f"{row['first_s']:.1f}", f"{row['wall_s']:.2f}",
                          f"{row['cpu_s']:.2f}", f"{row['peak_mib']:.0f}"])


if __name__ == '__main__':
    app.run(main)
