"""The paper's experiments as a plan: the svrens-download / -attack / -evaluate / -report steps
that run_attacks.sh runs, built before anything runs so that it can be printed and priced.

    steps = build_plan(Options(tables=(2,), attacks=('mi_fgsm',)))
    print(format_plan(steps))          # what --dry_run prints
    execute(steps, 'results/run_attacks.log')

`Options` holds run_attacks.sh's flags (their help and parsing: its fields' metadata; HELP: its
--help text); `executor.run_experiments` plans and runs them. A step is data (program and
flags); `execute` runs each as `python -m svrens_tf.cli.PROGRAM`. Attack steps whose settings
resolve to the same run (e.g. Figure 4's SVR-Ens at T = 10 and Table 2's SVR-Ens-MI-FGSM) are
planned once and their folder shared. Every program resumes, so rerunning a plan skips the
work already done.
"""
import dataclasses
import datetime
import pathlib
import shlex
import shutil
import subprocess
import sys
import typing

from svrens_tf.models import zoo
from svrens_tf.models.zoo import ADV_TRAINED, CLASSIFIERS, SURROGATES

TABLE_ATTACKS = ('i_fgsm', 'mi_fgsm', 'tim', 'ti_dim', 'si_ti_dim')
ENSEMBLES = ('ens', 'svre')
TABLES = (1, 2, 3)
FIGURES = (1, 2, 3, 4)
FIRST_SEED = 1000
NIPS17_DEV_IMAGES = 1000
REPO = pathlib.Path(__file__).resolve().parents[1]   # run_attacks.sh's folder

# The paper's figure designs (../shared/paper/README.md, "Figures").
FIGURE_BASES = ('i_fgsm', 'mi_fgsm', 'si_ti_dim')        # the panels of Figures 2 and 3
FIGURE2_M = tuple(range(0, 33, 4))                       # M = 0 is Ens
FIGURE3_BETA = tuple(round(0.1 * 2 ** k, 1) for k in range(9))   # 0.1, 0.2, ..., 25.6
FIGURE4_BASE = 'mi_fgsm'
FIGURE4_ENS_T = tuple(range(10, 91, 10))
FIGURE4_SVRE_T = tuple(range(1, 11))
FIGURE4_SVRE_M = 16


@dataclasses.dataclass(frozen=True)
class Step:
    """One program run: `program` is a module of svrens_tf.cli; `flags` are (name, value)
    pairs passed as --name=value (value None: a bare --name). Attack steps carry their
    single-model gradient passes per image and their image count."""
    program: str
    flags: tuple
    passes_per_image: int = 0
    num_images: int = 0
    failure_hint: str = ''

    @property
    def args(self):
        return [f'--{name}' if value is None else f'--{name}={value}'
                for name, value in self.flags]

    def argv(self, python=None):
        return [python or sys.executable, '-m', f'svrens_tf.cli.{self.program}', *self.args]

    def command(self):
        """The step as the installed console script would be called (svrens-attack ...)."""
        return shlex.join([f'svrens-{self.program}', *self.args])

    def flag(self, name):
        return dict(self.flags).get(name)


