"""`dlrun report PATH... [--out DIR] [--x PARAM] [--group PARAM] [--metric NAME] [--format png|svg|pdf]`.

Reads run folders, prints findings and a table of runs, writes index.html,
runs.csv and one file per figure. Bad input: one line on stderr, exit code 2.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from rich.console import Console

from dlrun.results.study import ReportError

DESCRIPTION = "Plots and tables for run folders and sweeps (PATH: a run folder, a sweep, or any folder holding runs)."
EPILOG = """examples:
  dlrun report                 the newest sweep (or run) under outputs/
  dlrun report outputs/sweeps/2025-01-01/12-00-00_mlp-mnist1d
  dlrun report outputs/runs --out /tmp/report --format pdf
  dlrun report outputs/sweeps/<width sweep> --x model.width --metric test_loss
"""


class Parser(argparse.ArgumentParser):
    """argparse that raises instead of printing usage and exiting (we print one line)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise ReportError(message)


def parser() -> Parser:
    p = Parser(
        prog="dlrun report",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "paths",
        nargs="*",
        type=Path,
        metavar="PATH",
        help="run folder, sweep folder, or any folder holding run folders "
        "(none, or `latest`: the newest sweep under outputs/, else the newest run)",
    )
    p.add_argument("--out", type=Path, help="where to write the report (default: PATH/report)")
    p.add_argument(
        "--x",
        metavar="PARAM",
        help="model size axis of the bias-variance figure (default: n_params), e.g. model.width",
    )
    p.add_argument(
        "--group",
        metavar="PARAM",
        help="categorical config key whose values are the sweep plot's lines, e.g. optimizer.name",
    )
    p.add_argument(
        "--metric",
        metavar="NAME",
        help="summary metric that ranks runs (default: test_acc, or test_loss for regression)",
    )
    p.add_argument(
        "--format", choices=["png", "svg", "pdf"], default="png", help="figure files (default: png)"
    )
    p.add_argument(
        "--threshold",
        type=float,
        default=0.01,
        help="training error counted as interpolating (default: 0.01)",
    )
    return p


def main(args: list[str]) -> int:
    from dlrun.errors import WriteError

    try:
        options = parser().parse_args(args)
        options.paths = latest_if_none(options.paths)
        return report(options)
    except ReportError as e:
        print(f"dlrun: error: {e}", file=sys.stderr)
        return 2
    except WriteError as e:  # a full disk or a read-only --out: earlier report files stay
        print(f"dlrun: error: {e}", file=sys.stderr)
        return 1
    except SystemExit as e:  # --help
        return int(e.code or 0)


def latest_if_none(paths: list[Path]) -> list[Path]:
    """No PATH, or `latest`: the newest sweep under ./outputs, else the newest run."""
    if paths and paths != [Path("latest")]:
        return paths
    from dlrun.results.listing import DEFAULT_ROOT, is_sweep, newest

    found = newest(DEFAULT_ROOT) if DEFAULT_ROOT.is_dir() else None
    if found is None:
        raise ReportError(f"no runs under ./{DEFAULT_ROOT}: give a PATH (dlrun runs lists them)")
    print(f"dlrun: reporting the newest {'sweep' if is_sweep(found) else 'run'}: {found}")
    return [found]


def output_folder(paths: list[Path], out: Path | None) -> Path:
    for path in paths:
        if not path.exists():
            raise ReportError(f"{path}: no such file or directory")
        if not path.is_dir():
            raise ReportError(
                f"{path}: not a folder (give a run folder, a sweep folder or a folder holding runs)"
            )
    if out is not None:
        return out
    if len(paths) > 1:
        raise ReportError("several PATHs: say where the report goes with --out DIR")
    out = paths[0] / "report"
    if out.is_symlink() or (out.exists() and not out.is_dir()):  # a folder from elsewhere
        raise ReportError(
            f"{out} is a symbolic link or not a folder; dlrun never writes through a link "
            "inside a run folder: remove it, or say where the report goes with --out DIR"
        )
    return out


