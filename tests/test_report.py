"""svrens_tf.report: the paper's numbers, seed aggregation that never merges unlike runs, hold-out
cells, the Average rules, gaps, figures; evaluation tables."""
import json
import subprocess
import sys

import numpy as np
import pytest

from svrens_tf import evaluate, report, tables
from svrens_tf.models import zoo

MODELS = ['inc_v3', 'inc_v4', 'incres_v2', 'res_v2_101']


def settings(ensemble='svre', base='mi_fgsm', seed=1000, models=MODELS, **config):
    full = {**dict(base=base, ensemble=ensemble, seed=seed, m_svrg=16, num_iter=10, beta=1.6,
                   momentum=1.0), **config}
    return {'config': full, 'models': list(models), 'batch_size': 10}


def result(success, loss=1.0):
    return {'success_rate': success, 'success_rate_clean_correct': success, 'avg_loss': loss,
            'clean_accuracy': 90.0, 'abstained': 0, 'num_images': 10, 'num_clean_correct': 9}


def write_evaluation(results_dir, experiment, seed, folders):
    """folders: [(settings, {classifier: result})]."""
    folder = results_dir / experiment / f'seed{seed}'
    folder.mkdir(parents=True)
    evaluation = {'clean_dir': 'x', 'labels_csv': 'y', 'num_images': 10,
                  'clean': {name: {'accuracy': 90.0, 'avg_loss': 0.5}
                            for name in folders[0][1]},
                  'folders': {f'attacks/{experiment}/adv{k}/seed{seed}': {
                      'attack': s, 'max_perturbation': 16, 'results': r}
                      for k, (s, r) in enumerate(folders)}}
    (folder / 'evaluation.json').write_text(json.dumps(evaluation))
    return evaluation


def test_summarize_paper_and_clean_correct_rates():
    labels = [1, 2, 3, 4]
    clean = [1, 2, 3, 9]            # the last image is misclassified already
    adversarial = [5, 2, 7, 9]
    summary = evaluate.summarize(labels, clean, adversarial, np.array([1.0, 2.0, 3.0, 6.0]))
    assert summary['success_rate'] == 75.0
    assert summary['success_rate_clean_correct'] == pytest.approx(200 / 3)
    assert summary['clean_accuracy'] == 75.0
    assert summary['avg_loss'] == 3.0
    assert evaluate.summarize(labels, [0] * 4, adversarial)['success_rate_clean_correct'] is None


def build(tmp_path):
    runs, unrecorded = report.load_results_dir(tmp_path)
    return report.build_report(runs, unrecorded)


def section(markdown, title):
    return markdown.split(f'## {title}')[1].split('\n## ')[0]


def test_tables_average_seeds_and_pick_the_held_out_model(tmp_path):
    for seed, ens, svre in [(1000, 40.0, 60.0), (1001, 44.0, 70.0)]:
        write_evaluation(tmp_path, 'table2', seed, [
            (settings('ens', seed=seed), {'inc_v3': result(99.0), 'ens3_adv_inc_v3': result(ens)}),
            (settings('svre', seed=seed), {'inc_v3': result(99.0),
                                           'ens3_adv_inc_v3': result(svre, loss=3.0)})])
    holdout = settings('svre', models=['inc_v4', 'incres_v2', 'res_v2_101'])
    write_evaluation(tmp_path, 'table1', 1000, [
        (holdout, {'inc_v3': result(77.0), 'inc_v4': result(100.0)})])
    built = build(tmp_path)
    table2 = section(built.markdown, 'Table 2')
    # Average: the black-box columns only (here one of three: marked *); runs = seeds
    assert '| Ens-MI-FGSM | 99.0 ± 0.0 | 42.0 ± 2.8 | 42.0* | 2 |' in table2
    assert '| SVRE-MI-FGSM | 99.0 ± 0.0 | 65.0 ± 7.1 | 65.0* | 2 |' in table2
    assert '| Ens-MI-FGSM (paper) | 99.9 | 50.5 | 44.03 | 1 |' in table2
    assert '| SVRE-MI-FGSM (paper) | 100.0 | 64.5 | 54.21 | 5 |' in table2
    assert '| SVRE-MI-FGSM | 42.0 | 65.0 | +23.0 | +10.2 |' in table2
    assert 'SVR-Ens ahead of Ens in 1/1 cells (paper: 1/1); mean gap +23.0 (paper +14.0)' \
        in table2
    cell = built.data['tables']['table2']['rows'][1]['cells']['ens3_adv_inc_v3']
    assert cell['values'] == [60.0, 70.0] and cell['std'] == pytest.approx(np.std([60, 70],
                                                                                 ddof=1))
    assert cell['paper'] == 64.54
    assert 'table2,SVRE-MI-FGSM,ens3_adv_inc_v3,65.0,' in built.csv
    table1 = section(built.markdown, 'Table 1')
    assert '| attack | inc_v3 | Average | runs |' in table1
    assert '| SVRE-MI-FGSM | 77.0 | 77.0* | 1 |' in table1
    figure1 = section(built.markdown, 'Figure 1')
    assert '| SVRE-MI-FGSM | 1.000 | 3.000 | 1.000 | 3.000 |' in figure1
    assert [name for name, _ in built.figures] == ['figure1_loss.png']


