"""run_attacks.sh: the paper's experiments end to end (attacks, evaluation, report).

    ./run_attacks.sh [--tables 1,2,3] [--figures 1,2,3,4] [--attacks i_fgsm,mi_fgsm,...]
                     [--ensembles ens,svre] [--seeds N] [--dataset_dir DIR]
                     [--checkpoint_dir DIR] [--results_dir DIR]
                     [--defenses bit_red,jpeg,...] [--defense_option jpeg.quality=75]...
                     [--external_defense NAME=COMMAND]... [--eval_batch_size 10]
                     [--dry_run] [--subprocesses] [--gpus 0,1,...] [--shard I/N]
                     [-- svrens-attack flags]

With neither --tables nor --figures, everything runs. --attacks and --ensembles choose the rows
of Tables 1-3 (and of Figure 1, drawn from Table 2's runs), --attacks also the panels of Figures
2 and 3 among I-FGSM, MI-FGSM and SI-TI-DIM; otherwise the figures run the paper's design:
Figure 2 M = 0, 4, ..., 32 and Figure 3 beta = 0.1, 0.2, ..., 25.6, each for I-FGSM, MI-FGSM and
SI-TI-DIM; Figure 4 MI-FGSM, Ens at T = 10, 20, ..., 90 and SVR-Ens (M = 16) at T = 1, ..., 10,
alpha = eps / T. Seeds are 1000 (the authors'), 1001, ...; the report gives mean +- std over
them. Flags after `--` go to every svrens-attack call (e.g. `-- --num_iter 1 --m_svrg 1
--batch_size 2` for a smoke run); the experiment's own flags (surrogates, base, ensemble, seed,
a figure's M, beta, T and alpha) come after them and win. Runs with equal settings are made once
and shared (Figure 4's SVR-Ens at T = 10 is Table 2's SVR-Ens-MI-FGSM). --dry_run prints every
command, one per line, with the attacks' single-model gradient passes and their total, and runs
nothing. Checkpoints and the NIPS17 set are fetched with svrens-download on first use. Every
attack folder keeps attack_run.json, every evaluation folder eval_run.json (flags, versions,
seed, timings); this script's own log is RESULTS/run_attacks.log. Reruns resume.

All steps run in this one process, which loads each checkpoint once (--subprocesses: one
process per step, as svrens-attack/-evaluate/-report would be called by hand; the same files).
--gpus 0,1,... runs the attacks in shards in parallel, one process per GPU, then evaluation
and report; --shard I/N runs only shard I of N of every attack, for a scheduler's job array
(docs/slurm.md). Either way the images are the bytes of a one-process run.
"""
import argparse
import os
import pathlib
import sys

from svrens_tf import executor, experiments

REPO = pathlib.Path(__file__).resolve().parents[2]


def _numbers(allowed, what):
    def parse(text):
        try:
            values = tuple(int(v) for v in text.split(',') if v)
        except ValueError:
            values = None
        if values is None or not set(values) <= set(allowed):
            raise argparse.ArgumentTypeError(f'{text!r}: {what} from {allowed}')
        return values
    return parse


def _names(allowed):
    def parse(text):
        values = tuple(v for v in text.split(',') if v)
        unknown = [v for v in values if v not in allowed]
        if unknown or not values:
            raise argparse.ArgumentTypeError(f'{text!r}: choose from {", ".join(allowed)}')
        return values
    return parse


def _count(text):
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError('takes a count >= 1')
    return int(text)


