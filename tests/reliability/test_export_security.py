"""An export file cannot run code: every field that names code (model builder, Learner class, data
class, loss, activation, architecture, cut, tokenizer rule, tabular proc, modules to import) is refused unless
the library provides it or the caller allows it, and the whole description is checked before
anything is built. Through ``load_learner`` and through ``fastlearn predict``."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest
import torch
from PIL import Image

from fastlearn.learner import Learner
from fastlearn.loading import load_learner
from fastlearn.registry import UntrustedCodeError
from fastlearn.vision.cli import main as cli_main

USER_MODULE = """
from pathlib import Path
from torch import nn
from fastlearn.learner import Learner

Path({marker!r}).with_name("imported").touch()  # importing this module leaves a trace

class UserLearner(Learner):
    pass

class UserNet(nn.Module):
    def __init__(self, n_out=2):
        super().__init__()
        self.export_args = dict(n_out=n_out)
        self.linear = nn.Linear(1, n_out)

    def forward(self, x_cat, x_cont):
        return self.linear(x_cont)

def evil(*args, **kwargs):
    Path({marker!r}).touch()
    return args[0] if args else None
"""


@pytest.fixture
def marker(tmp_path):
    return tmp_path / "marker"


@pytest.fixture
def user_module(tmp_path, marker):
    """An importable module ``user_code_tmp`` (not imported yet) whose import and whose ``evil``
    leave files next to ``marker``."""
    folder = tmp_path / "user_code"
    folder.mkdir()
    (folder / "user_code_tmp.py").write_text(textwrap.dedent(USER_MODULE.format(marker=str(marker))))
    sys.path.insert(0, str(folder))
    yield folder
    sys.path.remove(str(folder))
    sys.modules.pop("user_code_tmp", None)


def _set(*keys, value):
    """An edit that sets description[keys[0]][keys[1]]... = value."""
    def edit(description):
        target = description
        for key in keys[:-1]:
            target = target[key]
        target[keys[-1]] = value
    return edit


def _code_fields(marker):
    """(case, edit, the name the error must quote) for every field of a description that names code."""
    touch = ["touch", str(marker)]
    vision_args = {"arch": "resnet18", "n_out": 2, "pretrained": False, "cut": None}

    def vision(**changes):
        return {"builder": "fastlearn.vision.learner.vision_model", "args": {**vision_args, **changes}}
    return [
        ("model builder os.system", _set("model", value={"builder": "os.system",
                                                         "args": {"command": f"touch {marker}"}}), "os.system"),
        ("model builder subprocess.run", _set("model", value={"builder": "subprocess.run", "args": {"args": touch}}),
         "subprocess.run"),
        ("model builder builtins.exec", _set("model", value={"builder": "builtins.exec", "args": {}}), "builtins.exec"),
        ("user model class", _set("model", value={"builder": "user_code_tmp.UserNet", "args": {"n_out": 2}}),
         "user_code_tmp.UserNet"),
        ("loss class", _set("loss", value={"builder": "subprocess.run", "args": {"args": "true"}}), "subprocess.run"),
        ("loss function", _set("loss", value={"function": "builtins.exec"}), "builtins.exec"),
        ("data class", _set("data", "builder", value="os.system"), "os.system"),
        ("learner class os.system", _set("learner", value="os.system"), "os.system"),
        ("user learner class", _set("learner", value="user_code_tmp.UserLearner"), "user_code_tmp.UserLearner"),
        ("module to import", _set("data", "imports", value=["user_code_tmp"]), "user_code_tmp"),
        ("tabular activation", _set("model", "args", "act_cls", value={"builder": "os.system", "args": {}}),
         "os.system"),
        ("tabular proc module", _set("data", "spec", "procs", 0, "module", value="user_code_tmp"), "user_code_tmp"),
        ("vision arch path", _set("model", value=vision(arch="user_code_tmp.evil")), "user_code_tmp.evil"),
        ("vision cut function", _set("model", value=vision(cut="user_code_tmp.evil")), "user_code_tmp.evil"),
    ]


CASES = [case[0] for case in _code_fields("m")]


@pytest.mark.parametrize("case", CASES)
def test_a_description_naming_code_is_refused_and_runs_nothing(case, tabular_export, craft, marker, user_module):
    _, path, _ = tabular_export
    _, edit, name = next(c for c in _code_fields(marker) if c[0] == case)
    crafted = craft(path, edit)
    with pytest.raises(UntrustedCodeError, match=rf"{crafted.name} names the .*'{name}'.*not part of fastlearn"
                                                 r".*custom_objects.*trust_code=True") as error:
        load_learner(crafted)
    assert isinstance(error.value, ValueError)
    assert not marker.exists()
    assert not marker.with_name("imported").exists() and "user_code_tmp" not in sys.modules


def _text_description(rule: str):
    """A text classifier's data description whose tokenizer names ``rule``."""
    tokenizer = {"rules": [rule], "add_bos": True, "text_cols": None}
    spec = {"format": "fastlearn.data.inference/1", "n_inp": 1,
            "inputs": [{"kind": "text", "block": {"name": "TextBlock", "module": "fastlearn.text.data",
                                                  "args": {"tokenizer": tokenizer, "is_lm": False, "seq_len": 72,
                                                           "vocab": ["xxunk", "xxpad", "xxbos", "hello"]}}}],
            "targets": [{"kind": "category", "block": {"name": "CategoryBlock", "module": "fastlearn.data.blocks",
                                                       "args": {"vocab": ["big", "small"], "sort": False}}}],
            "item_tfms": [], "batch_tfms": [], "vocab": ["big", "small"], "c": 2}
    return _set("data", value={"builder": "fastlearn.text.data.TextDataBunch", "spec": spec, "imports": []})


