"""svrens-attack / svrens-evaluate as processes, on tiny stand-in models: resume after a kill,
shards, bad inputs (one error, nothing written), evaluation outputs."""
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import tensorflow as tf

from svrens_tf import data

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

class Tiny(tf.Module):
    """Stand-in classifier: a fixed random projection of 23x23-pooled pixels to 1001 logits."""

    def __init__(self, name):
        seed = sum(map(ord, name))
        self.w = tf.constant(np.random.RandomState(seed).randn(507, 1001), tf.float32)

    def __call__(self, x):
        pooled = tf.nn.avg_pool2d(x, 23, 23, 'VALID')
        return tf.matmul(tf.reshape(pooled, [-1, 507]), self.w)


# Runs a CLI with Tiny models in place of the zoo. SLOW_WRITES makes each PNG write take a
# while, so a test can kill the run between two images.
LAUNCHER = textwrap.dedent(f'''
    import os, sys, time
    sys.path.insert(0, {os.path.dirname(os.path.abspath(__file__))!r})
    from svrens_tf import data, pipeline
    from test_cli import Tiny

    pipeline.load_model = lambda name, checkpoint_dir: Tiny(name)
    from svrens_tf.models import zoo
    zoo.ZOO.update({{n: zoo.ZooEntry(n, 'tiny', '') for n in 'abcd'}})  # Tiny's names

    if os.environ.get('SLOW_WRITES'):
        write_png = data.write_png
        def slow_write(path, image):
            write_png(path, image)
            time.sleep(float(os.environ['SLOW_WRITES']))
        data.write_png = slow_write

    program = sys.argv.pop(1)
    if program == 'attack':
        from svrens_tf.cli import attack as cli
    else:
        from svrens_tf.cli import evaluate as cli
    if sys.argv[1:2] != ['--runs']:
        cli.run()
    else:
        # several command lines in one process (one TensorFlow start-up): exit status and
        # message of each, one JSON line per run
        import json
        from absl import app, flags
        for argv in json.loads(sys.argv[2]):
            flags.FLAGS.unparse_flags()
            try:
                cli.main(flags.FLAGS(['cli'] + argv))
                outcome = [0, '']
            except SystemExit as exit:
                outcome = [1, str(exit.code)]
            except app.UsageError as err:
                outcome = [2, str(err)]
            print('RUN ' + json.dumps(outcome), flush=True)
''')

IDS = ['000b7d55b6184b08', '001b5e6f1b89fd3b', '00312c7e7196baf4', '00c3cd597f1ee96f',
       '01244097ca8ffdfa', '0134ba03294509a1', '014f0024918a7b6f']


@pytest.fixture(scope='module')
def launcher(tmp_path_factory):
    path = tmp_path_factory.mktemp('launcher') / 'launch.py'
    path.write_text(LAUNCHER)
    return path


@pytest.fixture(scope='module')
def nips(shared_dir, tmp_path_factory):
    """Seven NIPS17 images (images/ + dev_dataset.csv one folder up, the NIPS17 layout)."""
    root = tmp_path_factory.mktemp('nips')
    (root / 'images').mkdir()
    lines = (shared_dir / 'nips17' / 'dev_dataset.csv').read_text().splitlines()
    kept = [lines[0]] + [line for line in lines[1:] if line.split(',')[0] in IDS]
    assert len(kept) == len(IDS) + 1
    (root / 'dev_dataset.csv').write_text('\n'.join(kept) + '\n')
    for image_id in IDS:
        shutil.copy(shared_dir / 'nips17' / 'images' / f'{image_id}.png', root / 'images')
    return root


ENV = {**os.environ, 'TF_CPP_MIN_LOG_LEVEL': '3',
       'PYTHONPATH': os.pathsep.join(filter(None, [ROOT, os.environ.get('PYTHONPATH')]))}


def command(launcher, program, *args):
    return [sys.executable, str(launcher), program, *args]


def run_cli(launcher, program, *args, env=None):
    result = subprocess.run(command(launcher, program, *args), capture_output=True, text=True,
                            cwd=ROOT, env={**ENV, **(env or {})}, timeout=300)
    return result


