"""Tables 1 and 2 of the paper at CIFAR-10 scale: Ens vs SVR-Ens transfer on the trained zoo.

Table 1 (hold-out): for each of the four pool models, attack the other three and test on it.
Table 2 (ensemble): attack all four pool models; test on them (white-box) and on the zoo
models outside the pool (black-box).  Every base preset x {ens, svre} x seeds, on test
images that every zoo model classifies correctly; success rate = % misclassified.
With --equal_passes every method gets the single-model gradient passes per image of SVR-Ens
at (T, M) (`attacks.at_passes`), and the tables add each row's paired difference to svre.

    python -m benchmarks.cifar10.transfer --seeds 3          # full benchmark
    python -m benchmarks.cifar10.transfer --quick            # a few images, two models
    python -m benchmarks.cifar10.transfer --equal_passes \
        --estimators svrg,saga,sarah,svrg_is,svrg_cache,svrg_shared \
        --output_dir benchmarks/cifar10/results/equal_passes
"""
import json
import pathlib
import time

import numpy as np
from absl import app, flags

import tensorflow as tf

from benchmarks.cifar10 import data, models
from svrens_tf import attacks, files, records as run_records, tables
from svrens_tf.attacks.config import ENSEMBLES, ESTIMATORS

HERE = pathlib.Path(__file__).resolve().parent
SETTING_FLAGS = ('pool', 'outside', 'num_images', 'batch_size', 'max_epsilon', 'num_iter',
                 'm_svrg', 'ti_kernel_size')
QUICK = dict(num_images=10, pool=['separable', 'vgg'], outside=[], presets=['mi_fgsm', 'ti_dim'])

FLAGS = flags.FLAGS
flags.DEFINE_string('weights_dir', str(HERE / 'weights'), 'folder of <model>.weights.h5')
flags.DEFINE_string('source', None, 'CIFAR-10 tarball (default: ../shared, else download)')
flags.DEFINE_string('cache_dir', None, 'keep the decoded dataset here as .npz')
flags.DEFINE_string('output_dir', str(HERE / 'results'), 'where transfer.json and transfer.md go')
flags.DEFINE_list('pool', ['vgg', 'preact_resnet', 'inception', 'densenet'],
                  'the surrogate pool (Table 1 holds out each; Table 2 attacks all)')
flags.DEFINE_list('outside', ['separable'], 'black-box targets outside the pool (Table 2)')
flags.DEFINE_list('presets', list(attacks.PRESETS), 'base attacks')
flags.DEFINE_list('ensembles', ['ens', 'svre'], 'ensemble strategies')
# The inner-estimator choices: AttackConfig's estimators, and two variants of the authors' svrg
# under DI: 'svrg_cache', the anchor gradients cached (outer_grad 'cache'), so that at equal
# passes the passes the cache saves become extra inner steps; 'svrg_shared', the anchor gradient
# recomputed with the inner step's own transform draw (outer_grad 'shared', the textbook
# control variate), at the authors' cost.
ESTIMATOR_FIELDS = {**{name: dict(estimator=name) for name in ESTIMATORS},
                    'svrg_cache': dict(estimator='svrg', outer_grad='cache'),
                    'svrg_shared': dict(estimator='svrg', outer_grad='shared')}
flags.DEFINE_list('estimators', ['svrg'], f'svre inner estimators, of {list(ESTIMATOR_FIELDS)}')
flags.register_validator('estimators', lambda names: set(names) <= set(ESTIMATOR_FIELDS),
                         f'--estimators: choose from {list(ESTIMATOR_FIELDS)}')
flags.DEFINE_bool('equal_passes', False, 'give every method the gradient passes per image of '
                  'svre at --num_iter and --m_svrg: Ens scales T, svre estimators M (or T)')
flags.DEFINE_integer('seeds', 1, 'repetitions with seeds 1000, 1001, ...; tables show mean ± std')
flags.DEFINE_integer('num_images', 1000, 'test images, all classified correctly by every model')
flags.DEFINE_integer('batch_size', 100, 'attack batch size')
flags.DEFINE_float('max_epsilon', 8.0, 'L-inf budget in pixel units of 255 (8 = 8/255)')
flags.DEFINE_integer('num_iter', 10, 'outer iterations T')
flags.DEFINE_integer('m_svrg', None, 'inner iterations M of svre (default 4 x surrogates)')
flags.DEFINE_integer('ti_kernel_size', 3, 'TI kernel for 32x32 inputs (the authors use 7 at 299)')
flags.DEFINE_list('tables', ['1', '2'], 'attack only the cells of these tables (1: hold-out, '
                  '2: ensemble); the tables show every cell done so far')
flags.register_validator('tables', lambda t: bool(t) and set(t) <= {'1', '2'},
                         '--tables: 1, 2 or 1,2')
