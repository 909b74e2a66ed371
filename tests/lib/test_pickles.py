"""load_pickle reads tables and fastlearn's data objects and refuses, before calling it, anything
else a pickle names: a file from elsewhere cannot run code when the book's load_pickle reads it."""
import os
import pickle
import sys

import numpy as np
import pandas as pd
import pytest
import torch

from fastlearn.course import load_pickle, save_pickle
from fastlearn.data.categorical import CategoryMap


class _Calls:
    """Pickles as a call of ``func(*args)``: what a hostile file does."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def _write(tmp_path, obj, protocol=pickle.DEFAULT_PROTOCOL):
    file = tmp_path / "x.pkl"
    file.write_bytes(pickle.dumps(obj, protocol=protocol))
    return file


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_tables_and_values_come_back_equal(tmp_path, protocol):
    df = pd.DataFrame({"n": [1, 2, 3], "cat": pd.Categorical(["a", "b", "a"]),
                       "when": pd.to_datetime(["2020-01-01", None, "2021-06-01"]),
                       "maybe": pd.array([1, None, 3], dtype="Int64"), "text": pd.array(["x", None, "z"], dtype="string"),
                       "f": np.float32([0.5, 1.5, 2.5]), "obj": ["u", None, "w"]}).set_index("n")
    values = {"df": df, "series": df["f"], "array": np.arange(6).reshape(2, 3), "scalar": np.int64(7),
              "set": {1, 2}, "slice": slice(1, 5), "vocab": CategoryMap(["b", "a"]), "ts": pd.Timestamp("2020-01-01"),
              "nat": pd.NaT, "rng": np.random.default_rng(0), "tensor": torch.arange(6.).view(2, 3)[1],
              "param": torch.nn.Parameter(torch.ones(2)), "dtype": torch.float16}
    back = load_pickle(_write(tmp_path, values, protocol))
    pd.testing.assert_frame_equal(back["df"], df)
    pd.testing.assert_series_equal(back["series"], df["f"])
    np.testing.assert_array_equal(back["array"], values["array"])
    assert back["scalar"] == 7 and back["set"] == {1, 2} and back["slice"] == slice(1, 5)
    assert list(back["vocab"]) == list(values["vocab"]) and back["ts"] == values["ts"] and back["nat"] is pd.NaT
    assert back["rng"].integers(100) == np.random.default_rng(0).integers(100)
    assert torch.equal(back["tensor"], torch.tensor([3., 4., 5.])) and back["dtype"] == torch.float16
    assert isinstance(back["param"], torch.nn.Parameter) and back["param"].requires_grad


def test_save_pickle_then_load_pickle(tmp_path):
    save_pickle(tmp_path / "x.pkl", {"a": [1, 2]})
    assert load_pickle(tmp_path / "x.pkl") == {"a": [1, 2]}


@pytest.mark.parametrize("make", [
    lambda marker: _Calls(os.system, f"touch {marker}"),
    lambda marker: _Calls(open, str(marker), "w"),
    lambda marker: _Calls(np.memmap, str(marker), np.uint8, "w+", 0, (4,)),
    lambda marker: _Calls(pd.ExcelWriter, str(marker)),
    lambda marker: _Calls(eval, f"open({str(marker)!r}, 'w')"),
    lambda marker: _Calls(torch.storage._load_from_bytes, pickle.dumps(_Calls(os.system, f"touch {marker}"))),
], ids=["os.system", "open", "numpy.memmap", "pandas.ExcelWriter", "eval", "torch storage"])
def test_a_pickle_that_would_run_code_is_refused_before_the_call(tmp_path, make):
    marker = tmp_path / "ran"
    file = _write(tmp_path, {"table": pd.DataFrame({"a": [1]}), "payload": make(marker)})
    with pytest.raises(pickle.UnpicklingError, match=r"x\.pkl asks to call .*load_pickle\(file, trust=True\)"):
        load_pickle(file)
    assert not marker.exists()


def test_a_module_named_by_the_file_is_not_even_imported(tmp_path, monkeypatch):
    marker = tmp_path / "imported"
    (tmp_path / "evil_module.py").write_text(f"open({str(marker)!r}, 'w').close()\ndef run(): pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    file = tmp_path / "x.pkl"
    file.write_bytes(b"\x80\x04\x8c\x0bevil_module\x94\x8c\x03run\x94\x93\x94)R\x94.")  # evil_module.run()
    with pytest.raises(pickle.UnpicklingError, match="evil_module.run"):
        load_pickle(file)
    assert not marker.exists() and "evil_module" not in sys.modules


class Point:  # a user's own class, as a script would define it
    def __init__(self, x):
        self.x = x


def test_your_own_objects_need_trust(tmp_path):
    file = _write(tmp_path, [Point(3)])
    with pytest.raises(pickle.UnpicklingError, match=r"test_pickles\.Point.*trust=True"):
        load_pickle(file)
    assert load_pickle(file, trust=True)[0].x == 3


def test_library_code_outside_the_data_layers_is_refused(tmp_path):
    from fastlearn.learner import Learner
    with pytest.raises(pickle.UnpicklingError, match="fastlearn.learner.Learner"):
        load_pickle(_write(tmp_path, Learner))
    with pytest.raises(pickle.UnpicklingError, match="builtins.getattr"):
        load_pickle(_write(tmp_path, _Calls(getattr, pd.DataFrame, "to_pickle")))
