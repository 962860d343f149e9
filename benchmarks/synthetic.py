"""Deterministic synthetic slim checkpoints for the benchmarks (../shared/slim_reference).

The seed-1234 (SEED) arrays of ../shared/slim_reference/gen_ckpt.py, the same the conformance
tests load, so a benchmark's models are the tested ones; written once per folder and reused.
SEED is also the seed of the ../shared/torch_reference state dicts the defense benchmark uses.
"""
import json
import pathlib
import tarfile

from benchmarks import SHARED_DIR, shared_module

SLIM_REFERENCE = SHARED_DIR / 'slim_reference'
SEED = 1234


def checkpoint(arch, work_dir):
    """Prefix of `arch`'s synthetic checkpoint under `work_dir`/<arch>/, written on first use."""
    prefix = pathlib.Path(work_dir) / arch / 'model.ckpt'
    if not prefix.with_suffix('.ckpt.index').exists():
        gen_ckpt = shared_module('slim_reference/gen_ckpt.py')
        prefix.parent.mkdir(parents=True, exist_ok=True)
        gen_ckpt.write_tf1_checkpoint(gen_ckpt.generate_arrays(manifest(arch), SEED), str(prefix))
    return str(prefix)


def manifest(arch):
    """`arch`'s variable manifest (names, shapes, dtypes) from the slim reference folder."""
    return json.loads((SLIM_REFERENCE / f'{arch}.manifest.json').read_text())


def release_folder(names, folder, work_dir):
    """`folder` holding, under each zoo model's release tarball name, the synthetic checkpoint
    of its architecture (what svrens-download installs from); returns `folder`."""
    from svrens_tf.models.zoo import ZOO
    folder = pathlib.Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        prefix = pathlib.Path(checkpoint(ZOO[name].arch, work_dir))
        tarball = folder / ZOO[name].archive
        if not tarball.exists():
            with tarfile.open(tarball, 'w') as tar:
                for part in sorted(prefix.parent.glob(prefix.name + '.*')):
                    tar.add(part, arcname=part.name)
    return folder