def test_a_tokenizer_rule_naming_exec_is_refused(tabular_export, craft, marker):
    _, path, _ = tabular_export
    # the same description with a built-in rule loads: the refusal is about the name alone
    assert load_learner(craft(path, _text_description("lowercase"), name="text.pkl")).dls.c == 2
    crafted = craft(path, _text_description("builtins.exec"))
    with pytest.raises(UntrustedCodeError, match="tokenizer rule 'builtins.exec'"):
        load_learner(crafted)


def test_own_code_loads_when_the_caller_passes_it_or_trusts_the_file(tabular_export, craft, marker, user_module):
    _, path, df = tabular_export
    crafted = craft(path, _set("model", value={"builder": "user_code_tmp.UserNet", "args": {"n_out": 2}}),
                    edit_weights=lambda state: (state.clear(), state.update({"linear.weight": torch.ones(2, 1),
                                                                              "linear.bias": torch.zeros(2)})))
    with pytest.raises(UntrustedCodeError):
        load_learner(crafted)
    assert "user_code_tmp" not in sys.modules
    trusted = load_learner(crafted, trust_code=True)  # the caller's explicit choice imports the module
    assert type(trusted.model).__name__ == "UserNet" and marker.with_name("imported").exists()
    user_net = sys.modules["user_code_tmp"].UserNet
    for custom in ([user_net], {"user_code_tmp.UserNet": user_net}, user_net):
        learn = load_learner(crafted, custom_objects=custom)
        assert isinstance(learn.model, user_net)
        assert torch.equal(learn.model.linear.weight, torch.ones(2, 1))
    label, _, probs = learn.predict(df.iloc[0])
    assert label in ("big", "small") and probs.shape == (2,)
    assert not marker.exists()  # UserNet itself runs nothing else


def test_a_learner_class_of_the_users_loads_when_passed_and_old_files_load_as_learner(tabular_export, craft,
                                                                                      user_module):
    _, path, df = tabular_export
    crafted = craft(path, _set("learner", value="user_code_tmp.UserLearner"))
    with pytest.raises(UntrustedCodeError, match="Learner class 'user_code_tmp.UserLearner'"):
        load_learner(crafted)
    assert "user_code_tmp" not in sys.modules
    user_learner = load_learner(crafted, trust_code=True)
    assert type(user_learner).__name__ == "UserLearner"
    assert type(load_learner(crafted, custom_objects=[type(user_learner)])) is type(user_learner)

    def version_1(description):  # written before the Learner class was recorded
        del description["learner"]
        description["format_version"] = 1
    old = load_learner(craft(path, version_1, name="old.pkl"))
    assert type(old) is Learner and old.predict(df.iloc[0])[0] in ("big", "small")
    not_a_learner = craft(path, _set("learner", value="torch.nn.modules.linear.Linear"), name="linear.pkl")
    with pytest.raises(ValueError, match="names Linear as its Learner class, which is not a Learner"):
        load_learner(not_a_learner, custom_objects=[torch.nn.Linear])


