"""Tokenizer rules, word splitting, Numericalize."""
from __future__ import annotations

from collections import Counter

import pytest
import torch

from fastlearn.text import (Numericalize, SubwordTokenizer, Tokenizer, WordTokenizer, detokenize, make_vocab,
                            replace_all_caps, replace_maj, replace_rep, replace_wrep)


def test_rules_mark_capitals_and_repetitions():
    assert replace_all_caps("I LOVE IT") == "I xxup love xxup it"
    assert replace_maj("Emma smiled") == "xxmaj emma smiled"
    assert replace_rep("sooooo").split() == ["s", "xxrep", "5", "o"]
    assert replace_wrep("very very very very good").split() == ["xxwrep", "4", "very", "good"]


def test_tokenizer_applies_rules_and_bos():
    tokens = Tokenizer()("The food was GREAT!!!! Really <br />good")
    assert tokens == ["xxbos", "xxmaj", "the", "food", "was", "xxup", "great", "xxrep", "4", "!",
                      "xxmaj", "really", "good"]


def test_word_tokenizer_splits_clitics_numbers_punctuation():
    assert WordTokenizer()(["Don't pay $3.50, it's bad."]) == [
        ["Do", "n't", "pay", "$", "3.50", ",", "it", "'s", "bad", "."]]


def test_batch_tokenization_keeps_order_and_matches_one_by_one(tmp_path):
    texts = [f"Text number {i}. It is FINE" for i in range(25)]
    tok = Tokenizer(chunk_size=7)
    assert tok.tokenize(texts) == [tok(t) for t in texts]
    (tmp_path / "a.txt").write_text("Hello there")
    assert tok.tokenize([tmp_path / "a.txt", "x"]) == [["xxbos", "xxmaj", "hello", "there"], ["xxbos", "x"]]


def test_tokenizer_from_folder_caches_tokens(tmp_path):
    folder = tmp_path / "texts"
    (folder / "pos").mkdir(parents=True)
    (folder / "pos" / "1.txt").write_text("Good food. Good price.")
    tok = Tokenizer.from_folder(folder)
    cached = tmp_path / "texts_tok" / "pos" / "1.txt"
    assert cached.read_text().split(" ")[:3] == ["xxbos", "xxmaj", "good"]
    assert tok.counter["good"] == 2
    assert tok(folder / "pos" / "1.txt") == cached.read_text().split(" ")


def test_detokenize_is_readable():
    assert detokenize(Tokenizer()("It isn't BAD, said Emma.")) == "It isn't BAD, said Emma."


def test_numericalize_vocab_min_freq_order_and_padding():
    tokens = [["xxbos", "b", "a", "a", "c"], ["xxbos", "a", "b", "d"]]
    num = Numericalize(min_freq=2)
    num.setup(tokens)
    assert num.vocab[:9] == ["xxunk", "xxpad", "xxbos", "xxeos", "xxfld", "xxrep", "xxwrep", "xxup", "xxmaj"]
    assert num.vocab[9:11] == ["a", "b"]                 # most frequent first; c and d below min_freq
    assert len(num.vocab) % 8 == 0 and set(num.vocab[11:]) == {"xxfake"}
    ids = num(["a", "d", "b"])
    assert ids.dtype == torch.long and ids.tolist() == [9, 0, 10]
    assert num.decode(num(["xxbos", "a", "b"])) == ["xxbos", "a", "b"]
    assert make_vocab(Counter({"x": 1}), min_freq=1, max_vocab=10)[9] == "x"


def test_numericalize_errors_are_clear():
    with pytest.raises(ValueError, match="no vocab yet"):
        Numericalize()(["a"])
    with pytest.raises(TypeError, match="list of token strings"):
        Numericalize(vocab="abc")


def test_subword_tokenizer_is_optional():
    try:
        import sentencepiece  # noqa: F401
    except ModuleNotFoundError:
        with pytest.raises(ModuleNotFoundError, match="pip install sentencepiece"):
            SubwordTokenizer(vocab_sz=100)
    else:
        pytest.skip("sentencepiece is installed")
