"""The paper report: our runs beside the paper's Tables 1-3 and in the designs of its Figures
1-4, as markdown, JSON and CSV (experiments.py plans the runs, figures.py draws the figures).

Runs are averaged over seeds only when every other setting is equal: the attack settings as
attack_run.json records them (the sha256 of each surrogate's checkpoint among them), the number
of images evaluated and the defense options. Rows
that differ in anything else stay apart, labelled by what differs, and the settings unlike the
paper's are listed under each table. Ens never reads the SVR-Ens-only fields (SVRE_ONLY), so
they are left out of an Ens run's settings.
"""
import dataclasses
import json
import pathlib

import numpy as np

from svrens_tf import experiments, figures, files
from svrens_tf.models.zoo import ADV_TRAINED, CLASSIFIERS, SURROGATES
from svrens_tf.tables import markdown_table, mean_std, to_csv, to_json

PAPER_TABLES = pathlib.Path(__file__).resolve().parent / 'resources' / 'paper_tables.json'

BASE_NAMES = {'i_fgsm': 'I-FGSM', 'mi_fgsm': 'MI-FGSM', 'ni_fgsm': 'NI-FGSM', 'tim': 'TIM',
              'dim': 'DIM', 'ti_dim': 'TI-DIM', 'si_ti_dim': 'SI-TI-DIM',
              'admix_ti_dim': 'Admix-TI-DIM', 'vmi_fgsm': 'VMI-FGSM', 'vni_fgsm': 'VNI-FGSM',
              'pi_fgsm': 'PI-FGSM'}
TABLES = ('table1', 'table2', 'table3')
LAYOUT = TABLES + ('fig2', 'fig3', 'fig4')     # RESULTS/<experiment>/, as run_attacks.sh writes
SVRE_ONLY = ('m_svrg', 'beta', 'inner_momentum', 'outer_grad')
CHECKPOINTS = 'checkpoint_sha256'   # the attack record's key (records.CHECKPOINTS; records
                                    # imports TensorFlow, this module does not)
CHECKPOINT_ITEM = 'checkpoint '     # Run.items(): 'checkpoint inc_v3' -> that sha256
TITLES = {'table1': 'Table 1: hold-out (attack three normal models, success on the fourth)',
          'table2': 'Table 2: attack the four normal models',
          'table3': 'Table 3: attack the four normal models, success against defenses'}


class ReportError(ValueError):
    """Results that cannot make a report: missing, empty or unrecognised."""


def attack_name(base, ensemble):
    """'Ens-MI-FGSM' / 'SVRE-MI-FGSM', the paper's row names."""
    return f'{"SVRE" if ensemble == "svre" else "Ens"}-{BASE_NAMES.get(base, base)}'


def _plain(value):
    """A setting as a comparable, printable scalar."""
    if isinstance(value, (list, tuple)):
        return ','.join(map(str, value))
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True)
    return value


def _key(items, drop=()):
    return json.dumps({k: v for k, v in items.items() if k not in drop}, sort_keys=True)


def _shown(value):
    return f'{value:g}' if isinstance(value, float) else str(value)


def _settings_text(items, fields):
    """'name=value, ...' of those `fields` that `items` has; a checkpoint's sha256 shortened
    to its first 12 digits, or 'not loaded'."""
    shown = []
    for f in fields:
        if f.startswith(CHECKPOINT_ITEM):
            shown.append(f'{f}={_shown(items[f])[:12] if f in items else "not loaded"}')
        elif f in items:
            shown.append(f'{f}={_shown(items[f])}')
    return ', '.join(shown)


def _number(value, digits=1):
    return '-' if value is None else f'{value:.{digits}f}'


def _signed(value):
    return '-' if value is None else f'{value:+.1f}'


def _mean(values):
    values = [v for v in values if v is not None]
    return float(np.mean(values)) if values else None