def check_options(study, options: argparse.Namespace) -> None:
    """--x must be numeric and --group a config key, both known to the runs."""
    import pandas as pd

    table = study.table
    if options.x is not None and (
        options.x not in table or not pd.api.types.is_numeric_dtype(table[options.x])
    ):
        numeric = [
            k
            for k in study.runs.config_keys
            if k in table and pd.api.types.is_numeric_dtype(table[k]) and table[k].nunique() > 1
        ]
        raise ReportError(
            f"--x {options.x}: not a numeric setting of these runs; try n_params{''.join(', ' + k for k in numeric)}"
        )
    if options.group is not None and options.group not in study.runs.config_keys:
        raise ReportError(
            f"--group {options.group}: not a config key of these runs; swept keys: {', '.join(study.keys) or 'none'}"
        )


def report(options: argparse.Namespace) -> int:
    from dlrun.claims.decide import evaluate, restated
    from dlrun.claims.render import claims_html, print_claims
    from dlrun.errors import WriteError
    from dlrun.folders.runs import atomic_write, atomic_write_text
    from dlrun.report.bias_variance import supports_bias_variance
    from dlrun.report.double_descent import threshold_findings
    from dlrun.report.figures import named_settings, plan, render
    from dlrun.report.findings import findings
    from dlrun.report.html import page
    from dlrun.report.published import grid, grid_html, print_grid, published_figure
    from dlrun.report.rates import rate_findings
    from dlrun.report.tables import print_runs, runs_frame, settings_frame
    from dlrun.results.load import load_runs
    from dlrun.results.study import make_study

    start = time.perf_counter()
    out = output_folder(options.paths, options.out)
    runs = load_runs(options.paths, exclude=out.resolve())
    for run, reason in runs.skipped:
        print(f"dlrun: warning: skipped incomplete run folder {run}: {reason}", file=sys.stderr)
    if not len(runs.table):
        where = ", ".join(str(p) for p in options.paths)
        if runs.skipped:
            raise ReportError(
                f"{where}: no complete run folders ({len(runs.skipped)} skipped as incomplete)"
            )
        raise ReportError(
            f"{where}: no run folders here (folders with summary.json, metrics.csv or config.yaml)"
        )
    study = make_study(runs, options.metric)
    check_options(study, options)
    extra = (
        threshold_findings(study, options.x, options.threshold)
        if supports_bias_variance(study, options.x)
        else []
    )
    extra += rate_findings(study, options.x)
    sentences = findings(study, extra)
    claims = evaluate(study)
    cells = grid(claims)
    for name, changed in restated(study).items():
        sentences.append(
            f"These runs carry {name}'s claims as its file stated them when they ran; it states "
            f"{', '.join(changed)} differently now: dlrun check {name} --on "
            f"{options.paths[0]} decides them as they are now."
        )

    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise WriteError(out, e) from None
    frame = runs_frame(study)
    atomic_write(out / "runs.csv", lambda tmp: frame.to_csv(tmp, index=False))
    planned = plan(
        study, options.x, options.group, options.threshold, named_settings(claims, study)
    )
    figures = render([*published_figure(claims, cells), *planned], out, options.format)
    brief = frame[[c for c in frame.columns if c not in study.runs.config_keys or c in study.keys]]
    title = f"dlrun report: {options.paths[0].resolve().name}" + (
        f" and {len(options.paths) - 1} more" if len(options.paths) > 1 else ""
    )
    sources = [str(p) for p in options.paths]
    claims_part = claims_html(claims) + grid_html(cells, claims)
    notes = [item.caption for item in planned if item.draw is None]
    html = page(
        title, sources, sentences, settings_frame(study), figures, brief, claims_part, notes
    )
    atomic_write_text(out / "index.html", html)

    console = Console(highlight=False)
    print_claims(claims, console)
    print_grid(cells, console)
    print_runs(study, console)
    console.print("[bold]Findings[/]")
    for sentence in sentences:  # soft_wrap: a long line is left whole (a log, a pipe)
        console.print(f"  - {sentence}", markup=False, soft_wrap=True)
    for note in notes:
        console.print(f"  {note}", markup=False, soft_wrap=True)
    names = ", ".join(f"{f.name}.{options.format}" for f in figures) or "none"
    console.print(
        f"dlrun: report in {out / 'index.html'} ({len(figures)} figures: {names}; runs.csv) in {time.perf_counter() - start:.1f} s",
        markup=False,
        soft_wrap=True,  # never `report in \noutputs/...`: the path is copied whole from a log
    )
    return 0
