"""The paper report: our results grouped by experiment and attack, beside the paper's numbers,
as markdown tables and figures (run records: records.py; table writers: tables.py)."""
import io
import json
import pathlib

import numpy as np

from svrens_tf import files
from svrens_tf.tables import markdown_table, mean_std, percent

PAPER_TABLES = pathlib.Path(__file__).resolve().parent / 'resources' / 'paper_tables.json'

BASE_NAMES = {'i_fgsm': 'I-FGSM', 'mi_fgsm': 'MI-FGSM', 'ni_fgsm': 'NI-FGSM', 'tim': 'TIM',
              'dim': 'DIM', 'ti_dim': 'TI-DIM', 'si_ti_dim': 'SI-TI-DIM',
              'admix_ti_dim': 'Admix-TI-DIM'}
NORMAL_MODELS = ('inc_v3', 'inc_v4', 'incres_v2', 'res_v2_101')


def attack_label(settings):
    """'Ens-MI-FGSM' / 'SVRE-MI-FGSM', the paper's row names."""
    config = settings['config']
    prefix = 'SVRE' if config['ensemble'] == 'svre' else 'Ens'
    return f'{prefix}-{BASE_NAMES.get(config["base"], config["base"])}'


def gradient_passes(settings):
    """Single-model gradient passes per image of an attack: T x passes per outer step."""
    from svrens_tf import attacks
    cfg = attacks.AttackConfig(**settings['config'])
    return cfg.num_iter * attacks.passes_per_outer_step(cfg, len(settings['models']))


def collect(results_dir):
    """{experiment: [(settings, results by classifier)]} from RESULTS/<experiment>/**/
    evaluation.json."""
    results_dir = pathlib.Path(results_dir)
    experiments = {}
    for path in sorted(results_dir.glob('*/**/evaluation.json')):
        experiment = path.relative_to(results_dir).parts[0]
        evaluation = json.loads(path.read_text())
        for entry in evaluation['folders'].values():
            if entry['attack'] is not None:
                experiments.setdefault(experiment, []).append((entry['attack'], entry['results']))
    return experiments


def _without_seed(settings):
    config = {k: v for k, v in settings['config'].items() if k != 'seed'}
    return json.dumps({**settings, 'config': config}, sort_keys=True)


def group_runs(runs):
    """[(settings, [results of each seed])] grouped by everything but the seed, in run order."""
    groups = {}
    for settings, results in runs:
        groups.setdefault(_without_seed(settings), (settings, []))[1].append(results)
    return list(groups.values())


def comparison_table(rows, columns, paper):
    """Markdown of `rows` [(label, {column: [values]})] with the paper's row under each of ours."""
    lines = []
    for label, cells in rows:
        lines.append([label] + [mean_std(cells.get(c, [])) for c in columns])
        if label in paper.get('rows', {}):
            lines.append([f'{label} (paper)'] + [percent(paper['rows'][label].get(c))
                                                 for c in columns])
    return markdown_table(['attack'] + list(columns), lines)


def _cells(results_list, key='success_rate'):
    cells = {}
    for results in results_list:
        for name, result in results.items():
            cells.setdefault(name, []).append(result[key])
    return cells


def table_rows(runs, holdout=False):
    """[(attack label, {column: [value per seed]})]: success rates; for the hold-out table the
    only column of a run is the normal model left out of its surrogates."""
    rows = {}
    for settings, results_list in group_runs(runs):
        cells = _cells(results_list)
        if holdout:
            held_out = [m for m in NORMAL_MODELS if m not in settings['models']]
            if len(held_out) != 1:
                continue
            cells = {held_out[0]: cells.get(held_out[0], [])}
        row = rows.setdefault(attack_label(settings), {})
        for column, values in cells.items():
            row.setdefault(column, []).extend(values)
    return list(rows.items())


def ablation_series(runs, x_of):
    """{ensemble label: [(x, {classifier: [success per seed]})]} sorted by x."""
    series = {}
    for settings, results_list in group_runs(runs):
        label = attack_label(settings).split('-')[0]
        series.setdefault(label, []).append((x_of(settings), _cells(results_list)))
    return {label: sorted(points, key=lambda p: p[0]) for label, points in series.items()}


ABLATIONS = {
    'fig2': ('Figure 2: success rate (%) vs the number of inner iterations M', 'M',
             lambda s: s['config']['m_svrg']),
    'fig3': ('Figure 3: success rate (%) vs the inner step size beta (pixels)', 'beta',
             lambda s: s['config']['beta']),
    'fig4': ('Figure 4: success rate (%) vs single-model gradient passes per image',
             'gradient passes', gradient_passes),
}


