"""Findings: what the runs say, as plain sentences for the console and the top of the page.

Each check returns sentences; a check with nothing to say returns none. Lists
of runs are shortened so a 100-run sweep still gives a page one can read.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

import pandas as pd

from dlrun.report.style import nice
from dlrun.results.study import Study, format_mean, format_value, mean_std, numeric_keys

MAX_SENTENCES = 5  # per kind of finding; the rest is counted
OVERFIT_RISE = 0.10  # validation loss at the end at least 10% above its minimum...
OVERFIT_TRAIN_DROP = 0.10  # ...while training loss fell at least 10% after that minimum
OVERFIT_MIN_EPOCHS_AFTER = 3  # and the minimum is at least this many epochs before the end


def g(value: float) -> str:
    return f"{value:.3g}"


def names(runs: list[str], limit: int = 3) -> str:
    shown = ", ".join(runs[:limit])
    return shown + (f" and {len(runs) - limit} more" if len(runs) > limit else "")


def capped(sentences: list[str], what: str) -> list[str]:
    if len(sentences) <= MAX_SENTENCES:
        return sentences
    return [*sentences[:MAX_SENTENCES], f"... and {len(sentences) - MAX_SENTENCES} more {what}."]


def headline(study: Study) -> list[str]:
    """The best setting (or the one run), with its metric as mean ± std over seeds."""
    ranked = study.ranked()
    if not len(ranked):
        return ["No run finished normally, so there is nothing to compare."]
    best, row = ranked.index[0], ranked.iloc[0]
    metric = nice(study.metric)
    if len(study.usable) == 1:
        run = study.usable.iloc[0]
        return [
            f"Run {run['run']}: {run['status'].replace('_', ' ')} after {run['epochs_run']} epochs (best epoch {run['best_epoch']}); {metric} {mean_std(row['mean'], 0.0)}."
        ]
    spread = f"{mean_std(row['mean'], row['std'])} (n={int(row['n'])})"
    if len(ranked) == 1:
        return [f"{best}: {metric} {spread} over seeds."]
    return [f"Best of {len(ranked)} settings: {best}, {metric} {spread}."]


def failures(study: Study) -> list[str]:
    """Diverged, failed and unfinished runs, and folders skipped as incomplete."""
    sentences = []
    table = study.table
    for _, run in table[table["status"] == "diverged"].iterrows():
        loss = run.get("last_train_loss")
        sentences.append(
            f"Run {run['run']} ({run['setting']}) diverged at epoch {int(run.get('last_epoch', run.get('epochs_run', 0)) or 0)} "
            f"(training loss {g(loss) if pd.notna(loss) else 'nan'}): lower optimizer.lr or clip gradients (trainer.max_grad_norm)."
        )
    for _, run in table[table["status"] == "failed"].iterrows():
        sentences.append(
            f"Run {run['run']} ({run['setting']}) failed: {run.get('error') or 'no error recorded'}."
        )
    for _, run in table[table["status"] == "interrupted"].iterrows():
        sentences.append(
            f"Run {run['run']} was interrupted after epoch {run.get('epochs_run')}; continue it with `dlrun train resume={shlex.quote(str(run['path']))}`."
        )
    out = capped(sentences, "runs that diverged, failed or stopped")
    if study.runs.skipped:
        listed = "; ".join(f"{run} ({why})" for run, why in study.runs.skipped[:MAX_SENTENCES])
        more = (
            f"; and {len(study.runs.skipped) - MAX_SENTENCES} more"
            if len(study.runs.skipped) > MAX_SENTENCES
            else ""
        )
        out.append(f"Skipped {len(study.runs.skipped)} incomplete run folder(s): {listed}{more}.")
    return out


@dataclass
class Overfit:
    best_epoch: int  # epoch of the lowest validation loss
    last_epoch: int
    val_min: float
    val_last: float
    train_at_best: float
    train_last: float

    @property
    def rise(self) -> float:
        return (self.val_last - self.val_min) / abs(self.val_min)

    @property
    def gap(self) -> float:
        return self.val_last - self.train_last


def detect_overfit(curve: pd.DataFrame) -> Overfit | None:
    """Validation loss bottomed out early and rose while training loss kept falling."""
    curve = curve.dropna(subset=["train_loss", "val_loss"])
    if len(curve) < OVERFIT_MIN_EPOCHS_AFTER + 2:
        return None
    best = curve["val_loss"].idxmin()
    at_best, last = curve.loc[best], curve.iloc[-1]
    o = Overfit(
        int(at_best["epoch"]),
        int(last["epoch"]),
        at_best["val_loss"],
        last["val_loss"],
        at_best["train_loss"],
        last["train_loss"],
    )
    fell = (o.train_at_best - o.train_last) / abs(o.train_at_best) if o.train_at_best else 0.0
    late = o.last_epoch - o.best_epoch >= OVERFIT_MIN_EPOCHS_AFTER
    if late and o.rise >= OVERFIT_RISE and fell >= OVERFIT_TRAIN_DROP:
        return o
    return None


def overfitting(study: Study) -> list[str]:
    """One sentence per overfitting setting, naming its runs and the size of the gap."""
    usable = study.usable
    metrics = study.runs.metrics
    found: dict[str, list[tuple[str, Overfit]]] = {}
    for run, curve in metrics[metrics["run"].isin(usable.index)].groupby("run", sort=False):
        result = detect_overfit(curve.reset_index(drop=True))
        if result is not None:
            found.setdefault(usable.loc[run, "setting"], []).append((run, result))
    sentences = []
    for setting, hits in found.items():
        runs = [run for run, _ in hits]
        o = hits[0][1] if len(hits) == 1 else _mean_overfit([h for _, h in hits])
        who = (
            f"Run {runs[0]}"
            if len(hits) == 1
            else f"{len(hits)} of {study.n_seeds(setting)} seeds of"
        )
        where = (
            f" ({setting})"
            if len(hits) == 1 and study.keys
            else f" {setting} ({names(runs)})"
            if len(hits) > 1
            else ""
        )
        about = "" if len(hits) == 1 else "about "
        sentences.append(
            f"{who}{where} overfit: validation loss bottomed out at {about}epoch {o.best_epoch} ({g(o.val_min)}) and rose "
            f"{o.rise:.0%} by epoch {o.last_epoch} while training loss kept falling ({g(o.train_at_best)} → {g(o.train_last)}); "
            f"the gap val − train loss reached {g(o.gap)}."
        )
    return capped(sentences, "overfitting settings (see the gap figure)")


def _mean_overfit(hits: list[Overfit]) -> Overfit:
    frame = pd.DataFrame([vars(h) for h in hits]).mean()
    return Overfit(
        round(frame["best_epoch"]),
        round(frame["last_epoch"]),
        *frame[["val_min", "val_last", "train_at_best", "train_last"]],
    )


def edges(study: Study) -> list[str]:
    """The best setting sits at the smallest or largest value searched of a numeric key."""
    ranked = study.ranked()
    if not len(ranked):
        return []
    best = ranked.index[0]
    row = study.usable[study.usable["setting"] == best].iloc[0]
    sentences = []
    for key in numeric_keys(study):
        if key.startswith("data."):
            continue  # the problem's own size or difficulty, not a knob to tune
        values = sorted(study.usable[key].unique())
        if len(values) < 3:
            continue  # with two values the best is always at an edge: no news
        value = row[key]
        if value in (values[0], values[-1]):
            side, direction = ("smallest", "below") if value == values[0] else ("largest", "above")
            sentences.append(
                f"The best {nice(study.metric)} ({format_mean(ranked.iloc[0]['mean'], ranked.iloc[0]['std'])}) is at {key}={format_value(value)}, the {side} value searched "
                f"({format_value(values[0])} to {format_value(values[-1])}): widen the range {direction} {format_value(value)}."
            )
    return sentences


def within_spread(study: Study) -> list[str]:
    """Settings whose difference from the best is smaller than their seed-to-seed spread."""
    ranked = study.ranked()
    ranked = ranked[ranked["n"] >= 2]
    if len(ranked) < 2:
        return []
    best, top = ranked.index[0], ranked.iloc[0]
    sentences = []
    for setting, row in ranked.iloc[1:].iterrows():
        diff = abs(top["mean"] - row["mean"])
        spread = max(top["std"], row["std"])
        if diff < spread:
            sentences.append(
                f"{best} and {setting} differ by {g(diff)} in {nice(study.metric)}, less than their seed spread "
                f"({mean_std(top['mean'], top['std'])} and {mean_std(row['mean'], row['std'])}): "
                "more seeds are needed to rank them."
            )
    return capped(sentences, "settings within the seed spread of the best")


def still_improving(study: Study) -> list[str]:
    """Every run's best epoch was its last: the monitored metric was still improving at the end."""
    usable = study.usable
    if not len(usable) or not {"best_epoch", "epochs_run"} <= set(usable.columns):
        return []
    if not (usable["best_epoch"] == usable["epochs_run"]).all():
        return []
    monitor = usable["monitor"].iloc[0] if "monitor" in usable else "val_loss"
    who = "The run's" if len(usable) == 1 else f"Every run's ({len(usable)} runs)"
    return [
        f"{who} best epoch was its last: {nice(monitor)} was still improving when training "
        "ended, so more epochs (trainer.epochs) may reach a better result."
    ]


def findings(study: Study, extra: list[str] | None = None) -> list[str]:
    """All findings, most important first (the headline, what went wrong, then the analysis)."""
    return [
        *headline(study),
        *failures(study),
        *still_improving(study),
        *overfitting(study),
        *edges(study),
        *(extra or []),
        *within_spread(study),
    ]