def test_average_is_taken_as_the_paper_takes_it(tmp_path):
    models = zoo.CLASSIFIERS
    write_evaluation(tmp_path, 'table2', 1000, [
        (settings('ens'), {m: result(100.0 if m in MODELS else 10.0 * k)
                           for k, m in enumerate(models)})])
    defenses = ['hgd', 'rp', 'nips_r3', 'bit_red', 'jpeg', 'fd', 'comdefend', 'rs', 'nrp']
    write_evaluation(tmp_path, 'table3', 1000, [
        (settings('ens'), {d: result(float(k)) for k, d in enumerate(defenses)})])
    tables_data = build(tmp_path).data['tables']
    # Table 2: the three black-box columns (40, 50, 60), not the white-box 100s
    assert tables_data['table2']['rows'][0]['average'] == {'mean': 50.0, 'columns': 3,
                                                           'paper': 44.03}
    assert tables_data['table3']['rows'][0]['average']['mean'] == 4.0     # mean of 0..8
    assert tables_data['table3']['rows'][0]['average']['columns'] == 9


def test_runs_unlike_in_anything_but_the_seed_never_merge(tmp_path):
    write_evaluation(tmp_path, 'table2', 1000, [
        (settings('ens', max_epsilon=16.0), {'ens3_adv_inc_v3': result(40.0)}),
        (settings('ens', max_epsilon=8.0), {'ens3_adv_inc_v3': result(20.0)}),
        (settings('svre', max_epsilon=16.0), {'ens3_adv_inc_v3': result(60.0)}),
        (settings('svre', max_epsilon=16.0, m_svrg=8), {'ens3_adv_inc_v3': result(50.0)}),
        ({**settings('svre', max_epsilon=16.0), 'checkpoints': {'inc_v3': 'sha256:aa'}},
         {'ens3_adv_inc_v3': result(90.0)})])
    write_evaluation(tmp_path, 'table2', 1001, [
        (settings('ens', seed=1001, max_epsilon=16.0, m_svrg=8),   # M: not read by Ens
         {'ens3_adv_inc_v3': result(44.0)}),
        (settings('ens', seed=1001, max_epsilon=8.0), {'ens3_adv_inc_v3': result(22.0)})])
    built = build(tmp_path)
    rows = {r['label']: r for r in built.data['tables']['table2']['rows']}
    ens16, ens8 = 'Ens-MI-FGSM (max_epsilon=16)', 'Ens-MI-FGSM (max_epsilon=8)'
    assert rows[ens16]['seeds'] == [1000, 1001] and rows[ens8]['seeds'] == [1000, 1001]
    assert rows[ens16]['cells']['ens3_adv_inc_v3']['values'] == [40.0, 44.0]
    assert rows[ens8]['cells']['ens3_adv_inc_v3']['values'] == [20.0, 22.0]
    svre = [label for label in rows if label.startswith('SVRE')]
    assert len(svre) == 3 and all('max_epsilon=16' in label for label in svre)
    assert 'SVRE-MI-FGSM (max_epsilon=16, m_svrg=8)' in rows
    assert any('checkpoints={"inc_v3": "sha256:aa"}' in label for label in svre)
    # gaps only between runs equal but for the ensemble: never the eps 8 Ens run
    assert {(g['label'], g['ens']) for g in built.data['tables']['table2']['gaps']} == {
        (label, 42.0) for label in svre if 'checkpoints' not in label}
    assert 'max_epsilon 8 (16)' in section(built.markdown, 'Table 2')


