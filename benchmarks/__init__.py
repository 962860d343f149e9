"""Benchmarks and the GPU check. SHARED_DIR: the reference-data folder (../shared beside the
checkout, or $SVRENS_SHARED_DIR, e.g. a copy carried to a machine where ../shared is absent)."""
import os
import pathlib

SHARED_DIR_ENV = 'SVRENS_SHARED_DIR'
SHARED_DIR = pathlib.Path(os.environ.get(SHARED_DIR_ENV)
                          or pathlib.Path(__file__).resolve().parents[1].parent / 'shared')
