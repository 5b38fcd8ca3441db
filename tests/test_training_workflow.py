"""The whole workflow on a tiny synthetic dataset: train (interrupted, resumed), lr_find,
export, parity between the exported model and the fastai learner, quantize, evaluate, clean
with a model.

Kept small for a busy 2-core CPU: ResNet18, 56 training images, two epochs.
"""

import itertools
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from moodloop.engine.cli import main
from moodloop.engine.errors import ConfigError, DataError, ModelError
from moodloop.sensor.classify import Classifier
from moodloop.training.data import Split, in_fold, load_dataset
from moodloop.training.distill import soft_targets, teacher_probs
from moodloop.training.evaluate import EvalConfig, run_evaluation, score
from moodloop.training.export import ExportConfig, export, parity
from moodloop.training.plots import _loss_ceiling, curve_png
from moodloop.training.predict import load_predictor, written_whole
from moodloop.training.quantize import QuantizeConfig, quantize
from moodloop.training.recipe import OPTIMIZERS, Normalization, Recipe, build_dataloaders, build_model
from moodloop.training.synthetic import write_dataset
from moodloop.training.train import _Checkpoint, read_history, train


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return write_dataset(tmp_path_factory.mktemp("faces"), train_per_class=8, valid_per_class=4)


@pytest.fixture(scope="module")
def run_dir(data_dir, tmp_path_factory):
    """A ResNet18 run, Ctrl-C'd after its first epoch and resumed to its second."""
    run = tmp_path_factory.mktemp("runs") / "r18"
    exclude = run.parent / "exclude.txt"
    exclude.write_text("# from moodloop clean\ntrain/angry/0000.png\n")
    argv = ["train", "--data", str(data_dir), "--out", str(run), "--arch", "resnet18", "--epochs", "2",
            "--batch-size", "8", "--lr", "3e-3", "--device", "cpu", "--exclude", str(exclude)]

    def after_epoch(self):
        original(self)
        raise KeyboardInterrupt

    original = _Checkpoint.after_epoch
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_Checkpoint, "after_epoch", after_epoch)
        assert main(argv) == 130
    assert json.loads((run / "run.json").read_text())["epochs_done"] == 1
    assert main([*argv, "--resume"]) == 0
    return run


