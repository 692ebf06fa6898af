"""den: lifelong learning with Dynamically Expandable Networks (Yoon et al., ICLR 2018).

    import den, torch
    engine = den.Engine(den.EngineConfig(k=5, max_iter=500), input_dim=784)
    report = engine.add_task(den.Task(train_x, train_y, val_x, val_y))
    logits = engine.predict(1, x)

The C++ engine does the work; tensors are shared with it, not copied. numpy arrays are accepted
wherever a tensor is (torch.as_tensor, which shares their memory when the dtype already fits).
"""

import dataclasses as _dataclasses

import torch as _torch  # before the extension: it registers the tensor types the bindings use

from . import _den
from ._den import (CheckpointError, Engine, EngineConfig, Loss, PhaseResult, SplitPair, SplitPolicy, Subnetwork,
                   TaskReport, TaskStream, TrainingDiverged, __version__, configure_threads, hyperparameters)

__all__ = ["CheckpointError", "Engine", "EngineConfig", "Loss", "PhaseResult", "SplitPair", "SplitPolicy",
           "Subnetwork", "Task", "TaskReport", "TaskStream", "TrainingDiverged", "__version__", "configure_threads",
           "hyperparameters", "report_dict"]


def _features(a):
    return None if a is None else _torch.as_tensor(a, dtype=_torch.float32)


def _labels(a, what="labels"):
    """Class ids as int64 [N]; a ValueError saying what is wrong for anything else (as_tensor would
    truncate 0.5 to 0 and wrap huge values)."""
    if a is None:
        return None
    t = _torch.as_tensor(a)
    if t.dim() != 1:
        hint = "; flatten them (y.reshape(-1))" if t.dim() == 2 and t.shape[1] == 1 else ""
        raise ValueError(f"{what} must be 1-D [N], got shape {list(t.shape)}{hint}")
    if t.dtype == _torch.bool or t.is_complex():
        raise ValueError(f"{what} must be integer class ids, got {t.dtype}")
    if t.is_floating_point():
        bad = (~_torch.isfinite(t)) | (t != t.round())
        if bool(bad.any()):
            i = int(bad.nonzero()[0])
            raise ValueError(f"{what} must be integer class ids, got {t[i].item()} at index {i}")
    if t.numel() and float(t.max()) > 2**31 - 1:
        i = int(t.argmax())
        raise ValueError(f"{what}: {t[i].item()} at index {i} is above the largest class id, {2**31 - 1}")
    return t.to(_torch.int64)


def Task(train_x, train_y, val_x, val_y, test_x=None, test_y=None, num_classes=0, name="", output_classes=()):
    """One task. Features [N, input_dim] float32, labels [N] int64 (numpy or torch); num_classes 0 =
    the largest training label + 1; output_classes: the class each head output stands for."""
    if (test_x is None) != (test_y is None):
        raise ValueError("give test_x and test_y together, or neither")
    # No test set: empty tensors, which the module reads as none (not as a test set without samples).
    test_x = _features(test_x) if test_x is not None else _torch.empty(0, 0)
    test_y = _labels(test_y, "test_y") if test_y is not None else _torch.empty(0, dtype=_torch.int64)
    return _den.Task(_features(train_x), _labels(train_y, "train_y"), _features(val_x), _labels(val_y, "val_y"),
                     test_x, test_y, int(num_classes), name, list(output_classes))


def _predict(self, task_id, x):
    return _den.Engine._predict(self, task_id, _features(x))


def _predict_all(self, x):
    return _den.Engine._predict_all(self, _features(x))


_den.Engine._predict, _den.Engine._predict_all = _den.Engine.predict, _den.Engine.predict_all
_den.Engine.predict, _den.Engine.predict_all = _predict, _predict_all
_predict.__doc__ = _den.Engine._predict.__doc__
_predict_all.__doc__ = _den.Engine._predict_all.__doc__


def report_dict(report):
    """A TaskReport (or PhaseResult, SplitPair, Subnetwork) as plain dicts, lists and numbers."""
    if isinstance(report, (list, tuple)):
        return [report_dict(r) for r in report]
    if isinstance(report, (TaskReport, PhaseResult, SplitPair, Subnetwork)):
        return {name: report_dict(getattr(report, name)) for name in dir(report)
                if not name.startswith("_") and not callable(getattr(report, name))}
    return report
