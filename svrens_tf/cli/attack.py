"""svrens-attack: adversarial PNGs for a NIPS17 folder from an ensemble of zoo models.

    svrens-attack --input_dir data/nips17 --output_dir results/svre_mi_fgsm \
        --base mi_fgsm --ensemble svre [--num_shards 4 --shard_index 0]

Every field of svrens_tf.attacks.AttackConfig is a flag of the same name. Reruns resume: images
already written (valid PNG, within --max_epsilon of the clean image) are skipped, whole batches
are recomputed otherwise. Batches are fixed by --batch_size and the sorted ImageIds, and each
batch's randomness comes from --seed and the batch's content, so resumed and sharded runs write
the same bytes as a straight run.
"""
import dataclasses
import sys
import time
import typing

import tensorflow as tf
from absl import app, flags

from svrens_tf import attacks, cli, data, files, records
from svrens_tf.models import CheckpointError

FLAGS = flags.FLAGS
SURROGATES = ['inc_v3', 'inc_v4', 'incres_v2', 'res_v2_101']
RECORD_NAME = 'attack_run'

flags.DEFINE_string('input_dir', None, 'NIPS17 folder: <ImageId>.png (or images/<ImageId>.png) '
                    'with dev_dataset.csv or val_rs.csv beside or one folder up.')
flags.DEFINE_string('output_dir', None, 'Folder receiving the adversarial <ImageId>.png.')
flags.DEFINE_string('labels', None, 'Labels csv (dev_dataset.csv or val_rs.csv format); '
                    'default: found beside the images.')
flags.DEFINE_boolean('resize', False, 'Resize images that are not 299x299 instead of rejecting '
                     'them (the eps-ball is around the resized image).')
flags.DEFINE_list('models', SURROGATES, 'Surrogate zoo names.')
flags.DEFINE_string('checkpoint_dir', None, 'Folder with one subfolder per zoo name, as written '
                    'by svrens-download (default: $SVRENS_CHECKPOINT_DIR, else checkpoints/).')
flags.DEFINE_integer('batch_size', None, 'Images per attack batch (default: 10, 4 with SI as '
                     'in the authors\' scripts).', lower_bound=1)
flags.DEFINE_integer('num_shards', 1, 'Split the batches over this many processes.',
                     lower_bound=1)
flags.DEFINE_integer('shard_index', 0, 'Which shard this process attacks (0-based).',
                     lower_bound=0)
flags.DEFINE_boolean('deterministic', False, 'Enable TensorFlow op determinism, so that resumed '
                     'and sharded runs write the same bytes on GPU too (CPU kernels already '
                     'are deterministic); slower on GPU.')


def _define_config_flags():
    """One flag per AttackConfig field, typed from its annotation; None = preset's value."""
    definers = {bool: flags.DEFINE_boolean, int: flags.DEFINE_integer,
                float: flags.DEFINE_float, str: flags.DEFINE_string}
    for field in dataclasses.fields(attacks.AttackConfig):
        kind = next(t for t in (typing.get_args(field.type) or (field.type,)) if t in definers)
        default = field.default
        shown = (f"the --base preset's, else {attacks.DEFAULTS[field.name]!r}" if default is None
                 else repr(default))
        help_text = f'AttackConfig.{field.name} (see svrens_tf.attacks.AttackConfig); ' \
                    f'default: {shown}.'
        if field.name == 'base':
            flags.DEFINE_enum('base', default, sorted(attacks.PRESETS), help_text)
        else:
            definers[kind](field.name, default, help_text)


_define_config_flags()


def config_from_flags():
    values = {f.name: FLAGS[f.name].value for f in dataclasses.fields(attacks.AttackConfig)}
    return attacks.AttackConfig(**{k: v for k, v in values.items() if v is not None})


def load_surrogates(names, checkpoint_dir):
    from svrens_tf import models
    return [models.load(name, checkpoint_dir) for name in names]


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f'unexpected arguments: {" ".join(argv[1:])}')
    for required in ('input_dir', 'output_dir'):
        if not FLAGS[required].value:
            raise app.UsageError(f'--{required} is required')
    if FLAGS.shard_index >= FLAGS.num_shards:
        raise app.UsageError('--shard_index must be below --num_shards')
    try:
        cfg = config_from_flags()
    except ValueError as err:
        raise app.UsageError(str(err)) from None
    batch_size = FLAGS.batch_size or (4 if cfg.si_copies > 1 else 10)
    if FLAGS.deterministic:
        tf.config.experimental.enable_op_determinism()
    try:
        attack_folder(cfg, batch_size)
    except (data.DataError, CheckpointError) as err:
        sys.exit(f'svrens-attack: {err}')


def attack_folder(cfg, batch_size):
    started = time.time()
    image_dir = data.resolve_image_dir(FLAGS.input_dir)
    dataset = data.load_dataset(image_dir, FLAGS.labels, FLAGS.resize, image_ids=[])
    planned = data.plan_batches(dataset.image_ids, batch_size, FLAGS.num_shards,
                                FLAGS.shard_index)
    data.check_images(dataset, [i for batch in planned for i in batch])
    if cfg.targeted and set(dataset.targets) != set(dataset.labels):
        raise data.DataError(f'{dataset.labels_csv}: --targeted needs a TargetClass for every '
                             'image (dev_dataset.csv)')
    output_dir = data.check_output_dir(FLAGS.output_dir, FLAGS.input_dir, dataset)
    settings = {'config': dataclasses.asdict(cfg), 'models': FLAGS.models,
                'batch_size': batch_size, 'resize': FLAGS.resize,
                'labels_csv': dataset.labels_csv.name}
    shard = f'.shard{FLAGS.shard_index}of{FLAGS.num_shards}' if FLAGS.num_shards > 1 else ''
    record = records.RunRecord(output_dir / f'{RECORD_NAME}{shard}.json', settings,
                                cli.flag_values(__name__))
    record.check_folder_settings(output_dir.glob(f'{RECORD_NAME}*.json'))
    pending = [batch for batch in planned if not all(
        (output_dir / f'{i}.png').is_file() and data.is_done(
            output_dir / f'{i}.png', data.read_image(dataset.path(i), dataset.resize),
            cfg.max_epsilon) for i in batch)]
    num_pending = sum(map(len, pending))
    num_planned = sum(map(len, planned))
    loaded = time.time()
    surrogates = load_surrogates(FLAGS.models, FLAGS.checkpoint_dir) if pending else []
    output_dir.mkdir(parents=True, exist_ok=True)
    files.remove_stale_temporaries(output_dir)
    run = record.start(images=num_planned, skipped=num_planned - num_pending, seed=cfg.seed,
                       attacked=0, gradient_passes=0,
                       model_load_s=round(time.time() - loaded, 3))
    print(f'{num_pending} images to attack in {len(pending)} batches '
          f'({run["skipped"]} already done) -> {output_dir}')
    labels = dataset.targets if cfg.targeted else dataset.labels
    progress = tf.keras.utils.Progbar(num_pending, unit_name='image')
    for ids, images in data.batches(dataset, pending):
        clean = images[dataset.image_dir]
        result = attacks.attack(surrogates, clean / 127.5 - 1.0, [labels[i] for i in ids], cfg)
        adversarial = data.quantize(result.x_adv.numpy(), clean, cfg.max_epsilon)
        for image_id, image in zip(ids, adversarial):
            data.write_png(output_dir / f'{image_id}.png', image)
        run['attacked'] += len(ids)
        run['gradient_passes'] += result.gradient_passes
        record.save()
        progress.add(len(ids))
    record.finish(started)


def run():
    app.run(main)


if __name__ == '__main__':
    run()
