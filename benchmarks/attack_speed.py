"""Attack start-up, throughput, memory and traces: ens, svre/recompute and svre/cache.

Runs one base attack on the Table 1 ensemble (Inc-v3, Inc-v4, IncRes-v2, Res-v2-101 at
299x299) with deterministic synthetic slim checkpoints (../shared/slim_reference, written once
into --work_dir) or the released ones (--checkpoint_dir).  Each strategy runs in a fresh
process, so its start-up and peak memory are its own: process start (interpreter, TF import)
to the first outer step done; the first call (trace, graph optimisation and one run); warm
calls on another batch of the same shape (no retrace; the fastest of --repeats counts); the
first-call overhead (first minus warm call) also in warm outer steps; peak RSS
(ru_maxrss), and on a GPU the peak of TF's GPU allocator.  A last process runs an M sweep (--sweep_m, Figure 2's nine points) with
svre/cache and counts the model traces it made: Python executions of each surrogate's forward
inside a tf.function, i.e. the inlined copies of the model's graph that were traced (beside
the engine's own attacks.trace_count where it has one).  Models are loaded with their batch
norm folded, as pipeline.load_model does.

    TF_ENABLE_ONEDNN_OPTS=1 python -m benchmarks.attack_speed --batch_size 2 --num_iter 1
"""
import collections
import json
import os
import pathlib
import resource
import subprocess
import sys
import tempfile
import time

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')

from absl import app, flags

from benchmarks import synthetic
from svrens_tf import files

TABLE1 = ['inception_v3', 'inception_v4', 'inception_resnet_v2', 'resnet_v2_101']
STRATEGIES = {'ens': dict(ensemble='ens'),
              'svre/recompute': dict(ensemble='svre', outer_grad='recompute'),
              'svre/cache': dict(ensemble='svre', outer_grad='cache')}
SWEEP = 'sweep'
RESULT_PREFIX = 'attack_speed result: '

flags.DEFINE_list('models', TABLE1, 'Surrogate architectures.')
flags.DEFINE_string('checkpoint_dir', None,
                    'Folder with one <arch>/ checkpoint folder per model; synthetic if unset.')
flags.DEFINE_string('work_dir', os.path.join(tempfile.gettempdir(), 'svrens_bench_ckpt'),
                    'Where synthetic checkpoints are written (reused when present).')
flags.DEFINE_string('base', 'mi_fgsm', 'Base attack preset (svrens_tf.attacks.PRESETS).')
flags.DEFINE_list('strategies', list(STRATEGIES), f'Subset of {list(STRATEGIES)}.')
flags.DEFINE_integer('batch_size', 2, 'Images per batch.')
flags.DEFINE_integer('image_size', 299, 'Image side.')
flags.DEFINE_integer('num_iter', 1, 'Outer iterations T.')
flags.DEFINE_integer('m_svrg', 16, 'Inner iterations M.')
flags.DEFINE_integer('repeats', 2, 'Warm calls; the fastest counts.')
flags.DEFINE_list('sweep_m', [str(m) for m in range(0, 33, 4)],
                  'M values of the svre/cache sweep whose traces are counted; empty: no sweep.')
flags.DEFINE_string('json', None, 'Also write the rows as JSON to this file.')
flags.DEFINE_string('outputs_dir', None, 'Also save each strategy\'s warm batch and its '
                    'adversarial images there (<strategy>.npz), e.g. to compare XLA runs.')
flags.DEFINE_string('child', None, 'Internal: measure this strategy (or the sweep) in this '
                    'process and print its result line.')
FLAGS = flags.FLAGS


def process_age():
    """Seconds since this process started (Linux /proc); includes interpreter start-up."""
    with open('/proc/self/stat') as f:
        start_ticks = int(f.read().rsplit(')', 1)[1].split()[19])
    with open('/proc/uptime') as f:
        uptime = float(f.read().split()[0])
    return uptime - start_ticks / os.sysconf('SC_CLK_TCK')


def peak_rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def checkpoint_paths():
    return {arch: (os.path.join(FLAGS.checkpoint_dir, arch) if FLAGS.checkpoint_dir
                   else synthetic.checkpoint(arch, FLAGS.work_dir)) for arch in FLAGS.models}


def count_traces(models_module):
    """Counter {architecture: forward executions inside a tf.function}, from now on."""
    import tensorflow as tf
    counts = collections.Counter()
    for arch, cls in models_module.ARCHITECTURES.items():
        def forward(self, x, _original=cls.forward, _arch=arch):
            if tf.inside_function():
                counts[_arch] += 1
            return _original(self, x)
        cls.forward = forward
    return counts


