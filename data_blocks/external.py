"""The course's ``fastai.data.external`` names: ``URLs``, ``untar_data``, ``download_url``, and
the built-in offline datasets (see ``fastlearn.external`` and ``fastlearn.datasets``).

>>> from fastlearn.data.external import URLs, untar_data, builtin_path
>>> path = builtin_path(URLs.MNIST_SAMPLE)   # doctest: +SKIP
"""
from fastlearn.datasets import (
    FASHION_CLASSES,
    builtin_path,
    credit_data,
    fashion_keypoints,
    fashion_mnist,
    fashion_multilabel,
    fashion_segmentation,
    food_reviews,
    human_numbers,
    jane_austen,
    mnist_digits,
    mnist_sample,
    movielens_100k,
    wa_churn,
)
from fastlearn.download import download_url
from fastlearn.external import URLs, untar_data
