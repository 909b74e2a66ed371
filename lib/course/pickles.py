"""``save_pickle`` / ``load_pickle``: the book's way to keep a ``TabularPandas`` or a table between
notebooks (chapter 9), with a loader that refuses to run code.

A pickle names the functions and classes to call when it is read, so an ordinary ``pickle.load``
of a file from elsewhere runs whatever the file says. ``load_pickle`` reads only what tables and
the library's data objects are made of: pandas and numpy containers, tensors, the built-in value
types, dates, paths, and the classes of fastlearn's data and application layers. Anything else stops with
an error naming it, before it is called; ``trust=True`` reads a file you made yourself as plain
``pickle`` does.

>>> import pathlib, tempfile
>>> file = pathlib.Path(tempfile.mkdtemp()) / "table.pkl"
>>> save_pickle(file, {"rows": [1, 2], "name": "a"}); load_pickle(file)
{'rows': [1, 2], 'name': 'a'}
"""
from __future__ import annotations

import io
import os
import pickle
import warnings
from typing import Any

# Modules whose objects a table or a fastlearn data object is made of. Only these are imported
# while reading (importing a module runs its code), and only the names below are taken from them.
_ROOTS = ("builtins", "__builtin__", "copyreg", "_codecs", "collections", "datetime", "decimal",
          "fractions", "pathlib", "uuid", "zoneinfo", "numpy", "pandas", "torch", "fastlearn")
_BUILTIN_TYPES = {"set", "frozenset", "slice", "complex", "range", "xrange", "bytearray", "bytes", "list",
                  "dict", "tuple", "int", "float", "str", "bool", "object"}
_STDLIB_TYPES = {
    "collections": {"OrderedDict", "defaultdict", "deque", "Counter"},
    "datetime": {"date", "datetime", "time", "timedelta", "timezone"},
    "decimal": {"Decimal"},
    "fractions": {"Fraction"},
    "pathlib": {"Path", "PosixPath", "WindowsPath", "PurePath", "PurePosixPath", "PureWindowsPath"},
    "uuid": {"UUID"},
    "zoneinfo": {"ZoneInfo"},
}
# Functions that only rebuild an object from its saved state.
_REBUILDERS = {
    ("_codecs", "encode"), ("copyreg", "_reconstructor"), ("zoneinfo", "ZoneInfo._unpickle"),
    ("numpy._core.multiarray", "_reconstruct"), ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "scalar"), ("numpy.core.multiarray", "scalar"),
    ("numpy._core.numeric", "_frombuffer"), ("numpy.core.numeric", "_frombuffer"),
    ("numpy.random._pickle", "__bit_generator_ctor"), ("numpy.random._pickle", "__generator_ctor"),
    ("numpy.random._pickle", "__randomstate_ctor"),
    ("pandas._libs.internals", "_unpickle_block"), ("pandas.core.internals.blocks", "new_block"),
    ("pandas.core.indexes.base", "_new_Index"), ("pandas._libs.tslibs.nattype", "_nat_unpickle"),
    ("pandas._libs.tslibs.timedeltas", "_timedelta_unpickle"),
    ("pandas._libs.tslibs.timestamps", "_unpickle_timestamp"),
    ("torch._utils", "_rebuild_tensor_v2"), ("torch._utils", "_rebuild_parameter"),
    ("torch.serialization", "_get_layout"), ("torch", "Size"), ("torch", "device"),
}
# fastlearn's data containers live in these packages; classes elsewhere (training, launching,
# logging) are not needed to rebuild data and are not read.
_FASTLEARN_DATA = ("fastlearn.foundation", "fastlearn.data", "fastlearn.tabular", "fastlearn.collab",
                   "fastlearn.text", "fastlearn.vision")
# Where pandas and numpy define their containers, dtypes and scalars (not their readers, writers,
# expression evaluators or plotting), and the numpy classes that would touch files or call others.
_PANDAS_DATA = ("pandas.arrays", "pandas.core.frame", "pandas.core.series", "pandas.core.indexes", "pandas.core.internals",
                "pandas.core.arrays", "pandas.core.dtypes", "pandas._libs")
_NUMPY_DATA = ("numpy", "numpy.dtypes", "numpy.random", "numpy.ma.core")
_NUMPY_OTHERS = {"memmap", "vectorize", "nditer"}
_PANDAS_OTHERS = {"ExcelFile", "ExcelWriter", "HDFStore", "Grouper", "NamedAgg", "NamedFunc"}  # public classes


