"""svrens-download: fetch and verify the released slim checkpoints, the NIPS17 DEV set and the
released weights of the defenses (converted once into the project's weight store).

    svrens-download --models inc_v3,ens3_adv_inc_v3 [--checkpoint_dir DIR] [--base_url URL]
    svrens-download --models all
    svrens-download --dataset data/nips17 [--dataset_url URL]
    svrens-download --defense hgd,nrp,rs,comdefend [--defense_source FILE_OR_FOLDER]

Reruns are cheap: verified files are kept, interrupted downloads resume. A failure ends with
one line saying which URL or file, what failed and how to place the files by hand.
"""
from absl import app, flags

from svrens_tf import cli

FLAGS = flags.FLAGS
flags.DEFINE_list('models', [], 'Zoo names to install (inc_v3, ens3_adv_inc_v3, ...) or "all".')
flags.DEFINE_string('checkpoint_dir', None,
                    'Folder receiving one subfolder per model (default: $SVRENS_CHECKPOINT_DIR, '
                    'else checkpoints/ in the repository).')
flags.DEFINE_string('base_url', None,
                    'Folder URL holding the release tarballs (default: $SVRENS_MODEL_BASE_URL, '
                    'else http://download.tensorflow.org/models/).')
flags.DEFINE_string('dataset', None, 'Folder receiving the NIPS17 DEV PNGs and dev_dataset.csv.')
flags.DEFINE_list('defense', [], 'Defenses whose released weights to fetch and convert into '
                  '<checkpoint_dir>/<defense>/: hgd, nrp, rs, comdefend, or "all".')
flags.DEFINE_string('defense_source', None,
                    'Offline: a released weight file, an archive holding it, or a folder holding '
                    'either, used instead of downloading.')
flags.DEFINE_string('dataset_url', None,
                    'Folder URL holding images/<ImageId>.png and dev_dataset.csv (default: '
                    '$SVRENS_DATASET_BASE_URL, else the Translation-Invariant-Attacks copy).')


def main(argv):
    cli.check_usage(argv)
    if not FLAGS.models and not FLAGS.dataset and not FLAGS.defense:
        raise app.UsageError('nothing to do: pass --models, --dataset and/or --defense')
    # Imported here so that --help answers without importing TensorFlow.
    from svrens_tf import downloads
    from svrens_tf.downloads import defense_weights, fetch
    from svrens_tf.models import CheckpointError, zoo
    chosen = list(defense_weights.DEFENSES) if FLAGS.defense == ['all'] else FLAGS.defense
    unknown = [name for name in chosen if name not in defense_weights.DEFENSES]
    if unknown:
        raise app.UsageError(f'no released weights for {", ".join(unknown)}; known: '
                             f'{", ".join(defense_weights.DEFENSES)}, all')
    names = list(zoo.ZOO) if FLAGS.models == ['all'] else FLAGS.models
    cli.check_zoo_names(names)
    cli.exit_on((fetch.FetchError, CheckpointError), 'svrens-download', downloads.install,
                names, FLAGS.dataset, chosen, checkpoint_dir=FLAGS.checkpoint_dir,
                base_url=FLAGS.base_url, dataset_url=FLAGS.dataset_url,
                defense_source=FLAGS.defense_source)


def run():
    cli.run(main, __name__)


if __name__ == '__main__':
    run()