def test_runs_from_other_checkpoint_bytes_never_merge(tmp_path):
    """The sha256 each attack record names per surrogate is a setting: runs from other bytes of
    one model are rows of their own, labelled by that model's sha256; runs from equal bytes
    average, also Table 1's hold-out runs, each of which lacks its held-out model's."""
    same, other = {m: f'{k}' * 64 for k, m in enumerate(MODELS)}, 'f' * 64

    def loaded(seed, models=MODELS, changed=()):
        return {**settings('svre', seed=seed, models=models), report.CHECKPOINTS: {
            m: other if m in changed else same[m] for m in models}}

    for seed in (1000, 1001):
        write_evaluation(tmp_path, 'table2', seed, [
            (loaded(seed), {'ens3_adv_inc_v3': result(60.0 + seed - 1000)}),
            (loaded(seed, changed=['inc_v4']), {'ens3_adv_inc_v3': result(10.0)})])
        write_evaluation(tmp_path, 'table1', seed, [
            (loaded(seed, [m for m in MODELS if m != held_out]), {held_out: result(50.0 + k)})
            for k, held_out in enumerate(MODELS)])
    built = build(tmp_path)
    rows = {r['label']: r for r in built.data['tables']['table2']['rows']}
    assert set(rows) == {'SVRE-MI-FGSM (checkpoint inc_v4=111111111111)',
                         'SVRE-MI-FGSM (checkpoint inc_v4=ffffffffffff)'}
    kept = rows['SVRE-MI-FGSM (checkpoint inc_v4=111111111111)']
    assert kept['seeds'] == [1000, 1001]
    assert kept['cells']['ens3_adv_inc_v3']['values'] == [60.0, 61.0]
    assert kept['settings']['checkpoint inc_v4'] == same['inc_v4']
    changed = rows['SVRE-MI-FGSM (checkpoint inc_v4=ffffffffffff)']
    assert changed['cells']['ens3_adv_inc_v3']['values'] == [10.0, 10.0]
    [holdout] = built.data['tables']['table1']['rows']
    assert holdout['label'] == 'SVRE-MI-FGSM' and holdout['seeds'] == [1000, 1001]
    assert {c: cell['values'] for c, cell in holdout['cells'].items()} == {
        m: [50.0 + k] * 2 for k, m in enumerate(MODELS)}
    # a hold-out run from other bytes of inc_v4 is a Table 1 row of its own; the runs holding
    # inc_v4 out could belong to either, and stay apart too
    write_evaluation(tmp_path, 'table1', 1002, [
        (loaded(1002, MODELS[:3], changed=['inc_v4']), {'res_v2_101': result(5.0)})])
    rows = {r['label']: r for r in build(tmp_path).data['tables']['table1']['rows']}
    assert {label: [c for c, cell in r['cells'].items() if cell['values']]
            for label, r in rows.items()} == {
        'SVRE-MI-FGSM (checkpoint inc_v4=111111111111)': ['inc_v3', 'incres_v2', 'res_v2_101'],
        'SVRE-MI-FGSM (checkpoint inc_v4=ffffffffffff)': ['res_v2_101'],
        'SVRE-MI-FGSM (checkpoint inc_v4=not loaded)': ['inc_v4']}


