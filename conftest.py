"""Shared test fixtures: the ../shared reference folder and synthetic slim checkpoints."""
import os
import pathlib

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')
# The slim reference outputs and their tolerances are TF's default (non-oneDNN) kernels'. TF turns
# oneDNN on by default on AVX-512 CPUs, where Inception-v4's input gradient then lands at
# rel-L2 5.0e-3 of the reference (tolerance 4.3e-3; logits within 1.8e-6): tests run with it off
# unless the environment says otherwise.
os.environ.setdefault('TF_ENABLE_ONEDNN_OPTS', '0')

import numpy as np
import pytest

from benchmarks import SHARED_DIR, shared_module
from benchmarks.synthetic import SEED, SLIM_REFERENCE, manifest


@pytest.fixture(scope='session')
def shared_dir():
    """../shared beside the checkout (or $SVRENS_SHARED_DIR); tests needing it skip without it."""
    if not SHARED_DIR.is_dir():
        pytest.skip(f'{SHARED_DIR} (reference data) is absent: run inside the svrens_tf '
                    'environment or set $SVRENS_SHARED_DIR')
    return SHARED_DIR


@pytest.fixture(scope='session')
def slim_reference(shared_dir):
    """Namespace with gen_ckpt, compare_reference and manifest(arch) / reference(arch)."""
    class Ref:
        gen_ckpt = shared_module('slim_reference/gen_ckpt.py')
        compare_reference = shared_module('slim_reference/compare_reference.py')
        manifest = staticmethod(manifest)

        @staticmethod
        def reference(arch):
            return Ref.compare_reference.load_reference(SLIM_REFERENCE / f'{arch}.reference.npz')
    return Ref


def write_v1_checkpoint(arrays, path):
    """Write `arrays` (name -> ndarray) as an old single-file V1 checkpoint at `path`."""
    import tensorflow as tf
    tf1 = tf.compat.v1
    with tf.Graph().as_default():
        variables = {name: tf1.Variable(value, name=name.replace('/', '_'))
                     for name, value in arrays.items()}
        saver = tf1.train.Saver(var_list=variables,
                                write_version=tf1.train.SaverDef.V1)
        with tf1.Session() as sess:
            sess.run(tf1.global_variables_initializer())
            saver.save(sess, str(path), write_meta_graph=False, write_state=False)
    return path


@pytest.fixture(scope='session')
def synthetic_checkpoint(slim_reference, tmp_path_factory):
    """checkpoint(arch, fmt='v2'|'v1', scope=None) -> path of the seed-1234 slim checkpoint.

    v2 returns the prefix (directory holds a `checkpoint` state file); v1 the single file.
    `scope` renames the top-level scope (as the attack codebases' *_rename.ckpt copies do).
    Written once per session and argument set.
    """
    cache = {}

    def make(arch, fmt='v2', scope=None):
        key = (arch, fmt, scope)
        if key not in cache:
            arrays = slim_reference.gen_ckpt.generate_arrays(
                slim_reference.manifest(arch), SEED)
            if scope:
                arrays = {scope + '/' + n.split('/', 1)[1]: v for n, v in arrays.items()}
            folder = tmp_path_factory.mktemp(f'{arch}_{fmt}_{scope or "slim"}')
            if fmt == 'v2':
                path = slim_reference.gen_ckpt.write_tf1_checkpoint(arrays, str(folder / 'model.ckpt'))
            elif fmt == 'v1':
                path = write_v1_checkpoint(arrays, folder / 'model.ckpt')
            else:
                raise ValueError(fmt)
            cache[key] = pathlib.Path(path)
        return cache[key]
    return make


NIPS17_PAIR = ('0c7ac4a8c9dfa802', 'f43fbfe8a9ea876c')   # the ImageIds of `nips17_pair`


@pytest.fixture(scope='session')
def nips17_pair(shared_dir, tmp_path_factory):
    """A NIPS17 folder of two DEV images (NIPS17_PAIR) in the release layout: images/ with
    dev_dataset.csv beside it. Tests read it, never write into it."""
    root = tmp_path_factory.mktemp('nips17_pair')
    (root / 'images').mkdir()
    lines = (shared_dir / 'nips17' / 'dev_dataset.csv').read_text().splitlines()
    rows = [line for line in lines[1:] if line.split(',')[0] in NIPS17_PAIR]
    assert len(rows) == len(NIPS17_PAIR)
    (root / 'dev_dataset.csv').write_text('\n'.join([lines[0]] + rows) + '\n')
    for image_id in NIPS17_PAIR:
        (root / 'images' / f'{image_id}.png').write_bytes(
            (shared_dir / 'nips17' / 'images' / f'{image_id}.png').read_bytes())
    return root


@pytest.fixture
def rng():
    return np.random.RandomState(0)
