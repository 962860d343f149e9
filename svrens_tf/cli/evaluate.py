"""svrens-evaluate: success rates of adversarial folders on zoo models and defenses.

    svrens-evaluate --clean_dir data/nips17 --input_dir results/ens,results/svre \
        --models inc_v3,ens3_adv_inc_v3 --defenses jpeg,bit_red --output_dir results/eval

Each classifier is loaded once and sees the clean images and every folder in one pass. When all
are done, writes evaluation.json, evaluation.csv, evaluation.md, predictions.csv and
eval_run.json (flags, versions, timings) into --output_dir, each atomically.
"""
import shlex
import sys
import time

import numpy as np
from absl import app, flags

from svrens_tf import cli, data, evaluate, files, records, tables
from svrens_tf.models import CheckpointError

FLAGS = flags.FLAGS
CLASSIFIERS = ['inc_v3', 'inc_v4', 'incres_v2', 'res_v2_101', 'ens3_adv_inc_v3',
               'ens4_adv_inc_v3', 'ens_adv_incres_v2']

flags.DEFINE_list('input_dir', None, 'Adversarial folder(s) of <ImageId>.png, comma-separated.')
flags.DEFINE_string('clean_dir', None, 'The NIPS17 folder the adversarial images were made '
                    'from (clean images and labels csv).')
flags.DEFINE_string('labels', None, 'Labels csv (default: found beside the clean images).')
flags.DEFINE_boolean('resize', False, 'Resize clean images that are not 299x299, as the attack '
                     'did with --resize.')
flags.DEFINE_list('models', CLASSIFIERS, 'Zoo models to evaluate on.')
flags.DEFINE_list('defenses', [], 'In-process defenses (svrens_tf.defenses.NAMES) to evaluate '
                  'on.')
flags.DEFINE_multi_string('defense_option', [], 'DEFENSE.OPTION=VALUE for one of --defenses, '
                          'e.g. jpeg.quality=75 (repeatable; svrens_tf.defenses.options(name) '
                          'lists each defense\'s options and defaults).')
flags.DEFINE_multi_string('external_defense', [], 'NAME=COMMAND of a NIPS17 defense program, run '
                          'as COMMAND INPUT_DIR OUTPUT_CSV (repeatable).')
flags.DEFINE_integer('external_timeout_s', 7200, 'Time limit of one external defense run.')
flags.DEFINE_string('checkpoint_dir', None, 'Folder with one subfolder per zoo name, as written '
                    'by svrens-download (default: $SVRENS_CHECKPOINT_DIR, else checkpoints/).')
flags.DEFINE_integer('batch_size', 10, 'Images per forward pass.', lower_bound=1)
flags.DEFINE_integer('seed', 0, 'Seed of the randomized defenses.')
flags.DEFINE_string('output_dir', None, 'Folder receiving the evaluation files.')


def load_classifier(name, checkpoint_dir):
    from svrens_tf import models
    return models.load(name, checkpoint_dir)


def parse_external(specs):
    """{name: argv} from NAME=COMMAND strings."""
    external = {}
    for spec in specs:
        name, sep, command = spec.partition('=')
        if not sep or not name or not command.strip():
            raise app.UsageError(f'--external_defense {spec!r}: expected NAME=COMMAND')
        external[name] = shlex.split(command)
    return external


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f'unexpected arguments: {" ".join(argv[1:])}')
    for required in ('input_dir', 'clean_dir', 'output_dir'):
        if not FLAGS[required].value:
            raise app.UsageError(f'--{required} is required')
    external = parse_external(FLAGS.external_defense)
    from svrens_tf import defenses
    unknown = [d for d in FLAGS.defenses if d not in defenses.NAMES]
    if unknown:
        raise app.UsageError(f'unknown defenses {", ".join(unknown)}; known: '
                             f'{", ".join(defenses.NAMES)}')
    try:
        options = defenses.parse_options(FLAGS.defense_option, FLAGS.defenses)
    except ValueError as err:
        raise app.UsageError(f'--defense_option: {err}')
    try:
        evaluate_folders(external, options)
    except (data.DataError, defenses.external.DefenseError, CheckpointError) as err:
        sys.exit(f'svrens-evaluate: {err}')