HELP = """run_attacks.sh: the paper's experiments end to end (attacks, evaluation, report).

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


class PlanError(ValueError):
    """Options that some step of their plan would refuse, found before anything runs."""


def comma_separated(text):
    """('a', 'b') from 'a,b' (empty items dropped)."""
    return tuple(v for v in text.split(',') if v)


def _numbers(allowed, what):
    def parse(text):
        try:
            values = tuple(int(v) for v in comma_separated(text))
        except ValueError:
            values = None
        if values is None or not set(values) <= set(allowed):
            raise ValueError(f'{text!r}: {what} from {allowed}')
        return values
    return parse


def _names(allowed):
    def parse(text):
        values = comma_separated(text)
        if not values or not set(values) <= set(allowed):
            raise ValueError(f'{text!r}: choose from {", ".join(allowed)}')
        return values
    return parse


def _count(text):
    if not text.isdigit() or int(text) < 1:
        raise ValueError('takes a count >= 1')
    return int(text)


def _flag(help, parse=str, repeated=None, **default):
    """An Options field that is also the run_attacks.sh flag of its name (cli/run_attacks.py
    builds its parser from this metadata): `parse` reads the flag's text (ValueError: the
    message to show); `repeated`: the name of a flag given once per value instead, the field
    holding them all. `default` / `default_factory`: as for dataclasses.field."""
    return dataclasses.field(**default, metadata={'help': help, 'parse': parse,
                                                  'repeated': repeated})


@dataclasses.dataclass(frozen=True)
class Options:
    """What run_attacks.sh was asked for (defaults: its own; with neither `tables` nor `figures`,
    all of both). `attacks` and `ensembles` select the tables' rows (and Figure 1's, drawn from
    Table 2's runs), and `attacks` the panels of Figures 2 and 3 among FIGURE_BASES; otherwise
    the figures run the paper's design. `attack_flags` (tokens after `--`) go to every
    svrens-attack call, before the experiment's own flags (surrogates, base, ensemble, seed, a
    figure's swept M, beta or T), which win."""
    tables: tuple = _flag('tables to run, e.g. 1,2', _numbers(TABLES, 'tables'), default=())
    figures: tuple = _flag('figures to run, e.g. 2,4', _numbers(FIGURES, 'figures'), default=())
    attacks: tuple = _flag("base attacks of the tables' rows and Figures 2-3' panels",
                           _names(TABLE_ATTACKS), default=TABLE_ATTACKS)
    ensembles: tuple = _flag("ens, svre or both (the tables' rows)", _names(ENSEMBLES),
                             default=ENSEMBLES)
    seeds: int = _flag('seeds 1000 ... 1000 + N - 1', _count, default=1)
    dataset_dir: str = _flag('NIPS17 folder (fetched there when absent)',
                             default=str(REPO / 'data' / 'nips17'))
    checkpoint_dir: str = _flag(
        'checkpoint folder (default: $SVRENS_CHECKPOINT_DIR, else checkpoints/)',
        default_factory=zoo.default_checkpoint_dir)
    results_dir: str = _flag('attacks, evaluations, report and log go here',
                             default=str(REPO / 'results'))
    defenses: typing.Optional[tuple] = _flag(  # None: every in-process defense
        "Table 3's in-process defenses (default: all)", comma_separated, default=None)
    defense_options: tuple = _flag('DEFENSE.OPTION=VALUE for Table 3 (repeatable)',
                                   repeated='defense_option', default=())
    external_defenses: tuple = _flag(
        'NAME=COMMAND of a NIPS17 defense program for Table 3 (repeatable)',
        repeated='external_defense', default=())
    eval_batch_size: int = _flag('svrens-evaluate --batch_size', _count, default=10)
    attack_flags: tuple = ()

    def __post_init__(self):
        if not self.tables and not self.figures:  # neither asked for: everything runs
            object.__setattr__(self, 'tables', TABLES)
            object.__setattr__(self, 'figures', FIGURES)


def parse_flag_tokens(tokens):
    """(name, value) pairs from command-line tokens: --name=value, --name value, or a bare
    --name (a boolean); value None for the bare form."""
    pairs, tokens = [], list(tokens)
    while tokens:
        token = tokens.pop(0)
        if not token.startswith('--') or token == '--':
            raise ValueError(f'{token!r}: expected --name=value, --name value or --name')
        name, sep, value = token[2:].partition('=')
        if not sep:
            value = tokens.pop(0) if tokens and not tokens[0].startswith('--') else None
        pairs.append((name, value))
    return pairs


def _config_fields():
    from svrens_tf import attacks
    return {f.name: f for f in dataclasses.fields(attacks.AttackConfig)}


def is_config_flag(name):
    """Whether svrens-attack flag `name` (or its --noNAME form) sets an AttackConfig field."""
    fields = _config_fields()
    return name in fields or (name.startswith('no') and name[2:] in fields)


def _typed(field, value):
    kinds = typing.get_args(field.type) or (field.type,)
    if bool in kinds:
        return value is None or str(value).lower() in ('1', 'true', 'yes')
    for kind in (int, float, str):
        if kind in kinds:
            return kind(value)
    raise ValueError(f'AttackConfig.{field.name}: unsupported type {field.type}')


