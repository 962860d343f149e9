"""Helpers over ../shared/torch_reference for the PyTorch-born defenses' tests.

`state_dict(model)` regenerates a released checkpoint's state dict (seed 1234, checked against
the reference's digest) once per session; `install(root, defense, model)` converts it into the
project's weight store under `root/<defense>/` once per session and returns `root`.
"""
import functools
import pathlib

from benchmarks import SHARED_DIR, shared_module
from svrens_tf.weights import store

FOLDER = SHARED_DIR / 'torch_reference'
NIPS17_IMAGES = FOLDER.parent / 'nips17' / 'images'
GROUPS = {'nrp': 'nrp', 'nrp_resg': 'nrp_resg', 'cohen_resnet50': 'cohen_resnet50'}


def gen_weights():
    return shared_module('torch_reference/gen_weights.py')


def compare():
    return shared_module('torch_reference/compare_torch_reference.py')


@functools.lru_cache(maxsize=None)
def reference(group):
    return compare().load_reference(FOLDER / f'{group}.reference.npz')


@functools.lru_cache(maxsize=None)
def state_dict(model):
    """The seed-1234 state dict of `model` under its released key names, digest-checked."""
    ref = reference(GROUPS.get(model, model))
    generator = gen_weights()
    arrays = generator.generate_state_dict(generator.load_manifest(model), int(ref['ckpt_seed']))
    assert generator.arrays_digest(arrays) == str(ref[f'arrays_sha256_{model}'])
    return arrays


@functools.lru_cache(maxsize=None)
def install(root, defense, model):
    """Converted weights of `model` in `root/<defense>/` (root: a session temp folder)."""
    source = pathlib.Path(root) / f'{model}.source'
    source.write_bytes(b'stands in for the released file')
    store.save(state_dict(model), pathlib.Path(root) / defense, model, source)
    return root


def reference_images(group):
    """The NIPS17 images of a reference, uint8 NHWC."""
    return compare().reference_images(reference(group), str(NIPS17_IMAGES))
