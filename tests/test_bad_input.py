"""What bad input gets (issue #11): each case ends with a non-zero exit and one message naming
the file or flag, without a traceback; nothing is written and nothing already there is lost.

Program cases run several command lines per process (test_cli's launcher, Tiny models in place
of the zoo) so TensorFlow starts rarely."""
import json
import os
import shutil
import subprocess
import sys
import textwrap

import pytest

from svrens_tf import evaluate, records, report
from svrens_tf.cli import run_attacks
from test_cli import ATTACK_ARGS, ENV, IDS, ROOT, launcher, nips, pngs, run_cli  # noqa: F401

# Takes svrens-attack's lock of argv[1] (as a running attack does), says so, sleeps.
HOLDER = '''
import sys, time
from svrens_tf import files
with files.folder_lock(sys.argv[1], 'attack_run'):
    print('locked', flush=True)
    time.sleep(120)
'''


def outcomes(launcher, program, argvs, env=None):
    """[(status, message)] of each command line run in one process, and that process's stdout;
    the process itself must end cleanly and print no traceback."""
    result = run_cli(launcher, program, '--runs', json.dumps(argvs), env=env)
    assert result.returncode == 0 and 'Traceback' not in result.stderr, result.stderr
    runs = [tuple(json.loads(line[4:])) for line in result.stdout.splitlines()
            if line.startswith('RUN ')]
    assert len(runs) == len(argvs)
    return runs, result.stdout


def assert_one_error(status, message, expected):
    assert status != 0, message
    assert expected in message, message
    assert '\n' not in message and 'Traceback' not in message


def snapshot(folder):
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob('*'))
            if p.is_file()}