def attack_config(flags):
    """The AttackConfig an svrens-attack call with these (name, value) flags runs (the last
    value of a repeated flag wins, as in absl)."""
    from svrens_tf import attacks
    fields = _config_fields()
    values = {}
    for name, value in flags:
        if name in fields:
            try:
                values[name] = _typed(fields[name], value)
            except ValueError as err:
                raise ValueError(f'--{name}={value}: {err}') from None
        elif name.startswith('no') and name[2:] in fields:
            values[name[2:]] = False
    return attacks.AttackConfig(**values)


def check_options(options):
    """ValueError for any argument a step would refuse later, so that nothing is fetched or
    run for a plan that cannot finish: flags after `--`, defenses and their options, external
    defense specs and programs, and a dataset folder whose labels csv lists missing images."""
    from svrens_tf import defenses
    for name, value in parse_flag_tokens(options.attack_flags):
        if is_config_flag(name) or (name in ('deterministic', 'nodeterministic')
                                    and value is None):
            continue
        if name == 'batch_size' and (value or '').isdigit() and int(value) >= 1:
            continue
        raise ValueError(f'-- --{name}{"" if value is None else "=" + value}: run_attacks.sh '
                         'passes svrens-attack only AttackConfig fields and --batch_size N '
                         f'(N >= 1) / --deterministic (svrens-attack --help lists them)')
    attack_config(parse_flag_tokens(options.attack_flags))
    names = defenses.NAMES if options.defenses is None else options.defenses
    unknown = [name for name in names if name not in defenses.NAMES]
    if unknown:
        raise ValueError(f'--defenses: unknown {", ".join(unknown)}; choose from '
                         f'{", ".join(defenses.NAMES)}')
    defenses.parse_options(options.defense_options, names)
    for spec in options.external_defenses:
        name, sep, command = spec.partition('=')
        argv = shlex.split(command) if sep else []
        if not name or not argv:
            raise ValueError(f'--external_defense {spec!r}: expected NAME=COMMAND')
        if shutil.which(argv[0]) is None:
            raise ValueError(f'--external_defense {spec!r}: cannot run {argv[0]!r}: no such '
                             'program, or it is not executable')
    missing_images(options.dataset_dir)


def missing_images(dataset_dir):
    """Nothing if `dataset_dir` holds no labels csv (the plan downloads the set) or every image
    its csv lists; else DataError naming the first missing image and the ways to get them."""
    from svrens_tf import data
    from svrens_tf.downloads import nips17
    if not has_dataset(dataset_dir):
        return
    image_dir = data.resolve_image_dir(dataset_dir)
    csv_path = data.find_labels_csv(image_dir)
    listed = data.read_labels(csv_path)[0]
    missing = sorted(i for i in listed if not (image_dir / f'{i}.png').is_file())
    if missing:
        raise data.DataError(f'{image_dir / (missing[0] + ".png")}: listed in {csv_path} but '
                             f'missing ({len(missing)} of {len(listed)} missing); '
                             f'{nips17.how_to_get(dataset_dir)}')


def gradient_passes_per_image(cfg, num_models):
    """Single-model gradient passes per image: T x passes per outer step (an SI pass covers
    all scale copies, as the engine counts it)."""
    from svrens_tf import attacks
    return cfg.num_iter * attacks.passes_per_outer_step(cfg, num_models)


def count_images(dataset_dir):
    """Images listed in the NIPS17 folder's labels csv; the DEV set's 1000 before download."""
    from svrens_tf import data
    try:
        csv_path = data.find_labels_csv(data.resolve_image_dir(dataset_dir))
        return len(data.read_labels(csv_path)[0])
    except data.DataError:
        return NIPS17_DEV_IMAGES


def has_dataset(dataset_dir):
    from svrens_tf import data
    return any((pathlib.Path(dataset_dir) / name).is_file() for name in data.LABEL_FILES)


def _join(names):
    return ','.join(names)