@dataclasses.dataclass(frozen=True)
class Run:
    """One attack folder as one evaluation saw it."""
    experiment: str     # a LAYOUT name, or '' for explicit evaluation folders
    folder: str
    settings: dict      # the attack's settings (attack_run.json)
    context: dict       # evaluation settings that change the numbers (images, defense options)
    results: dict       # classifier -> svrens-evaluate result

    @property
    def config(self):
        return self.settings['config']

    @property
    def base(self):
        return self.config['base']

    @property
    def ensemble(self):
        return self.config['ensemble']

    @property
    def seed(self):
        return self.config.get('seed')

    def items(self):
        """Every setting but the seed, flat: AttackConfig fields by name (SVRE_ONLY left out
        for Ens), the other attack settings (each surrogate's checkpoint sha256 as
        'checkpoint <model>'), then the evaluation's."""
        flat = {k: v for k, v in self.config.items()
                if k != 'seed' and not (self.ensemble == 'ens' and k in SVRE_ONLY)}
        flat.update((k, v) for k, v in self.settings.items() if k not in ('config', CHECKPOINTS))
        flat.update((CHECKPOINT_ITEM + model, sha256)
                    for model, sha256 in (self.settings.get(CHECKPOINTS) or {}).items())
        flat.update(self.context)
        return {k: _plain(v) for k, v in flat.items()}


def read_evaluation(path, experiment=''):
    """(runs, folders without an attack record) of one svrens-evaluate evaluation.json."""
    path = pathlib.Path(path)
    try:
        evaluation = json.loads(path.read_text())
        images = evaluation['num_images']
        entries = [(f, e['attack'], e['results']) for f, e in evaluation['folders'].items()]
        unlike = [f for f, attack, _ in entries if attack is not None and not
                  {'base', 'ensemble', 'seed'} <= set(attack['config'])]
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
        raise ReportError(f'{path}: not an evaluation.json written by svrens-evaluate '
                          f'({type(err).__name__}: {err})') from None
    if unlike:
        raise ReportError(f'{path}: the attack settings recorded for {unlike[0]} lack its '
                          'base, ensemble or seed')
    context = {'images': images}
    record = path.parent / 'eval_run.json'
    if record.is_file():
        options = json.loads(record.read_text()).get('settings', {}).get('defense_options')
        options = {name: o for name, o in (options or {}).items() if o}
        if options:
            context['defense_options'] = options
    return ([Run(experiment, folder, attack, context, results)
             for folder, attack, results in entries if attack is not None],
            [folder for folder, attack, _ in entries if attack is None])


def load_results_dir(results_dir):
    """(runs, unrecorded folders) of RESULTS/<experiment>/**/evaluation.json, the layout
    run_attacks.sh writes; ReportError when there is none."""
    results_dir = pathlib.Path(results_dir)
    if not results_dir.is_dir():
        raise ReportError(f'{results_dir}: results folder not found')
    found = sorted(results_dir.rglob('evaluation.json'))
    ours = [p for p in found if p.relative_to(results_dir).parts[0] in LAYOUT]
    if not ours:
        elsewhere = sorted({str(p.parent) for p in found})
        raise ReportError(
            f'{results_dir}: no evaluation in run_attacks.sh\'s layout (expected '
            f'{results_dir}/{{{",".join(LAYOUT)}}}/seed*/evaluation.json, written by '
            'svrens-evaluate)' + (f'; evaluations elsewhere ({", ".join(elsewhere)}): pass '
                                  'their folders, svrens-report FOLDER...' if elsewhere else ''))
    return _gather(read_evaluation(p, p.relative_to(results_dir).parts[0]) for p in ours)


def load_evaluations(folders):
    """(runs, unrecorded folders) of explicit svrens-evaluate output folders."""
    loaded = []
    for folder in folders:
        path = pathlib.Path(folder) / 'evaluation.json'
        if not path.is_file():
            raise ReportError(f'{folder}: no evaluation.json (the folder svrens-evaluate '
                              '--output_dir wrote)')
        loaded.append(read_evaluation(path))
    return _gather(loaded)