def parser():
    p = argparse.ArgumentParser(prog='run_attacks.sh', description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                usage=argparse.SUPPRESS)
    p.add_argument('--tables', type=_numbers(experiments.TABLES, 'tables'), default=(),
                   help='tables to run, e.g. 1,2')
    p.add_argument('--figures', type=_numbers(experiments.FIGURES, 'figures'), default=(),
                   help='figures to run, e.g. 2,4')
    p.add_argument('--attacks', type=_names(experiments.TABLE_ATTACKS),
                   default=experiments.TABLE_ATTACKS,
                   help='base attacks of the tables\' rows and Figures 2-3\' panels')
    p.add_argument('--ensembles', type=_names(experiments.ENSEMBLES),
                   default=experiments.ENSEMBLES, help='ens, svre or both (the tables\' rows)')
    p.add_argument('--seeds', type=_count, default=1, help='seeds 1000 ... 1000 + N - 1')
    p.add_argument('--dataset_dir', default=str(REPO / 'data' / 'nips17'),
                   help='NIPS17 folder (fetched there when absent)')
    p.add_argument('--checkpoint_dir',
                   default=os.environ.get('SVRENS_CHECKPOINT_DIR', str(REPO / 'checkpoints')),
                   help='checkpoint folder (default: $SVRENS_CHECKPOINT_DIR, else checkpoints/)')
    p.add_argument('--results_dir', default=str(REPO / 'results'),
                   help='attacks, evaluations, report and log go here')
    p.add_argument('--defenses', type=lambda t: tuple(v for v in t.split(',') if v),
                   help='Table 3\'s in-process defenses (default: all)')
    p.add_argument('--defense_option', action='append', default=[],
                   help='DEFENSE.OPTION=VALUE for Table 3 (repeatable)')
    p.add_argument('--external_defense', action='append', default=[],
                   help='NAME=COMMAND of a NIPS17 defense program for Table 3 (repeatable)')
    p.add_argument('--eval_batch_size', type=_count, default=10,
                   help='svrens-evaluate --batch_size')
    p.add_argument('--dry_run', action='store_true',
                   help='print the commands and their gradient passes; run nothing')
    p.add_argument('--subprocesses', action='store_true',
                   help='run each step as its own process (default: all in this one, loading '
                        'each checkpoint once)')
    p.add_argument('--gpus', type=lambda t: tuple(v for v in t.split(',') if v),
                   help='e.g. 0,1,2,3: the attacks run in shards, one process per GPU, then '
                        'evaluation and report')
    p.add_argument('--shard', type=_shard,
                   help='I/N: only shard I of N of every attack (one job of a scheduler\'s '
                        'array, docs/slurm.md); rerun without it to evaluate and report')
    return p


def _shard(text):
    try:
        return executor.parse_shard(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def options_from(argv):
    """(Options, dry_run) from run_attacks.sh's arguments (argv without the program name)."""
    options, args = parse(argv)
    return options, args.dry_run


def parse(argv):
    """(Options, parsed arguments) from run_attacks.sh's arguments."""
    argv = list(argv)
    split = argv.index('--') if '--' in argv else len(argv)
    args = parser().parse_args(argv[:split])
    tables, figures = args.tables, args.figures
    if not tables and not figures:
        tables, figures = experiments.TABLES, experiments.FIGURES
    return experiments.Options(
        tables=tables, figures=figures, attacks=args.attacks, ensembles=args.ensembles,
        seeds=args.seeds, dataset_dir=args.dataset_dir, checkpoint_dir=args.checkpoint_dir,
        results_dir=args.results_dir, defenses=args.defenses,
        defense_options=tuple(args.defense_option),
        external_defenses=tuple(args.external_defense), eval_batch_size=args.eval_batch_size,
        attack_flags=tuple(argv[split + 1:])), args


def main(argv=None):
    options, args = parse(sys.argv[1:] if argv is None else argv)
    try:
        steps = experiments.build_plan(options)
        if args.gpus or args.shard:
            executor.check_shardable(steps, args.gpus and args.shard)
    except ValueError as err:
        sys.exit(f'run_attacks.sh: {err}')
    if args.dry_run:
        sys.stdout.write(experiments.format_plan(steps))
        return 0
    log_path = pathlib.Path(options.results_dir) / 'run_attacks.log'
    if not args.shard:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        experiments.log(log_path, f'run_attacks.sh tables={options.tables} '
                                  f'figures={options.figures} attacks={",".join(options.attacks)} '
                                  f'ensembles={",".join(options.ensembles)} seeds={options.seeds} '
                                  f'attack flags: {" ".join(options.attack_flags)}')
    returncode = executor.run_plan(steps, log_path, args.subprocesses, args.gpus, args.shard)
    if returncode == 0 and not args.shard:
        experiments.log(log_path, f'report: {pathlib.Path(options.results_dir) / "report.md"}')
    return returncode


if __name__ == '__main__':
    sys.exit(main())