class _Planner:
    """Accumulates steps; attack runs with equal settings are planned once."""

    def __init__(self, options):
        self.options = options
        self.results = pathlib.Path(options.results_dir)
        self.num_images = count_images(options.dataset_dir)
        self.user_flags = parse_flag_tokens(options.attack_flags)
        self.steps = []
        self.runs = {}          # settings key -> output folder

    def attack(self, folder, surrogates, **experiment):
        """Plan an attack of `surrogates` into RESULTS/attacks/<folder> (or reuse the folder of
        an equal run); returns the folder to evaluate."""
        output = str(self.results / 'attacks' / folder)
        flags = [('input_dir', self.options.dataset_dir), ('output_dir', output),
                 ('checkpoint_dir', self.options.checkpoint_dir), *self.user_flags,
                 ('models', _join(surrogates)), *experiment.items()]
        cfg = attack_config(flags)
        others = {name: value for name, value in flags
                  if not is_config_flag(name) and name != 'output_dir'}
        key = repr((sorted(dataclasses.asdict(cfg).items()), sorted(others.items())))
        if key not in self.runs:
            self.runs[key] = output
            self.steps.append(Step('attack', tuple(flags),
                                   gradient_passes_per_image(cfg, len(surrogates)),
                                   self.num_images))
        return self.runs[key]

    def evaluate(self, experiment, seed, folders, models, *extra):
        self.steps.append(Step('evaluate', (
            ('clean_dir', self.options.dataset_dir),
            ('input_dir', _join(dict.fromkeys(folders))),
            ('checkpoint_dir', self.options.checkpoint_dir),
            ('batch_size', self.options.eval_batch_size),
            ('output_dir', str(self.results / experiment / f'seed{seed}')),
            ('models', _join(models)), *extra)))

    def table_runs(self, seed, surrogates, folder):
        return [self.attack(f'{folder}/{ensemble}_{base}/seed{seed}', surrogates, base=base,
                            ensemble=ensemble, seed=seed)
                for base in self.options.attacks for ensemble in self.options.ensembles]


def _downloads(options):
    steps = []
    if not has_dataset(options.dataset_dir):
        from svrens_tf.downloads import nips17
        steps.append(Step('download', (('dataset', options.dataset_dir),), failure_hint=(
            f'no NIPS17 set in {options.dataset_dir} and the download failed: '
            f'{nips17.how_to_get(options.dataset_dir)}')))
    if 3 in options.tables:
        models = 'all'
    elif tuple(options.tables) == (1,) and not options.figures:
        models = _join(SURROGATES)
    else:
        models = _join(CLASSIFIERS)
    steps.append(Step('download', (('models', models),
                                   ('checkpoint_dir', options.checkpoint_dir)), failure_hint=(
        f'could not install checkpoints {models} into {options.checkpoint_dir}: fix the error '
        'above (e.g. copy\nthe release tarballs from http://download.tensorflow.org/models/ '
        'into that folder) and rerun')))
    if 3 in options.tables:
        steps += _defense_downloads(options)
    return steps


def _defense_downloads(options):
    """A download step for the Table 3 defenses whose converted weights are absent, so that a
    missing one stops the plan before any attack runs."""
    from svrens_tf import defenses
    from svrens_tf.downloads import defense_weights
    names = defenses.NAMES if options.defenses is None else options.defenses
    chosen = defenses.parse_options(options.defense_options, names)
    absent = [n for n in defense_weights.DEFENSES if n in names
              and defenses.missing_weights(n, options.checkpoint_dir, **chosen[n])]
    if not absent:
        return []
    return [Step('download', (('defense', _join(absent)),
                              ('checkpoint_dir', options.checkpoint_dir)), failure_hint=(
        f'could not install the weights of {", ".join(absent)} into {options.checkpoint_dir}: '
        'fix the error above (offline: svrens-download --defense NAME --defense_source '
        'FILE_OR_FOLDER with the released files) and rerun'))]


