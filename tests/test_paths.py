"""New run folders: unique, inside outputs/, removed again with their parents when refused (dlrun/paths.py)."""

from __future__ import annotations

import os

import pytest

from dlrun import paths
from dlrun.cli.main import main


def test_unique_dir_adds_a_number_and_remove_created_takes_only_what_it_made(tmp_path):
    (tmp_path / "outputs").mkdir()
    (tmp_path / "outputs" / "keep.txt").write_text("the user's")
    first = paths.unique_dir(str(tmp_path / "outputs" / "runs" / "day" / "12-00-00_x"))
    second = paths.unique_dir(str(tmp_path / "outputs" / "runs" / "day" / "12-00-00_x"))
    assert second == first + "_1"
    paths.remove_created(second)  # its date folder still holds the first
    assert os.path.isdir(first) and not os.path.exists(second)
    paths.remove_created(first)  # now day/ and runs/ go too; outputs/ was there before
    assert sorted(p.name for p in (tmp_path / "outputs").iterdir()) == ["keep.txt"]


@pytest.mark.parametrize(
    ("name", "folder_name"),
    [("a/b/c", "a-b-c"), ("../../x", "..-..-x"), ("é" * 150, "é" * 100), ("", "run")],
)
def test_a_name_becomes_one_folder_name_of_at_most_200_bytes(name, folder_name):
    assert paths.cut_name(name) == folder_name
    assert len(paths.cut_name(name).encode()) <= paths.NAME_BYTES


def test_a_long_name_is_cut_in_the_folder_and_kept_whole_in_the_summary(tmp_path, monkeypatch):
    import json

    monkeypatch.chdir(tmp_path)
    name = "n" * 300
    quick = ["data=moons", "data.n_samples=200", "model.width=4", "trainer.epochs=1"]
    assert main(["train", *quick, "device=cpu", "trainer.progress=false", f"name={name}"]) == 0
    (folder,) = (tmp_path / "outputs" / "runs").glob("*/*")
    assert folder.name.endswith("_" + "n" * paths.NAME_BYTES)
    assert json.loads((folder / "summary.json").read_text())["name"] == name


def test_job_folder_names_keep_four_significant_digits():
    name = paths.slug(
        "model.depth=3,optimizer.lr=0.0012345678901234,optimizer.weight_decay=2.3456789e-05"
    )
    assert name == "model.depth=3,optimizer.lr=0.001235,optimizer.weight_decay=2.346e-05"
    assert paths.slug("seed=1,optimizer=adam,x=0.5") == "seed=1,optimizer=adam,x=0.5"  # as typed


@pytest.mark.parametrize(
    ("hydra", "typed"),
    [
        ("quick=True seed=0", "quick=true seed=0"),  # Hydra's sweeper spells bools as Python
        ("data.shuffle_positions=False,seed=1", "data.shuffle_positions=false,seed=1"),
        ("init.value=None", "init.value=null"),
        ("x=[True,False]", "x=[true,false]"),
        ("name=Trueish tag=IsTrue", "name=Trueish tag=IsTrue"),  # only whole values
        ("name=True_run", "name=True_run"),
    ],
)
def test_overrides_are_shown_in_yaml_words(hydra, typed):
    assert paths.yaml_words(hydra) == typed
    assert paths.slug(hydra.replace(" ", ",")) == paths.slug(typed.replace(" ", ","))
    assert "True" not in paths.slug("quick=True,data.shuffle_positions=False")