def _gather(loaded):
    runs, unrecorded = {}, []
    for found, missing in loaded:
        for run in found:      # a folder evaluated twice for one experiment counts once
            runs[run.experiment, run.folder] = run
        unrecorded += missing
    if not runs:
        raise ReportError('the evaluations hold no attack run: none of the folders they '
                          'evaluated has an attack_run.json (svrens-attack writes it)'
                          + (f'; e.g. {unrecorded[0]}' if unrecorded else ''))
    return list(runs.values()), unrecorded


def assign(runs):
    """{experiment: runs}. The layout's experiments as they are; explicit folders' runs by their
    surrogates: 3 of the normal models go to Table 1, all 4 to Table 2 (zoo classifiers) and
    Table 3 (the others), the rest to 'other'."""
    assigned = {}

    def add(name, run):
        if run.results:
            assigned.setdefault(name, []).append(run)

    for run in runs:
        surrogates = set(run.settings.get('models', ()))
        holdout = len(surrogates) == 3 and surrogates < set(SURROGATES)
        if run.experiment == 'table1' or (not run.experiment and holdout):
            add('table1' if holdout else 'other', run)
        elif run.experiment:
            add(run.experiment, run)
        elif surrogates == set(SURROGATES):
            zoo = {c: r for c, r in run.results.items() if c in CLASSIFIERS}
            add('table2', dataclasses.replace(run, results=zoo))
            add('table3', dataclasses.replace(run, results={
                c: r for c, r in run.results.items() if c not in zoo}))
        else:
            add('other', run)
    return assigned


@dataclasses.dataclass
class Row:
    """Runs equal in every setting but the seed: one value per run in each column."""
    base: str
    ensemble: str
    items: dict
    cells: dict = dataclasses.field(default_factory=dict)
    seeds: list = dataclasses.field(default_factory=list)
    label: str = ''

    def mean(self, column):
        return _mean(self.cells.get(column, []))

    def record(self, columns):
        cells = {}
        for column in columns:
            values = [v for v in self.cells.get(column, []) if v is not None]
            cells[column] = {'mean': self.mean(column), 'values': values,
                             'std': float(np.std(values, ddof=1)) if len(values) > 1 else None}
        return {'label': self.label, 'base': self.base, 'ensemble': self.ensemble,
                'settings': self.items, 'seeds': self.seeds, 'cells': cells}


def _base_rank(base):
    order = list(BASE_NAMES)
    return order.index(base) if base in order else len(order)


def success(run):
    return {c: r['success_rate'] for c, r in run.results.items()}


def group_rows(runs, cells_of=success, drop=()):
    """Rows of `runs` equal in every setting but the seed (and `drop`), ordered as the paper's
    rows, labelled (label_rows); cells_of(run) -> {column: value}."""
    runs, rows = list(runs), {}
    for run, items in zip(runs, _with_checkpoints_filled_in(
            [{k: v for k, v in run.items().items() if k not in drop} for run in runs])):
        row = rows.setdefault(_key(items), Row(run.base, run.ensemble, items))
        if run.seed not in row.seeds:
            row.seeds.append(run.seed)
        for column, value in cells_of(run).items():
            row.cells.setdefault(column, []).append(value)
    return label_rows(sorted(rows.values(),
                             key=lambda r: (_base_rank(r.base), r.base, r.ensemble != 'ens')))


