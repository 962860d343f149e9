"""Benchmarks and the GPU check. SHARED_DIR: the reference-data folder (../shared beside the
checkout, or $SVRENS_SHARED_DIR, e.g. a copy carried to a machine where ../shared is absent),
and shared_module, which imports that folder's generators and comparers."""
import functools
import importlib.util
import os
import pathlib

SHARED_DIR_ENV = 'SVRENS_SHARED_DIR'
SHARED_DIR = pathlib.Path(os.environ.get(SHARED_DIR_ENV)
                          or pathlib.Path(__file__).resolve().parents[1].parent / 'shared')


@functools.lru_cache(maxsize=None)
def shared_module(relative_path):
    """The Python file SHARED_DIR/`relative_path` (e.g. 'slim_reference/gen_ckpt.py') as a
    module, imported once."""
    path = SHARED_DIR / relative_path
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
