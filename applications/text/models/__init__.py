"""fastlearn.text.models: AWD-LSTM and the language-model and classifier wrappers around it."""
from fastlearn.text.models.awdlstm import (AWD_LSTM, EmbeddingDropout, RNNDropout, WeightDropout, awd_lstm_clas_config,
                                           awd_lstm_lm_config, dropout_mask)
from fastlearn.text.models.core import (LinearDecoder, PoolingLinearClassifier, SentenceEncoder, SequentialRNN,
                                        awd_lstm_clas_split, awd_lstm_lm_split, get_language_model,
                                        get_text_classifier, masked_concat_pool)

__all__ = [
    "AWD_LSTM", "EmbeddingDropout", "LinearDecoder", "PoolingLinearClassifier", "RNNDropout", "SentenceEncoder",
    "SequentialRNN", "WeightDropout", "awd_lstm_clas_config", "awd_lstm_clas_split", "awd_lstm_lm_config",
    "awd_lstm_lm_split", "dropout_mask", "get_language_model", "get_text_classifier", "masked_concat_pool",
]