def save_pickle(file: str | os.PathLike, obj: Any) -> None:
    """Pickle ``obj`` to ``file`` (chapter 9 saves its ``TabularPandas`` this way).

    ``learn.export`` is the library's format for trained models; this is for tables and data.

    >>> import pathlib, tempfile
    >>> save_pickle(pathlib.Path(tempfile.mkdtemp()) / "x.pkl", [1, 2])
    """
    with open(file, "wb") as handle:
        pickle.dump(obj, handle)


def load_pickle(file: str | os.PathLike, trust: bool = False) -> Any:
    """Read back what :func:`save_pickle` wrote, without running code named in the file.

    Tables (pandas, numpy), tensors, built-in values, dates, paths and fastlearn's data objects (such as a
    ``TabularPandas``) load as they were. Anything else (a function, a class from another package,
    an object from your own script) raises ``pickle.UnpicklingError`` naming it before it is
    called. ``trust=True`` loads any pickle, as ``pickle.load`` does: only for files you made or
    whose source you trust, because such a file can run any code when it is read.

    >>> import pathlib, tempfile
    >>> file = pathlib.Path(tempfile.mkdtemp()) / "x.pkl"
    >>> save_pickle(file, {"a": (1, 2.5)}); load_pickle(file)
    {'a': (1, 2.5)}
    """
    with open(file, "rb") as handle:
        if trust:
            return pickle.load(handle)
        return _DataUnpickler(handle, str(file)).load()


class _DataUnpickler(pickle.Unpickler):
    """An unpickler that takes only the names :func:`_readable` accepts."""

    def __init__(self, handle, source: str):
        super().__init__(handle)
        self.source = source

    def find_class(self, module: str, name: str) -> Any:
        if module.split(".")[0] not in _ROOTS:
            raise self._refusal(module, name)
        if (module, name) == ("torch.storage", "_load_from_bytes"):  # a tensor's storage: torch's own safe reader
            return self._storage_from_bytes
        obj = super().find_class(module, name)
        if not _readable(module, name, obj):
            raise self._refusal(module, name)
        return obj

    def _storage_from_bytes(self, data: bytes) -> Any:
        """A tensor's storage as pickle saves it, read by torch's ``weights_only`` reader (it runs no code)."""
        import torch
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # a note on the pickle protocol, not about the data
                return torch.load(io.BytesIO(data), weights_only=True)
        except pickle.UnpicklingError as error:
            raise self._refusal("torch.storage", "_load_from_bytes on bytes that are not a tensor's storage") from error

    def _refusal(self, module: str, name: str) -> pickle.UnpicklingError:
        return pickle.UnpicklingError(
            f"{self.source} asks to call {module}.{name}, which load_pickle does not run: a pickle can run any "
            "code it names when it is read, so load_pickle reads only tables, built-in values and fastlearn's data "
            "objects. If you made this file or trust where it came from, load it with "
            "load_pickle(file, trust=True); to share a trained model, use learn.export and load_learner")


def _readable(module: str, name: str, obj: Any) -> bool:
    """Whether ``module.name`` (resolved to ``obj``) only rebuilds data when a pickle calls it."""
    root = module.split(".")[0]
    if (module, name) in _REBUILDERS:
        return True
    if root in ("builtins", "__builtin__"):
        return name in _BUILTIN_TYPES
    if root in _STDLIB_TYPES:
        return name in _STDLIB_TYPES[root]
    if not callable(obj):  # constants such as pandas.NA or torch.float32
        return root in ("numpy", "pandas", "torch")
    defined_in = getattr(obj, "__module__", None) or ""
    if name.startswith("__pyx_unpickle_"):  # Cython's state restorers
        return module.startswith(("pandas._libs.", "numpy.random."))
    if root == "pandas":  # public classes say they are defined in pandas itself
        public = defined_in == "pandas" and name not in _PANDAS_OTHERS
        return isinstance(obj, type) and (public or _inside(defined_in, _PANDAS_DATA))
    if root == "numpy":
        return isinstance(obj, type) and _inside(defined_in, _NUMPY_DATA) and name not in _NUMPY_OTHERS
    return root == "fastlearn" and isinstance(obj, type) and _inside(defined_in, _FASTLEARN_DATA)


def _inside(module: str, packages: tuple[str, ...]) -> bool:
    return any(module == package or module.startswith(package + ".") for package in packages)
