"""Settings: keys swept over null and a value, and transfer sources, name distinct settings."""

from __future__ import annotations

from dlrun.report.load import load_runs
from dlrun.report.study import make_study
from dlrun.report.synthetic import classification_metrics, summary_from, write_run


def write(folder, overrides):
    metrics = classification_metrics(5)
    return write_run(folder, overrides, metrics, summary_from(metrics, "completed"))


def test_a_key_swept_over_null_and_a_value_is_a_setting(tmp_path):
    for job, patience in enumerate([None, 20, None, 20]):
        write(tmp_path / str(job), {"trainer.early_stopping.patience": patience, "seed": job // 2})
    study = make_study(load_runs([tmp_path]))
    assert study.keys == ["trainer.early_stopping.patience"]
    assert set(study.table["setting"]) == {
        "trainer.early_stopping.patience=null",
        "trainer.early_stopping.patience=20",
    }
    assert set(study.ranked()["n"]) == {2}


def test_transfer_from_scratch_or_from_a_source_is_a_setting(tmp_path):
    write(tmp_path / "0", {"transfer.source": None})
    write(tmp_path / "1", {"transfer.source": "outputs/pretrained/a"})
    study = make_study(load_runs([tmp_path]))
    assert "transfer.source" in study.keys
    assert len(set(study.table["setting"])) == 2
