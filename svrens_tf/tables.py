"""Tables of results: JSON, CSV and markdown writers, mean ± std over seeds, and the tables of
one evaluation (svrens-evaluate's evaluation.json as CSV and markdown)."""
import csv
import io
import json

import numpy as np


def to_json(value):
    """JSON keeping the insertion order (classifier columns stay in the order evaluated)."""
    return json.dumps(value, indent=1) + '\n'


def to_csv(rows):
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator='\n').writerows(rows)
    return buffer.getvalue()


def markdown_table(header, rows):
    lines = ['| ' + ' | '.join(map(str, header)) + ' |',
             '|' + '---|' * len(header)]
    lines += ['| ' + ' | '.join(map(str, row)) + ' |' for row in rows]
    return '\n'.join(lines) + '\n'


def percent(value):
    """A rate in % with one decimal, '-' for None."""
    return '-' if value is None else f'{value:.1f}'


def mean_std(values):
    """'m' for one value, 'm ± s' (sample std) for several, '-' for none."""
    values = [v for v in values if v is not None]
    if not values:
        return '-'
    if len(values) == 1:
        return f'{values[0]:.1f}'
    return f'{np.mean(values):.1f} ± {np.std(values, ddof=1):.1f}'


EVALUATION_COLUMNS = ['success_rate', 'success_rate_clean_correct', 'avg_loss', 'clean_accuracy',
                      'abstained', 'num_images', 'num_clean_correct']


def evaluation_csv(evaluation):
    """One row per (folder, classifier) of an evaluation (svrens-evaluate's evaluation.json)."""
    rows = [['folder', 'classifier'] + EVALUATION_COLUMNS]
    for folder, entry in evaluation['folders'].items():
        for name, result in entry['results'].items():
            rows.append([folder, name] + ['' if result[c] is None else result[c]
                                          for c in EVALUATION_COLUMNS])
    return to_csv(rows)


def evaluation_markdown(evaluation):
    """Success rates (the paper's, then over clean-correct images) and losses per folder."""
    folders = evaluation['folders']
    names = list(evaluation['clean'])
    parts = [f'# Evaluation of {len(folders)} folder(s) on {evaluation["num_images"]} images of '
             f'{evaluation["clean_dir"]}\n']
    for title, key, show in [
            ('Success rate (%): prediction != true label, over all images (the paper\'s)',
             'success_rate', percent),
            ('Success rate (%) over the images the classifier gets right when clean',
             'success_rate_clean_correct', percent),
            ('Average cross-entropy of the adversarial images', 'avg_loss',
             lambda v: '-' if v is None else f'{v:.3f}')]:
        rows = [[folder, entry['max_perturbation']] + [show(entry['results'][n][key])
                                                       for n in names]
                for folder, entry in folders.items()]
        parts.append(f'\n## {title}\n\n' + markdown_table(['folder', 'max |delta|'] + names, rows))
    clean = [['clean accuracy (%)'] + [percent(evaluation['clean'][n]['accuracy'])
                                       for n in names]]
    parts.append('\n## Clean images\n\n' + markdown_table([''] + names, clean))
    return ''.join(parts)