def build_report(results_dir, paper=None):
    """(markdown, figures) for every experiment found under results_dir; figures is a list of
    (file name, draw function) for `draw_figures`."""
    paper = paper if paper is not None else json.loads(PAPER_TABLES.read_text())
    experiments = collect(results_dir)
    parts = [f'# svrens_tf results ({results_dir})\n\n'
             'Success rate (%) = images whose prediction differs from the true label, over all '
             'images (the paper\'s protocol); mean ± sample std over seeds where there are '
             f'several. Paper values: {paper.get("source", "none")}.\n']
    figures = []
    for name, title, holdout in [('table1', 'Table 1: hold-out (attack three normal models, '
                                  'test on the fourth)', True),
                                 ('table2', 'Table 2: attack the four normal models', False),
                                 ('table3', 'Table 3: attack the four normal models, test on '
                                  'defenses', False)]:
        if name in experiments:
            rows = table_rows(experiments[name], holdout)
            columns = _columns(rows, paper.get(name, {}).get('columns', []))
            parts.append(f'\n## {title}\n\n' + comparison_table(rows, columns,
                                                                 paper.get(name, {})))
    if 'table2' in experiments:
        rows = [(attack_label(s), _cells(r, 'avg_loss'))
                for s, r in group_runs(experiments['table2'])]
        columns = _columns(rows, paper.get('table2', {}).get('columns', []))
        parts.append('\n## Figure 1: average cross-entropy of the adversarial images\n\n'
                     + markdown_table(['attack'] + columns,
                                      [[label] + [_loss(cells.get(c)) for c in columns]
                                       for label, cells in rows]))
        figures.append(('figure1_loss.png', lambda plt: _bars(plt, rows, columns)))
    for name, (title, x_label, x_of) in ABLATIONS.items():
        if name not in experiments:
            continue
        series = ablation_series(experiments[name], x_of)
        columns = list(dict.fromkeys(c for points in series.values()
                                     for _, cells in points for c in cells))
        lines = [[label, x] + [mean_std(cells.get(c, [])) for c in columns]
                 for label, points in series.items() for x, cells in points]
        parts.append(f'\n## {title}\n\n' + markdown_table(['attack', x_label] + columns, lines))
        figures.append((f'{name.replace("fig", "figure")}.png',
                        lambda plt, s=series, c=columns, x=x_label: _lines(plt, s, c, x)))
    return ''.join(parts), figures


def _columns(rows, preferred):
    """Columns present in `rows`, in the paper's order first, then in order of appearance."""
    present = dict.fromkeys(c for _, cells in rows for c in cells)
    return [c for c in preferred if c in present] + [c for c in present if c not in preferred]


def _loss(values):
    values = [v for v in values or [] if v is not None]
    return '-' if not values else f'{np.mean(values):.3f}'


def _bars(plt, rows, columns):
    figure, axis = plt.subplots(figsize=(1.2 * len(columns) + 3, 4))
    width = 0.8 / max(len(rows), 1)
    for k, (label, cells) in enumerate(rows):
        axis.bar(np.arange(len(columns)) + k * width,
                 [np.mean(cells[c]) if cells.get(c) else 0 for c in columns], width, label=label)
    axis.set_xticks(np.arange(len(columns)) + 0.4 - width / 2, columns, rotation=30)
    axis.set_ylabel('average loss')
    axis.legend()
    return figure


def _lines(plt, series, columns, x_label):
    figure, axis = plt.subplots(figsize=(7, 4))
    for label, points in series.items():
        for column in columns:
            xs = [x for x, cells in points if cells.get(column)]
            ys = [np.mean(cells[column]) for _, cells in points if cells.get(column)]
            axis.plot(xs, ys, marker='o', label=f'{label} {column}')
    axis.set_xlabel(x_label)
    axis.set_ylabel('success rate (%)')
    axis.legend(fontsize='small', ncol=2)
    return figure


def draw_figures(figures, folder):
    """Write each figure as PNG under `folder` if matplotlib is installed; returns the paths."""
    try:
        import matplotlib
        matplotlib.use('Agg')
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    folder = pathlib.Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, draw in figures:
        figure = draw(plt)
        figure.tight_layout()
        buffer = io.BytesIO()
        figure.savefig(buffer, format='png', dpi=120)
        plt.close(figure)
        files.write_atomic(folder / name, buffer.getvalue())
        written.append(folder / name)
    return written
