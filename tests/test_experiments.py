"""svrens_tf.experiments: the plan behind run_attacks.sh (no model is loaded, nothing runs)."""
import dataclasses
import re

import pytest

from svrens_tf import experiments
from svrens_tf.cli import run_attacks

NORMAL = ['inc_v3', 'inc_v4', 'incres_v2', 'res_v2_101']
ADV = ['ens3_adv_inc_v3', 'ens4_adv_inc_v3', 'ens_adv_incres_v2']


def plan(tmp_path, *args):
    options, _ = run_attacks.parse(
        ['--results_dir', str(tmp_path / 'results'), '--dataset_dir', str(tmp_path / 'nips'),
         *map(str, args)])
    return experiments.build_plan(options)


def attacks(steps):
    return [s for s in steps if s.program == 'attack']


def evaluation(steps, experiment, seed=1000):
    [step] = [s for s in steps if s.program == 'evaluate'
              and s.flag('output_dir').endswith(f'/{experiment}/seed{seed}')]
    return step


def config(step):
    return experiments.attack_config(step.flags)


def test_figure4_plan_matches_the_papers_design_and_cost(tmp_path, capsys):
    assert run_attacks.main(['--figures', '4', '--dry_run', '--results_dir',
                             str(tmp_path / 'results'), '--dataset_dir',
                             str(tmp_path / 'nips')]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert not (tmp_path / 'results').exists()
    steps = plan(tmp_path, '--figures', 4)
    assert [s.command() for s in steps] == [line.split('  # ')[0] for line in lines[:-1]]
    runs = [(config(s).ensemble, config(s).num_iter, config(s).alpha, config(s).inner_steps)
            for s in attacks(steps)]
    assert runs == [('ens', t, 16 / t, 0) for t in range(10, 100, 10)] + \
                   [('svre', t, 16 / t, 16) for t in range(1, 11)]
    assert all(config(s).base == 'mi_fgsm' and s.flag('models') == ','.join(NORMAL)
               for s in attacks(steps))
    # passes per image: Ens K per iteration; SVR-Ens-MI (cache) 2K + M per iteration
    expected = 4 * sum(range(10, 100, 10)) + (2 * 4 + 16) * sum(range(1, 11))
    assert sum(s.passes_per_image for s in attacks(steps)) == expected
    images = experiments.NIPS17_DEV_IMAGES      # no dataset yet: the DEV set's size
    assert lines[-1].startswith(f'# total: 19 attack runs on {images} images, '
                                f'{expected * images:,} single-model gradient passes')
    fig4 = evaluation(steps, 'fig4')
    assert fig4.flag('input_dir').split(',') == [s.flag('output_dir') for s in attacks(steps)]
    assert fig4.flag('models') == ','.join(ADV)
    assert [s.program for s in steps] == ['download', 'download'] + ['attack'] * 19 + \
        ['evaluate', 'report']


def test_default_plan_runs_each_setting_once_and_evaluates_what_it_attacks(tmp_path):
    steps = plan(tmp_path)
    runs = attacks(steps)
    outputs = [s.flag('output_dir') for s in runs]
    assert len(set(outputs)) == len(outputs)
    keys = [(s.flag('models'), repr(config(s))) for s in runs]
    assert len(set(keys)) == len(keys)
    evaluated = {f for s in steps if s.program == 'evaluate'
                 for f in s.flag('input_dir').split(',')}
    assert evaluated == set(outputs)
    # Table 1: 4 hold-outs x 5 bases x {ens, svre}; Tables 2/3: 10 runs of all four models
    holdout = [s for s in runs if '/holdout_' in s.flag('output_dir')]
    assert len(holdout) == 40 and all(len(s.flag('models').split(',')) == 3 for s in holdout)
    table2 = evaluation(steps, 'table2').flag('input_dir').split(',')
    assert evaluation(steps, 'table3').flag('input_dir').split(',') == table2
    assert len(table2) == 10
    # Figure 2 per base: M = 0 (Table 2's Ens run), 4, ..., 32 (16: Table 2's SVR-Ens run)
    by_output = {s.flag('output_dir'): s for s in runs}
    fig2 = [config(by_output[f]) for f in evaluation(steps, 'fig2').flag('input_dir').split(',')]
    for base in ('i_fgsm', 'mi_fgsm', 'si_ti_dim'):
        assert [c.inner_steps for c in fig2 if c.base == base] == list(range(0, 33, 4))
    fig3 = [config(by_output[f]) for f in evaluation(steps, 'fig3').flag('input_dir').split(',')]
    assert [c.beta for c in fig3 if c.base == 'si_ti_dim'] == [
        0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 6.4, 12.8, 25.6]
    assert set(table2) & set(evaluation(steps, 'fig4').flag('input_dir').split(',')) == {
        f for f in table2 if f.endswith(('/ens_mi_fgsm/seed1000', '/svre_mi_fgsm/seed1000'))}
    assert [s.flag('models') for s in steps if s.program == 'download'] == [None, 'all', None]
    assert [s.flag('defense') for s in steps if s.program == 'download'][-1] == \
        'hgd,nrp,rs,comdefend'
    assert steps[-1].program == 'report'


def test_smoke_flags_reach_every_attack_but_the_figures_sweeps_win(tmp_path):
    steps = plan(tmp_path, '--figures', '2,4', '--seeds', 2, '--',
                 '--num_iter', 1, '--m_svrg=1', '--batch_size', 2, '--deterministic')
    runs = attacks(steps)
    assert all(('batch_size', '2') in s.flags and ('deterministic', None) in s.flags
               for s in runs)
    assert '--deterministic' in runs[0].argv()
    fig2 = [config(s) for s in runs if re.search(r'_m\d+/seed1001$', s.flag('output_dir'))]
    assert sorted({c.m_svrg for c in fig2}) == list(range(4, 33, 4))
    assert {c.num_iter for c in fig2} == {1}
    by_output = {s.flag('output_dir'): s for s in runs}
    fig4 = [config(by_output[f]) for f in evaluation(steps, 'fig4', 1000).flag('input_dir')
            .split(',')]
    assert [c.num_iter for c in fig4] == list(range(10, 100, 10)) + list(range(1, 11))
    # SVR-Ens-MI-FGSM at T = 1, M = 16 is also Figure 2's M = 16 point under these flags
    assert by_output[evaluation(steps, 'fig4', 1000).flag('input_dir').split(',')[9]] is \
        by_output[evaluation(steps, 'fig2', 1000).flag('input_dir').split(',')[13]]
    assert {s.flag('seed') for s in runs} == {1000, 1001}


@pytest.mark.parametrize('args', [['--tables', '4'], ['--attacks', 'foo'], ['--seeds', '0'],
                                  ['--ensembles', '']])
def test_bad_options_are_refused(args, capsys):
    with pytest.raises(SystemExit) as exit_info:
        run_attacks.parse(args)
    assert exit_info.value.code == 2
    assert args[0] in capsys.readouterr().err


def test_each_flag_sets_its_options_field_and_unset_flags_keep_options_defaults(monkeypatch):
    monkeypatch.setenv('SVRENS_CHECKPOINT_DIR', '/ck')
    options, run = run_attacks.parse([])
    assert options == experiments.Options() and options.checkpoint_dir == '/ck'
    assert (options.tables, options.figures) == (experiments.TABLES, experiments.FIGURES)
    assert run == {'dry_run': False, 'subprocesses': False, 'gpus': None, 'shard': None}
    options, run = run_attacks.parse([
        '--tables', '2', '--seeds', '3', '--defenses', 'jpeg,', '--defense_option',
        'jpeg.quality=75', '--defense_option', 'jpeg.dct_method=INTEGER_FAST',
        '--external_defense', 'a=run.sh', '--gpus', '0,1', '--dry_run', '--', '--num_iter', '1'])
    assert options == experiments.Options(
        tables=(2,), seeds=3, defenses=('jpeg',),
        defense_options=('jpeg.quality=75', 'jpeg.dct_method=INTEGER_FAST'),
        external_defenses=('a=run.sh',), attack_flags=('--num_iter', '1'))
    assert options.figures == ()  # only what was asked for once one is given
    assert run == {'dry_run': True, 'subprocesses': False, 'gpus': ('0', '1'), 'shard': None}
    shown = run_attacks.parser().format_help()
    assert shown.startswith(experiments.HELP)
    for field in dataclasses.fields(experiments.Options):
        if field.name != 'attack_flags':
            assert f'--{field.metadata["repeated"] or field.name} ' in shown, field.name


def test_flag_tokens():
    assert experiments.parse_flag_tokens(['--a=1', '--b', '2', '--c', '--d', 'x=y']) == [
        ('a', '1'), ('b', '2'), ('c', None), ('d', 'x=y')]
    with pytest.raises(ValueError, match="'num_iter'"):
        experiments.parse_flag_tokens(['num_iter'])


def test_attacks_choose_the_panels_of_figures_2_and_3(tmp_path):
    steps = plan(tmp_path, '--figures', '2,3', '--attacks', 'mi_fgsm,tim')
    assert {config(s).base for s in attacks(steps)} == {'mi_fgsm'}
    assert len(attacks(steps)) == 9 + 9 - 1      # M = 16 is beta = alpha = 1.6
    with pytest.raises(ValueError, match='--attacks \\(tim\\) has none of them'):
        plan(tmp_path, '--figures', 3, '--attacks', 'tim')