def measure(name):
    """Result dict of strategy `name` (or the M sweep); runs in its own process."""
    import numpy as np
    import tensorflow as tf
    from svrens_tf import attacks, models

    imported = process_age()
    traces = count_traces(models)
    start = time.perf_counter()
    surrogates = [models.load(arch, path).fold_batch_norm()  # as pipeline.load_model does
                  for arch, path in checkpoint_paths().items()]
    load_s = time.perf_counter() - start
    rng = np.random.RandomState(0)
    shape = (FLAGS.batch_size, FLAGS.image_size, FLAGS.image_size, 3)
    batches = [(rng.uniform(-1, 1, shape).astype(np.float32),
                rng.randint(1, 1001, FLAGS.batch_size)) for _ in range(2)]

    def config(**changes):
        return attacks.AttackConfig(**{'base': FLAGS.base, 'num_iter': FLAGS.num_iter,
                                       'm_svrg': FLAGS.m_svrg, **changes})

    def timed(cfg, batch):
        start_wall, start_cpu = time.perf_counter(), time.process_time()
        result = attacks.attack(surrogates, *batch, cfg)
        result.x_adv.numpy()
        return result, time.perf_counter() - start_wall, time.process_time() - start_cpu

    row = {'strategy': name, 'import_s': imported, 'load_s': load_s}
    if name == SWEEP:
        start = time.perf_counter()
        for m in FLAGS.sweep_m:
            timed(config(**STRATEGIES['svre/cache'], m_svrg=int(m)), batches[0])
        row.update(sweep_s=time.perf_counter() - start, points=len(FLAGS.sweep_m))
    else:
        cfg = config(**STRATEGIES[name])
        _, row['first_s'], _ = timed(cfg, batches[0])
        row['to_first_step_s'] = process_age()
        warm = [timed(cfg, batches[1]) for _ in range(FLAGS.repeats)]
        result, row['warm_s'], row['warm_cpu_s'] = min(warm, key=lambda w: w[1])
        row['passes'] = result.gradient_passes
        if FLAGS.outputs_dir:
            os.makedirs(FLAGS.outputs_dir, exist_ok=True)
            np.savez(os.path.join(FLAGS.outputs_dir, name.replace('/', '_') + '.npz'),
                     x=batches[1][0], x_adv=result.x_adv.numpy())
    if hasattr(attacks, 'trace_count'):  # the engine's own count, where it keeps one
        row['engine_traces'] = sum(attacks.trace_count(s) for s in surrogates)
    row.update(traces=sum(traces.values()), traces_by_model=dict(traces),
               peak_rss_mib=peak_rss_mib(), load_average=os.getloadavg()[0])
    if tf.config.list_physical_devices('GPU'):
        row['peak_gpu_mib'] = tf.config.experimental.get_memory_info('GPU:0')['peak'] / 2 ** 20
    return row


def run_child(name):
    """Run `measure(name)` in a fresh interpreter with this process's flags."""
    argv = [sys.executable, '-m', 'benchmarks.attack_speed', *sys.argv[1:], f'--child={name}']
    done = subprocess.run(argv, capture_output=True, text=True,
                          cwd=pathlib.Path(__file__).resolve().parents[1])
    lines = [line for line in done.stdout.splitlines() if line.startswith(RESULT_PREFIX)]
    if done.returncode or not lines:
        raise RuntimeError(f'{name} failed ({done.returncode}):\n{done.stderr[-3000:]}')
    return json.loads(lines[-1][len(RESULT_PREFIX):])


def print_table(rows):
    per_step = FLAGS.num_iter
    strategies = [r for r in rows if r['strategy'] != SWEEP]
    reference = next((r for r in strategies if r['strategy'] == 'svre/recompute'), None)
    print('\n| strategy | passes | start to first step done s | first call s | warm s / outer '
          'step | CPU s / outer step | first-call overhead s | overhead / warm step '
          '| peak RSS GiB | peak GPU GiB | model traces (engine count) '
          '| speed-up vs svre/recompute (wall, CPU) |')
    print('|---|---|---|---|---|---|---|---|---|---|---|---|')
    for r in strategies:
        overhead = r['first_s'] - r['warm_s']
        gpu = f"{r['peak_gpu_mib'] / 1024:.2f}" if 'peak_gpu_mib' in r else '-'
        speedup = (f"{reference['warm_s'] / r['warm_s']:.2f}x, "
                   f"{reference['warm_cpu_s'] / r['warm_cpu_s']:.2f}x" if reference else '-')
        print(f"| {r['strategy']} | {r['passes']} | {r['to_first_step_s']:.1f} "
              f"| {r['first_s']:.1f} | {r['warm_s'] / per_step:.1f} "
              f"| {r['warm_cpu_s'] / per_step:.1f} | {overhead:.1f} "
              f"| {overhead / (r['warm_s'] / per_step):.1f} | {r['peak_rss_mib'] / 1024:.2f} "
              f"| {gpu} | {r['traces']} ({r.get('engine_traces', '-')}) | {speedup} |")
    for r in rows:
        if r['strategy'] == SWEEP:
            print(f"\nM sweep (svre/cache, M = {','.join(FLAGS.sweep_m)}): {r['points']} runs in "
                  f"{r['sweep_s']:.1f} s, {r['traces']} model traces (engine count "
                  f"{r.get('engine_traces', '-')}) "
                  f"({', '.join(f'{k} {v}' for k, v in sorted(r['traces_by_model'].items()))}), "
                  f"peak RSS {r['peak_rss_mib'] / 1024:.2f} GiB")


def main(_):
    if FLAGS.child:
        print(RESULT_PREFIX + json.dumps(measure(FLAGS.child)), flush=True)
        return
    checkpoint_paths()  # synthetic checkpoints written before any timing
    onednn = os.environ.get('TF_ENABLE_ONEDNN_OPTS', 'unset')
    print(f'{len(FLAGS.models)} models, base {FLAGS.base}, batch {FLAGS.batch_size}, '
          f'T = {FLAGS.num_iter}, M = {FLAGS.m_svrg}; TF_ENABLE_ONEDNN_OPTS={onednn}; '
          f'{os.cpu_count()} CPUs; each strategy in its own process', flush=True)
    rows = []
    for name in FLAGS.strategies + ([SWEEP] if FLAGS.sweep_m else []):
        rows.append(run_child(name))
        print(f"{name}: done, load average {rows[-1]['load_average']:.1f}", flush=True)
        if FLAGS.json:  # after every child, so a stopped run keeps the rows it measured
            files.write_atomic(FLAGS.json, json.dumps(rows, indent=1) + '\n')
    print_table(rows)


if __name__ == '__main__':
    app.run(main)
