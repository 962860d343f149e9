"""The GPU check (benchmarks/gpu_check.sh): conformance, attack speed, XLA, memory and a
run_attacks.sh smoke run on whatever machine this is, recorded under benchmarks/results/.

On a GPU (synthetic checkpoints throughout; sized for at most 8 minutes on one GPU, not yet
run on one):
  conformance  the model conformance tests (tests/test_models_reference.py,
               test_model_layers.py, test_checkpoint_loading.py) with TF32 off, then
               test_models_reference.py again under XLA (TF_XLA_FLAGS auto-clustering);
  attack       benchmarks.attack_speed at batch 10 (ens, svre/cache, svre/recompute), and
               svre/cache again under XLA: its T = 1 perturbation must agree in sign with
               the plain run's on at least grad_sign_agree_min of the pixels (the
               conformance tolerance of ../shared/slim_reference/compare_reference.py);
  memory       peak GPU memory of si_ti_dim svre at batch 4 (mi_fgsm svre at batch 10 is
               in the attack rows);
  run_attacks  `run_attacks.sh --tables 2 --attacks mi_fgsm` on 10 NIPS17 images.
Without a GPU the same sections run at smoke sizes (one ResNet surrogate at 64 px, two
images, T = 1, M = 1, no XLA), to keep the script working; tests/test_gpu_check.py runs it.
Writes gpu_check_<device>_<UTC time>.json and .md into --results_dir.

It needs TensorFlow in the interpreter that runs it ('.[gpu,test]') and the reference data
(../shared, or $SVRENS_SHARED_DIR: slim_reference/, and nips17/ for run_attacks), and stops
with one message naming what is missing. A machine that gets only the checkout needs both
carried: the slim_reference folder, dev_dataset.csv and the first ten images are about 8 MB,
but TensorFlow's CUDA wheel alone is 572 MB.

    benchmarks/gpu_check.sh [--results_dir benchmarks/results]
"""
import datetime
import json
import os
import pathlib
import platform
import shlex
import subprocess
import sys
import tempfile
import time

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')

from absl import app, flags

from benchmarks import SHARED_DIR, SHARED_DIR_ENV, shared_module, synthetic
from svrens_tf.models import zoo

ROOT = pathlib.Path(__file__).resolve().parents[1]
SECTIONS = ('conformance', 'attack', 'memory', 'run_attacks')
XLA_ENV = {'TF_XLA_FLAGS': '--tf_xla_auto_jit=2'}
NO_TF32 = {'NVIDIA_TF32_OVERRIDE': '0'}
CONFORMANCE_TESTS = ['tests/test_models_reference.py', 'tests/test_model_layers.py',
                     'tests/test_checkpoint_loading.py']

flags.DEFINE_string('results_dir', str(ROOT / 'benchmarks' / 'results'),
                    'Folder receiving the JSON and markdown record.')
flags.DEFINE_list('sections', list(SECTIONS), f'Subset of {list(SECTIONS)} to run.')
flags.DEFINE_enum('sizes', 'auto', ['auto', 'gpu', 'smoke'],
                  'gpu: the full check; smoke: tiny sizes; auto: gpu when TF sees a GPU.')
flags.DEFINE_string('work_dir', None, 'Scratch folder (default: a new temporary one).')
FLAGS = flags.FLAGS


def gpu_name():
    """The first GPU's name as TF sees it, or None (asked in a child: no TF here)."""
    done = subprocess.run([sys.executable, '-c', (
        'import tensorflow as tf; g = tf.config.list_physical_devices("GPU"); '
        'print(tf.config.experimental.get_device_details(g[0]).get("device_name", "GPU") '
        'if g else "")')], capture_output=True, text=True, cwd=ROOT)
    if done.returncode != 0:
        raise SystemExit(f'GPU check: TensorFlow does not import in {sys.executable} (install '
                         f"'.[gpu,test]' there first):\n{done.stderr[-1500:]}")
    return done.stdout.strip() or None


def require_reference_data(sections):
    """Stop, naming the folder, when the reference data the sections read is absent."""
    needed = ['slim_reference'] + (['nips17'] if 'run_attacks' in sections else [])
    missing = [str(SHARED_DIR / name) for name in needed if not (SHARED_DIR / name).is_dir()]
    if missing:
        raise SystemExit(f'GPU check: reference data missing: {", ".join(missing)}. Put '
                         f'../shared beside the checkout or point ${SHARED_DIR_ENV} at a copy '
                         '(the conformance tests would otherwise skip, not fail).')