def build_plan(options):
    """Every step of the requested tables and figures, for each seed, then the report;
    PlanError (check_options) for an argument some step would refuse."""
    try:
        check_options(options)
    except ValueError as err:
        raise PlanError(str(err)) from None
    planner = _Planner(options)
    tables, figures = set(options.tables), set(options.figures)
    panels = [base for base in FIGURE_BASES if base in options.attacks]
    if figures & {2, 3} and not panels:
        raise PlanError(f'Figures 2 and 3 show {", ".join(FIGURE_BASES)}: --attacks '
                         f'({",".join(options.attacks)}) has none of them')
    for seed in range(FIRST_SEED, FIRST_SEED + options.seeds):
        if 1 in tables:
            folders = []
            for held_out in SURROGATES:
                surrogates = tuple(m for m in SURROGATES if m != held_out)
                folders += planner.table_runs(seed, surrogates, f'holdout_{held_out}')
            planner.evaluate('table1', seed, folders, SURROGATES)
        if tables & {2, 3} or 1 in figures:
            folders = planner.table_runs(seed, SURROGATES, 'all4')
            if 2 in tables or 1 in figures:
                planner.evaluate('table2', seed, folders, CLASSIFIERS)
            if 3 in tables:
                planner.evaluate('table3', seed, folders, (), *_defense_flags(options, seed))
        if 2 in figures:
            folders = [planner.attack(f'all4/ens_{base}/seed{seed}' if m == 0 else
                                      f'all4/svre_{base}_m{m}/seed{seed}', SURROGATES, base=base,
                                      seed=seed, **({'ensemble': 'ens'} if m == 0 else
                                                    {'ensemble': 'svre', 'm_svrg': m}))
                       for base in panels for m in FIGURE2_M]
            planner.evaluate('fig2', seed, folders, ADV_TRAINED)
        if 3 in figures:
            folders = [planner.attack(f'all4/svre_{base}_beta{beta}/seed{seed}', SURROGATES,
                                      base=base, ensemble='svre', beta=beta, seed=seed)
                       for base in panels for beta in FIGURE3_BETA]
            planner.evaluate('fig3', seed, folders, ADV_TRAINED)
        if 4 in figures:
            eps = attack_config(planner.user_flags).max_epsilon
            folders = [planner.attack(f'all4/ens_{FIGURE4_BASE}_t{t}/seed{seed}', SURROGATES,
                                      base=FIGURE4_BASE, ensemble='ens', num_iter=t,
                                      alpha=eps / t, seed=seed) for t in FIGURE4_ENS_T]
            folders += [planner.attack(f'all4/svre_{FIGURE4_BASE}_t{t}/seed{seed}', SURROGATES,
                                       base=FIGURE4_BASE, ensemble='svre', num_iter=t,
                                       alpha=eps / t, m_svrg=FIGURE4_SVRE_M, seed=seed)
                        for t in FIGURE4_SVRE_T]
            planner.evaluate('fig4', seed, folders, ADV_TRAINED)
    return _downloads(options) + planner.steps + [
        Step('report', (('results_dir', options.results_dir),))]


def _defense_flags(options, seed):
    if options.defenses is None:
        from svrens_tf import defenses
        names = defenses.NAMES
    else:
        names = options.defenses
    return (('defenses', _join(names)), ('seed', seed),
            *(('defense_option', o) for o in options.defense_options),
            *(('external_defense', e) for e in options.external_defenses))


def totals(steps):
    """(attack runs, single-model gradient passes, images) over the plan's attack steps."""
    attacks = [s for s in steps if s.program == 'attack']
    return (len(attacks), sum(s.passes_per_image * s.num_images for s in attacks),
            max((s.num_images for s in attacks), default=0))


def format_plan(steps):
    """One command per line (attack lines end with their cost), then the total."""
    lines = []
    for step in steps:
        line = step.command()
        if step.program == 'attack':
            line += f'  # {step.passes_per_image} passes/image x {step.num_images} images'
        lines.append(line)
    runs, passes, images = totals(steps)
    lines.append(f'# total: {runs} attack runs on {images} images, {passes:,} single-model '
                 'gradient passes (one surrogate forward+backward of one image each)')
    return '\n'.join(lines) + '\n'


def log(path, message):
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')
    for line in message.splitlines():
        print(f'[{stamp}] {line}', flush=True)
        with open(path, 'a') as f:
            f.write(f'[{stamp}] {line}\n')


def execute(steps, log_path, python=None, run_step=None):
    """Run the steps in order, each logged to `log_path` (and stdout): as subprocesses, or by
    `run_step(step) -> exit status` (svrens_tf/executor.py runs them in one process); stops
    at the first failure and returns its exit status (0 when all succeeded)."""
    log_path = pathlib.Path(log_path)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    for step in steps:
        argv = step.argv(python)
        log(log_path, ('+ ' if run_step is None else '+ (in process) ') + shlex.join(argv))
        returncode = subprocess.run(argv).returncode if run_step is None else run_step(step)
        if returncode:
            log(log_path, step.failure_hint or f'{step.command()} failed (exit {returncode})')
            return returncode
    return 0