ATTACK_ARGS = ['--base=mi_fgsm', '--ensemble=svre', '--num_iter=2', '--m_svrg=2',
               '--batch_size=2', '--models=a,b,c']


def run_many(launcher, program, *argvs):
    """[(status, message)] of each command line, all run in one process."""
    result = run_cli(launcher, program, '--runs', json.dumps(argvs))
    assert result.returncode == 0, result.stderr
    return [tuple(json.loads(line[4:])) for line in result.stdout.splitlines()
            if line.startswith('RUN ')]


def pngs(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.glob('*.png'))}


def assert_complete_pngs(folder):
    for path in folder.glob('*.png'):
        data.check_png(path)


@pytest.fixture(scope='module')
def attacked(launcher, nips, tmp_path_factory):
    """A straight run through the library call behind svrens-attack (pipeline.attack_folder in
    this process, its models from a ModelCache that records each load), the same run in two
    shards by the program (with op determinism on, which must not change a CPU result), and a
    run refused for other settings."""
    from svrens_tf import attacks, pipeline
    tmp_path = tmp_path_factory.mktemp('attacked')
    loads = []
    cache = pipeline.ModelCache(lambda name, checkpoint_dir: loads.append(name) or Tiny(name))
    cfg = attacks.AttackConfig(base='mi_fgsm', ensemble='svre', num_iter=2, m_svrg=2)
    straight = pipeline.attack_folder(nips, tmp_path / 'straight', cfg, ['a', 'b', 'c'],
                                      batch_size=2, models=cache)
    sharded = tmp_path / 'sharded'
    shard = [f'--input_dir={nips}', f'--output_dir={sharded}', '--num_shards=2',
             '--deterministic']
    outcomes = run_many(launcher, 'attack',
                        shard + ['--shard_index=1'] + ATTACK_ARGS,
                        shard + ['--shard_index=0'] + ATTACK_ARGS,
                        shard + ['--shard_index=0'] + ATTACK_ARGS[:-1] + ['--models=a,b'])
    return straight, sharded, outcomes, (cache, loads)


def test_attack_writes_bounded_pngs_and_shards_match(attacked, nips):
    straight, sharded, outcomes, _ = attacked
    assert outcomes[:2] == [(0, '')] * 2
    assert outcomes[2][0] == 1
    assert 'holds a run with other settings (models differ)' in outcomes[2][1]
    reference = pngs(straight)
    assert sorted(reference) == sorted(f'{i}.png' for i in IDS)
    assert pngs(sharded) == reference
    for image_id in IDS:
        adv = data.read_image(straight / f'{image_id}.png').astype(int)
        clean = data.read_image(nips / 'images' / f'{image_id}.png').astype(int)
        assert 0 < np.abs(adv - clean).max() <= 16


