"""What bad input gets (issue #11): each case ends with a non-zero exit and one message naming
the file or flag, without a traceback; nothing is written and nothing already there is lost."""
import os
import shutil
import subprocess

import pytest

from svrens_tf import records, report
from svrens_tf.cli import run_attacks
from test_cli import ENV, ROOT, nips  # noqa: F401


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
