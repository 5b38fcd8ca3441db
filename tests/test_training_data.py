"""Dataset layouts, layout errors, class merging, unreadable files and exclusion lists."""

import logging
import shutil
from pathlib import Path

import numpy as np
import pytest

from moodloop.engine.errors import DataError
from moodloop.training.data import FER_LABELS, load_dataset, parse_merge, read_exclusions
from moodloop.training.synthetic import make_images, write_dataset

REAL_ZIP = Path(__file__).resolve().parents[1].parent / "shared/data/fer2013/fer2013-trainval.zip"


@pytest.mark.parametrize("zip_it", [False, True], ids=["folder", "zip"])
@pytest.mark.parametrize("layout", ["train|validation", "train|test", "images/train|validation", "fer2013.csv"])
def test_each_kaggle_layout_loads_the_same_images(tmp_path, layout, zip_it):
    path = write_dataset(tmp_path / "faces", layout, train_per_class=2, valid_per_class=1, zip_it=zip_it)
    data = load_dataset(path)
    assert data.classes == FER_LABELS
    for split, per_class, seed in (("train", 2, 0), ("valid", 1, 1)):
        images, labels = make_images(per_class, seed=seed)
        assert np.array_equal(data.split(split).images, images)
        assert np.array_equal(data.split(split).labels, labels)
    assert data.layout == ("fer2013.csv" if layout == "fer2013.csv" else
                           "images/<split>/<class>/" if layout.startswith("images") else "<split>/<class>/")


def test_csv_file_directly_and_private_test_rows_are_never_loaded(tmp_path):
    csv = write_dataset(tmp_path, "fer2013.csv", train_per_class=1, valid_per_class=1) / "fer2013.csv"
    with csv.open("a") as file:
        file.write("3," + " ".join(["0"] * 2304) + ",PrivateTest\n")
    data = load_dataset(csv)
    assert {k: len(s) for k, s in data.splits.items()} == {"train": 7, "valid": 7}
    assert data.split("train").names[0] == "csv:0"
    csv.write_text("emotion,pixels,Usage\n3," + " ".join(["0"] * 2304) + ",PrivateTest\n")
    with pytest.raises(DataError, match="no Training or PublicTest rows"):
        load_dataset(csv)


def test_csv_emotion_codes_follow_fer2013_not_alphabetical_order(tmp_path):
    pixels = " ".join(["7"] * 2304)
    csv = tmp_path / "fer2013.csv"  # FER2013: 0 angry 1 disgust 2 fear 3 happy 4 sad 5 surprise 6 neutral
    csv.write_text("emotion,pixels,Usage\n" + "".join(f"{code},{pixels},Training\n" for code in range(7)))
    data = load_dataset(csv)
    named = [data.classes[i] for i in data.split("train").labels]
    assert named == ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]
    for bad in (f"7,{pixels}", f"-1,{pixels}", f"3,{pixels[:-1]}300"):
        csv.write_text(f"emotion,pixels\n{bad}\n")
        with pytest.raises(DataError, match="row 2: emotion must be 0-6"):
            load_dataset(csv)
    csv.write_bytes(b"PK\x03\x04\xff\xfe a zip renamed .csv")
    with pytest.raises(DataError, match="fer2013.csv is not a text CSV file"):
        load_dataset(csv)


def test_plain_class_folder_has_one_split(tmp_path):
    data = load_dataset(write_dataset(tmp_path / "faces", "<class>", train_per_class=2))
    assert data.layout == "<class>/" and list(data.splits) == ["all"] and len(data.split("all")) == 14
    with pytest.raises(DataError, match="no 'train' split.*Training needs train/ and validation/.*"
                                        "only `moodloop evaluate` scores"):
        data.split("train")


def test_other_class_sets_are_kept(tmp_path):
    data = load_dataset(write_dataset(tmp_path / "d", classes=("happy", "calm", "angry"), train_per_class=1))
    assert data.classes == ("angry", "happy", "calm")  # FER order first, then the rest sorted


def test_merge_folds_one_class_into_another(tmp_path):
    data = load_dataset(write_dataset(tmp_path / "d", train_per_class=2), parse_merge(["Disgust = angry"]))
    assert data.classes == tuple(c for c in FER_LABELS if c != "disgust")
    assert np.bincount(data.split("train").labels).tolist() == [4, 2, 2, 2, 2, 2]


@pytest.mark.parametrize("specs, match", [(["disgust"], "SOURCE=TARGET"), (["=angry"], "SOURCE=TARGET"),
                                          (["contempt=angry"], "not in the data.*contempt")])
def test_bad_merge(tmp_path, specs, match):
    with pytest.raises(DataError, match=match):
        load_dataset(write_dataset(tmp_path / "d", train_per_class=1), parse_merge(specs))


def test_layout_errors_say_what_was_found_and_expected(tmp_path):
    with pytest.raises(DataError, match="not found"):
        load_dataset(tmp_path / "missing")
    (tmp_path / "empty" / "notes").mkdir(parents=True)
    (tmp_path / "empty" / "notes" / "readme.txt").write_text("hi")
    with pytest.raises(DataError, match=r"No labelled images.*\['notes'\].*expected one of"):
        load_dataset(tmp_path / "empty")
    (tmp_path / "model.onnx").write_bytes(b"not data")
    with pytest.raises(DataError, match="neither a folder"):
        load_dataset(tmp_path / "model.onnx")
    (tmp_path / "bad.csv").write_text("label,image\n1,2\n")
    with pytest.raises(DataError, match="columns.*emotion, pixels"):
        load_dataset(tmp_path / "bad.csv")


