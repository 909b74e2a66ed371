"""Looking at and improving a trained model's predictions: ``show_results`` and test-time
augmentation, as functions of a learner (``learn.show_results()`` and ``learn.tta()`` call them).

>>> fig = show_results(learn, max_n=6)      # doctest: +SKIP
>>> preds, targs = tta(learn)               # doctest: +SKIP
"""
from fastlearn.data.results import show_results  # noqa: F401  (re-exported for vision users)
from fastlearn.inference import test_time_augmentation as tta  # noqa: F401