def _with_checkpoints_filled_in(items_list):
    """`items_list`, a run's missing 'checkpoint <model>' filled in where the runs equal to it
    in every other setting all loaded that model from the same bytes: Table 1's hold-out runs
    never load their held-out model, yet those whose checkpoints agree make one row. Where
    they loaded it from different bytes, nothing is filled in (the rows stay apart)."""
    groups = {}
    for k, items in enumerate(items_list):
        others = {f: v for f, v in items.items() if not f.startswith(CHECKPOINT_ITEM)}
        groups.setdefault(_key(others), []).append(k)
    filled = list(items_list)
    for members in groups.values():
        seen = {}
        for k in members:
            for f, v in items_list[k].items():
                if f.startswith(CHECKPOINT_ITEM):
                    seen.setdefault(f, set()).add(v)
        known = {f: values.pop() for f, values in seen.items() if len(values) == 1}
        for k in members:
            filled[k] = {**known, **items_list[k]}
    return filled


def varying(items_list, skip=('base', 'ensemble')):
    """The settings whose values differ between these settings dicts."""
    fields = dict.fromkeys(f for items in items_list for f in items if f not in skip)
    return [f for f in fields if len({json.dumps(i.get(f)) for i in items_list}) > 1]


def differences(items_list, ensembles, skip=('base', 'ensemble')):
    """The settings that tell these apart: those that differ between them, the SVRE_ONLY ones
    compared between SVR-Ens settings only."""
    shared = varying([{k: v for k, v in i.items() if k not in SVRE_ONLY} for i in items_list],
                     skip)
    svre = varying([{k: i.get(k) for k in SVRE_ONLY}
                    for i, e in zip(items_list, ensembles) if e == 'svre'], skip)
    return shared + svre


def label_rows(rows):
    """Name each row after its attack plus every setting that differs between rows of the same
    base attack."""
    for base in dict.fromkeys(r.base for r in rows):
        same = [r for r in rows if r.base == base]
        fields = differences([r.items for r in same], [r.ensemble for r in same])
        for row in same:
            shown = _settings_text(row.items, fields)
            row.label = attack_name(base, row.ensemble) + (f' ({shown})' if shown else '')
    return rows


def paper_setting(base, ensemble, surrogates):
    """The settings of the paper's runs of one attack (the authors' defaults), keyed as
    Run.items()."""
    from svrens_tf import attacks
    config = dataclasses.asdict(attacks.AttackConfig(base=base, ensemble=ensemble))
    setting = {k: v for k, v in config.items()
               if k != 'seed' and not (ensemble == 'ens' and k in SVRE_ONLY)}
    setting.update(batch_size=4 if config['si_copies'] > 1 else 10, resize=False,
                   images=experiments.NIPS17_DEV_IMAGES)
    if surrogates:
        setting['models'] = ','.join(surrogates)
    return setting


def unlike_paper(rows, surrogates):
    """{setting: (our values, the paper's values)} for the settings of `rows` that are not the
    paper's."""
    found = {}
    for row in rows:
        for field, paper in paper_setting(row.base, row.ensemble, surrogates).items():
            if field in row.items and row.items[field] != paper:
                ours, theirs = found.setdefault(field, ({}, {}))
                ours[_shown(row.items[field])] = theirs[_shown(paper)] = None
    return {f: (list(o), list(p)) for f, (o, p) in found.items()}


def paper_average(values, columns):
    """The paper's Average of a row: the mean over `columns` (Table 2: the black-box ones)."""
    return float(np.mean([values[c] for c in columns]))


def row_average(row, columns):
    """(our Average over `columns`: the mean of our cell means, how many columns we have)."""
    means = [row.mean(c) for c in columns if row.mean(c) is not None]
    return _mean(means), len(means)


def pairs(rows):
    """[(Ens row, SVR-Ens row)] whose settings are equal but for the ensemble."""
    def common(row):
        return _key(row.items, drop=('ensemble',) + SVRE_ONLY)
    ens = {common(r): r for r in rows if r.ensemble == 'ens'}
    return [(ens[common(r)], r) for r in rows if r.ensemble == 'svre' and common(r) in ens]


