"""The paper's figures drawn with matplotlib (the optional `plots` extra) from the numbers the
report computes (report.py): grouped bars (Figure 1) and line panels (Figures 2-4)."""
import dataclasses
import io
import pathlib

from svrens_tf import files

# The paper's names of the zoo models, as its legends print them.
MODEL_NAMES = {'inc_v3': 'Inc-v3', 'inc_v4': 'Inc-v4', 'incres_v2': 'IncRes-v2',
               'res_v2_101': 'Res-101', 'ens3_adv_inc_v3': 'Inc-v3ens3',
               'ens4_adv_inc_v3': 'Inc-v3ens4', 'ens_adv_incres_v2': 'IncRes-v2ens'}


@dataclasses.dataclass
class Bars:
    """Panels of grouped bars: panels = [(panel title, [(group, [(bar label, value)])])]."""
    title: str
    panels: list
    y_label: str

    def draw(self, plt):
        figure, axes = plt.subplots(1, len(self.panels), figsize=(5.5 * len(self.panels), 4),
                                    squeeze=False)
        for axis, (title, groups) in zip(axes[0], self.panels):
            labels = list(dict.fromkeys(label for _, bars in groups for label, _ in bars))
            width = 0.8 / max(len(labels), 1)
            for k, label in enumerate(labels):
                xs = [g + k * width for g, (_, bars) in enumerate(groups)
                      if label in dict(bars)]
                axis.bar(xs, [dict(bars)[label] for _, bars in groups if label in dict(bars)],
                         width, label=label)
            axis.set_xticks([g + 0.4 - width / 2 for g in range(len(groups))],
                            [name for name, _ in groups])
            axis.set_xlabel('base attack')
            axis.set_ylabel(self.y_label)
            axis.set_title(title)
            axis.legend()
        return figure


@dataclasses.dataclass
class Lines:
    """Panels of curves: panels = [(panel title, [(curve label, xs, ys)])]."""
    title: str
    panels: list
    x_label: str
    y_label: str
    x_scale: str = None          # 'log2' for doubling sweeps
    x_lim: tuple = None
    y_lim: tuple = (0, 100)      # success rates in %; None: matplotlib's own

    def draw(self, plt):
        width = max(6.5, 5 * len(self.panels))
        figure, axes = plt.subplots(1, len(self.panels), figsize=(width, 4), squeeze=False)
        for axis, (title, curves) in zip(axes[0], self.panels):
            for label, xs, ys in curves:
                axis.plot(xs, ys, marker='o', label=label, clip_on=False)
            if self.x_scale == 'log2':
                axis.set_xscale('log', base=2)
                ticks = sorted({x for _, xs, _ in curves for x in xs})
                axis.set_xticks(ticks, [f'{x:g}' for x in ticks])
            if self.x_lim:
                axis.set_xlim(*self.x_lim)
            if self.y_lim:
                axis.set_ylim(*self.y_lim)
            axis.set_xlabel(self.x_label)
            axis.set_ylabel(self.y_label)
            if title:
                axis.set_title(title)
            axis.legend(fontsize='small')
        return figure


def draw(figures, folder):
    """Write each (file name, figure) as PNG under `folder` when matplotlib is installed;
    returns the paths written ([] without matplotlib)."""
    try:
        import matplotlib
        matplotlib.use('Agg')
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    folder = pathlib.Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, spec in figures:
        figure = spec.draw(plt)
        figure.suptitle(spec.title, fontsize='medium')
        figure.tight_layout()
        buffer = io.BytesIO()
        figure.savefig(buffer, format='png', dpi=120)
        plt.close(figure)
        files.write_atomic(folder / name, buffer.getvalue())
        written.append(folder / name)
    return written