class Check:
    """Runs commands, keeps what each printed, and collects the record's entries."""

    def __init__(self, work, env):
        self.work, self.env, self.entries = work, env, []

    def run(self, section, name, argv, env=None, timeout_s=900):
        """Run argv in the repository root; returns (exit status, output) and records both."""
        started = time.time()
        try:
            done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True,
                                  timeout=timeout_s, env={**os.environ, **self.env, **(env or {})})
            code, output, errors = done.returncode, done.stdout, done.stderr
        except subprocess.TimeoutExpired as err:
            code, output, errors = 'timeout', str(err.stdout or ''), str(err.stderr or '')
        seconds = time.time() - started
        shown = ' '.join(f'{k}={v}' for k, v in (env or {}).items())
        self.entries.append({'section': section, 'name': name, 'seconds': round(seconds, 1),
                             'exit': code, 'command': f'{shown} {shlex.join(argv)}'.strip(),
                             'stdout_tail': output[-4000:], 'stderr_tail': errors[-2000:]})
        print(f'[{section}] {name}: exit {code}, {seconds:.0f} s', flush=True)
        return code, output

    def note(self, section, name, ok, **facts):
        self.entries.append({'section': section, 'name': name, 'exit': 0 if ok else 1, **facts})
        print(f'[{section}] {name}: {"ok" if ok else "FAILED"} {facts}', flush=True)


def attack_speed(check, section, name, sizes, *args, env=None):
    """benchmarks.attack_speed rows (its --json), or [] when it failed."""
    rows = check.work / f'{name}.json'
    argv = [sys.executable, '-m', 'benchmarks.attack_speed', f'--json={rows}',
            f'--work_dir={check.work / "ckpt"}', '--sweep_m=', *sizes['bench'], *args]
    code, _ = check.run(section, name, argv, env)
    return json.loads(rows.read_text()) if code == 0 else []


def sign_agreement(plain_dir, xla_dir, strategy):
    """Fraction of pixels whose T = 1 perturbation has the same sign in both runs."""
    import numpy as np
    file = strategy.replace('/', '_') + '.npz'
    with np.load(plain_dir / file) as plain, np.load(xla_dir / file) as xla:
        return float(np.mean(np.sign(plain['x_adv'] - plain['x']) ==
                             np.sign(xla['x_adv'] - xla['x'])))


def conformance(check, sizes):
    tests = CONFORMANCE_TESTS if sizes['gpu'] else ['tests/test_model_layers.py']
    check.run('conformance', 'tests (TF32 off)', [sys.executable, '-m', 'pytest', '-q', *tests],
              NO_TF32)
    if sizes['gpu']:
        check.run('conformance', 'tests under XLA', [sys.executable, '-m', 'pytest', '-q',
                                                    'tests/test_models_reference.py'],
                  {**NO_TF32, **XLA_ENV})


def attack(check, sizes):
    compare_reference = shared_module('slim_reference/compare_reference.py')
    plain, xla = check.work / 'adv_plain', check.work / 'adv_xla'
    rows = attack_speed(check, 'attack', 'attack_speed', sizes, f'--outputs_dir={plain}')
    check.entries[-1]['rows'] = rows
    if not sizes['gpu']:
        check.note('attack', 'XLA variant', True, skipped='no GPU')
        return
    xla_rows = attack_speed(check, 'attack', 'attack_speed_xla', sizes,
                            '--strategies=svre/cache', f'--outputs_dir={xla}', env=XLA_ENV)
    check.entries[-1]['rows'] = xla_rows
    if rows and xla_rows:
        agreement = sign_agreement(plain, xla, 'svre/cache')
        bound = compare_reference.TOL['grad_sign_agree_min']
        check.note('attack', 'XLA perturbation sign agreement', agreement >= bound,
                   agreement=agreement, minimum=bound)


def memory(check, sizes):
    rows = attack_speed(check, 'memory', 'si_ti_dim_svre', sizes, '--base=si_ti_dim',
                        f'--batch_size={sizes["si_batch"]}', '--strategies=svre/recompute',
                        '--repeats=1')
    check.entries[-1]['rows'] = rows


