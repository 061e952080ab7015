"""``dualvgr fetch``: download an experiment's outside inputs (weights, GloVe, videos), resumable, checked, atomic.

- :mod:`dualvgr.fetch.files`: what a file must be (sha256, prefix or size), partial names, the error type;
- :mod:`dualvgr.fetch.transfer`: one HTTP download (range requests, sha256 or size check, rename at the end);
- :mod:`dualvgr.fetch.unpack`: a zip member or a tar's folder put where the experiment reads it;
- :mod:`dualvgr.fetch.sources`: the table of sources and the experiment's inputs (downloadable or by hand);
- :mod:`dualvgr.fetch.command`: the command, reporting each input.
"""

from dualvgr.fetch.command import FetchReport, fetch_inputs
from dualvgr.fetch.files import Expected, FetchError
from dualvgr.fetch.sources import SOURCES, Input, Source, plan_inputs
from dualvgr.fetch.transfer import download

__all__ = ["SOURCES", "Expected", "FetchError", "FetchReport", "Input", "Source", "download", "fetch_inputs",
           "plan_inputs"]