def summary(cells):
    """'SVR-Ens ahead of Ens in a/n cells (paper: b/n); mean gap +x (paper +y)' over
    cells = [((ours Ens, ours SVR-Ens), (paper Ens, paper SVR-Ens))]."""
    if not cells:
        return {'text': 'No Ens and SVR-Ens runs with equal settings: no gap to show.',
                'cells': 0}
    ours = [s - e for (e, s), _ in cells]
    theirs = [s - e for _, (e, s) in cells if None not in (e, s)]
    result = {'cells': len(cells), 'ahead': sum(g > 0 for g in ours),
              'mean_gap': float(np.mean(ours)), 'paper_cells': len(theirs),
              'paper_ahead': sum(g > 0 for g in theirs),
              'paper_mean_gap': _mean(theirs)}
    paper = (f'paper: {result["paper_ahead"]}/{len(theirs)}' if theirs else 'paper: -')
    result['text'] = (f'SVR-Ens ahead of Ens in {result["ahead"]}/{len(cells)} cells ({paper});'
                      f' mean gap {_signed(result["mean_gap"])} (paper '
                      f'{_signed(result["paper_mean_gap"])})')
    return result


def _held_out(run):
    held_out = [m for m in SURROGATES if m not in run.settings['models']][0]
    return {held_out: run.results[held_out]['success_rate']} if held_out in run.results else {}


def build_table(name, runs, paper):
    """(markdown, JSON, CSV rows) of Table 1, 2 or 3 from its runs, beside the paper's."""
    table = paper[name]
    if name == 'table1':       # one run per held-out model: the column, not a setting
        rows, surrogates = group_rows(runs, _held_out, drop=('models',)), ()
    else:
        rows, surrogates = group_rows(runs), SURROGATES
    present = dict.fromkeys(c for r in rows for c in r.cells)
    columns = [c for c in table['columns'] if c in present] + [
        c for c in present if c not in table['columns']]
    average_columns = table['average_columns']
    printed = {(r['base'], r['ensemble']): r for r in table['rows']}
    lines, records, csv_rows = [], [], []
    for k, row in enumerate(rows):
        average, have = row_average(row, average_columns)
        theirs = printed.get((row.base, row.ensemble))
        lines.append([row.label] + [mean_std(row.cells.get(c, [])) for c in columns] + [
            _number(average) + ('*' if average is not None and have < len(average_columns)
                                else ''), len(row.seeds)])
        following = rows[k + 1] if k + 1 < len(rows) else None
        if theirs and (following is None or (following.base, following.ensemble)
                       != (row.base, row.ensemble)):
            lines.append([f'{attack_name(row.base, row.ensemble)} (paper)'] + [
                _number(theirs['values'].get(c)) for c in columns] + [
                _number(theirs['paper_average'], 2), 5 if row.ensemble == 'svre' else 1])
        record = row.record(columns)
        for column, cell in record['cells'].items():
            cell['paper'] = theirs['values'].get(column) if theirs else None
            csv_rows.append([name, row.label, column, cell['mean'], cell['std'],
                             len(cell['values']), cell['paper']])
        record['average'] = {'mean': average, 'columns': have,
                             'paper': theirs['paper_average'] if theirs else None}
        csv_rows.append([name, row.label, 'Average', average, None, have,
                         record['average']['paper']])
        records.append(record)
    gap_lines, gaps, cells = [], [], []
    for ens, svre in pairs(rows):
        ours = (row_average(ens, average_columns)[0], row_average(svre, average_columns)[0])
        theirs = (printed.get((svre.base, 'ens')), printed.get((svre.base, 'svre')))
        paper_gap = (theirs[1]['paper_average'] - theirs[0]['paper_average']
                     if all(theirs) else None)
        gap = None if None in ours else ours[1] - ours[0]
        gap_lines.append([svre.label, _number(ours[0]), _number(ours[1]), _signed(gap),
                          _signed(paper_gap)])
        gaps.append({'label': svre.label, 'base': svre.base, 'ens': ours[0], 'svre': ours[1],
                     'gap': gap, 'paper_gap': paper_gap})
        cells += [((ens.mean(c), svre.mean(c)),
                   tuple(t['values'].get(c) if t else None for t in theirs))
                  for c in average_columns if None not in (ens.mean(c), svre.mean(c))]
    result = summary(cells)
    differences = unlike_paper(rows, surrogates)
    parts = [markdown_table(['attack'] + columns + ['Average', 'runs'], lines),
             f'\nAverage over {", ".join(average_columns)} as the paper takes it'
             f'{" (the black-box columns)" if name == "table2" else ""}; * over the columns we '
             'have. runs: seeds averaged (paper: 5 for SVRE, 1 for Ens).\n']
    if gap_lines:
        parts.append('\nSVRE minus Ens on the Average:\n\n' + markdown_table(
            ['attack', 'Ens', 'SVRE', 'gap', 'paper gap'], gap_lines))
    parts.append(f'\n**{result["text"]}** (cells of the Average\'s columns)\n')
    if differences:
        parts.append('\nSettings unlike the paper\'s, ours (paper\'s): ' + '; '.join(
            f'{f} {"/".join(o)} ({"/".join(p)})' for f, (o, p) in differences.items()) + '\n')
    return ''.join(parts), {
        'title': table['title'], 'columns': columns, 'average_columns': average_columns,
        'rows': records, 'gaps': gaps, 'summary': result, 'unlike_paper': differences}, csv_rows


