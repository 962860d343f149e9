"""Tables 1 and 2 of the paper at CIFAR-10 scale: Ens vs SVR-Ens transfer on the trained zoo.

Table 1 (hold-out): for each of the four pool models, attack the other three and test on it.
Table 2 (ensemble): attack all four pool models; test on them (white-box) and on the zoo
models outside the pool (black-box).  Every base preset x {ens, svre} x seeds, on test
images that every zoo model classifies correctly; success rate = % misclassified.

    python -m benchmarks.cifar10.transfer --seeds 3          # full benchmark
    python -m benchmarks.cifar10.transfer --quick            # a few images, two models
"""
import json
import pathlib
import time

import numpy as np
from absl import app, flags

import tensorflow as tf

from benchmarks.cifar10 import data, models
from svrens_tf import attacks

HERE = pathlib.Path(__file__).resolve().parent
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
flags.DEFINE_integer('seeds', 1, 'repetitions with seeds 1000, 1001, ...; tables show mean ± std')
flags.DEFINE_integer('num_images', 1000, 'test images, all classified correctly by every model')
flags.DEFINE_integer('batch_size', 100, 'attack batch size')
flags.DEFINE_float('max_epsilon', 8.0, 'L-inf budget in pixel units of 255 (8 = 8/255)')
flags.DEFINE_integer('num_iter', 10, 'outer iterations T')
flags.DEFINE_integer('m_svrg', None, 'inner iterations M of svre (default 4 x surrogates)')
flags.DEFINE_integer('ti_kernel_size', 3, 'TI kernel for 32x32 inputs (the authors use 7 at 299)')
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


def attack_config(preset, ensemble, seed, num_surrogates):
    return attacks.AttackConfig(
        base=preset, ensemble=ensemble, max_epsilon=FLAGS.max_epsilon, num_iter=FLAGS.num_iter,
        m_svrg=FLAGS.m_svrg if FLAGS.m_svrg is not None else 4 * num_surrogates,
        ti_kernel_size=FLAGS.ti_kernel_size if attacks.PRESETS[preset].get('ti_kernel_size') else 0,
        seed=seed)


def run(zoo, x, y, plan, settings):
    """Attack every (experiment, preset, ensemble, seed); returns the list of result records."""
    batches = -(-len(x) // FLAGS.batch_size)
    progress = tf.keras.utils.Progbar(len(plan) * len(settings) * batches,
                                      stateful_metrics=['attack'])
    surrogate_fns = {name: (lambda images, m=model: m(images, training=False))
                     for name, model in zoo.items()}
    records = []
    for label, surrogate_names, targets in plan:
        surrogates = [surrogate_fns[n] for n in surrogate_names]
        for preset, ensemble, seed in settings:
            cfg = attack_config(preset, ensemble, seed, len(surrogates))
            fooled = {t: 0 for t in targets}
            passes = 0
            start = time.time()
            for i in range(0, len(x), FLAGS.batch_size):
                result = attacks.attack(surrogates, x[i:i + FLAGS.batch_size],
                                        y[i:i + FLAGS.batch_size], cfg)
                x_adv = result.x_adv.numpy()
                passes += result.gradient_passes
                for t in targets:
                    fooled[t] += int(np.sum(predict(zoo[t], x_adv) != y[i:i + FLAGS.batch_size]))
                progress.add(1, [('attack', len(records) + 1)])
            records.append(dict(
                experiment=label, surrogates=surrogate_names, preset=preset, ensemble=ensemble,
                seed=seed, m_svrg=cfg.inner_steps, ti_kernel_size=cfg.ti_kernel_size,
                success={t: 100.0 * n / len(x) for t, n in fooled.items()},
                gradient_passes=passes, seconds=round(time.time() - start, 1)))
    return records


def _cell(values):
    values = np.asarray(values)
    if len(values) == 1:
        return f'{values[0]:.1f}'
    return f'{values.mean():.1f} ± {values.std(ddof=1):.1f}'


def markdown(records, plan, accuracies, summary):
    """The two tables (rows preset x ensemble, cells mean ± std over seeds) and the zoo."""
    keys = sorted({(r['preset'], r['ensemble']) for r in records},
                  key=lambda k: (FLAGS.presets.index(k[0]), FLAGS.ensembles.index(k[1])))

    def table(columns):
        head = '| attack | ' + ' | '.join(title for title, _, _ in columns) + ' |'
        lines = [head, '|' + '---|' * (len(columns) + 1)]
        for preset, ensemble in keys:
            cells = [_cell([r['success'][target] for r in records
                            if r['experiment'] == exp and r['preset'] == preset
                            and r['ensemble'] == ensemble])
                     for _, exp, target in columns]
            lines.append(f'| {ensemble}-{preset} | ' + ' | '.join(cells) + ' |')
        return '\n'.join(lines)

    holdouts = [(f'-{targets[0]}', label, targets[0])
                for label, _, targets in plan if label != 'ensemble']
    ensemble_row = [p for p in plan if p[0] == 'ensemble'][0]
    pool = ensemble_row[1]
    ensemble_cols = [(f'{t}{"*" if t in pool else ""}', 'ensemble', t) for t in ensemble_row[2]]
    zoo_lines = ['| model | test accuracy (%) | role |', '|---|---|---|'] + [
        f'| {name} | {100 * acc:.2f} | {"pool" if name in pool else "outside"} |'
        for name, acc in accuracies.items()]
    return '\n\n'.join([
        '# CIFAR-10 transfer benchmark (Ens vs SVR-Ens)',
        summary,
        '## Zoo\n\n' + '\n'.join(zoo_lines),
        '## Table 1: hold-out (attack the other three pool models, test on the named one)\n\n'
        + table(holdouts),
        '## Table 2: ensemble of the four pool models (* white-box, others black-box)\n\n'
        + table(ensemble_cols),
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
    settings = [(p, e, 1000 + s) for p in FLAGS.presets for e in FLAGS.ensembles
                for s in range(FLAGS.seeds)]
    records = run(zoo, x, y, plan, settings)
    wall = time.time() - start
    passes = sum(r['gradient_passes'] for r in records)
    summary = (f'{len(x)} test images (correct for every model), eps {FLAGS.max_epsilon:g}/255, '
               f'T {FLAGS.num_iter}, M {"4K" if FLAGS.m_svrg is None else FLAGS.m_svrg}, TI kernel {FLAGS.ti_kernel_size}, '
               f'{FLAGS.seeds} seed(s) (mean ± std when more than one); success rate in %. '
               f'Wall time {wall:.0f} s for the whole run; {passes} single-model gradient passes '
               f'over batches of up to {FLAGS.batch_size} images.')
    out = pathlib.Path(FLAGS.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / 'transfer.json').write_text(json.dumps(dict(
        flags={k: getattr(FLAGS, k) for k in ('pool', 'outside', 'presets', 'ensembles', 'seeds',
                                             'num_images', 'batch_size', 'max_epsilon',
                                             'num_iter', 'm_svrg', 'ti_kernel_size')},
        test_accuracy=accuracies, wall_seconds=round(wall, 1), gradient_passes=passes,
        records=records), indent=1) + '\n')
    table = markdown(records, plan, accuracies, summary)
    (out / 'transfer.md').write_text(table)
    print('\n' + table)


if __name__ == '__main__':
    app.run(main)
