"""Deterministic synthetic slim checkpoints for the benchmarks (../shared/slim_reference).

The seed-1234 arrays of ../shared/slim_reference/gen_ckpt.py, the same the conformance tests
load, so a benchmark's models are the tested ones; written once per folder and reused.
"""
import importlib.util
import json
import pathlib
import tarfile

from benchmarks import SHARED_DIR

SLIM_REFERENCE = SHARED_DIR / 'slim_reference'
SEED = 1234


def checkpoint(arch, work_dir):
    """Prefix of `arch`'s synthetic checkpoint under `work_dir`/<arch>/, written on first use."""
    prefix = pathlib.Path(work_dir) / arch / 'model.ckpt'
    if not prefix.with_suffix('.ckpt.index').exists():
        spec = importlib.util.spec_from_file_location('gen_ckpt', SLIM_REFERENCE / 'gen_ckpt.py')
        gen_ckpt = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(gen_ckpt)
        manifest = json.loads((SLIM_REFERENCE / f'{arch}.manifest.json').read_text())
        prefix.parent.mkdir(parents=True, exist_ok=True)
        gen_ckpt.write_tf1_checkpoint(gen_ckpt.generate_arrays(manifest, SEED), str(prefix))
    return str(prefix)


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