def _other_table(runs):
    rows = group_rows(runs)
    columns = list(dict.fromkeys(c for r in rows for c in r.cells))
    return markdown_table(['attack', 'surrogates'] + columns + ['runs'], [
        [r.label, r.items.get('models')] + [mean_std(r.cells.get(c, [])) for c in columns] +
        [len(r.seeds)] for r in rows])


def figure1(runs):
    """Average loss of the adversarial images on (a) the white-box models, (b) the
    adversarially trained ones, per base attack, Ens beside SVR-Ens (Table 2's runs)."""
    rows = group_rows(runs, lambda run: {c: r['avg_loss'] for c, r in run.results.items()})
    panels = []
    for title, models in (('(a) white-box models', SURROGATES),
                          ('(b) adversarially trained models', ADV_TRAINED)):
        groups = {}
        for row in rows:
            loss = _mean([row.mean(m) for m in models])
            if loss is not None:
                bar = row.label.replace(f'-{BASE_NAMES.get(row.base, row.base)}', '', 1)
                groups.setdefault(BASE_NAMES.get(row.base, row.base), []).append((bar, loss))
        if groups:
            panels.append((title, list(groups.items())))
    columns = [c for c in CLASSIFIERS if any(r.mean(c) is not None for r in rows)]
    markdown = markdown_table(['attack'] + columns + ['(a) mean', '(b) mean'], [
        [r.label] + [_number(r.mean(c), 3) for c in columns] +
        [_number(_mean([r.mean(m) for m in models]), 3) for models in (SURROGATES,
                                                                      ADV_TRAINED)]
        for r in rows])
    figure = figures.Bars('Figure 1: average loss of the adversarial images', panels,
                          'average loss')
    return markdown, {'rows': [r.record(columns) for r in rows], 'panels': panels}, figure


