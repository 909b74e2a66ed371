"""fastlearn.text: tokenization, numericalization, language-model and classifier loaders, AWD-LSTM,
``language_model_learner`` and ``text_classifier_learner``; pretrained Hugging Face transformer
encoders fine-tuned as classifiers (``HFTextBlock``, ``transformer_classifier_learner``; the
``transformers`` extra)."""
from fastlearn.loading import load_learner
from fastlearn.text.callbacks import ModelResetter, RNNRegularizer
from fastlearn.text.rules import (BOS, EOS, FLD, PAD, SPECIAL_TOKENS, TK_MAJ, TK_REP, TK_UP, TK_WREP, UNK,
                                  decode_spec_tokens, default_rules, detokenize, fix_html, lowercase, replace_all_caps,
                                  replace_maj, replace_rep, replace_wrep, rm_useless_spaces, spec_add_spaces,
                                  text_proc_rules)
from fastlearn.text.tokenize import SubwordTokenizer, Tokenizer
from fastlearn.text.words import WordTokenizer
from fastlearn.text.data import TextBlock, TextDataBunch, TextDataLoaders
from fastlearn.text.hf_data import HFTextBlock, HFTextDataBunch, HFTokenizer
from fastlearn.text.hf_model import (TransformerClassifier, TransformerLearner, get_transformer_classifier,
                                     transformer_classifier_learner, transformer_split)
from fastlearn.text.learner import TextLearner, language_model_learner, text_classifier_learner
from fastlearn.text.loaders import LMDataLoader, PadInput, SortedDL, pad_input
from fastlearn.text.models import (AWD_LSTM, LinearDecoder, PoolingLinearClassifier, SentenceEncoder,
                                   SequentialRNN, awd_lstm_clas_config, awd_lstm_clas_split, awd_lstm_lm_config,
                                   awd_lstm_lm_split, get_language_model, get_text_classifier)
from fastlearn.text.vocab import Numericalize, make_vocab

__all__ = [
    "AWD_LSTM", "BOS", "EOS", "FLD", "HFTextBlock", "HFTextDataBunch", "HFTokenizer", "LMDataLoader",
    "LinearDecoder", "ModelResetter", "Numericalize", "PAD", "PadInput", "PoolingLinearClassifier",
    "RNNRegularizer", "SPECIAL_TOKENS", "SentenceEncoder", "SequentialRNN", "SortedDL", "SubwordTokenizer",
    "TK_MAJ", "TK_REP", "TK_UP", "TK_WREP", "TextBlock", "TextDataBunch", "TextDataLoaders", "TextLearner",
    "Tokenizer", "TransformerClassifier", "TransformerLearner", "UNK", "WordTokenizer", "awd_lstm_clas_config",
    "awd_lstm_clas_split", "awd_lstm_lm_config", "awd_lstm_lm_split", "decode_spec_tokens", "default_rules",
    "detokenize", "fix_html", "get_language_model", "get_text_classifier", "get_transformer_classifier",
    "language_model_learner", "load_learner", "lowercase", "make_vocab", "pad_input", "replace_all_caps",
    "replace_maj", "replace_rep", "replace_wrep", "rm_useless_spaces", "spec_add_spaces",
    "text_classifier_learner", "text_proc_rules", "transformer_classifier_learner", "transformer_split",
]