flags.DEFINE_bool('quick', False, f'smoke run: {QUICK}')


def clean_correct_images(zoo, source, cache_dir, num_images):
    """(x, y, accuracies): the first `num_images` test images (fixed shuffle) that every model
    classifies correctly, in [-1,1], and each model's accuracy on the whole test set."""
    x_test, y_test = data.load(source, cache_dir, splits=('test',))['test']
    x_test = data.to_model_range(x_test)
    correct = np.ones(len(y_test), bool)
    accuracies = {}
    for name, model in zoo.items():
        hits = predict(model, x_test) == y_test
        accuracies[name] = float(hits.mean())
        correct &= hits
    order = np.random.default_rng(0).permutation(len(y_test))
    chosen = order[correct[order]][:num_images]
    if len(chosen) < num_images:
        raise ValueError(f'only {len(chosen)} test images are correct for every model')
    return x_test[chosen], y_test[chosen], accuracies


def predict(model, x, batch_size=500):
    return np.concatenate([np.argmax(model(x[i:i + batch_size], training=False), -1)
                           for i in range(0, len(x), batch_size)])


def experiments(pool, outside):
    """[(label, surrogate names, target names)]: Table 1's hold-outs, then Table 2's ensemble."""
    rows = [(f'hold-out {held}', [m for m in pool if m != held], [held]) for held in pool]
    return rows + [('ensemble', list(pool), list(pool) + list(outside))]


def attack_config(preset, ensemble, estimator, seed, num_surrogates):
    """The AttackConfig of one cell; with --equal_passes at the passes per image of the
    authors' SVR-Ens at --num_iter and --m_svrg (`attacks.at_passes`)."""
    cfg = attacks.AttackConfig(
        base=preset, ensemble=ensemble, **ESTIMATOR_FIELDS[estimator],
        max_epsilon=FLAGS.max_epsilon,
        num_iter=FLAGS.num_iter,
        m_svrg=FLAGS.m_svrg if FLAGS.m_svrg is not None else 4 * num_surrogates,
        ti_kernel_size=FLAGS.ti_kernel_size if attacks.PRESETS[preset].get('ti_kernel_size') else 0,
        seed=seed)
    if not FLAGS.equal_passes:
        return cfg
    return attacks.at_passes(cfg, attacks.authors_passes(cfg, num_surrogates), num_surrogates)


def method(record):
    """(preset, ensemble, estimator) of a record; records from before estimators are svrg."""
    return record['preset'], record['ensemble'], record.get('estimator', 'svrg')


def method_label(preset, ensemble, estimator):
    return f'{ensemble if estimator == "svrg" else f"{ensemble}_{estimator}"}-{preset}'


