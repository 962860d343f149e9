"""Attack throughput and gradient-pass counts: ens, svre/recompute and svre/cache.

Runs one base attack on the Table 1 ensemble (Inc-v3, Inc-v4, IncRes-v2, Res-v2-101 at
299x299) with deterministic synthetic slim checkpoints (../shared/slim_reference, written once
into --work_dir) or the released ones (--checkpoint_dir).  For each strategy it times the
first call (trace, graph optimisation and one run) and a warm call on another batch of the
same shape (no retrace); warm calls then run in --repeats rounds that alternate the
strategies, so load drifting on a shared machine hits them alike, and the fastest round
counts.  Prints a markdown table: passes counted by the attack, warm wall and CPU seconds
per outer step (CPU time is the steadier measure on a loaded machine), passes and images per
second, and speed-up over svre/recompute.

    TF_ENABLE_ONEDNN_OPTS=1 python -m benchmarks.attack_speed --batch_size 2 --num_iter 1
"""
import importlib.util
import json
import os
import pathlib
import tempfile
import time

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')

import numpy as np
from absl import app, flags

from svrens_tf import attacks, models

SLIM_REFERENCE = pathlib.Path(__file__).resolve().parents[1].parent / 'shared' / 'slim_reference'
TABLE1 = ['inception_v3', 'inception_v4', 'inception_resnet_v2', 'resnet_v2_101']
STRATEGIES = {'ens': dict(ensemble='ens'),
              'svre/recompute': dict(ensemble='svre', outer_grad='recompute'),
              'svre/cache': dict(ensemble='svre', outer_grad='cache')}

flags.DEFINE_list('models', TABLE1, 'Surrogate architectures.')
flags.DEFINE_string('checkpoint_dir', None,
                    'Folder with one <arch>/ checkpoint folder per model; synthetic if unset.')
flags.DEFINE_string('work_dir', os.path.join(tempfile.gettempdir(), 'svrens_bench_ckpt'),
                    'Where synthetic checkpoints are written (reused when present).')
flags.DEFINE_enum('base', 'mi_fgsm', sorted(attacks.PRESETS), 'Base attack preset.')
flags.DEFINE_list('strategies', list(STRATEGIES), f'Subset of {list(STRATEGIES)}.')
flags.DEFINE_integer('batch_size', 2, 'Images per batch.')
flags.DEFINE_integer('image_size', 299, 'Image side.')
flags.DEFINE_integer('num_iter', 1, 'Outer iterations T.')
flags.DEFINE_integer('m_svrg', 16, 'Inner iterations M.')
flags.DEFINE_integer('repeats', 2, 'Rounds of warm calls; the fastest counts.')
FLAGS = flags.FLAGS


def synthetic_checkpoint(arch):
    """Prefix of the seed-1234 synthetic slim checkpoint of `arch`, written on first use."""
    prefix = pathlib.Path(FLAGS.work_dir) / arch / 'model.ckpt'
    if not prefix.with_suffix('.ckpt.index').exists():
        spec = importlib.util.spec_from_file_location('gen_ckpt', SLIM_REFERENCE / 'gen_ckpt.py')
        gen_ckpt = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(gen_ckpt)
        manifest = json.loads((SLIM_REFERENCE / f'{arch}.manifest.json').read_text())
        prefix.parent.mkdir(parents=True, exist_ok=True)
        gen_ckpt.write_tf1_checkpoint(gen_ckpt.generate_arrays(manifest, 1234), str(prefix))
    return str(prefix)


def timed_attack(surrogates, x, y, cfg):
    """(result, wall seconds, CPU seconds of this process) of one attack call."""
    start, start_cpu = time.perf_counter(), time.process_time()
    result = attacks.attack(surrogates, x, y, cfg)
    result.x_adv.numpy()
    return result, time.perf_counter() - start, time.process_time() - start_cpu


def main(_):
    paths = {arch: (os.path.join(FLAGS.checkpoint_dir, arch) if FLAGS.checkpoint_dir
                    else synthetic_checkpoint(arch)) for arch in FLAGS.models}
    start = time.perf_counter()
    surrogates = [models.load(arch, path) for arch, path in paths.items()]
    startup = time.perf_counter() - start
    rng = np.random.RandomState(0)
    shape = (FLAGS.batch_size, FLAGS.image_size, FLAGS.image_size, 3)
    batches = [(rng.uniform(-1, 1, shape).astype(np.float32),
                rng.randint(1, 1001, FLAGS.batch_size)) for _ in range(2)]
    print(f'{len(surrogates)} models built and loaded in {startup:.1f} s; base {FLAGS.base}, '
          f'batch {FLAGS.batch_size}, T = {FLAGS.num_iter}, M = {FLAGS.m_svrg}', flush=True)
    configs = {name: attacks.AttackConfig(base=FLAGS.base, num_iter=FLAGS.num_iter,
                                          m_svrg=FLAGS.m_svrg, **STRATEGIES[name])
               for name in FLAGS.strategies}
    first, warm, cpu, passes = {}, {}, {}, {}
    for name, cfg in configs.items():
        _, first[name], _ = timed_attack(surrogates, *batches[0], cfg)
        print(f'{name}: first call {first[name]:.1f} s', flush=True)
    for round_index in range(FLAGS.repeats):
        for name, cfg in configs.items():
            result, seconds, cpu_seconds = timed_attack(surrogates, *batches[1], cfg)
            passes[name] = result.gradient_passes
            if seconds < warm.get(name, float('inf')):
                warm[name], cpu[name] = seconds, cpu_seconds
            print(f'{name}: warm round {round_index}: {seconds:.1f} s wall, '
                  f'{cpu_seconds:.1f} s CPU, load {os.getloadavg()[0]:.1f}', flush=True)
    reference = warm.get('svre/recompute')
    reference_cpu = cpu.get('svre/recompute')
    print('\n| strategy | passes | first call s | warm s / outer step | CPU s / outer step '
          '| passes / s | images / s | speed-up vs svre/recompute (wall, CPU) |')
    print('|---|---|---|---|---|---|---|---|')
    for name in configs:
        speedup = (f'{reference / warm[name]:.2f}x, {reference_cpu / cpu[name]:.2f}x'
                   if reference else '-')
        print(f'| {name} | {passes[name]} | {first[name]:.1f} '
              f'| {warm[name] / FLAGS.num_iter:.1f} | {cpu[name] / FLAGS.num_iter:.1f} '
              f'| {passes[name] / warm[name]:.2f} | {FLAGS.batch_size / warm[name]:.3f} '
              f'| {speedup} |')


if __name__ == '__main__':
    app.run(main)
