"""fastlearn.collab: ratings loaders, EmbeddingDotBias / EmbeddingNN and collab_learner."""
from fastlearn.collab.data import CollabDataBunch, CollabDataLoaders
from fastlearn.collab.learner import collab_learner
from fastlearn.collab.models import EmbeddingDotBias, EmbeddingNN
from fastlearn.layers import Embedding, SigmoidRange, sigmoid_range
from fastlearn.tabular.model import get_emb_sz

__all__ = ["CollabDataBunch", "CollabDataLoaders", "Embedding", "EmbeddingDotBias", "EmbeddingNN", "SigmoidRange",
           "collab_learner", "get_emb_sz", "sigmoid_range"]