def test_empty_or_unrecognised_results_are_an_error(tmp_path):
    with pytest.raises(report.ReportError, match='no evaluation in run_attacks.sh'):
        report.load_results_dir(tmp_path)
    other = tmp_path / 'eval_by_hand'
    write_evaluation(tmp_path, 'eval_by_hand', 1000, [(settings(), {'inc_v3': result(1.0)})])
    with pytest.raises(report.ReportError, match='eval_by_hand.*svrens-report FOLDER'):
        report.load_results_dir(tmp_path)
    write_evaluation(tmp_path, 'table2', 1000, [(None, {'inc_v3': result(1.0)})])
    with pytest.raises(report.ReportError, match='hold no attack run'):
        report.load_results_dir(tmp_path)
    (tmp_path / 'table2' / 'seed1000' / 'evaluation.json').write_text('{"folders": 3}')
    with pytest.raises(report.ReportError, match='table2/seed1000/evaluation.json: not an'):
        report.load_results_dir(tmp_path)
    with pytest.raises(report.ReportError, match='no evaluation.json'):
        report.load_evaluations([tmp_path / 'nothing'])
    assert report.load_evaluations([other / 'seed1000'])[0]
    empty = tmp_path / 'empty'
    empty.mkdir()
    done = subprocess.run([sys.executable, '-m', 'svrens_tf.cli.report', '--results_dir',
                           str(empty)], capture_output=True, text=True)
    assert done.returncode == 1
    assert f'svrens-report: {empty}: no evaluation in run_attacks.sh' in done.stderr
    assert list(empty.iterdir()) == []


def test_explicit_evaluation_folders_are_sorted_into_the_tables(tmp_path):
    write_evaluation(tmp_path, 'by_hand', 1000, [
        (settings('ens'), {'ens3_adv_inc_v3': result(40.0), 'jpeg': result(30.0)}),
        (settings('svre', models=MODELS[1:]), {'inc_v3': result(80.0)}),
        (settings('svre', models=['inc_v3', 'inc_v4']), {'inc_v3': result(99.0)})])
    runs, _ = report.load_evaluations([tmp_path / 'by_hand' / 'seed1000'])
    built = report.build_report(runs)
    assert '| Ens-MI-FGSM | 40.0 | 40.0* | 1 |' in section(built.markdown, 'Table 2')
    assert '| Ens-MI-FGSM | 30.0 | 30.0* | 1 |' in section(built.markdown, 'Table 3')
    assert '| SVRE-MI-FGSM | 80.0 | 80.0* | 1 |' in section(built.markdown, 'Table 1')
    assert '| SVRE-MI-FGSM | inc_v3,inc_v4 | 99.0 | 1 |' in section(built.markdown, 'Other')
    written = report.write_report(built, tmp_path / 'out' / 'report.md')
    assert [p.name for p in written[:3]] == ['report.md', 'report.json', 'report.csv']
    assert json.loads((tmp_path / 'out' / 'report.json').read_text()) == json.loads(
        json.dumps(built.data))


def test_figures_follow_the_papers_designs(tmp_path):
    fig2 = [(settings('ens'), {'ens3_adv_inc_v3': result(30.0)})] + [
        (settings('svre', m_svrg=m), {'ens3_adv_inc_v3': result(30.0 + m)}) for m in (8, 4)]
    write_evaluation(tmp_path, 'fig2', 1000, fig2)
    write_evaluation(tmp_path, 'fig3', 1000, [
        (settings('svre', beta=b), {'ens3_adv_inc_v3': result(b)}) for b in (0.4, 0.1, 0.2)])
    write_evaluation(tmp_path, 'fig4', 1000, [
        (settings('ens', num_iter=20, alpha=0.8), {m: result(20.0) for m in zoo.ADV_TRAINED}),
        (settings('svre', num_iter=2, alpha=8.0), {m: result(10.0 * k) for k, m in
                                                   enumerate(zoo.ADV_TRAINED)}),
        (settings('svre', num_iter=1, alpha=16.0), {m: result(5.0) for m in zoo.ADV_TRAINED})])
    built = build(tmp_path)
    figure2 = section(built.markdown, 'Figure 2')
    assert figure2.index('| Ens-MI-FGSM | 0 | 30.0 |') < figure2.index('| 4 | 34.0 |') \
        < figure2.index('| 8 | 38.0 |')
    [(panel, curves)] = dict(built.figures)['figure2_m.png'].panels
    assert panel == 'MI-FGSM' and curves == [('Inc-v3ens3', [0, 4, 8], [30.0, 34.0, 38.0])]
    [(_, curves)] = dict(built.figures)['figure3_beta.png'].panels
    assert curves == [('Inc-v3ens3', [0.1, 0.2, 0.4], [0.1, 0.2, 0.4])]
    # gradient calculations as the paper counts them: Ens T x K, SVR-Ens T x (K + 2M)
    [(_, curves)] = dict(built.figures)['figure4_gradients.png'].panels
    assert sorted(curves) == [('Ens', [80], [20.0]), ('SVR-Ens', [36, 72], [5.0, 10.0])]
    assert '| SVRE-MI-FGSM (num_iter=2, alpha=8) | 2 | 72 |' in section(built.markdown,
                                                                       'Figure 4')
    pytest.importorskip('matplotlib')
    written = report.write_report(built, tmp_path / 'report.md')
    pngs = [p for p in written if p.suffix == '.png']
    assert [p.name for p in pngs] == ['figure2_m.png', 'figure3_beta.png',
                                      'figure4_gradients.png']
    assert all(p.read_bytes().startswith(b'\x89PNG') for p in pngs)
    assert '![figure4_gradients](figures/figure4_gradients.png)' in (
        tmp_path / 'report.md').read_text()