def test_resume_after_kill_matches_a_straight_run(launcher, nips, attacked, tmp_path):
    reference = pngs(attacked[0])
    resumed = tmp_path / 'resumed'
    process = subprocess.Popen(
        command(launcher, 'attack', f'--input_dir={nips}', f'--output_dir={resumed}',
                *ATTACK_ARGS),
        cwd=ROOT, env={**ENV, 'SLOW_WRITES': '0.4'},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    while len(list(resumed.glob('*.png'))) < 3 and process.poll() is None:
        assert time.time() < deadline
        if resumed.is_dir():
            assert_complete_pngs(resumed)
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    written = pngs(resumed)
    assert 3 <= len(written) < len(IDS)
    assert_complete_pngs(resumed)
    assert all(reference[name] == payload for name, payload in written.items())

    result = run_cli(launcher, 'attack', f'--input_dir={nips}', f'--output_dir={resumed}',
                     *ATTACK_ARGS)
    assert result.returncode == 0, result.stderr
    assert pngs(resumed) == reference
    assert not [p for p in resumed.iterdir() if p.name.startswith('.')]
    record = json.loads((resumed / 'attack_run.json').read_text())
    assert record['settings']['config']['seed'] == 1000
    assert [run['skipped'] for run in record['invocations']] == [0, len(written) // 2 * 2]
    assert record['invocations'][-1]['gradient_passes'] > 0
    assert 'tensorflow' in record['environment']


def bad_folder(nips, tmp_path, case):
    """A copy of the folder broken in one way; returns the --input_dir to pass."""
    root = tmp_path / case
    shutil.copytree(nips, root)
    images = root / 'images'
    first = images / f'{IDS[0]}.png'
    if case == 'no_csv':
        (root / 'dev_dataset.csv').unlink()
    elif case == 'absent':
        first.unlink()
    elif case == 'unlisted':
        shutil.copy(first, images / 'ffff.png')
    elif case == 'not_png':
        first.write_bytes(b'GIF89a' + b'\0' * 100)
    elif case == 'corrupt':
        first.write_bytes(first.read_bytes()[:3000])
    elif case in ('rgba', 'sixteen_bit', 'size'):
        image = {'rgba': np.full((299, 299, 4), 7, np.uint8),
                 'sixteen_bit': np.full((299, 299, 3), 7, np.uint16),
                 'size': np.full((224, 224, 3), 7, np.uint8)}[case]
        first.write_bytes(tf.io.encode_png(image).numpy())
    elif case == 'bad_id':
        csv = root / 'dev_dataset.csv'
        csv.write_text(csv.read_text().replace(IDS[0], '../' + IDS[0]))
    return root


BAD_CASES = {
    'no_csv': 'no labels csv',
    'absent': f'{IDS[0]}.png: listed in',
    'unlisted': 'ffff.png: image not listed',
    'not_png': f'{IDS[0]}.png: not a PNG file',
    'corrupt': f'{IDS[0]}.png: corrupt PNG',
    'bad_id': 'is not a plain file name',
    'rgba': f'{IDS[0]}.png: RGBA PNG; alpha channels are rejected',
    'sixteen_bit': f'{IDS[0]}.png: 16-bit PNG',
    'size': f'{IDS[0]}.png: 224x224 image, expected 299x299 (pass --resize',
}


def test_bad_inputs_one_error_nothing_written(launcher, nips, tmp_path):
    cases = sorted(BAD_CASES)
    outputs = [tmp_path / f'out_{case}' for case in cases]
    outcomes = run_many(launcher, 'attack', *[
        [f'--input_dir={bad_folder(nips, tmp_path, case)}', f'--output_dir={output}']
        + ATTACK_ARGS for case, output in zip(cases, outputs)])
    for case, output, (status, message) in zip(cases, outputs, outcomes):
        assert status == 1, case
        assert message.startswith('svrens-attack: ') and BAD_CASES[case] in message, message
        assert '\n' not in message
        assert not output.exists(), case


def test_output_equal_to_input_rejected(launcher, nips):
    before = pngs(nips / 'images')
    for output in (nips, nips / 'images'):
        result = run_cli(launcher, 'attack', f'--input_dir={nips}', f'--output_dir={output}',
                         *ATTACK_ARGS)
        assert result.returncode == 1
        assert 'output folder is the input folder' in result.stderr
    assert pngs(nips / 'images') == before
    assert sorted(p.name for p in nips.iterdir()) == ['dev_dataset.csv', 'images']


# An external NIPS17 defense: true labels of the even-indexed images of the clean folder, and
# of the first three images of any other folder; label 1 elsewhere (wrong: no image has it).
ORACLE = textwrap.dedent('''
    import csv, pathlib, sys
    _, _, labels_csv, root, output = sys.argv
    root = pathlib.Path(root)
    labels = {r['ImageId']: r['TrueLabel'] for r in csv.DictReader(open(labels_csv))}
    ids = sorted(p.stem for p in root.glob('*.png'))
    clean = root.name == 'images'
    with open(output, 'w') as f:
        for k, i in enumerate(ids):
            right = k % 2 == 0 if clean else k < 3
            f.write(f"{i},{labels[i] if right else 1}\\n")
''')


def test_evaluate_reports_rates_losses_and_tables(launcher, nips, attacked, tmp_path):
    straight, sharded = attacked[:2]
    oracle = tmp_path / 'oracle.py'
    oracle.write_text(ORACLE)
    out = tmp_path / 'eval'
    result = run_cli(launcher, 'evaluate', f'--clean_dir={nips}',
                     f'--input_dir={straight},{sharded}', '--models=a,d', '--batch_size=3',
                     f'--external_defense=oracle={sys.executable} {oracle} '
                     f'--labels {nips / "dev_dataset.csv"}', f'--output_dir={out}')
    assert result.returncode == 0, result.stderr
    evaluation = json.loads((out / 'evaluation.json').read_text())
    assert evaluation['num_images'] == len(IDS)
    entry = evaluation['folders'][str(straight)]
    assert entry['attack']['config']['base'] == 'mi_fgsm'
    assert 0 < entry['max_perturbation'] <= 16
    oracle_result = entry['results']['oracle']
    assert oracle_result['success_rate'] == pytest.approx(100 * 4 / 7)
    assert oracle_result['num_clean_correct'] == 4
    assert oracle_result['success_rate_clean_correct'] == pytest.approx(50.0)
    assert oracle_result['avg_loss'] is None

    labels = {i: int(line.split(',')[6]) for line in (nips / 'dev_dataset.csv').read_text()
              .splitlines()[1:] for i in [line.split(',')[0]]}
    model = Tiny('d')
    clean = np.stack([data.read_image(nips / 'images' / f'{i}.png') for i in IDS])
    adv = np.stack([data.read_image(straight / f'{i}.png') for i in IDS])
    y = np.array([labels[i] for i in IDS])
    logits = model(tf.constant(adv / 127.5 - 1.0, tf.float32)).numpy()
    loss = tf.nn.sparse_softmax_cross_entropy_with_logits(y, logits).numpy()
    d_result = entry['results']['d']
    assert d_result['success_rate'] == pytest.approx(100 * np.mean(logits.argmax(1) != y))
    assert d_result['avg_loss'] == pytest.approx(loss.mean(), rel=1e-4)
    clean_logits = model(tf.constant(clean / 127.5 - 1.0, tf.float32)).numpy()
    assert evaluation['clean']['d']['accuracy'] == pytest.approx(
        100 * np.mean(clean_logits.argmax(1) == y))

    rows = (out / 'predictions.csv').read_text().splitlines()
    assert len(rows) == 1 + 3 * 2 * len(IDS)
    assert len((out / 'evaluation.csv').read_text().splitlines()) == 1 + 2 * 3
    markdown = (out / 'evaluation.md').read_text()
    assert '| folder | max |delta| | a | d | oracle |' in markdown
    assert f'| {straight} |' in markdown
    record = json.loads((out / 'eval_run.json').read_text())
    assert set(record['invocations'][0]['classifier_seconds']) == {'a', 'd', 'oracle'}


def test_missing_checkpoint_one_error_nothing_written(nips, tmp_path):
    output = tmp_path / 'out'
    result = subprocess.run(
        [sys.executable, '-m', 'svrens_tf.cli.attack', f'--input_dir={nips}',
         f'--output_dir={output}', f'--checkpoint_dir={tmp_path / "empty"}', '--models=inc_v3'],
        capture_output=True, text=True, cwd=ROOT, env=ENV, timeout=300)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith(
        f'svrens-attack: {tmp_path / "empty"}: no such checkpoint')
    assert 'Traceback' not in result.stderr
    assert not output.exists()


def test_steps_sharing_one_model_cache_load_each_model_once(nips, attacked, tmp_path):
    """The attack loaded its three surrogates; an evaluation given the same cache loads only
    the model it has not seen. The library call records the settings the program records."""
    from svrens_tf import pipeline
    straight, sharded, _, (cache, loads) = attacked
    assert loads == ['a', 'b', 'c']
    assert json.loads((straight / 'attack_run.json').read_text())['settings'] == json.loads(
        (sharded / 'attack_run.shard0of2.json').read_text())['settings']
    evaluation = pipeline.evaluate_folders(nips, [straight], tmp_path / 'eval', ['a', 'd'],
                                           batch_size=3, models=cache)
    assert loads == ['a', 'b', 'c', 'd']
    assert set(evaluation['folders'][str(straight)]['results']) == {'a', 'd'}
    assert json.loads((tmp_path / 'eval' / 'evaluation.json').read_text()) == evaluation