def curves(runs, x_of, x_fields, join_ens):
    """[(settings of the curve, [(x, row)] by x)]: rows (seeds averaged) equal in everything but
    `x_fields` make one curve. join_ens: Ens rows (M = 0) join every SVR-Ens curve of equal
    common settings, the SVR-Ens curves kept apart by their SVRE_ONLY settings."""
    rows = group_rows(runs)
    drop = tuple(x_fields) + (('ensemble',) + SVRE_ONLY if join_ens else ())
    found = {}
    for row in rows:
        if join_ens and row.ensemble == 'ens':
            continue
        extra = {k: row.items[k] for k in SVRE_ONLY
                 if join_ens and k in row.items and k not in x_fields}
        common = {k: v for k, v in row.items.items() if k not in drop}
        found.setdefault((_key(common), _key(extra)), ({**common, **extra}, []))[1].append(row)
    for row in rows:
        if join_ens and row.ensemble == 'ens':
            common = _key(row.items, drop)
            joined = [points for (c, _), (_, points) in found.items() if c == common]
            for points in joined:
                points.append(row)
            if not joined:
                found[common, ''] = ({k: v for k, v in row.items.items() if k not in drop},
                                     [row])
    return [(items, sorted(((x_of(r), r) for r in points), key=lambda p: p[0]))
            for items, points in found.values()]


def _sweep(runs, title, x_name, x_label, x_of, x_fields, x_scale=None):
    """Figures 2 and 3: one panel per base attack, one curve per adversarially trained model."""
    found = curves(runs, x_of, x_fields, join_ens=x_name == 'M')
    panels, lines, points_out = {}, [], []
    for items, points in found:
        same_base = [i for i, _ in found if i['base'] == items['base']]
        suffix = _settings_text(items, differences(same_base, ['svre'] * len(same_base)))
        panel = panels.setdefault(BASE_NAMES.get(items['base'], items['base']), [])
        for model in ADV_TRAINED:
            shown = [(x, r.mean(model)) for x, r in points if r.mean(model) is not None]
            if shown:
                panel.append((figures.MODEL_NAMES[model] + (f' ({suffix})' if suffix else ''),
                              [x for x, _ in shown], [y for _, y in shown]))
        for x, row in points:
            lines.append([row.label, _shown(x)] + [mean_std(row.cells.get(m, []))
                                                   for m in ADV_TRAINED] + [len(row.seeds)])
            points_out.append({x_name: x, **row.record(ADV_TRAINED)})
    figure = figures.Lines(title, list(panels.items()), x_label, 'success rate (%)', x_scale)
    return (markdown_table(['attack', x_name] + list(ADV_TRAINED) + ['runs'], lines),
            {'points': points_out}, figure)


def figure2(runs):
    """Success on the adversarially trained models against the inner iterations M."""
    return _sweep(runs, 'Figure 2: success rate vs the internal update frequency M', 'M',
                  'internal update frequency M',
                  lambda row: row.items['m_svrg'] if row.ensemble == 'svre' else 0, ('m_svrg',))


def figure3(runs):
    """Success on the adversarially trained models against the inner step size beta."""
    return _sweep(runs, 'Figure 3: success rate vs the internal step size beta', 'beta',
                  'internal step size β', lambda row: row.items['beta'], ('beta',), 'log2')


def gradient_calculations(row):
    """Single-model gradients per image as the paper counts them: T x K for Ens, T x (K + 2M)
    for SVR-Ens (a fresh anchor gradient per inner step, the authors' `recompute`)."""
    from svrens_tf import attacks
    config = {k: row.items[k] for k in ('base', 'ensemble', 'num_iter', 'm_svrg')
              if k in row.items}
    cfg = attacks.AttackConfig(**config, outer_grad='recompute')
    return experiments.gradient_passes_per_image(cfg, len(row.items['models'].split(',')))