def run_attacks(check, sizes):
    dataset = check.work / 'nips17'
    (dataset / 'images').mkdir(parents=True, exist_ok=True)
    lines = (SHARED_DIR / 'nips17' / 'dev_dataset.csv').read_text().splitlines()
    rows = lines[1:1 + sizes['images']]
    (dataset / 'dev_dataset.csv').write_text('\n'.join([lines[0]] + rows) + '\n')
    for row in rows:
        name = row.split(',')[0] + '.png'
        (dataset / 'images' / name).write_bytes((SHARED_DIR / 'nips17' / 'images' / name).read_bytes())
    checkpoints = synthetic.release_folder(zoo.CLASSIFIERS, check.work / 'release',
                                           check.work / 'ckpt')
    results = check.work / 'results'
    code, _ = check.run('run_attacks', f'Table 2 MI-FGSM on {sizes["images"]} images', [
        'bash', 'run_attacks.sh', '--tables', '2', '--attacks', 'mi_fgsm', '--dataset_dir',
        str(dataset), '--checkpoint_dir', str(checkpoints), '--results_dir', str(results),
        *sizes['run_attacks']], {'PYTHON': sys.executable})
    report = results / 'report.md'
    if code == 0 and report.is_file():
        check.entries[-1]['table2'] = report.read_text().split('## Table 2')[1].split('\n## ')[0]


RUNNERS = {'conformance': conformance, 'attack': attack, 'memory': memory,
           'run_attacks': run_attacks}


def markdown(record):
    lines = [f"# GPU check: {record['device']}", '',
             f"{record['date']}, commit {record['commit']}, sizes {record['sizes']}, "
             f"{record['seconds']:.0f} s in all", '',
             '| section | step | exit | seconds | command |', '|---|---|---|---|---|']
    for e in record['entries']:
        lines.append(f"| {e['section']} | {e['name']} | {e['exit']} | {e.get('seconds', '')} "
                     f"| {e.get('command', json.dumps({k: v for k, v in e.items() if k not in ('section', 'name', 'exit')}))} |")
    for e in record['entries']:
        if e.get('rows') is not None or 'table2' in e:
            lines += ['', f"## {e['section']}: {e['name']}", '', '```',
                      e.get('table2') or e['stdout_tail'].split('\n\n', 1)[-1].strip(), '```']
    return '\n'.join(lines) + '\n'


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f'unexpected arguments: {" ".join(argv[1:])}')
    unknown = set(FLAGS.sections) - set(SECTIONS)
    if unknown:
        raise app.UsageError(f'--sections: unknown {", ".join(sorted(unknown))}')
    require_reference_data(FLAGS.sections)
    started = time.time()
    device = gpu_name()
    use_gpu = FLAGS.sizes == 'gpu' or (FLAGS.sizes == 'auto' and device is not None)
    sizes = ({'gpu': True, 'images': 10, 'si_batch': 4, 'bench': ['--batch_size=10'],
              'run_attacks': []} if use_gpu else
             {'gpu': False, 'images': 2, 'si_batch': 1,
              'bench': ['--batch_size=1', '--models=resnet_v2_101', '--image_size=64',
                        '--m_svrg=1', '--repeats=1'],
              'run_attacks': ['--ensembles', 'svre', '--eval_batch_size', '2', '--',
                              '--num_iter', '1', '--m_svrg', '1', '--batch_size', '2']})
    work = pathlib.Path(FLAGS.work_dir or tempfile.mkdtemp(prefix='svrens_gpu_check_'))
    check = Check(work, {'TF_CPP_MIN_LOG_LEVEL': '3', 'PYTHONPATH': str(ROOT)})
    print(f'GPU check on {device if use_gpu else "CPU, smoke sizes"}; scratch {work}', flush=True)
    for section in FLAGS.sections:
        RUNNERS[section](check, sizes)
    commit = subprocess.run(['git', 'rev-parse', '--short', 'HEAD'], cwd=ROOT,
                            capture_output=True, text=True).stdout.strip()
    stamp = datetime.datetime.now(datetime.timezone.utc)
    record = {'device': device or f'CPU ({platform.processor() or platform.machine()}, '
                                  f'{os.cpu_count()} cores)',
              'date': stamp.strftime('%Y-%m-%dT%H:%M:%SZ'), 'commit': commit,
              'sizes': 'gpu' if use_gpu else 'smoke', 'seconds': time.time() - started,
              'load_average': os.getloadavg()[0], 'entries': check.entries}
    out = pathlib.Path(FLAGS.results_dir)
    out.mkdir(parents=True, exist_ok=True)
    base = out / f"gpu_check_{'gpu' if use_gpu else 'cpu_smoke'}_{stamp:%Y%m%dT%H%M%SZ}"
    base.with_suffix('.json').write_text(json.dumps(record, indent=1) + '\n')
    base.with_suffix('.md').write_text(markdown(record))
    failed = [f"{e['section']}: {e['name']}" for e in check.entries if e['exit'] != 0]
    print(f'record: {base}.json, {base}.md; ' +
          (f'FAILED: {"; ".join(failed)}' if failed else 'every step passed'), flush=True)
    return 1 if failed else 0


if __name__ == '__main__':
    app.run(main)
