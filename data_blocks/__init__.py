"""fastlearn.data: transforms, blocks, getters, splitters, DataBlock and DataBunch."""
from fastlearn.data.batch_transforms import IntToFloatTensor, Normalize
from fastlearn.data.datablock import DataBlock
from fastlearn.data.blocks import (CategoryBlock, MultiCategoryBlock, RegressionBlock, TransformBlock,
                                   register_block)
from fastlearn.data.categorical import (CategoryMap, Categorize, EncodedMultiCategorize, MultiCategorize,
                                        RegressionSetup)
from fastlearn.data.databunch import DataBunch, DataLoader, DataLoaders
from fastlearn.data.datasets import Datasets, TfmdLists
from fastlearn.data.interpret import ClassificationInterpretation
from fastlearn.data.getters import (ColReader, RegexLabeller, get_files, get_image_files, get_text_files,
                                    grandparent_label, image_extensions, parent_label, using_attr)
from fastlearn.data.show import show_at, show_batch
from fastlearn.data.splitters import (ColSplitter, EndSplitter, FileSplitter, FuncSplitter,
                                      GrandparentSplitter, IndexSplitter, MaskSplitter, RandomSplitter,
                                      TrainTestSplitter)
from fastlearn.data.pipeline import Pipeline
from fastlearn.data.transforms import KINDS, Transform, register_transform
from fastlearn.data.tuples import fastuple

__all__ = [
    "KINDS", "CategoryBlock", "CategoryMap", "Categorize", "ClassificationInterpretation", "ColReader", "ColSplitter", "DataBlock",
    "DataBunch", "DataLoader", "DataLoaders", "Datasets", "EncodedMultiCategorize", "EndSplitter",
    "FileSplitter", "FuncSplitter", "GrandparentSplitter", "IndexSplitter", "IntToFloatTensor",
    "MaskSplitter", "MultiCategorize", "MultiCategoryBlock", "Normalize", "Pipeline",
    "RandomSplitter", "RegexLabeller", "RegressionBlock", "RegressionSetup", "TfmdLists",
    "TrainTestSplitter", "Transform", "TransformBlock", "get_files", "get_image_files",
    "get_text_files", "grandparent_label", "image_extensions", "parent_label", "register_block",
    "register_transform", "show_at", "show_batch", "using_attr", "fastuple",
]