def test_unreadable_files_are_flagged_and_can_be_excluded(tmp_path):
    root = write_dataset(tmp_path / "d", train_per_class=1)
    (root / "train" / "happy" / "broken.png").write_bytes(b"\x89PNG truncated")
    train = load_dataset(root).split("train")
    assert train.unreadable == ("train/happy/broken.png",)
    assert not train.images[train.names.index("train/happy/broken.png")].any()  # kept blank
    exclude = tmp_path / "exclude.txt"
    exclude.write_text("# unreadable (1)\ntrain/happy/broken.png\n\n  train/angry/0000.png  \n")
    assert read_exclusions(exclude) == {"train/happy/broken.png", "train/angry/0000.png"}
    kept = load_dataset(root).without(read_exclusions(exclude))
    assert len(kept.split("train")) == 6 and kept.split("train").unreadable == ()
    assert len(kept.split("valid")) == 28
    with pytest.raises(DataError, match="Exclusion list not found"):
        read_exclusions(tmp_path / "nope.txt")
    exclude.write_bytes(b"\x89PNG\r\n\x1a\n\xff")  # an image given by mistake
    with pytest.raises(DataError, match="not a text exclusion list"):
        read_exclusions(exclude)


def test_an_exclusion_list_for_another_copy_is_refused_and_strays_are_named(tmp_path, caplog):
    data = load_dataset(write_dataset(tmp_path / "d", train_per_class=1))
    with pytest.raises(DataError, match=r"None of the 1 images.*'faces/train/angry/0000.png'.*another copy"):
        data.without({"faces/train/angry/0000.png"})
    with caplog.at_level(logging.WARNING):
        assert len(data.without({"train/angry/0000.png", "train/gone.png"}).split("train")) == 6
    assert "1 images on the exclusion list are not in this dataset, e.g. train/gone.png" in caplog.text


def test_validation_is_preferred_to_test_and_split_folders_in_two_places_are_refused(tmp_path, caplog):
    root = write_dataset(tmp_path / "d", train_per_class=1, valid_per_class=1)
    shutil.copytree(root / "validation", root / "test")  # as in FER's own exports: PrivateTest
    with caplog.at_level(logging.WARNING):
        valid = load_dataset(root).split("valid")
    assert len(valid) == 7 and all(name.startswith("validation/") for name in valid.names)
    assert "Using validation/ as the valid split; left out: test/" in caplog.text
    shutil.copytree(root / "train", root / "copy" / "train")
    with pytest.raises(DataError, match=r"several places: \['.', 'copy'\]; point --data at one"):
        load_dataset(root)


def test_images_outside_the_layouts_class_folders_are_counted_and_named(tmp_path, caplog):
    root = write_dataset(tmp_path / "d", train_per_class=2)
    face = next((root / "train" / "happy").iterdir())
    (root / "train" / "happy" / "batch1").mkdir()
    shutil.copy(face, root / "train" / "happy" / "batch1" / "x.png")
    shutil.copy(face, root / "stray.png")
    with caplog.at_level(logging.WARNING):
        assert len(load_dataset(root).split("train")) == 14
    assert "2 images in" in caplog.text and "<split>/<class>/ layout" in caplog.text
    assert "stray.png" in caplog.text  # the first, sorted


def test_a_merge_into_a_class_the_data_lacks_warns_of_a_typo(tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        data = load_dataset(write_dataset(tmp_path / "d", train_per_class=1), parse_merge(["disgust=angy"]))
    assert "angy" in data.classes and "makes new classes ['angy']" in caplog.text
    caplog.clear()  # a FER class is no typo, even where this data has none of its faces
    with caplog.at_level(logging.WARNING):
        data = load_dataset(write_dataset(tmp_path / "e", classes=("disgust", "happy"), train_per_class=1),
                            parse_merge(["disgust=angry"]))
    assert data.classes == ("angry", "happy") and not caplog.text


def test_damaged_zips_and_csvs_say_so(tmp_path):
    archive = write_dataset(tmp_path / "d", train_per_class=1, zip_it=True)
    data = bytearray(archive.read_bytes())
    archive.with_name("cut.zip").write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match="cut.zip is not a readable zip"):
        load_dataset(archive.with_name("cut.zip"))
    at = data.index(b"\x89PNG") + 20  # inside the first image's stored bytes: its CRC no longer matches
    data[at] ^= 0xFF
    archive.write_bytes(data)
    with pytest.raises(DataError, match="is damaged.*download it again"):
        load_dataset(archive)
    csv = tmp_path / "fer2013.csv"
    pixels = " ".join(["7"] * 2304)
    csv.write_bytes(f"\ufeffemotion,pixels,Usage\n3,{pixels},Training\n3\n".encode())  # a spreadsheet's BOM
    with pytest.raises(DataError, match="row 3: emotion must be 0-6"):  # the row cut short, not a traceback
        load_dataset(csv)
    csv.write_bytes(f"\ufeffemotion,pixels,Usage\n3,{pixels},Training\n".encode())
    with pytest.raises(DataError, match="no 'valid' split.*PublicTest rows validate"):
        load_dataset(csv).split("valid")


@pytest.mark.skipif(not REAL_ZIP.is_file(), reason="needs ../shared/data/fer2013/fer2013-trainval.zip")
def test_real_fer2013_zip():
    data = load_dataset(REAL_ZIP)
    assert data.layout == "<split>/<class>/" and data.classes == FER_LABELS
    assert (len(data.split("train")), len(data.split("valid"))) == (28709, 3589)
    assert np.bincount(data.split("train").labels).tolist()[1] == 436  # disgust is rare
