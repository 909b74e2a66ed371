"""``ClassificationInterpretation`` for image classifiers; it lives in the data layer
(:mod:`fastlearn.data.interpret`), where every application's classifiers use it, and is importable
from here as before.

>>> from fastlearn.vision.interpret import ClassificationInterpretation
>>> ClassificationInterpretation.__module__
'fastlearn.data.interpret'
"""
from fastlearn.data.interpret import ClassificationInterpretation  # noqa: F401  (imported from here too)
