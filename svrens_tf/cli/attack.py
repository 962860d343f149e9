"""svrens-attack: adversarial PNGs for a NIPS17 folder from an ensemble of zoo models.

    svrens-attack --input_dir data/nips17 --output_dir results/svre_mi_fgsm \
        --base mi_fgsm --ensemble svre [--num_shards 4 --shard_index 0]

Every field of svrens_tf.attacks.AttackConfig is a flag of the same name. Reruns resume: images
already written (valid PNG, within --max_epsilon of the clean image) are skipped, whole batches
are recomputed otherwise. Batches are fixed by --batch_size and the sorted ImageIds, each
batch's randomness comes from --seed and the batch's content, and svrens_tf.runtime.configure()
fixes how TensorFlow orders float sums, so resumed and sharded runs write the same bytes as a
straight run (a resume under other runtime settings is refused).
"""
from absl import app, flags

from svrens_tf import cli, data, files, pipeline, runtime
from svrens_tf.models import CheckpointError, zoo

FLAGS = flags.FLAGS
flags.DEFINE_string('input_dir', None, 'NIPS17 folder: <ImageId>.png (or images/<ImageId>.png) '
                    'with dev_dataset.csv or val_rs.csv beside or one folder up.')
flags.DEFINE_string('output_dir', None, 'Folder receiving the adversarial <ImageId>.png.')
flags.DEFINE_string('labels', None, 'Labels csv (dev_dataset.csv or val_rs.csv format); '
                    'default: found beside the images.')
flags.DEFINE_boolean('resize', False, 'Resize images that are not 299x299 instead of rejecting '
                     'them (the eps-ball is around the resized image).')
flags.DEFINE_list('models', list(zoo.SURROGATES), 'Surrogate zoo names.')
flags.DEFINE_string('checkpoint_dir', None, cli.CHECKPOINT_DIR_HELP)
flags.DEFINE_integer('batch_size', None, 'Images per attack batch (default: 10, 4 with SI as '
                     'in the authors\' scripts).', lower_bound=1)
flags.DEFINE_integer('num_shards', 1, 'Split the batches over this many processes.',
                     lower_bound=1)
flags.DEFINE_integer('shard_index', 0, 'Which shard this process attacks (0-based).',
                     lower_bound=0)
flags.DEFINE_boolean('deterministic', False, 'On GPU too, run with the deterministic settings '
                     'of svrens_tf/runtime.py (one inter-op thread, always on CPU; on GPU also '
                     'TensorFlow op determinism), so that resumed and sharded runs write the '
                     'same bytes; slower on GPU.')
cli.define_config_flags(__name__)


def main(argv, models=None):
    """`models`: a pipeline.ModelCache shared with other steps of this process, or None."""
    cli.check_usage(argv, ('input_dir', 'output_dir'))
    if FLAGS.shard_index >= FLAGS.num_shards:
        raise app.UsageError('--shard_index must be below --num_shards')
    if not FLAGS.models:
        raise app.UsageError('--models: name at least one surrogate')
    cli.check_zoo_names(FLAGS.models)
    cfg = cli.config_from_flags()
    runtime.configure(True if FLAGS.deterministic else None)
    cli.exit_on((data.DataError, CheckpointError, files.FolderBusy), 'svrens-attack',
                pipeline.attack_folder, FLAGS.input_dir, FLAGS.output_dir, cfg, FLAGS.models,
                labels=FLAGS.labels, resize=FLAGS.resize, checkpoint_dir=FLAGS.checkpoint_dir,
                batch_size=FLAGS.batch_size, num_shards=FLAGS.num_shards,
                shard_index=FLAGS.shard_index, flags=cli.flag_values(__name__), models=models)


def run():
    cli.run(main, __name__)


if __name__ == '__main__':
    run()
