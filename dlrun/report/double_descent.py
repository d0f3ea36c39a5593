"""Double descent in words: where each group starts to interpolate and where its test error peaks.

The numbers come from dlrun.report.bias_variance (errors against model size);
these are the sentences the report's findings add for a model-size sweep.
"""

from __future__ import annotations

import pandas as pd

from dlrun.report.bias_variance import (
    DEFAULT_THRESHOLD,
    errors,
    interpolation_threshold,
    size_key,
    size_stats,
)
from dlrun.results.study import Study


def restored_weights_hint(study: Study) -> str:
    """The summary's errors are of the kept (best-validation) weights, not of the end of training."""
    usable = study.usable
    key = "trainer.early_stopping.restore_best"
    restored = usable[key].astype(bool) if key in usable else pd.Series(False, index=usable.index)
    if (restored & (usable["best_epoch"] < usable["epochs_run"])).any():
        return (
            " These errors are of the weights early stopping kept, often long before the end:"
            " train with trainer.early_stopping.restore_best=false (and patience=null) to see interpolation."
        )
    return ""


def second_descent(rows: pd.DataFrame) -> tuple[pd.Series, pd.Series, pd.Series] | None:
    """(first minimum, the peak after it, the largest size) of test error against size, or None.

    A double descent's peak is the highest test error *after* the error first
    stops falling; the underfit smallest models are not it.
    """
    test = rows["test_mean"].to_numpy()
    first_min = next((i for i in range(len(test) - 1) if test[i] <= test[i + 1]), len(test) - 1)
    if first_min >= len(test) - 1:
        return None
    peak = first_min + int(test[first_min:].argmax())
    if test[peak] <= test[first_min]:
        return None
    return rows.iloc[first_min], rows.iloc[peak], rows.iloc[-1]


def threshold_findings(
    study: Study, x: str | None = None, threshold: float = DEFAULT_THRESHOLD
) -> list[str]:
    """Where each group starts to interpolate and where its test error peaks; one line for those that never do."""
    stats = size_stats(errors(study, x))
    key = size_key(x)
    sentences, never = [], []
    for group, rows in stats.groupby("group", sort=False):
        where = interpolation_threshold(rows, threshold)
        if where is None:
            never.append((group, rows["train_mean"].min()))
            continue
        who = "" if group == "all runs" else f" for {group}"
        sentence = f"Interpolation threshold{who}: training error first reaches ≤ {threshold:g} at {key}={where:g}"
        descent = second_descent(rows.sort_values("x"))
        if descent is None:
            sentence += "; test error does not rise again after its first minimum."
        else:
            low, peak, last = descent
            sentence += (
                f"; test error falls to {low['test_mean']:.3g} at {key}={low['x']:g}, "
                f"peaks at {peak['test_mean']:.3g} at {key}={peak['x']:g}"
                + (
                    f" and falls again to {last['test_mean']:.3g} at {key}={last['x']:g}: double descent."
                    if last["test_mean"] < peak["test_mean"]
                    else "."
                )
            )
        sentences.append(sentence)
    if never:
        lowest = min(error for _, error in never)
        who = (
            ""
            if [g for g, _ in never] == ["all runs"]
            else f" ({len(never)} of {len(never) + len(sentences)} groups)"
        )
        sentences.append(
            f"No model size reaches training error ≤ {threshold:g}{who}; the lowest is {lowest:.3g}: "
            "no interpolation threshold in this range (larger models or longer training would find it)."
            + restored_weights_hint(study)
        )
    return sentences
