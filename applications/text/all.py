"""Course-style star import: ``from fastlearn.text.all import *`` (core, data layer and text).

Importing it gives the course's ``defaults`` the tokenizer rules, ``defaults.text_proc_rules``
(chapter 10 prints them), as fastai's text import does.
"""
from fastlearn.basics import *  # noqa: F401,F403  (Learner, losses, metrics, optimizers, untar_data...)
from fastlearn.basics import __all__ as _basics_all
from fastlearn.course import defaults
from fastlearn.data.all import *  # noqa: F401,F403
from fastlearn.data.all import __all__ as _data_all
from fastlearn.text import *  # noqa: F401,F403
from fastlearn.text import __all__ as _text_all
from fastlearn.text.rules import text_proc_rules

defaults.text_proc_rules = text_proc_rules

__all__ = list(dict.fromkeys(list(_basics_all) + list(_data_all) + list(_text_all)))