def evaluate_folders(external, defense_options):
    from svrens_tf import defenses
    started = time.time()
    dataset = data.load_dataset(FLAGS.clean_dir, FLAGS.labels, FLAGS.resize)
    folders = [data.load_dataset(d, dataset.labels_csv).image_dir for d in FLAGS.input_dir]
    output_dir = data.check_output_dir(FLAGS.output_dir, FLAGS.clean_dir, dataset)
    defenses.require_weights(FLAGS.defenses, FLAGS.checkpoint_dir, defense_options)
    settings = {'clean_dir': str(dataset.image_dir), 'folders': [str(f) for f in folders],
                'defense_options': defense_options}
    seconds = {}

    loaded = {}

    def load_once(name, checkpoint_dir):
        if name not in loaded:
            loaded[name] = load_classifier(name, checkpoint_dir)
        return loaded[name]

    classifiers = [(name, lambda n=name: evaluate.model_classifier(
        load_once(n, FLAGS.checkpoint_dir))) for name in FLAGS.models]
    classifiers += [(name, lambda n=name: evaluate.defense_classifier(defenses.build(
        n, FLAGS.checkpoint_dir, FLAGS.seed, load_model=load_once, **defense_options[n])))
        for name in FLAGS.defenses]
    all_folders = [dataset.image_dir] + folders
    predictions = {}
    for name, make in classifiers:
        began = time.time()
        print(f'{name}: {len(all_folders)} folders x {len(dataset.image_ids)} images', flush=True)
        predictions[name] = evaluate.predict(make(), dataset, all_folders, FLAGS.batch_size)
        seconds[name] = round(time.time() - began, 3)
    for name, command in external.items():
        began = time.time()
        predictions[name] = {f: (external_labels(command, f, dataset), None) for f in all_folders}
        seconds[name] = round(time.time() - began, 3)
    evaluation = summarize(dataset, folders, predictions)
    output_dir.mkdir(parents=True, exist_ok=True)
    write_outputs(output_dir, dataset, folders, predictions, evaluation)
    record = records.RunRecord(output_dir / 'eval_run.json', settings, cli.flag_values(__name__))
    record.start(started, seed=FLAGS.seed, classifier_seconds=seconds)
    record.finish(started)


def external_labels(command, folder, dataset):
    from svrens_tf.defenses import external
    labels = external.run_defense(command, folder, FLAGS.external_timeout_s)
    missing = [i for i in dataset.image_ids if i not in labels]
    if missing:
        raise data.DataError(f'{folder}: {command[0]} gave no label for {missing[0]}.png')
    return np.array([labels[i] for i in dataset.image_ids], np.int32)


def summarize(dataset, folders, predictions):
    labels = [dataset.labels[i] for i in dataset.image_ids]
    clean = {name: by_folder[dataset.image_dir] for name, by_folder in predictions.items()}
    return {
        'clean_dir': str(dataset.image_dir),
        'labels_csv': str(dataset.labels_csv),
        'num_images': len(labels),
        'clean': {name: {'accuracy': 100.0 * float(np.mean(p == labels)),
                         'avg_loss': None if loss is None else float(np.mean(loss))}
                  for name, (p, loss) in clean.items()},
        'folders': {str(folder): {
            'attack': records.attack_settings(folder),
            'max_perturbation': evaluate.max_perturbation(dataset, folder, FLAGS.batch_size),
            'results': {name: evaluate.summarize(labels, clean[name][0], *by_folder[folder])
                        for name, by_folder in predictions.items()},
        } for folder in folders},
    }


def write_outputs(output_dir, dataset, folders, predictions, evaluation):
    files.write_atomic(output_dir / 'evaluation.json', tables.to_json(evaluation))
    files.write_atomic(output_dir / 'evaluation.csv', tables.evaluation_csv(evaluation))
    files.write_atomic(output_dir / 'evaluation.md', tables.evaluation_markdown(evaluation))
    rows = [['folder', 'classifier', 'ImageId', 'label', 'clean', 'adversarial', 'loss']]
    for name, by_folder in predictions.items():
        clean = by_folder[dataset.image_dir][0]
        for folder in folders:
            predicted, loss = by_folder[folder]
            for k, image_id in enumerate(dataset.image_ids):
                rows.append([str(folder), name, image_id, dataset.labels[image_id],
                             int(clean[k]), int(predicted[k]),
                             '' if loss is None else f'{loss[k]:.6g}'])
    files.write_atomic(output_dir / 'predictions.csv', tables.to_csv(rows))


def run():
    app.run(main)


if __name__ == '__main__':
    run()
