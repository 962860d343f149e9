"""The equal-pass verdict over results folders of `transfer --equal_passes`, in one table.

A column is one (attack, eps, table) of the folders, a row one method; a cell is the method's
paired difference to SVR-Ens (svre, the authors' svrg) in black-box average, same seeds and
images: mean ± std over the seeds [standard error over the images] (seeds).  Each method's
passes per image and attack seconds per seed follow in a second table.

Adoption rule (issue 15): an inner estimator becomes an option only if it beats SVR-Ens by at
least 1 point beyond 2 standard errors in every cell, read as: Δ >= 1, Δ > 2 std/sqrt(n) over
the n >= 3 seeds (the protocol's minimum) and Δ > 2 SE over the images.  The stricter reading,
Δ - 2 SE >= 1, can only adopt fewer.  Cells that meet the rule carry a ✓; Ens, the baseline,
is not judged.

    python -m benchmarks.cifar10.equal_passes \
        benchmarks/cifar10/results/equal_passes_{mi_fgsm,ti_dim}_eps{4,8}
"""
import json
import pathlib

import numpy as np
from absl import app, flags

from benchmarks.cifar10 import transfer
from svrens_tf import attacks, files, tables

FLAGS = flags.FLAGS
flags.DEFINE_string('output', None, 'also write the tables to this markdown file')
MIN_SEEDS = 3
GAIN = 1.0


def cells(path):
    """[(column title, {row: cell})] of one results folder, a column per preset and table, a
    row per method ('ens', or svre's estimator: 'svrg' is SVR-Ens): its black-box averages,
    paired differences to SVR-Ens and costs over the seeds."""
    source = pathlib.Path(path) / 'transfer.json'
    if not source.is_file():
        raise app.UsageError(f'{source}: no such file (name a results folder of transfer)')
    try:
        run = json.loads(source.read_text())
    except json.JSONDecodeError as error:
        raise app.UsageError(f'{source}: not JSON ({error})') from None
    settings, records = run['settings'], run['records']
    if not settings.get('equal_passes'):
        raise app.UsageError(f'{path}: not an --equal_passes run')
    methods = list(dict.fromkeys(transfer.method(r) for r in records))
    out = []
    for preset in [p for p in attacks.PRESETS if p in {m[0] for m in methods}]:
        for table, (columns, black_box) in transfer.table_columns(
                transfer.experiments(settings['pool'], settings['outside'])).items():
            reference, reference_images = transfer.seed_rows(
                records, (preset, 'svre', 'svrg'), columns, black_box, settings)
            column = {}
            average, passes, seconds = len(columns), len(columns) + 3, len(columns) + 4
            for key in [m for m in methods if m[0] == preset]:
                rows, images = transfer.seed_rows(records, key, columns, black_box, settings)
                paired = [s for s in rows if s in reference]
                if not paired:
                    continue
                column['ens' if key[1] == 'ens' else key[2]] = dict(
                    average=[rows[s][average] for s in paired],
                    delta=[rows[s][average] - reference[s][average] for s in paired],
                    image_se=transfer.image_se(images, reference_images)[0],
                    passes=rows[paired[0]][passes], seconds=[rows[s][seconds] for s in paired])
            out.append((f'{preset} eps {settings["max_epsilon"]:g} T{table}', column))
    return out


def meets_rule(cell):
    """Whether a cell's difference meets the adoption rule (module docstring)."""
    delta, n = cell['delta'], len(cell['delta'])
    if n < MIN_SEEDS or cell['image_se'] is None:
        return False
    mean = np.mean(delta)
    return mean >= GAIN and mean > 2 * np.std(delta, ddof=1) / np.sqrt(n) \
        and mean > 2 * cell['image_se']


def verdict_tables(columns):
    """Markdown: the paired differences with the rule per cell and per method, then costs."""
    present = {row for _, column in columns for row in column}
    rows = [row for row in ['ens', *transfer.ESTIMATOR_FIELDS] if row in present]
    titles = [title for title, _ in columns]

    def delta(row, cell):
        se = '' if cell['image_se'] is None else f' [{cell["image_se"]:.1f}]'
        mark = ' ✓' if row != 'ens' and meets_rule(cell) else ''
        return f'{tables.mean_std(cell["delta"])}{se} ({len(cell["delta"])}){mark}'

    def verdict(row):
        if row == 'ens':
            return 'baseline'
        judged = [column[row] for _, column in columns if row in column]
        met = sum(meets_rule(cell) for cell in judged)
        return f'{met} of {len(judged)} cells: {"adopted" if met == len(judged) else "not adopted"}'

    differences = [['SVR-Ens black-box avg'] + [
        tables.mean_std(column['svrg']['average'] if 'svrg' in column else [])
        for _, column in columns] + ['']]
    differences += [[row] + [delta(row, column[row]) if row in column else ''
                             for _, column in columns] + [verdict(row)]
                    for row in rows if row != 'svrg']
    costs = [['SVR-Ens' if row == 'svrg' else row] + [
        f'{column[row]["passes"]:g} / {tables.mean_std(column[row]["seconds"])}'
        if row in column else '' for _, column in columns] for row in rows]
    return (tables.markdown_table(['Δ vs SVR-Ens'] + titles + ['adoption rule'], differences)
            + '\n' + tables.markdown_table(['passes per image / s per seed'] + titles, costs))


def main(argv):
    if len(argv) < 2:
        raise app.UsageError('name one or more results folders of transfer --equal_passes')
    text = verdict_tables([column for path in argv[1:] for column in cells(path)])
    if FLAGS.output:
        files.write_atomic(pathlib.Path(FLAGS.output), text)
    print(text)


if __name__ == '__main__':
    app.run(main)
