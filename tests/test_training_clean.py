"""Cleaning: planted unreadable, blank, duplicate and near-duplicate images; mislabel evidence."""

import json
import logging
import shutil

import cv2
import numpy as np
import pytest

from moodloop.engine.cli import main
from moodloop.engine.errors import ConfigError
from moodloop.training.clean import CleanConfig, dhash, find_issues, write_report
from moodloop.training.data import load_dataset, read_exclusions
from moodloop.training.synthetic import write_dataset


@pytest.fixture
def planted(tmp_path):
    """A synthetic dataset with one of each problem planted in it."""
    root = write_dataset(tmp_path / "faces", train_per_class=3, valid_per_class=2)
    train = root / "train"
    (train / "fear" / "unreadable.png").write_bytes(b"not an image")
    cv2.imwrite(str(train / "sad" / "blank.png"), np.full((48, 48), 7, np.uint8))
    noise = np.random.default_rng(0).normal(100, 1, (48, 48))
    cv2.imwrite(str(train / "neutral" / "flat.png"), noise.clip(0, 255).astype(np.uint8))
    shutil.copy(train / "happy" / "0009.png", train / "sad" / "copy_of_happy.png")  # conflicting label
    shutil.copy(root / "validation" / "angry" / "0000.png", train / "angry" / "leak.png")
    brighter = cv2.imread(str(train / "surprise" / "0018.png"), cv2.IMREAD_GRAYSCALE).astype(int) + 6
    cv2.imwrite(str(train / "surprise" / "brighter.png"), brighter.clip(0, 255).astype(np.uint8))
    return root


def test_planted_problems_are_found_and_only_training_images_excluded(planted, tmp_path):
    data = load_dataset(planted)
    findings = find_issues(data)
    found = {(f.kind, f.name): f for f in findings}
    assert set(found) == {
        ("unreadable", "train/fear/unreadable.png"),
        ("blank", "train/sad/blank.png"),
        ("blank", "train/neutral/flat.png"),
        ("duplicate", "train/sad/copy_of_happy.png"),  # sorted after happy/0009.png: the copy
        ("duplicate", "train/angry/leak.png"),  # the validation original is kept
        ("near_duplicate", "train/surprise/brighter.png"),
    }
    assert "labels differ" in found["duplicate", "train/sad/copy_of_happy.png"].detail
    assert "validation/angry/0000.png" in found["duplicate", "train/angry/leak.png"].detail
    assert all(f.excluded for f in findings)

    report = write_report(data, findings, tmp_path / "report", "faces")
    assert report["counts"] == {"unreadable": 1, "blank": 2, "duplicate": 2, "near_duplicate": 1,
                                "mislabeled": 0}
    assert json.loads((tmp_path / "report" / "clean.json").read_text())["excluded"] == 6
    assert (tmp_path / "report" / "clean.png").stat().st_size > 0
    assert "| blank | 2 | 2 |" in (tmp_path / "report" / "clean.md").read_text()
    kept = data.without(read_exclusions(tmp_path / "report" / "exclude.txt"))
    assert len(kept.split("train")) == 21 and len(kept.split("valid")) == 14


def test_an_edited_exclusion_list_is_kept_and_the_new_one_goes_beside_it(planted, tmp_path, caplog):
    data, out = load_dataset(planted), tmp_path / "report"
    findings = find_issues(data)
    write_report(data, findings, out, "faces")
    write_report(data, findings, out, "faces")  # its own list: replaced quietly
    assert not (out / "exclude.new.txt").exists()
    edited = (out / "exclude.txt").read_text().replace("train/angry/leak.png\n", "")  # "keep that one"
    (out / "exclude.txt").write_text(edited)
    with caplog.at_level(logging.WARNING):
        write_report(data, findings, out, "faces")
    assert (out / "exclude.txt").read_text() == edited and "differs from the list" in caplog.text
    assert "train/angry/leak.png" in (out / "exclude.new.txt").read_text()
    (out / "exclude.new.txt").replace(out / "exclude.txt")  # the user adopts the new list
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        write_report(data, findings, out, "faces")
    assert not (out / "exclude.new.txt").exists() and "differs" not in caplog.text
    report = json.loads((out / "clean.json").read_text())
    del report["exclusion_list"]  # as a moodloop that kept no checksum wrote it
    (out / "clean.json").write_text(json.dumps(report))
    (out / "exclude.txt").write_text("# an older list\n")
    write_report(data, findings, out, "faces")
    assert "train/angry/leak.png" in (out / "exclude.txt").read_text()  # rewritten, as that version did
    (out / "clean.json").unlink()
    (out / "exclude.txt").write_text("# my own list\n")  # no clean.json: someone else's file
    write_report(data, findings, out, "faces")
    assert (out / "exclude.txt").read_text() == "# my own list\n"