@pytest.mark.parametrize("case,edit,match", [
    ("NaN", _set("model", "args", "y_range", value=[0.0, float("nan")]), r"holds nan at model\.args\.y_range\[1\]"),
    ("reversed range", _set("model", "args", "y_range", value=[5, 1]), r"y_range is \[5, 1\]; expected .*low < high"),
    ("huge size", _set("model", "args", "out_sz", value=10 ** 12), r"out_sz is 1000000000000; expected a whole number"),
    ("wrong size", _set("model", "args", "out_sz", value=3),
     r"do not fit the model its description builds .*\(2, 8\) in the file, \(3, 8\) in the model"),
    ("unknown argument", _set("model", "args", "shell", value="rm -rf /"), r"argument\(s\) \['shell'\].*does not take"),
    ("unknown field", _set("run", value="os.system"), r"unknown key\(s\) \['run'\]"),
    ("wrong type", _set("model", "args", value="os.system"), r"model: args is 'os.system'; expected dict"),
    ("pretrained", _set("model", value={"builder": "fastlearn.vision.learner.vision_model",
                                        "args": {"arch": "resnet18", "n_out": 2, "pretrained": True}}),
     r"pretrained is True; an export is rebuilt with pretrained=false"),
    ("unregistered proc", _set("data", "spec", "procs", 0, "name", value="os.system"),
     r"no registered tabular proc named 'os.system'"),
    ("negative version", _set("format_version", value=-1), r"format_version -1, which no fastlearn writes"),
])
def test_a_malformed_description_is_refused_before_anything_is_built(case, edit, match, tabular_export, craft):
    _, path, _ = tabular_export
    with pytest.raises(ValueError, match=match):
        load_learner(craft(path, edit))


def test_weights_that_are_not_named_tensors_are_refused(tabular_export, craft):
    _, path, _ = tabular_export
    crafted = craft(path, edit_weights=lambda state: state.update({"layers.0.0.weight": 7}))
    with pytest.raises(ValueError, match="not named tensors"):
        load_learner(crafted)


@pytest.fixture
def image(tmp_path):
    file = tmp_path / "shoe.png"
    Image.new("RGB", (28, 28), "white").save(file)
    return file


def test_fastlearn_predict_refuses_a_crafted_file_in_one_line(tabular_export, craft, marker, image, tmp_path):
    _, path, _ = tabular_export
    crafted = craft(path, _set("model", value={"builder": "os.system", "args": {"command": f"touch {marker}"}}))
    env = dict(os.environ, OMP_NUM_THREADS="1", CUDA_VISIBLE_DEVICES="")
    result = subprocess.run([sys.executable, "-m", "fastlearn.vision.cli", "predict", str(crafted), str(image)],
                            capture_output=True, text=True, env=env, timeout=120, cwd=tmp_path)
    assert result.returncode == 2, result.stderr[-2000:]
    error_lines = result.stderr.strip().splitlines()
    assert len(error_lines) == 1 and error_lines[0].startswith("fastlearn predict: error: ")
    assert "'os.system'" in error_lines[0] and "--trust-code" in error_lines[0]
    assert not marker.exists()


@pytest.mark.parametrize("case", ["model builder subprocess.run", "model builder builtins.exec", "user model class",
                                  "module to import", "tabular activation"])
def test_fastlearn_predict_runs_no_code_the_file_names(case, tabular_export, craft, marker, image, user_module,
                                                       capsys):
    _, path, _ = tabular_export
    _, edit, name = next(c for c in _code_fields(marker) if c[0] == case)
    assert cli_main(["predict", str(craft(path, edit)), str(image)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("fastlearn predict: error: ") and f"'{name}'" in err
    assert not marker.exists() and "user_code_tmp" not in sys.modules
