"""Cost of the deterministic runtime (svrens_tf/runtime.py): the warm step of one strategy with
TensorFlow's default settings and after `runtime.configure()`, in alternating fresh processes
(each measured as benchmarks/attack_speed.py measures a strategy; its flags apply here too).

    python -m benchmarks.determinism_cost --models inception_v3 --rounds 2 --m_svrg 16
"""
import json
import pathlib
import subprocess
import sys

from absl import app, flags

from benchmarks import attack_speed

RUNTIMES = ('default', 'deterministic')
flags.DEFINE_string('strategy', 'svre/cache', f'One of {list(attack_speed.STRATEGIES)}.')
flags.DEFINE_integer('rounds', 2, 'Processes per runtime, alternating; the fastest counts.')
flags.DEFINE_enum('runtime', None, RUNTIMES, 'Internal: measure under this runtime in this '
                  'process and print its result line.')
FLAGS = flags.FLAGS


def measure(runtime_name):
    from svrens_tf import runtime
    settings = runtime.configure() if runtime_name == 'deterministic' else runtime.settings()
    return {**attack_speed.measure(FLAGS.strategy), 'runtime': settings}


def run_child(runtime_name):
    argv = [sys.executable, '-m', 'benchmarks.determinism_cost', *sys.argv[1:],
            f'--runtime={runtime_name}']
    done = subprocess.run(argv, capture_output=True, text=True,
                          cwd=pathlib.Path(__file__).resolve().parents[1])
    lines = [line for line in done.stdout.splitlines()
             if line.startswith(attack_speed.RESULT_PREFIX)]
    if done.returncode or not lines:
        raise RuntimeError(f'{runtime_name} failed ({done.returncode}):\n{done.stderr[-3000:]}')
    return json.loads(lines[-1][len(attack_speed.RESULT_PREFIX):])


def main(_):
    if FLAGS.runtime:
        print(attack_speed.RESULT_PREFIX + json.dumps(measure(FLAGS.runtime)), flush=True)
        return
    attack_speed.checkpoint_paths()  # synthetic checkpoints written before any timing
    warm = {name: [] for name in RUNTIMES}
    settings = {}
    for round_index in range(FLAGS.rounds):
        for name in RUNTIMES:
            row = run_child(name)
            warm[name].append(row['warm_s'] / FLAGS.num_iter)
            settings[name] = row['runtime']
            print(f'round {round_index + 1} {name}: warm step {warm[name][-1]:.2f} s, load '
                  f'average {row["load_average"]:.1f}', flush=True)
    print(f'\n{", ".join(FLAGS.models)}; {FLAGS.strategy}, batch {FLAGS.batch_size}, '
          f'T = {FLAGS.num_iter}, M = {FLAGS.m_svrg}\n')
    print('| runtime | settings | warm s / outer step (fastest of rounds) | vs default |')
    print('|---|---|---|---|')
    for name in RUNTIMES:
        shown = ', '.join(f'{k} {v}' for k, v in settings[name].items() if k != 'gpus')
        print(f'| {name} | {shown} | {min(warm[name]):.2f} '
              f'| {min(warm[name]) / min(warm["default"]):.2f}x |')


if __name__ == '__main__':
    app.run(main)
