"""ComDefend with the released weights on a NIPS17 folder: mean PSNR of the reconstruction, time per image.

Each 299x299 PNG is resized to 224 (bilinear, uint8), purified patch-wise as the authors run it,
and compared with its 224 input (PSNR on the 0..255 scale). Time per image counts purification
only, after one warm-up batch that traces the graph. A progress line after every batch gives
the running figures, so a run cut short still reports exactly how many images it covered.

    python benchmarks/comdefend_psnr.py --input_dir ../shared/nips17/images \
        --weights ../shared/comdefend --num_images 100
"""
import os
import pathlib
import time

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')

import imageio.v3 as iio
import numpy as np
import tensorflow as tf
from absl import app, flags

from benchmarks import SHARED_DIR
from svrens_tf.defenses import base, comdefend


flags.DEFINE_string('input_dir', str(SHARED_DIR / 'nips17' / 'images'), 'Folder of 299x299 PNGs.')
flags.DEFINE_string('weights', str(SHARED_DIR / 'comdefend'),
                    'comdefend.npz or the folder of the released enc20/dec20 files.')
flags.DEFINE_integer('num_images', 1000, 'How many images (sorted by name) to purify.')
flags.DEFINE_integer('batch_size', 4, 'Images per purification call.')
flags.DEFINE_integer('size', comdefend.PURIFY_SIZE, 'Side the images are purified at.')
FLAGS = flags.FLAGS


def main(_):
    paths = sorted(pathlib.Path(FLAGS.input_dir).glob('*.png'))[:FLAGS.num_images]
    if not paths:
        raise app.UsageError(f'no PNG images in {FLAGS.input_dir}')
    purifier = comdefend.Purifier(*comdefend.read_weights(FLAGS.weights))
    warm = base.resize_uint8(np.stack([iio.imread(p) for p in paths[:FLAGS.batch_size]]),
                                  FLAGS.size)
    comdefend.purify_uint8(purifier, warm)

    psnrs, seconds = [], 0.0
    for start in range(0, len(paths), FLAGS.batch_size):
        batch = np.stack([iio.imread(p) for p in paths[start:start + FLAGS.batch_size]])
        small = base.resize_uint8(batch, FLAGS.size)
        began = time.perf_counter()
        purified = comdefend.purify_uint8(purifier, small)
        seconds += time.perf_counter() - began
        psnrs.extend(tf.image.psnr(small, purified, 255).numpy().tolist())
        print(f'{len(psnrs)} images: mean PSNR {np.mean(psnrs):.3f} dB, '
              f'{seconds / len(psnrs):.3f} s per image', flush=True)
    print(f'FINAL {len(psnrs)} images at {FLAGS.size}x{FLAGS.size}: mean PSNR '
          f'{np.mean(psnrs):.3f} dB (min {np.min(psnrs):.3f}, max {np.max(psnrs):.3f}), '
          f'{seconds / len(psnrs):.3f} s per image (batch {FLAGS.batch_size})')


if __name__ == '__main__':
    app.run(main)
