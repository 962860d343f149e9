"""Run the programs of svrens_tf/cli/ in this process, one after another, as
`python -m svrens_tf.cli.PROGRAM ARGS` would run each: its own flags parse ARGS and its own
`main` runs, with one pipeline.ModelCache shared by every program that loads models
(svrens_tf/executor.py runs a plan's steps so)."""
import importlib
import inspect
import sys

from absl import app, flags


class InProcess:
    """`run(step) -> exit status`: each step's program run in this process.

    Every program defines its flags on absl's global FLAGS and some share a name with another
    program's (svrens-attack's --input_dir is a folder, svrens-evaluate's a list), so they
    cannot be registered together: the flags of the program about to run replace the last
    one's, and are parsed afresh (defaults restored) for every step.
    """

    def __init__(self, models=None, deterministic=None):
        from svrens_tf import pipeline, runtime
        # before any step's first op (a download step may run some), as svrens-attack and
        # svrens-evaluate do first in their own processes; `deterministic`: executor.determinism()
        runtime.configure(deterministic)
        self.models = models or pipeline.ModelCache()
        self._flags = {}          # program -> its Flag objects
        self._active = None

    def _activate(self, program):
        registry = flags.FLAGS
        if self._active == program:
            return
        if self._active is not None:
            for flag in self._flags[self._active]:
                delattr(registry, flag.name)
        module_name = f'svrens_tf.cli.{program}'
        if program in self._flags:
            for flag in self._flags[program]:
                registry[flag.name] = flag
                registry.register_flag_by_module(module_name, flag)
        else:
            importlib.import_module(module_name)
            self._flags[program] = registry.get_flags_for_module(module_name)
        self._active = program

    def __call__(self, step):
        self._activate(step.program)
        module = sys.modules[f'svrens_tf.cli.{step.program}']
        argv = [module.__file__, *step.args]
        takes_models = 'models' in inspect.signature(module.main).parameters
        kwargs = {'models': self.models} if takes_models else {}  # a program that loads models
        saved_argv, sys.argv = sys.argv, argv  # run records keep the program's argv
        flags.FLAGS.unparse_flags()
        try:
            flags.FLAGS(argv)
            module.main(argv[:1], **kwargs)
        except (flags.Error, app.UsageError) as err:
            print(f'FATAL Flags parsing error: {err}', file=sys.stderr, flush=True)
            return 1
        except SystemExit as end:  # what the program's process would have exited with
            if isinstance(end.code, str):
                print(end.code, file=sys.stderr, flush=True)
                return 1
            return end.code or 0
        finally:
            sys.argv = saved_argv
        return 0
