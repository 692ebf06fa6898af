"""The Python module: run by ctest (tests/CMakeLists.txt) under pytest, with PYTHONPATH=build/python
and DEN_CLI set to the den executable."""

import json
import os
import re
import subprocess

import numpy as np
import pytest
import torch

import den

DATA = "/usr/share/datasets/fashion-mnist"


def synthetic(seed, n=256, dim=8, shift_feature=0):
    """Two Gaussian classes told apart by the sign of one feature, as numpy arrays."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, size=n)
    x = rng.normal(size=(n, dim)).astype(np.float32)
    x[:, shift_feature] += 4.0 * y - 2.0
    return x, y


def small_task(seed, feature=0):
    train_x, train_y = synthetic(seed, 256, shift_feature=feature)
    val_x, val_y = synthetic(seed + 100, 64, shift_feature=feature)
    test_x, test_y = synthetic(seed + 200, 64, shift_feature=feature)
    return den.Task(train_x, train_y, val_x, val_y, test_x, test_y, name=f"task-{seed}")


def small_engine():
    # lr_decay 1: the default decays per epoch, and an epoch of these 256 samples is one step.
    return den.Engine(den.EngineConfig(hidden=[16, 8], max_iter=200, eval_every=50, k=2, lr_decay=1.0), input_dim=8)


def test_version_matches_the_command_line():
    out = subprocess.run([os.environ["DEN_CLI"], "--version"], capture_output=True, text=True, check=True).stdout
    assert out.strip() == f"den {den.__version__}"


def test_config_takes_every_hyperparameter_by_name():
    names = [h["name"] for h in den.hyperparameters()]
    assert len(names) == len(set(names)) and "k" in names and "lambda_" in names
    config = den.EngineConfig(k=5, hidden=[64, 32], mu=2e-5, loss=den.Loss.sigmoid)
    assert (config.k, config.layers, config.mu, config.loss) == (5, "fc:64,fc:32", 2e-5, den.Loss.sigmoid)
    for h in den.hyperparameters():
        assert getattr(den.EngineConfig(), h["name"]) == h["default"], h["name"]
    with pytest.raises(TypeError, match="no hyperparameter 'kk'"):
        den.EngineConfig(kk=5)
    with pytest.raises(ValueError, match="k"):
        den.EngineConfig(k=-3).validate()


def test_config_starts_from_a_preset():
    assert den.EngineConfig().restore_drifted and den.EngineConfig().k == 7
    released = den.EngineConfig(preset="released", k=9)
    assert not released.restore_drifted and released.k == 9
    for h in den.hyperparameters():
        if h["name"] != "k":
            assert getattr(released, h["name"]) == h["released"], h["name"]
    with pytest.raises(ValueError, match="unknown preset 'fast'"):
        den.EngineConfig(preset="fast")


def test_a_diverging_task_raises_training_diverged_naming_task_phase_and_step():
    engine = den.Engine(den.EngineConfig(hidden=[16, 8], max_iter=200, eval_every=50, lr=1e30), input_dim=8)
    with pytest.raises(den.TrainingDiverged, match="task 1, phase .*, step [0-9]+: the .* loss is"):
        engine.add_task(small_task(1))
    assert issubclass(den.TrainingDiverged, ArithmeticError)


def test_a_task_without_test_data_learns_as_the_docs_show_it():
    train_x, train_y = synthetic(5, 256)
    val_x, val_y = synthetic(105, 64)
    report = small_engine().add_task(den.Task(train_x, train_y, val_x, val_y))
    assert report.task == 1


def test_labels_that_are_no_class_ids_get_a_clear_value_error():
    x, y = synthetic(6, 32)
    for labels, message in [(y.astype(np.float32) + 0.5, "must be integer class ids, got 0.5"),
                            (y.reshape(-1, 1), r"must be 1-D \[N\], got shape \[32, 1\]; flatten them"),
                            (np.full(32, 1e12), "above the largest class id"),
                            (y.astype(bool), "must be integer class ids")]:
        with pytest.raises(ValueError, match=message):
            den.Task(x, labels, x, y)


def test_test_x_without_test_y_or_the_reverse_is_a_value_error():
    x, y = synthetic(6, 32)
    for half in (dict(test_x=x), dict(test_y=y)):
        with pytest.raises(ValueError, match="give test_x and test_y together, or neither"):
            den.Task(x, y, x, y, **half)


def test_python_errors_name_no_cli_flags():
    engine = small_engine()
    engine.add_task(small_task(1))
    with pytest.raises(ValueError) as error:
        engine.export("/tmp/den_no_such_task.pt", task=99)
    assert "--task" not in str(error.value) and "task 99 does not exist" in str(error.value)


def test_a_network_too_large_to_train_is_refused_before_allocating():
    with pytest.raises(ValueError, match="would hold 7.85e\\+10 parameters"):
        den.Engine(den.EngineConfig(hidden=[100000000]), input_dim=784)


def test_every_flag_of_the_table_is_a_flag_of_den_run():
    help_text = subprocess.run([os.environ["DEN_CLI"], "run", "--help"], capture_output=True, text=True).stdout
    for h in den.hyperparameters():
        if h["flag"]:
            assert h["flag"] in help_text, h["flag"]


def test_learns_predicts_and_reports():
    engine = small_engine()
    report = engine.add_task(small_task(1))
    assert isinstance(report, den.TaskReport) and report.task == 1 and engine.num_tasks == 1
    d = den.report_dict(report)
    assert d["task"] == 1 and d["hidden_units"] == engine.hidden_units and isinstance(d["phases"], list)
    assert d["phases"] and isinstance(d["phases"][0]["iterations"], int)
    x, y = synthetic(7, 128)
    logits = engine.predict(1, x)  # numpy in, torch out
    assert isinstance(logits, torch.Tensor) and logits.shape == (128, 2)
    assert (logits.argmax(1).numpy() == y).mean() > 0.9  # chance 0.5, the Bayes rate 0.977
    engine.add_task(small_task(2, feature=1))
    assert [t.shape for t in engine.predict_all(x)] == [(128, 2), (128, 2)]


def test_tensors_are_shared_not_copied():
    x, y = synthetic(3)
    tensor = torch.from_numpy(x)
    task = den.Task(tensor, y, x, y)
    assert task.train_x.data_ptr() == tensor.data_ptr()
    assert task.val_x.data_ptr() == tensor.data_ptr()  # a float32 numpy array is shared too


def test_errors_carry_the_cpp_message():
    engine = small_engine()
    engine.add_task(small_task(1))
    with pytest.raises(ValueError, match="task"):
        engine.predict(5, np.zeros((2, 8), np.float32))
    with pytest.raises(ValueError, match="8"):
        engine.predict(1, np.zeros((2, 9), np.float32))
    bad = small_task(2)
    bad.train_y = torch.full((256,), 7, dtype=torch.int64)
    bad.num_classes = 2
    with pytest.raises(ValueError, match="label"):
        engine.add_task(bad)
    assert engine.num_tasks == 1  # unchanged


def test_save_load_and_export(tmp_path):
    engine = small_engine()
    engine.add_task(small_task(1))
    path = str(tmp_path / "run.den")
    engine.save(path)
    loaded = den.Engine.load(path)
    x, _ = synthetic(9, 32)
    assert torch.equal(loaded.predict(1, x), engine.predict(1, x))
    (tmp_path / "junk.den").write_bytes(b"not a checkpoint")
    with pytest.raises(den.CheckpointError):
        den.Engine.load(str(tmp_path / "junk.den"))
    module_path = str(tmp_path / "task1.pt")
    engine.export(module_path, task=1)
    scripted = torch.jit.load(module_path)
    assert torch.allclose(scripted(torch.from_numpy(x)), engine.predict(1, x), atol=1e-5)


def test_an_unknown_export_format_is_a_value_error_naming_the_formats(tmp_path):
    engine = small_engine()
    engine.add_task(small_task(1))
    path = tmp_path / "task1.x"
    with pytest.raises(ValueError, match="export: format must be torchscript, onnx or dot, got 'x'"):
        engine.export(str(path), task=1, format="x")
    assert not path.exists()


def test_saving_where_no_file_can_be_created_is_an_os_error_naming_the_path(tmp_path):
    engine = small_engine()
    engine.add_task(small_task(1))
    (tmp_path / "afile").write_text("")
    for parent, reason in (("nowhere", "No such file or directory"), ("afile", "Not a directory")):
        path = tmp_path / parent / "run.den"
        where = re.escape(f"cannot write '{path}': cannot create a file in '{path.parent}': {reason}")
        with pytest.raises(OSError, match=where):
            engine.save(str(path))
    with pytest.raises(OSError, match="it is a directory"):
        engine.save(str(tmp_path))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]


def test_a_conv_network_learns_and_round_trips(tmp_path):
    # 1x6x6 images: a bright top half for class 1; the conv layers read them as images.
    def images(seed, n):
        x, y = synthetic(seed, n, dim=36)
        x = np.abs(x) * 0.2
        x[:, :18] += y[:, None] * 0.8
        return x, y

    config = den.EngineConfig(layers="conv3x3:4,maxpool2,fc:8", input_shape=[1, 6, 6], max_iter=150, eval_every=50,
                              k=2, lr_decay=1.0)
    assert config.layers == "conv3x3:4,maxpool2,fc:8"
    engine = den.Engine(config, input_dim=36)
    parts = [images(s, n) for s, n in ((1, 256), (2, 64), (3, 64))]
    report = engine.add_task(den.Task(*[a for part in parts for a in part], name="images"))
    x, y = parts[2]
    assert (engine.predict(1, x).argmax(1).numpy() == y).mean() > 0.9
    assert report.hidden_units == [4, 8]
    path = str(tmp_path / "conv.den")
    engine.save(path)
    assert torch.equal(den.Engine.load(path).predict(1, x), engine.predict(1, x))
    with pytest.raises(ValueError, match="kernel 3x3 is larger than its input 2x18"):
        den.Engine(den.EngineConfig(layers="conv3x3:4", input_shape=[1, 2, 18]), input_dim=36)
    with pytest.raises(ValueError, match="layer token 'conv3:4' does not parse"):
        den.EngineConfig(layers="conv3:4")


def test_clone_is_independent():
    engine = small_engine()
    engine.add_task(small_task(1))
    copy = engine.clone()
    copy.add_task(small_task(2, feature=1))
    assert (engine.num_tasks, copy.num_tasks) == (1, 2)


def csv_data(tmp_path):
    """A data directory of train.csv and test.csv: 4 classes, 3 features, the label first."""
    rng = np.random.default_rng(0)
    for name, n in (("train.csv", 40), ("test.csv", 12)):
        y = np.arange(n) % 4
        np.savetxt(tmp_path / name, np.column_stack([y, rng.normal(size=(n, 3))]), delimiter=",", fmt="%g")
    return str(tmp_path)


def test_a_stream_of_an_unknown_protocol_or_a_missing_directory_is_a_value_error(tmp_path):
    data = csv_data(tmp_path)
    # Messages name the constructor's arguments, not the command line's flags.
    with pytest.raises(ValueError, match="^protocol 'rotated' is not one of permuted, split, one-vs-rest"):
        den.TaskStream(data, protocol="rotated")
    with pytest.raises(ValueError, match="^classes_per_task 1: a split task needs at least 2 classes"):
        den.TaskStream(data, protocol="split", classes_per_task=1)
    with pytest.raises(ValueError, match="^num_tasks 9 is larger than the 4 tasks") as error:
        den.TaskStream(data, protocol="one-vs-rest", num_tasks=9)
    assert "--" not in str(error.value)
    with pytest.raises(ValueError, match=re.escape(f"data directory '{tmp_path / 'nowhere'}' does not exist")):
        den.TaskStream(str(tmp_path / "nowhere"))
    with pytest.raises(ValueError, match=r"data directory '.*train.csv' is a file, not a directory \(data_dir takes"):
        den.TaskStream(str(tmp_path / "train.csv"))


def test_a_stream_task_outside_its_range_is_an_index_error(tmp_path):
    stream = den.TaskStream(csv_data(tmp_path), num_tasks=2)
    assert stream.task(2).name == "permuted-2"
    for t in (0, 3, -1):
        with pytest.raises(IndexError, match=f"task {t} is outside 1..2"):
            stream.task(t)


@pytest.mark.skipif(not os.path.isdir(DATA), reason="needs Debian's dataset-fashion-mnist")
def test_a_stream_from_python_equals_the_cpp_run(tmp_path):
    args = dict(tasks=3, train_limit=600, max_iter=60, seed=5)
    report_path = tmp_path / "run.json"
    subprocess.run([os.environ["DEN_CLI"], "run", "--quiet", "--tasks", "3", "--train-limit", "600", "--max-iter", "60",
                    "--seed", "5", "--threads", "1", "--exemplars", "0", "--report", str(report_path)],
                   check=True, capture_output=True)
    cpp = json.loads(report_path.read_text())["tasks"]

    den.configure_threads(1)
    stream = den.TaskStream(DATA, num_tasks=args["tasks"], train_limit=args["train_limit"], seed=args["seed"])
    engine = den.Engine(den.EngineConfig(max_iter=args["max_iter"], seed=args["seed"]), stream.input_dim)
    for t in range(1, args["tasks"] + 1):
        r = den.report_dict(engine.add_task(stream.task(t)))
        c = cpp[t - 1]
        for key in ("task", "name", "num_classes", "hidden_units", "params", "nonzero_params", "selected_units",
                    "added", "pruned", "split", "expanded", "val_loss"):
            assert r[key] == c[key], (t, key, r[key], c[key])
        assert [p["iterations"] for p in r["phases"]] == [p["iterations"] for p in c["phases"]]
