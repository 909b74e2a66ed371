"""fastlearn.data: transforms, blocks, getters, splitters, DataBlock and DataBunch."""
from fastlearn.data.core import DataBunch, DataLoader, DataLoaders

__all__ = ["DataBunch", "DataLoader", "DataLoaders"]