def figure4(runs):
    """MI-FGSM black-box success (mean over the adversarially trained models) against the total
    number of gradient calculations; one curve for Ens, one for SVR-Ens."""
    found = curves(runs, gradient_calculations, ('num_iter', 'alpha', 'beta'), join_ens=False)
    curves_out, lines, points_out = [], [], []
    for items, points in found:
        suffix = _settings_text(items, differences([i for i, _ in found],
                                                   [i['ensemble'] for i, _ in found]))
        label = ('SVR-Ens' if items['ensemble'] == 'svre' else 'Ens') + (
            f' ({suffix})' if suffix else '')
        xs, ys = [], []
        for x, row in points:
            black_box = _mean([row.mean(m) for m in ADV_TRAINED])
            if black_box is not None:
                xs.append(x)
                ys.append(black_box)
            lines.append([row.label, row.items['num_iter'], x] + [
                mean_std(row.cells.get(m, [])) for m in ADV_TRAINED] + [
                _number(black_box), len(row.seeds)])
            points_out.append({'gradient_calculations': x, 'black_box_mean': black_box,
                               **row.record(ADV_TRAINED)})
        curves_out.append((label, xs, ys))
    figure = figures.Lines('Figure 4: MI-FGSM black-box success vs gradient calculations',
                           [('', curves_out)], 'total number of gradient calculations',
                           'black-box success rate (%)', x_lim=(0, 400))
    return (markdown_table(['attack', 'T', 'gradient calculations'] + list(ADV_TRAINED) +
                           ['mean', 'runs'], lines), {'points': points_out}, figure)


# name (and PNG file name): (the experiment it is drawn from, its builder)
FIGURES = {'figure1_loss': ('table2', figure1), 'figure2_m': ('fig2', figure2),
           'figure3_beta': ('fig3', figure3), 'figure4_gradients': ('fig4', figure4)}


@dataclasses.dataclass
class Report:
    markdown: str
    data: dict          # the same numbers as JSON
    csv: str            # table cells, one per line
    figures: list       # [(PNG file name, figures.Bars | figures.Lines)]


def build_report(runs, unrecorded=(), paper=None):
    """The report of `runs` (from load_results_dir or load_evaluations)."""
    paper = paper if paper is not None else json.loads(PAPER_TABLES.read_text())
    assigned = assign(runs)
    parts = ['# svrens_tf results beside the paper\n\nSuccess rate (%) = images whose '
             'prediction differs from the true label, over all images (the paper\'s protocol); '
             'mean ± sample std over seeds. A row averages only runs equal in every setting '
             f'but the seed. Paper: {paper["source"]}.\n']
    data = {'tables': {}, 'figures': {}}
    csv_rows = [['table', 'row', 'column', 'mean', 'std', 'n', 'paper']]
    drawn = []
    for name in TABLES:
        if name in assigned:
            markdown, data['tables'][name], rows = build_table(name, assigned[name], paper)
            parts.append(f'\n## {TITLES[name]}\n\n{markdown}')
            csv_rows += rows
    for name, (experiment, build) in FIGURES.items():
        if experiment in assigned:
            markdown, data['figures'][name], figure = build(assigned[experiment])
            parts.append(f'\n## {figure.title}\n\n{markdown}')
            drawn.append((f'{name}.png', figure))
    if 'other' in assigned:
        parts.append('\n## Other runs (not in the paper\'s tables)\n\n' +
                     _other_table(assigned['other']))
    if unrecorded:
        parts.append(f'\n{len(unrecorded)} evaluated folder(s) without an attack record left '
                     f'out, e.g. {unrecorded[0]}.\n')
    return Report(''.join(parts), data, to_csv(csv_rows), drawn)


def write_report(report, output):
    """report.md at `output`, the .json and .csv beside it, figures/*.png beside it when
    matplotlib is installed; returns the paths written."""
    output = pathlib.Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    written = figures.draw(report.figures, output.parent / 'figures')
    markdown = report.markdown
    if written:
        markdown += '\n## Figures\n\n' + ''.join(
            f'![{p.stem}]({p.relative_to(output.parent)})\n' for p in written)
    elif report.figures:
        markdown += '\n(Figures need matplotlib: pip install svrens_tf[plots].)\n'
    files.write_atomic(output.with_suffix('.json'), to_json(report.data))
    files.write_atomic(output.with_suffix('.csv'), report.csv)
    files.write_atomic(output, markdown)
    return [output, output.with_suffix('.json'), output.with_suffix('.csv')] + written
