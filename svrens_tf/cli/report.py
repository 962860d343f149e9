"""svrens-report: our numbers beside the paper's, from run_attacks.sh's results folder or from
any svrens-evaluate output folders.

    svrens-report --results_dir results
    svrens-report results/eval_ens_mi results/eval_svre_mi [--output results/report.md]

--results_dir reads RESULTS/<experiment>/**/evaluation.json (table1, table2, table3, fig2, fig3,
fig4, as run_attacks.sh lays them out). Explicit folders are sorted into the tables by their
surrogates (3 of the 4 normal models: Table 1; all 4: Tables 2 and 3). Writes report.md (default
RESULTS/report.md, or beside the folders), report.json and report.csv with the same numbers, and
figures/*.png when matplotlib is installed. Results that hold no run are an error (exit 1).
"""
from absl import app, flags

from svrens_tf import cli, pipeline, report

FLAGS = flags.FLAGS
flags.DEFINE_string('results_dir', None, 'Folder holding run_attacks.sh\'s experiments '
                    '(default: results, when no evaluation folder is given).')
flags.DEFINE_string('output', None, 'Markdown report path; report.json, report.csv and '
                    'figures/ go beside it (default: RESULTS/report.md, or report.md in the '
                    'folder holding the evaluation folders).')


def main(argv):
    folders = argv[1:]
    if folders and FLAGS.results_dir:
        raise app.UsageError('pass --results_dir or evaluation folders, not both')
    written = cli.exit_on(report.ReportError, 'svrens-report', pipeline.write_report,
                          FLAGS.results_dir, folders, FLAGS.output)
    print(f'wrote {", ".join(map(str, written))}')


def run():
    cli.run(main, __name__)


if __name__ == '__main__':
    run()