def test_attack_settings_and_folders(launcher, nips, tmp_path):
    before = snapshot(nips)
    busy = tmp_path / 'busy'
    busy.mkdir()
    holder = subprocess.Popen([sys.executable, '-c', HOLDER, str(busy)], cwd=ROOT, env=ENV,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == 'locked\n'
        base = [f'--input_dir={nips}'] + ATTACK_ARGS
        cases = [
            ('max_epsilon_negative', ['--max_epsilon=-4'], 'max_epsilon'),
            ('max_epsilon_300', ['--max_epsilon=300'], 'max_epsilon'),
            ('alpha_negative', ['--alpha=-5'], 'alpha'),
            ('num_iter_0', ['--num_iter=0'], 'num_iter'),
            ('max_epsilon_nan', ['--max_epsilon=nan'], 'max_epsilon'),
            ('unknown_model', ['--models=inc_v9'], '--models: unknown model inc_v9; zoo names: '
                                                   'inc_v3, inc_v4'),
        ]
        argvs = [base + extra + [f'--output_dir={tmp_path / name}'] for name, extra, _ in cases]
        argvs.append([f'--input_dir={nips / "images"}', f'--output_dir={nips}', *ATTACK_ARGS])
        argvs.append(base + [f'--output_dir={busy}'])
        argvs.append(base + [f'--output_dir={tmp_path / "max_epsilon_nan"}'])  # not blocked
        runs, _ = outcomes(launcher, 'attack', argvs)
    finally:
        holder.kill()
        holder.wait()
    for (name, _, expected), (status, message) in zip(cases, runs):
        assert_one_error(status, message, expected)
        assert not (tmp_path / name).exists() or name == 'max_epsilon_nan', name
    assert_one_error(*runs[len(cases)], f'{nips}: output folder holds the labels csv '
                                        'dev_dataset.csv; a later run would read PNGs written '
                                        'beside it as clean images')
    assert_one_error(*runs[len(cases) + 1], f'svrens-attack: {busy}: -c (pid {holder.pid}) is '
                                            'writing into this folder')
    assert runs[-1] == (0, '')  # --max_epsilon nan left nothing that blocks the folder
    assert len(pngs(tmp_path / 'max_epsilon_nan')) == len(IDS)
    assert snapshot(nips) == before
    assert [p.name for p in busy.iterdir()] == ['.attack_run.lock']  # the holder's, untouched


# An external defense that fails after printing binary junk, and one that labels every
# image 1 (after the crash is fixed).
CRASH = 'import sys\nsys.stdout.buffer.write(bytes(range(256)))\nsys.exit("out of memory")\n'
ONES = textwrap.dedent('''
    import pathlib, sys
    ids = sorted(p.stem for p in pathlib.Path(sys.argv[1]).glob('*.png'))
    pathlib.Path(sys.argv[2]).write_text(''.join(f'{i},1\\n' for i in ids))
''')


def test_evaluation_checks_prerequisites_first_and_keeps_what_it_finished(launcher, nips,
                                                                          tmp_path):
    crash, ones = tmp_path / 'crash.py', tmp_path / 'ones.py'
    crash.write_text(CRASH)
    ones.write_text(ONES)
    adv = nips / 'images'  # the clean folder stands in for an attack folder here
    base = [f'--clean_dir={nips}', f'--input_dir={adv}', '--models=a,d', '--batch_size=4']
    out = tmp_path / 'eval'
    cases = [
        ('comdefend', ['--defenses=comdefend', f'--checkpoint_dir={tmp_path / "none"}'],
         f'comdefend: no ComDefend weights in {tmp_path / "none" / "comdefend"}'),
        ('missing_program', ['--external_defense=x=/no/such/defense.sh'],
         "external defense x: cannot run '/no/such/defense.sh'"),
        ('unknown_model', ['--models=a,inc_v9'], '--models: unknown model inc_v9'),
    ]
    argvs = [base + extra + [f'--output_dir={tmp_path / name}'] for name, extra, _ in cases]
    argvs.append(base + ['--output_dir=/sys/kernel/svrens_eval'])
    argvs.append(base + [f'--external_defense=crash={sys.executable} {crash}',
                         f'--output_dir={out}'])
    runs, _ = outcomes(launcher, 'evaluate', argvs)
    for (name, _, expected), (status, message) in zip(cases, runs):
        assert_one_error(status, message, expected)
        assert not (tmp_path / name).exists(), name
    assert_one_error(*runs[3], '/sys/kernel/svrens_eval: cannot write there')
    status, message = runs[4]  # a crash in the last classifier: its stderr tail comes along
    assert status == 1 and 'exited with status 1; stderr ends:\nout of memory' in message
    assert sorted(p.name for p in out.iterdir()) == [evaluate.PROGRESS_FILE]
    saved = json.loads((out / evaluate.PROGRESS_FILE).read_text())['classifiers']
    assert sorted(saved) == ['a', 'd']

    progress = (out / evaluate.PROGRESS_FILE).read_bytes()
    corrupt = tmp_path / 'corrupt'
    corrupt.mkdir()
    (corrupt / evaluate.PROGRESS_FILE).write_bytes(progress[:len(progress) // 2])
    runs, stdout = outcomes(launcher, 'evaluate', [
        base + [f'--external_defense=ones={sys.executable} {ones}', f'--output_dir={out}'],
        base + [f'--output_dir={corrupt}']])
    assert runs[0] == (0, '')
    assert f'a: kept from {evaluate.PROGRESS_FILE} (same settings)' in stdout
    assert f'd: kept from {evaluate.PROGRESS_FILE} (same settings)' in stdout
    evaluation = json.loads((out / 'evaluation.json').read_text())
    assert list(evaluation['clean']) == ['a', 'd', 'ones']
    assert evaluation['clean']['ones']['accuracy'] == 0.0
    assert_one_error(*runs[1], f'{corrupt / evaluate.PROGRESS_FILE}: unreadable')
    assert sorted(p.name for p in corrupt.iterdir()) == [evaluate.PROGRESS_FILE]


def console_script(tmp_path, program):
    """The wrapper pip writes for a console_scripts entry (its own module has no docstring)."""
    path = tmp_path / f'svrens-{program}'
    path.write_text(f'#!{sys.executable}\nimport sys\nfrom svrens_tf.cli.{program} import run\n'
                    'sys.exit(run())\n')
    path.chmod(0o755)
    return path


def test_help_shows_each_programs_own_flags_and_no_tensorflow_start_up_lines(tmp_path):
    env = {k: v for k, v in ENV.items() if k != 'TF_CPP_MIN_LOG_LEVEL'}
    expected = {'attack': ['--input_dir', '--max_epsilon', '--num_shards'],
                'evaluate': ['--clean_dir', '--defenses', '--external_defense'],
                'report': ['--results_dir', '--output'],
                'download': ['--dataset', '--dataset_url', '--models']}
    processes = {program: subprocess.Popen([str(console_script(tmp_path, program)), '--help'],
                                           cwd=tmp_path, env=env, text=True,
                                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                 for program in expected}
    for program, process in processes.items():
        stdout, stderr = process.communicate(timeout=300)
        assert process.returncode == 1, stderr  # absl's --help exit status
        assert stdout.startswith(f'svrens-{program}: '), stdout[:200]
        ours = stdout.split('\nflags:\n', 1)[1].split('Try --helpfull')[0]
        for flag in expected[program]:
            assert f'  {flag}:' in ours, (program, flag)
        assert '--alsologtostderr' not in stdout  # absl's own flags only with --helpfull
        assert stderr == '', stderr  # no oneDNN / cpu_feature_guard / absl start-up lines


@pytest.mark.parametrize('args, message', [
    (['--tables'], 'argument --tables: expected one argument'),
    (['--tables', '5'], "argument --tables: '5': tables from (1, 2, 3)"),
    (['--attacks', 'mi_fsgm'], "argument --attacks: 'mi_fsgm': choose from i_fgsm, mi_fgsm"),
])
def test_run_attacks_arguments_are_refused_before_anything_runs(tmp_path, args, message):
    result = subprocess.run(['bash', os.path.join(ROOT, 'run_attacks.sh'), *args,
                             f'--results_dir={tmp_path / "results"}',
                             f'--dataset_dir={tmp_path / "data"}'],
                            capture_output=True, text=True, env=ENV, timeout=120)
    assert result.returncode == 2
    assert result.stderr.splitlines()[-1].startswith(f'run_attacks.sh: error: {message}'), \
        result.stderr
    assert 'Traceback' not in result.stderr and list(tmp_path.iterdir()) == []


def test_run_attacks_plan_builder_checks_before_fetching(tmp_path, capsys):
    data_dir = tmp_path / 'data'
    (data_dir / 'images').mkdir(parents=True)
    (data_dir / 'dev_dataset.csv').write_text('ImageId,URL,TrueLabel,TargetClass\nabc,x,3,4\n')
    common = ['--dry_run', f'--results_dir={tmp_path / "results"}',
              f'--dataset_dir={tmp_path / "none"}']
    cases = [
        (['--', '--max_epsilon', '-4'], 'AttackConfig.max_epsilon=-4.0: must be a finite number '
                                        'in (0, 255]'),
        (['--', '--num_iters', '5'], '-- --num_iters=5: run_attacks.sh passes svrens-attack '
                                     'only AttackConfig fields'),
        (['--tables', '3', '--defenses', 'jpeg,jpg'], '--defenses: unknown jpg; choose from'),
        (['--tables', '3', '--defense_option', 'jpeg.qualty=75'], "jpeg has no option 'qualty'"),
        (['--external_defense', 'hgd'], "--external_defense 'hgd': expected NAME=COMMAND"),
        (['--external_defense', 'hgd=/no/run.sh'], "cannot run '/no/run.sh'"),
        ([f'--dataset_dir={data_dir}'],
         f'{data_dir / "images" / "abc.png"}: listed in {data_dir / "dev_dataset.csv"} but '
         f'missing (1 of 1 missing); get the NIPS17 DEV set'),
    ]
    for args, expected in cases:
        with pytest.raises(SystemExit) as end:
            run_attacks.main(common + args)
        assert expected in str(end.value.code), (args, end.value.code)
        assert str(end.value.code).startswith('run_attacks.sh: ')
    message = str(end.value.code)
    for way in (f'svrens-download --dataset {data_dir} (online)', '--dataset_url file:///',
                '--dataset_dir (run_attacks.sh)'):
        assert way in message
    assert sorted(p.name for p in tmp_path.iterdir()) == ['data']  # nothing made or fetched
    assert capsys.readouterr().out == ''


def test_output_folders_that_would_change_the_clean_set_are_refused(nips, tmp_path):
    from svrens_tf import data
    root = tmp_path / 'copy'
    shutil.copytree(nips, root)
    dataset = data.load_dataset(root)
    (tmp_path / 'other' / 'images').mkdir(parents=True)
    (tmp_path / 'labelled').mkdir()
    (tmp_path / 'labelled' / 'val_rs.csv').write_text('filename,label\n')
    for output, message in [(root, 'output folder is the input folder'),
                            (tmp_path / 'other', 'output folder holds an images/ folder'),
                            (tmp_path / 'labelled', 'output folder holds the labels csv '
                                                    'val_rs.csv'),
                            ('/sys/kernel/x/y', 'cannot write there')]:
        with pytest.raises(data.DataError, match=message):
            data.check_output_dir(output, root, dataset)
    with pytest.raises(data.DataError, match='labels csv dev_dataset.csv'):
        data.check_output_dir(root, root / 'images', data.load_dataset(root / 'images'))
    assert data.check_output_dir(root / 'images' / 'adv', root, dataset) == \
        root / 'images' / 'adv'  # below the images: the clean set stays what it is


def test_a_corrupt_evaluation_or_run_record_is_named(tmp_path):
    from svrens_tf import data
    evaluation = tmp_path / 'table2' / 'seed1000' / 'evaluation.json'
    evaluation.parent.mkdir(parents=True)
    evaluation.write_text('{"num_images": 3, "folders": {"a": ')
    with pytest.raises(report.ReportError, match=rf'^{evaluation}: not an evaluation.json'):
        report.read_evaluation(evaluation)
    (tmp_path / 'attack_run.json').write_text('[1, 2]')
    with pytest.raises(data.DataError, match=rf'^{tmp_path / "attack_run.json"}: unreadable run '
                                             r'record \(not a JSON object\)'):
        records.attack_settings(tmp_path)
