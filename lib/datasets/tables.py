"""Built-in tables for the tabular lessons: credit scoring and telecom churn, from the R data
package ``r-cran-modeldata``. Each is written as a CSV file in a folder built once under
``[paths] data`` and reused.

>>> import pandas as pd
>>> from fastlearn.datasets.tables import credit_data
>>> df = pd.read_csv(credit_data() / "credit_data.csv")   # doctest: +SKIP
>>> df.shape                                              # doctest: +SKIP
(4454, 14)
"""
from __future__ import annotations

import os
import pathlib

from fastlearn.datasets.sources import build_once, r_dataset
from fastlearn.paths import Path


def _modeldata_table(name: str, data: str | os.PathLike | None) -> Path:
    def build(folder: pathlib.Path) -> None:
        r_dataset("modeldata", name).to_csv(folder / f"{name}.csv", index=False)

    return build_once(name, build, data)


def credit_data(data: str | os.PathLike | None = None) -> Path:
    """Credit scoring, a stand-in for the course's ``ADULT_SAMPLE``: folder ``credit_data`` with
    ``credit_data.csv``, 4,454 rows: the target ``Status`` (``good``/``bad``), categorical
    ``Home``, ``Marital``, ``Records``, ``Job`` and continuous ``Seniority``, ``Time``, ``Age``,
    ``Expenses``, ``Income``, ``Assets``, ``Debt``, ``Amount``, ``Price``; 455 missing values
    (empty fields). Built once under ``data`` (default ``[paths] data``).

    Source: ``credit_data`` in the Debian package ``r-cran-modeldata`` (install:
    ``make sources``), MIT licence; data from Scorecard Development (Álvaro Martín). Size: 190 kB.

    >>> import pandas as pd
    >>> pd.read_csv(credit_data() / "credit_data.csv")["Status"].unique()   # doctest: +SKIP
    array(['good', 'bad'], dtype=object)
    """
    return _modeldata_table("credit_data", data)


def wa_churn(data: str | os.PathLike | None = None) -> Path:
    """Telecom customer churn: folder ``wa_churn`` with ``wa_churn.csv``, 7,043 rows, target
    ``churn`` (``Yes``/``No``), 14 categorical or 0/1 columns (``contract``,
    ``payment_method``, ``internet_service``, ...), continuous ``tenure``, ``monthly_charges``,
    ``total_charges`` (11 missing). Built once under ``data`` (default ``[paths] data``).

    Source: ``wa_churn`` in the Debian package ``r-cran-modeldata`` (install: ``make sources``),
    MIT licence; IBM Watson Analytics sample data. Size: 1 MB.

    >>> import pandas as pd
    >>> pd.read_csv(wa_churn() / "wa_churn.csv").shape   # doctest: +SKIP
    (7043, 20)
    """
    return _modeldata_table("wa_churn", data)
