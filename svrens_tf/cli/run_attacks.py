"""run_attacks.sh: flag parsing, then executor.run_experiments. Its help text is
experiments.HELP; its flags, but those of how to run, are the fields of experiments.Options."""
import argparse
import dataclasses
import sys

from svrens_tf import executor, experiments


def _argument_type(parse):
    """`parse` as an argparse type: its ValueError's message is the error shown."""
    def parse_argument(text):
        try:
            return parse(text)
        except ValueError as err:
            raise argparse.ArgumentTypeError(str(err)) from None
    return parse_argument


def parser():
    p = argparse.ArgumentParser(prog='run_attacks.sh', description=experiments.HELP,
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                usage=argparse.SUPPRESS)
    for field in dataclasses.fields(experiments.Options):
        if field.metadata:  # all but attack_flags, the tokens after `--`
            name = field.metadata['repeated'] or field.name
            p.add_argument(f'--{name}', dest=field.name, metavar=name.upper(),
                           action='append' if field.metadata['repeated'] else 'store',
                           type=_argument_type(field.metadata['parse']),
                           default=argparse.SUPPRESS, help=field.metadata['help'])
    p.add_argument('--dry_run', action='store_true',
                   help='print the commands and their gradient passes; run nothing')
    p.add_argument('--subprocesses', action='store_true',
                   help='run each step as its own process (default: all in this one, loading '
                        'each checkpoint once)')
    p.add_argument('--gpus', type=experiments.comma_separated,
                   help='e.g. 0,1,2,3: the attacks run in shards, one process per GPU, then '
                        'evaluation and report')
    p.add_argument('--shard', type=_argument_type(executor.parse_shard),
                   help='I/N: only shard I of N of every attack (one job of a scheduler\'s '
                        'array, docs/slurm.md); rerun without it to evaluate and report')
    return p


def parse(argv):
    """(Options, {run_experiments keyword: value}) from run_attacks.sh's arguments (argv
    without the program name); flags not given keep Options' defaults."""
    argv = list(argv)
    split = argv.index('--') if '--' in argv else len(argv)
    given = vars(parser().parse_args(argv[:split]))
    run = {name: given.pop(name) for name in ('dry_run', 'subprocesses', 'gpus', 'shard')}
    given = {name: tuple(v) if isinstance(v, list) else v  # a repeated flag: append's list
             for name, v in given.items()}
    return experiments.Options(**given, attack_flags=tuple(argv[split + 1:])), run


def main(argv=None):
    options, run = parse(sys.argv[1:] if argv is None else argv)
    try:
        return executor.run_experiments(options, **run)
    except experiments.PlanError as err:
        sys.exit(f'run_attacks.sh: {err}')


if __name__ == '__main__':
    sys.exit(main())
