"""svrens-report: our numbers beside the paper's, from the evaluations under a results folder.

    svrens-report --results_dir results

Reads RESULTS/<experiment>/**/evaluation.json (experiments table1, table2, table3, fig2, fig3,
fig4 as run_attacks.sh lays them out), writes RESULTS/report.md and, when matplotlib is
installed, RESULTS/figures/*.png.
"""
import pathlib

from absl import app, flags

from svrens_tf import files, report

FLAGS = flags.FLAGS
flags.DEFINE_string('results_dir', 'results', 'Folder holding the experiments\' evaluations.')
flags.DEFINE_string('output', None, 'Markdown report path (default: RESULTS/report.md).')


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f'unexpected arguments: {" ".join(argv[1:])}')
    results_dir = pathlib.Path(FLAGS.results_dir)
    if not results_dir.is_dir():
        raise app.UsageError(f'{results_dir}: results folder not found')
    markdown, figures = report.build_report(results_dir)
    written = report.draw_figures(figures, results_dir / 'figures')
    if written:
        markdown += '\n## Figures\n\n' + ''.join(
            f'![{p.stem}]({p.relative_to(results_dir)})\n' for p in written)
    elif figures:
        markdown += '\n(Figures need matplotlib: pip install svrens_tf[plots].)\n'
    output = pathlib.Path(FLAGS.output or results_dir / 'report.md')
    files.write_atomic(output, markdown)
    print(f'wrote {output}' + (f' and {len(written)} figures' if written else ''))


def run():
    app.run(main)


if __name__ == '__main__':
    run()
