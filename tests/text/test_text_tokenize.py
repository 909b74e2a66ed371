"""Tokenizer rules, word splitting, Numericalize."""
from __future__ import annotations

from collections import Counter

import pytest
import torch

from fastlearn.text import (Numericalize, SubwordTokenizer, Tokenizer, WordTokenizer, detokenize, fix_html,
                            make_vocab, replace_all_caps, replace_maj, replace_rep, replace_wrep)


def test_rules_mark_capitals_and_repetitions():
    assert replace_all_caps("I LOVE IT") == "i xxup love xxup it"            # one capital is only lowered
    assert replace_maj("Emma smiled at PreProcessor") == "xxmaj emma smiled at PreProcessor"
    assert replace_rep("sooooo").split() == ["s", "xxrep", "5", "o"]
    assert replace_rep("www.fast.ai").split() == ["xxrep", "3", "w", ".fast.ai"]   # 3 or more
    assert replace_rep("cool") == "cool"
    assert replace_wrep("very very very good").split() == ["xxwrep", "3", "very", "good"]
    assert replace_wrep("so so good") == "so so good"
    assert replace_wrep("no no no!").split() == ["xxwrep", "3", "no", "!"]
    assert fix_html("say &quot;hi&quot;<br />it&#39;s&nbsp;good...") == 'say "hi"\nit\'s good …'
    assert fix_html("WikiText 1 @,@ 000 @.@ 5 <unk>") == "WikiText 1,000.5 xxunk"


def test_tokenizer_applies_rules_and_bos():
    tokens = Tokenizer()("The food was GREAT!!!! Really <br />good")
    assert tokens == ["xxbos", "xxmaj", "the", "food", "was", "xxup", "great", "xxrep", "4", "!",
                      "xxmaj", "really", "\n", "good"]
    assert Tokenizer()("I'm here. NOT happy, so so so sad") == [
        "xxbos", "xxmaj", "i", "'m", "here", ".", "xxup", "not", "happy", ",", "xxwrep", "3", "so", "sad"]
    assert Tokenizer()("Line one.<br /><br />  Line two") == ["xxbos", "xxmaj", "line", "one", ".", "\n\n▁",
                                                            "xxmaj", "line", "two"]


@pytest.mark.parametrize("text, tokens", [
    ("Don't pay $3.50, it's bad.", ["Do", "n't", "pay", "$", "3.50", ",", "it", "'s", "bad", "."]),
    ("I can't, won't; you're sure?!", ["I", "ca", "n't", ",", "wo", "n't", ";", "you", "'re", "sure", "?", "!"]),
    ("e.g. Mr. Smith at 5pm (not 13pm)", ["e.g.", "Mr.", "Smith", "at", "5", "pm", "(", "not", "13pm", ")"]),
    ("well-known 10-20 3.5kg 100% #1", ["well", "-", "known", "10", "-", "20", "3.5", "kg", "100", "%", "#", "1"]),
    ("great:) and/or \"quoted\" 'x'", ["great", ":)", "and/or", '"', "quoted", '"', "'", "x", "'"]),
    ("see www.fast.ai/INDEX or http://a.b/c?d=e.", ["see", "www.fast.ai/INDEX", "or", "http://a.b/c?d=e", "."]),
    ("u.s. U.S. a.b.c. Ph.D. etc.", ["u.s", ".", "U.S.", "a.b.c", ".", "Ph.D.", "etc", "."]),
    ("So... what?? gonna cannot Im", ["So", "...", "what", "?", "?", "gon", "na", "can", "not", "I", "m"]),
    ("A\n\nB  C\tD", ["A", "\n\n", "B", " ", "C", "\t", "D"]),
])
def test_word_tokenizer_splits_as_spacy(text, tokens):
    assert WordTokenizer()([text]) == [tokens]


def test_word_tokenizer_other_languages_are_refused():
    with pytest.raises(ValueError, match="SubwordTokenizer"):
        WordTokenizer(lang="fr")


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


@pytest.mark.parametrize("text", ["It isn't BAD, said Emma.", "It is sooooo good!!!", "I said: (really) yesss",
                                  "Line one.\nLine two, $5 for 100% of it."])
def test_detokenize_gives_the_text_back(text):
    tokens = Tokenizer()(text)
    assert detokenize(tokens) == text
    assert tokens.count("xxrep") == text.count("ooooo") + text.count("!!!") + text.count("sss")


def test_detokenize_joins_repetitions_to_their_word():
    assert detokenize(["xxbos", "s", "xxrep", "5", "o", "good", "xxrep", "3", "!"]) == "sooooo good!!!"
    assert detokenize(["xxrep", "3", "w", ".fast.ai"]) == "www .fast.ai"
    assert detokenize(["xxwrep", "3", "no", "xxup", "way"]) == "no no no WAY"


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
