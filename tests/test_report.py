"""svrens_tf.report: evaluation tables, seed aggregation, hold-out cells, paper rows, figures."""
import json

import numpy as np
import pytest

from svrens_tf import evaluate, report, tables

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
                  'folders': {f'adv{k}': {'attack': s, 'max_perturbation': 16, 'results': r}
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


def test_tables_average_seeds_and_pick_the_held_out_model(tmp_path):
    for seed, ens, svre in [(1000, 40.0, 60.0), (1001, 44.0, 70.0)]:
        write_evaluation(tmp_path, 'table2', seed, [
            (settings('ens', seed=seed), {'inc_v3': result(99.0), 'ens3_adv_inc_v3': result(ens)}),
            (settings('svre', seed=seed), {'inc_v3': result(99.0),
                                           'ens3_adv_inc_v3': result(svre, loss=3.0)})])
    holdout = settings('svre', models=['inc_v4', 'incres_v2', 'res_v2_101'])
    write_evaluation(tmp_path, 'table1', 1000, [
        (holdout, {'inc_v3': result(77.0), 'inc_v4': result(100.0)})])
    paper = {'source': 'test', 'table2': {'rows': {'SVRE-MI-FGSM': {'ens3_adv_inc_v3': 65.5}}}}
    markdown, figures = report.build_report(tmp_path, paper)
    assert '| Ens-MI-FGSM | 99.0 ± 0.0 | 42.0 ± 2.8 |' in markdown
    assert '| SVRE-MI-FGSM | 99.0 ± 0.0 | 65.0 ± 7.1 |' in markdown
    assert '| SVRE-MI-FGSM (paper) | - | 65.5 |' in markdown
    table1 = markdown.split('## Table 1')[1].split('##')[0]
    assert '| attack | inc_v3 |' in table1 and '| SVRE-MI-FGSM | 77.0 |' in table1
    figure1 = markdown.split('## Figure 1')[1]
    assert '| SVRE-MI-FGSM | 1.000 | 3.000 |' in figure1
    assert [name for name, _ in figures] == ['figure1_loss.png']


def test_ablation_tables_and_figures(tmp_path):
    runs = [(settings('svre', m_svrg=m), {'ens3_adv_inc_v3': result(30.0 + m)}) for m in (8, 0, 4)]
    runs.append((settings('ens', num_iter=20, m_svrg=16), {'ens3_adv_inc_v3': result(25.0)}))
    write_evaluation(tmp_path, 'fig2', 1000, runs[:3])
    write_evaluation(tmp_path, 'fig4', 1000, runs)
    markdown, figures = report.build_report(tmp_path)
    figure2 = markdown.split('## Figure 2')[1].split('##')[0]
    assert figure2.index('| SVRE | 0 | 30.0 |') < figure2.index('| SVRE | 4 | 34.0 |') \
        < figure2.index('| SVRE | 8 | 38.0 |')
    figure4 = markdown.split('## Figure 4')[1]
    # passes per image: T x (K + M + K) for svre (cache: MI-FGSM has no random transforms),
    # T x K for ens, and for svre with M = 0 (which reduces to ens)
    assert '| SVRE | 40 | 30.0 |' in figure4
    assert '| SVRE | 120 | 34.0 |' in figure4
    assert '| Ens | 80 | 25.0 |' in figure4
    pytest.importorskip('matplotlib')
    written = report.draw_figures(figures, tmp_path / 'figures')
    assert [p.name for p in written] == ['figure2.png', 'figure4.png']
    assert all(p.read_bytes().startswith(b'\x89PNG') for p in written)


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
