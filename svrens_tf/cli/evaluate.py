"""svrens-evaluate: success rates of adversarial folders on zoo models and defenses.

    svrens-evaluate --clean_dir data/nips17 --input_dir results/ens,results/svre \
        --models inc_v3,ens3_adv_inc_v3 --defenses jpeg,bit_red --output_dir results/eval

Each classifier is loaded once and sees the clean images and every folder in one pass. When all
are done, writes evaluation.json, evaluation.csv, evaluation.md, predictions.csv and
eval_run.json (flags, versions, timings) into --output_dir, each atomically.
"""
from absl import app, flags

from svrens_tf import cli, data, files, pipeline, runtime
from svrens_tf.models import CheckpointError, zoo

FLAGS = flags.FLAGS
flags.DEFINE_list('input_dir', None, 'Adversarial folder(s) of <ImageId>.png, comma-separated.')
flags.DEFINE_string('clean_dir', None, 'The NIPS17 folder the adversarial images were made '
                    'from (clean images and labels csv).')
flags.DEFINE_string('labels', None, 'Labels csv (default: found beside the clean images).')
flags.DEFINE_boolean('resize', False, 'Resize clean images that are not 299x299, as the attack '
                     'did with --resize.')
flags.DEFINE_list('models', list(zoo.CLASSIFIERS), 'Zoo models to evaluate on.')
flags.DEFINE_list('defenses', [], 'In-process defenses (svrens_tf.defenses.NAMES) to evaluate '
                  'on.')
flags.DEFINE_multi_string('defense_option', [], 'DEFENSE.OPTION=VALUE for one of --defenses, '
                          'e.g. jpeg.quality=75 (repeatable; svrens_tf.defenses.options(name) '
                          'lists each defense\'s options and defaults).')
flags.DEFINE_multi_string('external_defense', [], 'NAME=COMMAND of a NIPS17 defense program, run '
                          'as COMMAND INPUT_DIR OUTPUT_CSV (repeatable).')
flags.DEFINE_integer('external_timeout_s', 7200, 'Time limit of one external defense run.')
flags.DEFINE_string('checkpoint_dir', None, cli.CHECKPOINT_DIR_HELP)
flags.DEFINE_integer('batch_size', 10, 'Images per forward pass.', lower_bound=1)
flags.DEFINE_integer('seed', 0, 'Seed of the randomized defenses.')
flags.DEFINE_string('output_dir', None, 'Folder receiving the evaluation files.')


def main(argv, models=None):
    """`models`: a pipeline.ModelCache shared with other steps of this process, or None."""
    cli.check_usage(argv, ('input_dir', 'clean_dir', 'output_dir'))
    cli.check_zoo_names(FLAGS.models)
    external = cli.parse_external(FLAGS.external_defense)
    if not (FLAGS.models or FLAGS.defenses or external):
        raise app.UsageError('nothing to evaluate on: pass --models, --defenses and/or '
                             '--external_defense')
    options = cli.defense_options(FLAGS.defenses, FLAGS.defense_option)
    from svrens_tf.defenses.external import DefenseError
    runtime.configure()
    cli.exit_on((data.DataError, DefenseError, CheckpointError, files.FolderBusy),
                'svrens-evaluate', pipeline.evaluate_folders, FLAGS.clean_dir, FLAGS.input_dir,
                FLAGS.output_dir, FLAGS.models, defenses=FLAGS.defenses, defense_options=options,
                external=external, labels=FLAGS.labels, resize=FLAGS.resize,
                checkpoint_dir=FLAGS.checkpoint_dir, batch_size=FLAGS.batch_size,
                seed=FLAGS.seed, external_timeout_s=FLAGS.external_timeout_s,
                flags=cli.flag_values(__name__), models=models)


def run():
    cli.run(main, __name__)


if __name__ == '__main__':
    run()