def run(zoo, x, y, plan, settings, records, save):
    """Attack every (experiment, preset, ensemble, estimator, seed) not already in `records`,
    appending one record each and calling `save(records)` after each; returns `records`."""
    done = {(r['experiment'], *method(r), r['seed']) for r in records}
    todo = [(row, setting) for row in plan for setting in settings
            if (row[0], *setting) not in done]
    batches = -(-len(x) // FLAGS.batch_size)
    progress = tf.keras.utils.Progbar(len(todo) * batches, stateful_metrics=['cell'])
    surrogate_fns = {name: (lambda images, m=model: m(images, training=False))
                     for name, model in zoo.items()}
    for cell, ((label, surrogate_names, targets), (preset, ensemble, estimator, seed)) in \
            enumerate(todo):
        surrogates = [surrogate_fns[n] for n in surrogate_names]
        cfg = attack_config(preset, ensemble, estimator, seed, len(surrogates))
        fooled = {t: [] for t in targets}
        passes = 0
        start = time.time()
        for i in range(0, len(x), FLAGS.batch_size):
            result = attacks.attack(surrogates, x[i:i + FLAGS.batch_size],
                                    y[i:i + FLAGS.batch_size], cfg)
            x_adv = result.x_adv.numpy()
            passes += result.gradient_passes
            for t in targets:
                fooled[t].append(predict(zoo[t], x_adv) != y[i:i + FLAGS.batch_size])
            progress.add(1, [('cell', cell + 1)])
        fooled = {t: np.concatenate(hits) for t, hits in fooled.items()}
        records.append(dict(
            experiment=label, surrogates=surrogate_names, preset=preset, ensemble=ensemble,
            estimator=estimator, seed=seed, num_iter=cfg.num_iter, m_svrg=cfg.inner_steps,
            ti_kernel_size=cfg.ti_kernel_size,
            success={t: 100.0 * int(hits.sum()) / len(x) for t, hits in fooled.items()},
            fooled_images={t: ''.join(np.where(hits, '1', '0')) for t, hits in fooled.items()},
            gradient_passes=passes, passes_per_image=passes / batches,
            seconds=round(time.time() - start, 1)))
        save(records)
    return records


def earlier_records(path, settings, accuracies):
    """The records of an earlier run into the same folder, so a stopped run resumes and presets
    run one at a time add up; refuses a file made with other settings or weights."""
    if not path.is_file():
        return []
    earlier = json.loads(path.read_text())
    differ = run_records.changed_settings(earlier.get('settings'), settings)
    if earlier.get('test_accuracy') != accuracies:
        differ.append('weights (test accuracies)')
    if differ:
        raise app.UsageError(f'{path} holds results made with other {", ".join(differ)}; '
                             f'choose another --output_dir or move that file away')
    return earlier['records']


def table_columns(plan):
    """{'1': ..., '2': ...}: each table's (columns, black-box column indices); a column is
    (title, experiment, target): Table 1 one per hold-out, Table 2 the ensemble's targets
    (* white-box), black-box the targets outside the pool."""
    holdouts = [(f'-{targets[0]}', label, targets[0])
                for label, _, targets in plan if label != 'ensemble']
    _, pool, targets = [p for p in plan if p[0] == 'ensemble'][0]
    ensemble = [(f'{t}{"*" if t in pool else ""}', 'ensemble', t) for t in targets]
    return {'1': (holdouts, list(range(len(holdouts)))),
            '2': (ensemble, [i for i, t in enumerate(targets) if t not in pool])}


def seed_rows(records, key, columns, black_box, settings):
    """({seed: [success per column, black-box average, T, M, passes/image, seconds]},
    {seed: each image's fooled fraction over the black-box columns}) of method `key` over the
    seeds that have every cell of the table: T, M and passes per image averaged over its
    cells, seconds summed; the second only for the seeds whose records carry per-image
    outcomes (`fooled_images`; earlier records do not).  Records from before --equal_passes
    lack T and passes per image: their T is --num_iter, their batches all alike."""
    batches = -(-settings['num_images'] // settings['batch_size'])
    rows, images = {}, {}
    for seed in sorted({r['seed'] for r in records if method(r) == key}):
        cells = {r['experiment']: r for r in records if method(r) == key and r['seed'] == seed}
        if not all(exp in cells for _, exp, _ in columns):
            continue
        success = [cells[exp]['success'][target] for _, exp, target in columns]
        costs = np.array([[cells[exp].get('num_iter', settings['num_iter']), cells[exp]['m_svrg'],
                           cells[exp].get('passes_per_image',
                                          cells[exp]['gradient_passes'] / batches),
                           cells[exp]['seconds']]
                          for exp in dict.fromkeys(e for _, e, _ in columns)])
        average = np.mean([success[i] for i in black_box]) if black_box else None
        rows[seed] = success + [average] + list(costs[:, :3].mean(0)) + [costs[:, 3].sum()]
        outcomes = [cells[columns[i][1]].get('fooled_images', {}).get(columns[i][2])
                    for i in black_box]
        if outcomes and None not in outcomes:
            images[seed] = np.mean([[bit == '1' for bit in o] for o in outcomes], 0)
    return rows, images


def image_se(images, reference):
    """(standard error over the images of the black-box difference in points, seeds used):
    each image's difference averaged over the seeds that both have; (None, 0) if none."""
    seeds = [s for s in images if s in reference]
    if not seeds:
        return None, 0
    difference = np.mean([images[s] - reference[s] for s in seeds], 0)
    return 100 * np.std(difference, ddof=1) / np.sqrt(len(difference)), len(seeds)


def markdown(records, plan, accuracies, summary, settings):
    """The two tables and the zoo.  Rows: preset x method; cells: mean ± std over seeds of
    each target, of the black-box average, and of the row's T, M, passes per image and attack
    seconds (`seed_rows`), with the number of seeds; each non-svre row is followed by its
    paired difference to the svre row of its preset (same seed, same images), mean ± std over
    seeds, and the standard error over the images of its black-box average (`image_se`),
    which the std over seeds on one fixed image set leaves out.  `settings`: the run's
    SETTING_FLAGS values."""
    order = [(p, e, m) for p in attacks.PRESETS for e in ENSEMBLES for m in ESTIMATOR_FIELDS]
    keys = sorted({method(r) for r in records}, key=order.index)
    pool = [p for p in plan if p[0] == 'ensemble'][0][1]

    def image_se_cell(images, reference, num_paired):
        se, seeds = image_se(images, reference)
        if se is None:
            return '-'
        return f'{se:.1f}' + (f' ({seeds} of {num_paired} seeds)' if seeds < num_paired else '')

    def table(columns, black_box):
        rows = []
        for key in keys:
            values, images = seed_rows(records, key, columns, black_box, settings)
            if not values:
                continue
            columns_of = [[v[i] for v in values.values()] for i in range(len(columns) + 5)]
            rows.append([method_label(*key)] + [tables.mean_std(c) for c in columns_of[:-4]]
                        + [''] + [f'{np.mean(c):g}' for c in columns_of[-4:-1]]
                        + [tables.mean_std(columns_of[-1]), len(values)])
            reference, reference_images = seed_rows(records, (key[0], 'svre', 'svrg'), columns,
                                                    black_box, settings)
            paired = [seed for seed in values if seed in reference]
            if key[1:] != ('svre', 'svrg') and paired:
                rows.append([f'Δ vs svre-{key[0]}'] + [
                    tables.mean_std([None if values[s][i] is None else
                                     values[s][i] - reference[s][i] for s in paired])
                    for i in range(len(columns) + 1)]
                    + [image_se_cell(images, reference_images, len(paired)) if black_box else '']
                    + [''] * 4 + [len(paired)])
        header = ['attack'] + [title for title, _, _ in columns] + [
            'black-box avg', 'Δ SE (images)', 'T', 'M', 'passes/image', 'seconds', 'seeds']
        return tables.markdown_table(header, rows)

    zoo_table = tables.markdown_table(
        ['model', 'test accuracy (%)', 'role'],
        [[name, f'{100 * acc:.2f}', 'pool' if name in pool else 'outside']
         for name, acc in accuracies.items()])
    columns = table_columns(plan)
    return '\n\n'.join(part.rstrip('\n') for part in [
        '# CIFAR-10 transfer benchmark (Ens vs SVR-Ens)',
        summary,
        '## Zoo\n\n' + zoo_table,
        '## Table 1: hold-out (attack the other three pool models, test on the named one)\n\n'
        + table(*columns['1']),
        '## Table 2: ensemble of the four pool models (* white-box, others black-box)\n\n'
        + table(*columns['2']),
    ]) + '\n'


def main(argv):
    del argv
    if FLAGS.quick:
        for name, value in QUICK.items():
            setattr(FLAGS, name, value)
    start = time.time()
    names = list(dict.fromkeys(FLAGS.pool + FLAGS.outside))
    zoo = {name: models.load(name, FLAGS.weights_dir) for name in names}
    x, y, accuracies = clean_correct_images(zoo, FLAGS.source, FLAGS.cache_dir, FLAGS.num_images)
    plan = experiments(FLAGS.pool, FLAGS.outside)
    settings = {name: getattr(FLAGS, name) for name in SETTING_FLAGS}
    if FLAGS.equal_passes:   # absent from earlier results folders, all at equal iterations
        settings['equal_passes'] = True
    out = pathlib.Path(FLAGS.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    json_path = out / 'transfer.json'
    environment = run_records.environment()

    def save(records):
        files.write_atomic(json_path, json.dumps(dict(
            settings=settings, environment=environment, test_accuracy=accuracies,
            attack_seconds=round(sum(r['seconds'] for r in records), 1),
            gradient_passes=sum(r['gradient_passes'] for r in records),
            records=records), indent=1) + '\n')

    records = earlier_records(json_path, settings, accuracies)
    wanted = [(p, e, m, 1000 + s) for p in FLAGS.presets for e in FLAGS.ensembles
              for m in (FLAGS.estimators if e == 'svre' else ['svrg']) for s in range(FLAGS.seeds)]
    chosen = [row for row in plan if ('2' if row[0] == 'ensemble' else '1') in FLAGS.tables]
    records = run(zoo, x, y, chosen, wanted, records, save)
    seeds = ', '.join(map(str, sorted({r['seed'] for r in records})))
    summary = (f'{len(x)} test images (correct for every model), eps {FLAGS.max_epsilon:g}/255, '
               f'T {FLAGS.num_iter}, M {"4K" if FLAGS.m_svrg is None else FLAGS.m_svrg}, '
               f'TI kernel {FLAGS.ti_kernel_size}, seeds {seeds} (a row: mean ± std over the '
               f'seeds that have all its cells, column seeds); success rate in %. '
               f'Attack time {sum(r["seconds"] for r in records):.0f} s '
               f'summed over all cells ({len(records)}), '
               f'{sum(r["gradient_passes"] for r in records)} single-model gradient passes over '
               f'batches of up to {FLAGS.batch_size} images; this invocation took '
               f'{time.time() - start:.0f} s.' + (
                   ' Equal passes: every row spends the passes per image of svre at this T and '
                   'M (Ens with more steps, the estimators with their own M or T; alpha = eps/T, '
                   'beta = alpha); Δ rows: paired difference to svre, same seed and images, '
                   'mean ± std over seeds, and its standard error over the images.'
                   if FLAGS.equal_passes else ''))
    table = markdown(records, plan, accuracies, summary, settings)
    files.write_atomic(out / 'transfer.md', table)
    print('\n' + table)


if __name__ == '__main__':
    app.run(main)