def test_evaluation_markdown_and_csv():
    evaluation = {'clean_dir': 'nips', 'num_images': 10,
                  'clean': {'a': {'accuracy': 90.0, 'avg_loss': 0.1},
                            'jpeg': {'accuracy': 80.0, 'avg_loss': None}},
                  'folders': {'adv': {'attack': None, 'max_perturbation': 16,
                                      'results': {'a': result(55.55, 2.5),
                                                  'jpeg': {**result(12.0), 'avg_loss': None}}}}}
    markdown = tables.evaluation_markdown(evaluation)
    assert '| adv | 16 | 55.5 | 12.0 |' in markdown
    assert '| adv | 16 | 2.500 | - |' in markdown
    rows = tables.evaluation_csv(evaluation).splitlines()
    assert rows[0].startswith('folder,classifier,success_rate,')
    assert rows[2].startswith('adv,jpeg,12.0,12.0,,')


PAPER = json.loads(report.PAPER_TABLES.read_text())
MISPRINTED_AVERAGES = {('table1', 'mi_fgsm', 'svre'), ('table2', 'si_ti_dim', 'ens')}


def test_paper_tables_are_the_shared_transcription(shared_dir):
    shared = json.loads((shared_dir / 'paper' / 'tables.json').read_text())
    checked = 0
    for table in ('table1', 'table2', 'table3'):
        assert PAPER[table]['columns'] == shared[table]['columns']
        ours = {(r['base'], r['ensemble']): r for r in PAPER[table]['rows']}
        assert len(ours) == len(PAPER[table]['rows']) == len(shared[table]['rows']) == 10
        for row in shared[table]['rows']:
            mine = ours[row['base'], row['ensemble']]
            assert mine['values'] == row['values']
            assert mine['paper_average'] == row['paper_average']
            checked += len(row['values']) + 1
    assert checked == 10 * (4 + 7 + 9) + 30


def test_paper_averages_follow_each_tables_rule():
    """Table 2 averages the three black-box columns, Tables 1 and 3 all columns: every printed
    Average matches its row to the printed precision, except the two misprints."""
    assert PAPER['table2']['average_columns'] == [
        'ens3_adv_inc_v3', 'ens4_adv_inc_v3', 'ens_adv_incres_v2']
    assert PAPER['table1']['average_columns'] == PAPER['table1']['columns']
    assert PAPER['table3']['average_columns'] == PAPER['table3']['columns']
    off = set()
    for table in ('table1', 'table2', 'table3'):
        for row in PAPER[table]['rows']:
            computed = report.paper_average(row['values'], PAPER[table]['average_columns'])
            assert computed == pytest.approx(np.mean(
                [row['values'][c] for c in PAPER[table]['average_columns']]))
            if abs(computed - row['paper_average']) > 0.005 + 1e-9:
                off.add((table, row['base'], row['ensemble']))
    assert off == MISPRINTED_AVERAGES