@pytest.fixture(scope="module")
def onnx_fp16(run_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("export") / "model.onnx"
    assert main(["export", "--run", str(run_dir), "--out", str(out)]) == 0
    assert [p.name for p in out.parent.iterdir()] == ["model.onnx"]  # no partial file left behind
    return out


def test_resumed_run_record(run_dir):
    record = json.loads((run_dir / "run.json").read_text())
    assert record["epochs_done"] == 2 and record["recipe"]["arch"] == "resnet18"
    assert record["classes"] == ["angry", "disgust", "fear", "happy", "neutral", "sad", "surprise"]
    assert (record["train_images"], record["valid_images"]) == (55, 28)  # one excluded
    assert {"best.pth", "last.pth", "history.csv", "curve.png"} <= {p.name for p in run_dir.iterdir()}
    history = read_history(run_dir)  # the resumed run logged only its own epoch
    assert sorted(history) == [1, 2] and set(history[2]) == {"train_loss", "valid_loss", "accuracy"}


def test_ctrl_c_says_how_to_continue_and_resuming_a_finished_run_says_so(data_dir, tmp_path, capsys, monkeypatch):
    argv = ["train", "--data", str(data_dir), "--out", str(tmp_path / "r"), "--arch", "resnet18", "--epochs", "1",
            "--batch-size", "8", "--lr", "3e-3", "--device", "cpu"]
    original = _Checkpoint.after_epoch

    def after_epoch(self):
        original(self)
        raise KeyboardInterrupt

    monkeypatch.setattr(_Checkpoint, "after_epoch", after_epoch)
    assert main(argv) == 130
    assert "holds 1 finished epochs: the same command with --resume continues" in capsys.readouterr().err
    monkeypatch.undo()
    assert main([*argv, "--resume"]) == 0  # the interrupted epoch was the last: nothing left to train
    out = capsys.readouterr().out
    assert "1/1 epochs" in out and "(it had finished already: --resume --epochs N trains it longer)" in out


def test_sgd_keeps_momentum_in_the_checkpoint(run_dir):
    """The default optimizer is SGD with fastai's cycled momentum, and resume gets its state back."""
    opt = torch.load(run_dir / "last.pth", weights_only=False)["opt"]  # our own file, just written
    assert all(0.85 <= hyper["mom"] <= 0.95 for hyper in opt["hypers"])
    assert any("grad_avg" in state for state in opt["state"])  # momentum buffers, not plain SGD


def test_foreach_sgd_makes_the_update_of_fastais_sgd():
    """Same weights after steps with changing hyper-parameters, a frozen layer and a bias without decay."""
    from fastai.optimizer import SGD

    torch.manual_seed(0)
    models = [build_model(Recipe(arch="resnet18"), 7) for _ in range(2)]
    models[1].load_state_dict(models[0].state_dict())
    opts = [OPTIMIZERS["sgd"](list(models[0].parameters()), lr=0.1), SGD(list(models[1].parameters()), lr=0.1, mom=0.9)]
    for model, opt in zip(models, opts):
        model[0][0].weight.requires_grad_(False)  # no gradient: skipped
        opt.state[model[1][2].bias]["do_wd"] = False  # as fastai's Learner marks biases and BatchNorms
    for lr, mom in ((0.1, 0.95), (0.05, 0.85), (0.01, 0.9)):
        x = torch.randn(4, 1, 48, 48)
        for model, opt in zip(models, opts):
            opt.set_hypers(lr=lr, mom=mom, wd=1e-2)
            model(x).logsumexp(1).mean().backward()
            opt.step()
            opt.zero_grad()
    for ours, theirs in zip(models[0].parameters(), models[1].parameters()):
        torch.testing.assert_close(ours, theirs)
        assert ours.grad is None or not ours.grad.any()
    states = [opt.state_dict()["state"] for opt in opts]  # the same checkpoint layout
    assert [sorted(s) for s in states[0]] == [sorted(s) for s in states[1]]


def test_batches_hold_each_training_image_once_an_epoch_in_a_new_order():
    images = np.arange(10, dtype=np.uint8).repeat(4).reshape(10, 2, 2)  # image i is all i
    split = Split(images, np.arange(10), tuple("abcdefghij"))
    dls = build_dataloaders(split, split, Recipe(batch_size=4, seed=1), Normalization(0.0, 1 / 255))
    epochs = [[y.tolist() for _, y in dls.train] for _ in range(2)]
    assert len(dls.train) == 2 and [len(batch) for epoch in epochs for batch in epoch] == [4] * 4
    seen = [sum(epoch, []) for epoch in epochs]
    assert [len(set(labels)) for labels in seen] == [8, 8] and seen[0] != seen[1]  # the last partial batch dropped
    x, y = next(iter(dls.train))
    assert x.shape == (4, 1, 2, 2)
    torch.testing.assert_close(x[:, 0, 1, 1], y.float())  # (pixel/255 - 0) / (1/255): the pixel again
    assert [y.tolist() for _, y in dls.valid] == [list(range(10))]  # in order, all of it


def test_unknown_optimizer_is_a_config_error():
    with pytest.raises(ConfigError, match="--optimizer 'rmsprop'"):
        Recipe(optimizer="rmsprop")


def test_stored_recipe_round_trip_and_unknown_settings():
    recipe = Recipe(arch="resnet18", lr=0.01)
    assert Recipe.from_dict(recipe.to_dict()) == recipe
    with pytest.raises(ConfigError, match="does not know: \\['cutmix'\\]"):
        Recipe.from_dict({**recipe.to_dict(), "cutmix": 0.2})


def test_a_run_is_never_overwritten_nor_resumed_on_other_data(run_dir, data_dir, tmp_path, capsys):
    before = {p.name: p.stat().st_mtime_ns for p in run_dir.iterdir()}
    argv = ["train", "--data", str(data_dir), "--out", str(run_dir)]
    assert main([*argv, "--arch", "resnet18", "--epochs", "1"]) == 2  # forgot --resume
    assert main([*argv, "--resume"]) == 2  # forgot --exclude
    unfinished = tmp_path / "unfinished"
    unfinished.mkdir()
    record = json.loads((run_dir / "run.json").read_text())
    (unfinished / "run.json").write_text(json.dumps({**record, "epochs_done": 0}))
    assert main(["train", "--data", str(data_dir), "--out", str(unfinished), "--resume"]) == 2
    errors = capsys.readouterr().err.splitlines()
    assert "already holds a run (2 epochs done): add --resume" in errors[0]
    assert "trained on 55 training and 28 validation images, this data has 56 and 28" in errors[1]
    assert "no epoch has finished yet" in errors[2]
    assert {p.name: p.stat().st_mtime_ns for p in run_dir.iterdir()} == before  # and nothing .partial


TRAIN_UNTIL_FULL = """
import resource, signal, sys
from moodloop.engine.cli import main

# Writes past 1 MB fail with EFBIG, as on a full disk (rather than kill the process).
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (1_000_000, 1_000_000))
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.slow
def test_a_full_disk_stops_training_with_a_message_and_a_resume_point(data_dir, tmp_path):
    run = tmp_path / "run"
    argv = [sys.executable, "-c", TRAIN_UNTIL_FULL, "train", "--data", str(data_dir), "--out", str(run),
            "--arch", "resnet18", "--epochs", "2", "--batch-size", "8", "--lr", "1e-3", "--device", "cpu"]
    child = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    assert child.returncode == 2, child.stderr
    error = child.stderr.splitlines()[-1]
    assert error.startswith(f"moodloop: error: Training stopped. Could not write {run / 'last.pth'} (")
    assert error.endswith("Free some space or write elsewhere. Then run the same command again (no epoch was saved).")
    # No checkpoint and no partial file; the log and its curve show the epoch that was trained.
    assert sorted(p.name for p in run.rglob("*") if p.is_file()) == ["curve.png", "history.csv", "run.json"]


def test_an_unexpected_error_while_writing_a_checkpoint_is_raised_not_lost(data_dir, tmp_path, monkeypatch):
    def broken_save(*args, **kwargs):
        raise ValueError("a bug in the writer")

    monkeypatch.setattr(torch, "save", broken_save)  # the checkpoint thread's first call
    recipe = Recipe(arch="resnet18", epochs=1, batch_size=8, lr=1e-3)
    with pytest.raises(ValueError, match="a bug in the writer"):
        train(load_dataset(data_dir), tmp_path / "run", recipe, device="cpu")


def test_resume_with_a_new_length_replans_the_schedule(run_dir, data_dir, tmp_path, capsys):
    run = shutil.copytree(run_dir, tmp_path / "longer")
    argv = ["train", "--data", str(data_dir), "--out", str(run), "--exclude", str(run_dir.parent / "exclude.txt"),
            "--resume", "--device", "cpu", "--epochs"]
    assert main([*argv, "1"]) == 2
    assert "--epochs 1: the run in" in capsys.readouterr().err
    assert main([*argv, "3"]) == 0
    record = json.loads((run / "run.json").read_text())
    assert (record["epochs_done"], record["recipe"]["epochs"]) == (3, 3)
    assert record["replanned"] == [{"at_epoch": 2, "from": 2, "to": 3}]
    assert sorted(read_history(run)) == [1, 2, 3]


@pytest.mark.parametrize("budget, epochs", [(45, 4), (15, 2)])  # 15 s: spent before the pace is known
def test_minutes_shorten_the_schedule_so_the_run_ends_annealed(data_dir, tmp_path, budget, epochs):
    ticks = itertools.count(0, 10)  # each reading of the clock is 10 s on: an epoch every 10 s
    run = train(load_dataset(data_dir), tmp_path / "run", Recipe(arch="resnet18", epochs=10, batch_size=8, lr=1e-3),
                device="cpu", budget=budget, clock=lambda: next(ticks))
    # After epoch 2 (20 s) the pace is known: (budget - 20) / 10 more epochs fit, and at least the two done.
    assert (run["epochs_done"], run["recipe"]["epochs"]) == (epochs, epochs)
    assert run["replanned"] == [{"at_epoch": 2, "from": 10, "to": epochs, "by": "--minutes"}]
    assert json.loads((tmp_path / "run" / "run.json").read_text())["recipe"]["epochs"] == epochs  # --resume keeps it
    # The optimizer's settings are fastcore and numpy objects: unpickled from the file this test wrote.
    hypers = torch.load(tmp_path / "run" / "last.pth", weights_only=False)["opt"]["hypers"]
    peak = max(h["lr"] for h in hypers) / 1e-3
    assert peak < 0.05 if epochs > 2 else peak > 0.5  # annealed at the one-cycle's end, not cut near its peak


def test_train_command_errors(data_dir, tmp_path, capsys):
    a_file = tmp_path / "notes.txt"
    a_file.write_text("")
    assert main(["train", "--data", str(tmp_path / "nope.zip"), "--out", str(tmp_path / "r")]) == 2
    assert main(["train", "--data", str(data_dir), "--out", str(tmp_path / "r"), "--resume"]) == 2
    assert main(["train", "--data", str(data_dir), "--out", str(tmp_path / "r"), "--arch", "resnet18",
                 "--epochs", "0"]) == 2
    assert main(["train", "--data", str(data_dir), "--out", str(tmp_path / "r"), "--arch", "resnet18",
                 "--batch-size", "64"]) == 2
    assert main(["train", "--data", str(tmp_path / "nope.zip"), "--out", str(a_file)]) == 2  # before the data
    for minutes in ("0", "inf"):
        assert main(["train", "--data", str(data_dir), "--out", str(tmp_path / "r"), "--minutes", minutes]) == 2
    errors = capsys.readouterr().err.splitlines()
    assert errors[0].startswith("moodloop: error: Dataset not found")
    assert "Nothing to resume" in errors[1] and "--epochs must be at least 1, not 0" in errors[2]
    assert "--batch-size 64 is more than the 56 training images" in errors[3]
    assert f"--out {a_file} is a file" in errors[4]
    assert errors[5:7] == [f"moodloop: error: --minutes must be a finite number above 0, not {m}."
                           for m in ("0.0", "inf")]
    assert not (tmp_path / "r").exists()  # a run that failed its checks leaves no empty folder
    with pytest.raises(ConfigError, match="--batch-size must be at least 1, not 0"):
        Recipe(batch_size=0)


@pytest.mark.parametrize(("field", "value", "message"), [
    ("lr", float("nan"), "--lr must be above 0"), ("lr", 0.0, "--lr must be above 0"),
    ("weight_decay", -1.0, "--wd must be 0 or more, not -1.0"), ("erase", 5.0, "--erase must be a number from 0 to 1"),
    ("mixup", float("nan"), "--mixup must be 0 \\(off\\)"), ("distill", float("nan"), "--distill is the teachers'"),
])
def test_numbers_a_run_cannot_use_are_refused(field, value, message):
    with pytest.raises(ConfigError, match=message):
        Recipe(**{field: value})


def test_a_class_without_training_images_or_an_empty_validation_is_refused(data_dir, tmp_path, caplog):
    data = load_dataset(data_dir)
    recipe = Recipe(arch="resnet18", epochs=1, batch_size=4, lr=1e-3)
    no_fear = data.without(n for n in data.split("train").names if "/fear/" in n)
    with pytest.raises(DataError, match=r"No training images for \['fear'\].*--merge fear=X"):
        train(no_fear, tmp_path / "run", recipe, device="cpu")
    with pytest.raises(DataError, match="validation split is empty"):
        train(data.without(data.split("valid").names), tmp_path / "run", recipe, device="cpu")
    assert not (tmp_path / "run").exists()


def test_a_diverged_epoch_stops_the_run_and_is_not_saved(data_dir, tmp_path):
    data = load_dataset(data_dir)
    with pytest.raises(ConfigError, match=r"Epoch 1 diverged \(training loss nan.*another --out\) with a lower --lr than 1e\+30: --resume would"):
        train(data, tmp_path / "run", Recipe(arch="resnet18", epochs=2, batch_size=8, lr=1e30), device="cpu")
    assert not (tmp_path / "run" / "last.pth").exists() and not (tmp_path / "run" / "best.pth").exists()


def test_one_class_is_refused(tmp_path):
    data = load_dataset(write_dataset(tmp_path / "one", classes=("happy",), train_per_class=4, valid_per_class=2))
    with pytest.raises(DataError, match=r"at least two classes.*only \['happy'\]"):
        train(data, tmp_path / "run", Recipe(arch="resnet18", epochs=1, batch_size=2, lr=1e-3), device="cpu")
    assert not (tmp_path / "run").exists()


def test_damaged_misplaced_or_wrong_kind_of_model_files_say_so(run_dir, data_dir, tmp_path, capsys):
    def error(*argv: str) -> str:
        assert main(list(argv)) == 2
        return capsys.readouterr().err

    garbage, not_onnx, foreign = tmp_path / "n.pth", tmp_path / "n.onnx", tmp_path / "foreign.onnx"
    garbage.write_text("x\n")
    not_onnx.write_text("not a model\n")
    tensor = onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1])
    graph = onnx.helper.make_graph([onnx.helper.make_node("Identity", ["x"], ["y"])], "g", [tensor],
                                   [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1])])
    onnx.save(onnx.helper.make_model(graph), str(foreign))  # valid ONNX, but not moodloop's
    damaged = tmp_path / "damaged"  # a run folder whose best.pth was copied only in part
    damaged.mkdir()
    shutil.copy(run_dir / "run.json", damaged)
    (damaged / "best.pth").write_bytes((run_dir / "best.pth").read_bytes()[:1000])
    train_argv = ("train", "--data", str(data_dir), "--out", str(tmp_path / "r"), "--arch", "resnet18",
                  "--batch-size", "8", "--lr", "1e-3", "--device", "cpu", "--init")
    assert f"{garbage} is not a moodloop checkpoint (" in error(*train_argv, str(garbage))
    assert f"{not_onnx} is not an ONNX model (DecodeError" in error(*train_argv, str(not_onnx))
    assert f"{foreign} holds no weights named as `moodloop export`" in error(*train_argv, str(foreign))
    assert not (tmp_path / "r").exists()  # refused before the run folder was made
    cut_short = f"{damaged / 'best.pth'} is not a moodloop checkpoint"
    assert cut_short in error("evaluate", "--model", str(damaged), "--data", str(data_dir), "--device", "cpu")
    assert cut_short in error("export", "--run", str(damaged), "--out", str(tmp_path / "x.onnx"))
    assert f"Model {not_onnx} is not a loadable ONNX file" in error("evaluate", "--model", str(not_onnx), "--data", str(data_dir))
    assert f"{garbage}: a .pth checkpoint must sit in its training run folder" in error(
        "evaluate", "--model", str(garbage), "--data", str(data_dir))
    edited = tmp_path / "edited"
    shutil.copytree(run_dir, edited)
    (edited / "run.json").write_text('{"classes": ["angry",')  # an editor's save cut short
    assert f"{edited / 'run.json'} is damaged" in error("export", "--run", str(edited), "--out", str(tmp_path / "e.onnx"))
    missing = str(tmp_path / "no_such_data")  # a dataset error would mean the data was loaded first
    assert f"run `moodloop export --run {run_dir}` first" in error(
        "quantize", "--model", str(run_dir), "--data", missing, "--out", str(tmp_path / "q.onnx"))


def test_init_starts_from_local_weights(run_dir, data_dir, tmp_path, capsys):
    argv = ["train", "--data", str(data_dir), "--epochs", "1", "--batch-size", "8", "--lr", "1e-3",
            "--device", "cpu", "--init", str(run_dir)]
    assert main([*argv, "--out", str(tmp_path / "wrong"), "--arch", "resnet34"]) == 2
    assert "does not fit this model" in capsys.readouterr().err
    start = load_predictor(run_dir).learn.model.state_dict()
    data = load_dataset(data_dir)
    run = train(data, tmp_path / "warm", Recipe(arch="resnet18", epochs=1, batch_size=8, lr=1e-9),
                device="cpu", init=run_dir)
    assert run["init"] == str(run_dir)
    warm = load_predictor(tmp_path / "warm").learn.model.state_dict()
    weights = [k for k in start if k.endswith("conv1.weight")]
    # With a vanishing learning rate the weights are still those it started from, not random ones.
    assert all(np.allclose(start[k].numpy(), warm[k].numpy(), atol=1e-5) for k in weights)
    # last.pth too: beside the weights it holds the optimizer's state, fastcore and numpy types included.
    train(data, tmp_path / "from_last", Recipe(arch="resnet18", epochs=1, batch_size=8, lr=1e-9), device="cpu",
          init=run_dir / "last.pth")


def test_init_from_weights_of_other_classes_is_refused_even_when_the_shapes_fit(run_dir, onnx_fp16, tmp_path):
    other = load_dataset(write_dataset(tmp_path / "d", classes=tuple("abcdefg"), train_per_class=2, valid_per_class=1))
    for init in (run_dir, onnx_fp16):
        with pytest.raises(ConfigError, match=r"was trained on classes \['angry', .*this data has \['a', 'b'"):
            train(other, tmp_path / "r", Recipe(arch="resnet18", epochs=1, batch_size=4, lr=1e-3), device="cpu",
                  init=init)
    assert not (tmp_path / "r").exists()


def test_init_from_an_exported_model(run_dir, onnx_fp16, data_dir, tmp_path):
    start = load_predictor(run_dir).learn.model.state_dict()
    run = train(load_dataset(data_dir), tmp_path / "again", Recipe(arch="resnet18", epochs=1, batch_size=8,
                                                                   lr=1e-9), device="cpu", init=onnx_fp16)
    again = load_predictor(tmp_path / "again").learn.model.state_dict()
    assert run["init"] == str(onnx_fp16)
    weights = [k for k in start if k.endswith(("conv1.weight", "bn1.weight"))]
    assert len(weights) > 10  # float16 storage: equal to about 3 significant digits
    assert all(np.allclose(start[k].numpy(), again[k].numpy(), rtol=2e-3, atol=1e-4) for k in weights)


def test_quantize_writes_an_int8_model_that_follows_its_source(onnx_fp16, data_dir, tmp_path, capsys):
    out, flipped = tmp_path / "int8.onnx", tmp_path / "int8_flip.onnx"
    argv = ["quantize", "--model", str(onnx_fp16), "--data", str(data_dir), "--images", "40"]
    assert main([*argv, "--out", str(out)]) == 0
    assert "calibrated on 40 faces; on valid (28 images)" in capsys.readouterr().out
    assert main([*argv, "--out", str(flipped), "--flip"]) == 0
    graph = onnx.load(str(out)).graph
    int8 = {t.name for t in graph.initializer if t.data_type == onnx.TensorProto.INT8}
    made_by = {output: node for node in graph.node for output in node.output}
    convs = [node for node in graph.node if node.op_type == "Conv"]
    assert len(convs) == 20 and all(made_by[c.input[1]].op_type == "DequantizeLinear"
                                    and made_by[c.input[1]].input[0] in int8 for c in convs)
    assert out.stat().st_size < 0.6 * onnx_fp16.stat().st_size
    valid = load_dataset(data_dir).split("valid")
    source, plain, both = (load_predictor(p).predict(valid.images) for p in (onnx_fp16, out, flipped))
    assert (source.argmax(1) == plain.argmax(1)).mean() >= 0.9 and np.abs(source - plain).max() < 0.1
    mirrored = load_predictor(out).predict(np.ascontiguousarray(valid.images[:, :, ::-1]))
    np.testing.assert_allclose(both, (plain + mirrored) / 2, atol=1e-4)  # the face and its mirror, averaged
    made = Classifier(flipped).info.provenance
    assert made["int8"]["flip"] and made["int8"]["source"] == onnx_fp16.name and "recipe" in made


def test_quantize_skips_blank_faces_and_refuses_what_it_cannot_use(onnx_fp16, data_dir, tmp_path, capsys):
    faces = load_dataset(data_dir).split("train").images[:9].copy()
    faces[0] = 128  # a blank face would stretch every activation range (training/quantize.py)
    out = quantize(QuantizeConfig(onnx_fp16, tmp_path / "q.onnx"), faces)
    assert Classifier(out).info.provenance["int8"]["calibration_images"] == 8
    with pytest.raises(DataError, match="not blank"):
        quantize(QuantizeConfig(onnx_fp16, tmp_path / "none.onnx"), faces[:1])
    with pytest.raises(ModelError, match="already quantized"):
        quantize(QuantizeConfig(out, tmp_path / "twice.onnx"), faces)
    assert main(["train", "--data", str(data_dir), "--out", str(tmp_path / "r"), "--arch", "resnet18",
                 "--epochs", "1", "--batch-size", "8", "--device", "cpu", "--init", str(out)]) == 2
    assert "holds int8 weights" in capsys.readouterr().err
    assert main(["quantize", "--model", str(onnx_fp16), "--data", str(data_dir), "--out", str(tmp_path / "x.onnx"),
                 "--images", "0"]) == 2
    assert "--images 0" in capsys.readouterr().err
    float_model = shutil.copy(onnx_fp16, tmp_path / "float.onnx")
    assert main(["quantize", "--model", str(float_model), "--data", str(data_dir), "--out", str(float_model)]) == 2
    assert "is the --model itself" in capsys.readouterr().err
    assert float_model.read_bytes() == onnx_fp16.read_bytes()  # the float model is still there


def test_quantize_on_one_split_scores_only_faces_it_did_not_calibrate_on(onnx_fp16, data_dir, tmp_path, capsys):
    faces = data_dir / "validation"  # a plain folder of class subfolders: one split, 28 faces
    argv = ["quantize", "--model", str(onnx_fp16), "--data", str(faces)]
    assert main([*argv, "--out", str(tmp_path / "q.onnx"), "--images", "20"]) == 0
    assert "calibrated on 20 faces; on all (8 images not used for calibration)" in capsys.readouterr().out
    assert main([*argv, "--out", str(tmp_path / "none.onnx"), "--images", "28"]) == 2
    assert "leaving none to check the int8 model on" in capsys.readouterr().err
    assert not (tmp_path / "none.onnx").exists()


def test_export_and_quantize_check_the_data_classes_before_writing(run_dir, onnx_fp16, tmp_path, capsys):
    other = write_dataset(tmp_path / "other", classes=("cat", "dog"), train_per_class=2, valid_per_class=1)
    assert main(["export", "--run", str(run_dir), "--out", str(tmp_path / "e.onnx"), "--verify", str(other)]) == 2
    assert main(["quantize", "--model", str(onnx_fp16), "--data", str(other), "--out", str(tmp_path / "q.onnx")]) == 2
    assert capsys.readouterr().err.count("does not predict") == 2
    assert not list(tmp_path.glob("*.onnx"))


def test_lr_find_picks_the_rate_and_saves_its_plot(tmp_path):
    data = load_dataset(write_dataset(tmp_path / "faces", train_per_class=2, valid_per_class=1))
    run = train(data, tmp_path / "run", Recipe(arch="resnet18", epochs=1, batch_size=8), device="cpu",
                lr_find_iters=8)
    assert 1e-7 < run["recipe"]["lr"] < 10
    assert (tmp_path / "run" / "lr_find.png").stat().st_size > 0


def test_a_diverged_epoch_does_not_flatten_the_training_curve(tmp_path):
    losses = np.array([1.9, 1.5, 1.3, 1440.9, 1.2, 1.1])  # one epoch's validation blew up (a real GPU run)
    assert _loss_ceiling(losses) == pytest.approx(5 * np.median(losses))
    assert _loss_ceiling(np.array([2.1, 1.4, 1.2, np.nan])) is None  # nothing to leave out
    history = {e + 1: {"train_loss": 1.0, "valid_loss": v, "accuracy": 0.5} for e, v in enumerate(losses)}
    assert curve_png(history, tmp_path / "curve.png").stat().st_size > 0


def test_a_failed_write_leaves_the_old_file_whole(tmp_path):
    target = tmp_path / "model.onnx"
    target.write_text("old")
    with pytest.raises(ModelError), written_whole(target) as partial:
        partial.write_text("half")
        raise ModelError("the new model does not load")
    assert [p.name for p in tmp_path.iterdir()] == ["model.onnx"] and target.read_text() == "old"
    with written_whole(target) as partial:
        partial.write_text("new")
    assert [p.name for p in tmp_path.iterdir()] == ["model.onnx"] and target.read_text() == "new"


def test_export_metadata_loads_in_the_sensor(run_dir, onnx_fp16):
    classifier = Classifier(onnx_fp16)
    assert classifier.labels[0] == "angry" and classifier.info.channels == 1
    provenance = classifier.info.provenance
    assert provenance["recipe"]["arch"] == "resnet18" and provenance["data"]["train_images"] == 55
    assert provenance["metrics"]["epoch"] == json.loads((run_dir / "run.json").read_text())["best_epoch"]
    assert {"valid_loss", "accuracy"} <= set(provenance["metrics"])
    graph = onnx.load(str(onnx_fp16)).graph
    assert [i.name for i in graph.input] == ["input"] and [o.name for o in graph.output] == ["probs"]
    assert graph.input[0].type.tensor_type.shape.dim[0].dim_param  # dynamic batch


def test_onnxruntime_fuses_batchnorm_into_the_exported_convolutions(onnx_fp16, tmp_path):
    # Unfused, every BatchNorm, ReLU and Add runs as its own pass: 11.8 against 8.5 ms a face (docs/sensor.md).
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.optimized_model_filepath = str(tmp_path / "as_run.onnx")
    ort.InferenceSession(str(onnx_fp16), options, providers=["CPUExecutionProvider"])
    ops = {node.op_type for node in onnx.load(options.optimized_model_filepath).graph.node}
    assert "Conv" in ops and not ops & {"BatchNormalization", "Expand", "Cast"}


def test_fp16_storage_halves_the_file_and_keeps_predictions(run_dir, data_dir, onnx_fp16, tmp_path):
    fp32 = export(ExportConfig(run_dir, tmp_path / "fp32.onnx", fp16=False))
    assert onnx_fp16.stat().st_size < 0.55 * fp32.stat().st_size
    valid = load_dataset(data_dir).split("valid")
    a, b = (load_predictor(p).predict(valid.images) for p in (fp32, onnx_fp16))
    assert np.abs(a - b).max() < 5e-3 and (a.argmax(1) == b.argmax(1)).all()


def test_parity_between_learner_and_exported_model(run_dir, data_dir, onnx_fp16):
    data = load_dataset(data_dir)
    images = np.concatenate([s.images for s in data.splits.values()])
    labels = np.concatenate([s.labels for s in data.splits.values()])
    split = Split(images, labels, ("",) * len(labels))
    check = parity(run_dir, onnx_fp16, split, data.classes, device="cpu")
    assert check.images == 84 and check.agreement >= 0.999
    assert abs(check.reference_accuracy - check.model_accuracy) <= 0.003


def test_evaluate_run_and_onnx_side_by_side(run_dir, data_dir, onnx_fp16, tmp_path, capsys):
    report, plots = tmp_path / "eval.json", tmp_path / "plots"
    namesake = tmp_path / "other" / onnx_fp16.name  # same file name: its plots must not overwrite
    namesake.parent.mkdir()
    namesake.write_bytes(onnx_fp16.read_bytes())
    argv = ["evaluate", "--model", str(run_dir), "--model", str(onnx_fp16), "--model", str(namesake),
            "--data", str(data_dir),
            "--json", str(report), "--plots", str(plots), "--device", "cpu"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "macroF1" in out and "precision" in out
    result = json.loads(report.read_text())
    assert 0 <= result["accuracy"] <= 1 and result["images"] == 28 and result["split"] == "valid"
    assert result["comparison"][0]["accuracy"] == result["accuracy"]
    assert set(result["per_class"]["happy"]) == {"precision", "recall", "f1", "support"}
    table = out.split("macroF1")[1].splitlines()[1:4]  # namesakes go by the paths they were given
    assert [row.split()[0] for row in table] == ["r18", str(onnx_fp16), str(namesake)]
    assert result["model"] == "r18" and result["comparison"][1]["model"] == str(namesake)
    stem = re.sub(r"[^\w.-]+", "_", str(namesake))
    assert sorted(p.name for p in plots.iterdir())[:2] == ["1-r18-confusion.png", "1-r18-top_losses.png"]
    assert len(list(plots.iterdir())) == 6 and (plots / f"3-{stem}-confusion.png").exists()


def test_evaluate_whole_class_folder_with_flip_tta(onnx_fp16, tmp_path):
    folder = write_dataset(tmp_path / "mine", "<class>", train_per_class=2, seed=5)
    (plain,) = run_evaluation(EvalConfig(models=(str(onnx_fp16),), data=folder))
    (tta,) = run_evaluation(EvalConfig(models=(str(onnx_fp16),), data=folder, tta="flip"))
    assert (plain.split, plain.images, tta.tta) == ("all", 14, "flip")


def test_evaluate_errors(onnx_fp16, tmp_path, monkeypatch):
    other = write_dataset(tmp_path / "other", "<class>", classes=("happy", "calm"), train_per_class=1)
    with pytest.raises(DataError, match=r"classes \['calm'\] that the model does not predict.*--merge calm=CLASS"):
        run_evaluation(EvalConfig(models=(str(onnx_fp16),), data=other))
    monkeypatch.setattr("moodloop.sensor.classify.DEFAULT_MODEL", tmp_path / "absent.onnx")
    with pytest.raises(ModelError, match="shipped model.*missing"):
        run_evaluation(EvalConfig(data=other))
    with pytest.raises(ModelError, match="run.json is missing"):
        load_predictor(tmp_path)


def test_outputs_are_checked_before_the_work(onnx_fp16, tmp_path, capsys):
    a_file, missing = tmp_path / "notes.txt", tmp_path / "no_such_data"  # a data error: the data came first
    a_file.write_text("")
    with pytest.raises(ConfigError, match="--json .*notes.txt is not a folder you can write in"):
        run_evaluation(EvalConfig(data=missing, json=a_file / "report.json"))
    with pytest.raises(ConfigError, match="--plots .*notes.txt is a file; give a folder"):
        run_evaluation(EvalConfig(data=missing, plots=a_file))
    with pytest.raises(ConfigError, match=f"--out {tmp_path} is a folder; give a file name"):
        export(ExportConfig(run=tmp_path / "no_run", out=tmp_path))
    assert main(["quantize", "--model", str(onnx_fp16), "--data", str(missing), "--out", str(a_file / "q.onnx")]) == 2
    assert "--out" in capsys.readouterr().err


def test_clean_with_a_run_as_model(run_dir, data_dir, tmp_path):
    assert main(["clean", "--data", str(data_dir), "--out", str(tmp_path), "--model", str(run_dir)]) == 0
    assert json.loads((tmp_path / "clean.json").read_text())["model"] == str(run_dir)


def test_stem_stride_one_keeps_twice_the_resolution_and_mixup_trains(tmp_path):
    fine, coarse = (build_model(Recipe(arch="resnet18", stem_stride=s), 7)[0] for s in (1, 2))
    x = torch.zeros(1, 1, 48, 48)
    assert fine(x).shape[-1] == 2 * coarse(x).shape[-1] == 6
    data = load_dataset(write_dataset(tmp_path / "faces", train_per_class=2, valid_per_class=1))
    run = train(data, tmp_path / "run", Recipe(arch="resnet18", epochs=1, batch_size=4, lr=1e-3, mixup=0.4,
                                               stem_stride=1), device="cpu")
    assert run["recipe"]["mixup"] == 0.4 and np.isfinite(read_history(tmp_path / "run")[1]["train_loss"])
    with pytest.raises(ConfigError, match="stem-stride"):
        Recipe(stem_stride=3)


def test_soft_targets_blend_smoothed_labels_with_teacher_answers():
    labels = np.array([0, 2])
    probs = np.array([[0.2, 0.8, 0.0], [0.5, 0.25, 0.25]], np.float32)
    np.testing.assert_allclose(soft_targets(labels, probs, 0.0, 0.3), [[0.8, 0.1, 0.1], [0.1, 0.1, 0.8]])
    np.testing.assert_allclose(soft_targets(labels, probs, 1.0, 0.3), probs)
    np.testing.assert_allclose(soft_targets(labels, probs, 0.5, 0.0), [[0.6, 0.4, 0.0], [0.25, 0.125, 0.625]])
    # The targets replace the training labels only; validation keeps the class indices.
    split = Split(np.zeros((2, 48, 48), np.uint8), labels, ("a", "b"))
    dls = build_dataloaders(split, split, Recipe(batch_size=2), Normalization(0.5, 0.25), targets=probs)
    assert torch.equal(next(iter(dls.train))[1].sort(0).values, torch.from_numpy(probs).sort(0).values)
    assert next(iter(dls.valid))[1].tolist() == [0, 2]


def test_soft_target_loss_equals_label_smoothing_on_smoothed_one_hot(run_dir):
    loss = load_predictor(run_dir).learn.loss_func
    pred, labels = torch.randn(5, 7), torch.tensor([0, 3, 6, 2, 2])
    soft = torch.from_numpy(soft_targets(labels.numpy(), np.zeros((5, 7), np.float32), 0.0, 0.1))
    assert torch.allclose(loss(pred, soft), loss(pred, labels), atol=1e-6)


def test_distillation_from_an_exported_model_and_a_run(run_dir, onnx_fp16, data_dir, tmp_path, capsys):
    out = tmp_path / "kd"
    argv = ["train", "--data", str(data_dir), "--out", str(out), "--arch", "resnet18", "--epochs", "1",
            "--batch-size", "8", "--lr", "1e-3", "--device", "cpu", "--mixup", "0.4"]
    assert main([*argv, "--teacher", str(onnx_fp16), "--teacher", str(run_dir)]) == 0
    record = json.loads((out / "run.json").read_text())
    assert record["teachers"] == [str(onnx_fp16), str(run_dir)] and record["recipe"]["distill"] == 0.5
    exported = tmp_path / "kd.onnx"
    assert main(["export", "--run", str(out), "--out", str(exported)]) == 0
    assert Classifier(exported).info.provenance["teachers"] == record["teachers"]
    assert np.isfinite(read_history(out)[1]["train_loss"])

    data = load_dataset(data_dir)
    train_split = data.split("train")
    expected = sum(score(load_predictor(m), train_split.images, "flip") for m in (onnx_fp16, run_dir)) / 2
    cache = out / "teacher.npz"
    stamp = cache.stat().st_mtime_ns
    probs = teacher_probs([onnx_fp16, run_dir], train_split, data.classes, cache)
    np.testing.assert_allclose(probs, expected / expected.sum(1, keepdims=True), atol=1e-4)
    assert cache.stat().st_mtime_ns == stamp  # the same teachers and images: answered from the cache
    teacher_probs([onnx_fp16], train_split, data.classes, cache)
    assert cache.stat().st_mtime_ns != stamp  # other teachers: scored again
    teacher = Path(shutil.copy(onnx_fp16, tmp_path / "teacher.onnx"))
    teacher_probs([teacher], train_split, data.classes, cache)
    stamp = cache.stat().st_mtime_ns
    teacher_probs([teacher], train_split, data.classes, cache)
    assert cache.stat().st_mtime_ns == stamp
    before = teacher.stat()
    os.utime(teacher, ns=(before.st_atime_ns, before.st_mtime_ns + 10**9))  # as if retrained in place
    teacher_probs([teacher], train_split, data.classes, cache)
    assert cache.stat().st_mtime_ns != stamp  # a changed teacher file: scored again

    assert main([*argv, "--out", str(tmp_path / "no_teacher"), "--distill", "0.5"]) == 2
    assert main([*argv, "--teacher", str(onnx_fp16), "--distill", "1.5"]) == 2
    assert main([*argv, "--out", str(tmp_path / "bad_teacher"), "--teacher", str(tmp_path / "gone.onnx")]) == 2
    errors = capsys.readouterr().err.splitlines()
    assert "needs both --teacher MODEL" in errors[0] and "0 to 1, not 1.5" in errors[1]
    assert "gone.onnx" in errors[2] and not (tmp_path / "bad_teacher").exists()  # no empty run folder left


def test_out_of_fold_teachers_answer_only_for_the_images_they_never_saw(run_dir, tmp_path, capsys):
    data_dir = write_dataset(tmp_path / "faces", train_per_class=10, valid_per_class=4)  # each half has every class
    data = load_dataset(data_dir)
    train_split = data.split("train")
    folds = [in_fold(train_split.names, k, 2) for k in (0, 1)]
    assert (folds[0] ^ folds[1]).all() and 0 < folds[0].sum() < len(train_split)
    argv = ["train", "--data", str(data_dir), "--arch", "resnet18", "--epochs", "1", "--batch-size", "4",
            "--lr", "1e-3", "--device", "cpu"]
    runs = [tmp_path / f"f{k}" for k in (0, 1)]
    for k, run in enumerate(runs):
        assert main([*argv, "--out", str(run), "--holdout", f"{k}/2"]) == 0
        record = json.loads((run / "run.json").read_text())
        assert record["train_images"] == (~folds[k]).sum() and record["recipe"]["fold"] == k
    assert main([*argv, "--out", str(runs[0]), "--resume", "--epochs", "2"]) == 0  # the stored fold again
    exported = tmp_path / "f1.onnx"
    assert main(["export", "--run", str(runs[1]), "--out", str(exported)]) == 0

    # The exported file answers for fold 1 (float16 weights: compare it with itself, not the learner).
    answers = [score(load_predictor(model), train_split.images, "flip") for model in (runs[0], exported)]
    expected = np.where(folds[0][:, None], answers[0], answers[1])
    probs = teacher_probs([runs[0], exported], train_split, data.classes, tmp_path / "oof.npz")
    np.testing.assert_allclose(probs, expected / expected.sum(1, keepdims=True), atol=1e-4)
    # A teacher trained on every image answers for all of them, beside the fold's own teacher.
    full = score(load_predictor(run_dir), train_split.images, "flip")
    mixed = teacher_probs([runs[0], run_dir], train_split, data.classes, tmp_path / "mixed.npz")
    expected = np.where(folds[0][:, None], answers[0] + full, full)
    np.testing.assert_allclose(mixed, expected / expected.sum(1, keepdims=True), atol=1e-4)
    with pytest.raises(ConfigError, match="in no teacher's held-out fold"):
        teacher_probs([runs[0]], train_split, data.classes, tmp_path / "half.npz")

    assert main([*argv, "--out", str(tmp_path / "bad"), "--holdout", "2/2"]) == 2
    with pytest.raises(SystemExit):
        main([*argv, "--out", str(tmp_path / "bad"), "--holdout", "half"])
    errors = capsys.readouterr().err
    assert "0 <= K < N" in errors and "is not K/N" in errors