def test_duplicates_inside_validation_are_reported_not_excluded(tmp_path):
    root = write_dataset(tmp_path / "faces", train_per_class=1, valid_per_class=1)
    shutil.copy(root / "validation" / "sad" / "0005.png", root / "validation" / "sad" / "again.png")
    (finding,) = find_issues(load_dataset(root))
    assert (finding.kind, finding.split, finding.excluded) == ("duplicate", "valid", False)


def test_mislabel_evidence_from_model_probabilities(tmp_path):
    root = write_dataset(tmp_path / "faces", train_per_class=1, valid_per_class=1)
    shutil.copy(root / "train" / "fear" / "0002.png", root / "train" / "fear" / "again.png")
    data = load_dataset(root)
    probs = {name: np.eye(7)[split.labels] * 0.9 + 0.1 / 7 for name, split in data.splits.items()}
    names = data.split("train").names
    for name in ("train/fear/0002.png", "train/fear/again.png"):  # labelled fear, looks angry
        probs["train"][names.index(name)] = [0.97, 0.005, 0.005, 0.005, 0.005, 0.005, 0.005]
    probs["train"][names.index("train/sad/0005.png")] = [0.50, 0.005, 0.005, 0.005, 0.01, 0.47, 0.005]  # unsure
    findings = find_issues(data, probs, CleanConfig())
    assert [(f.kind, f.name) for f in findings] == [("duplicate", "train/fear/again.png"),  # once, as a copy
                                                     ("mislabeled", "train/fear/0002.png")]
    assert "model says angry 0.97" in findings[1].detail
    report = write_report(data, findings, tmp_path / "report", "faces", model="runs/mine")
    assert report["excluded"] == 2 and report["model"] == "runs/mine"
    assert "Mislabel evidence from `runs/mine`" in (tmp_path / "report" / "clean.md").read_text()


def test_dhash_ignores_brightness_but_not_content():
    rng = np.random.default_rng(1)
    image = rng.integers(0, 200, (48, 48), dtype=np.uint8)
    other = rng.integers(0, 200, (48, 48), dtype=np.uint8)
    hashes = dhash(np.stack([image, image + 40, other]))
    assert hashes.dtype == np.uint64 and hashes[0] == hashes[1] != hashes[2]


def test_clean_command(planted, tmp_path, capsys):
    assert main(["clean", "--data", str(planted), "--out", str(tmp_path / "out")]) == 0
    assert "6 training images listed" in capsys.readouterr().out
    assert "train/fear/unreadable.png" in (tmp_path / "out" / "exclude.txt").read_text()


def test_clean_refuses_a_bad_threshold_or_out_before_loading_the_data(tmp_path, capsys):
    with pytest.raises(ConfigError, match="--blank-std -1: give a pixel standard deviation of 0 or more"):
        CleanConfig(blank_std=-1)
    a_file = tmp_path / "report.txt"
    a_file.write_text("")
    missing = str(tmp_path / "no_such_data")  # a dataset error would mean the data was loaded first
    assert main(["clean", "--data", missing, "--out", str(a_file)]) == 2
    assert main(["clean", "--data", missing, "--out", str(a_file / "sub")]) == 2
    assert main(["clean", "--data", missing, "--out", str(tmp_path / "out"), "--blank-std", "-1"]) == 2
    errors = capsys.readouterr().err.splitlines()
    assert f"--out {a_file} is a file; give a folder" in errors[0]
    assert f"{a_file} is not a folder you can write in" in errors[1]
    assert "--blank-std -1.0" in errors[2] and not (tmp_path / "out").exists()
