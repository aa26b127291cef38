"""Statistical disclosure control, pure (runs in the service): automated checks on the files of an
export request; imports nothing else of cloisonne.

They inform reviewers and never approve. ``check_request`` returns a ``RequestReport`` (one
``FileReport`` per file, statuses pass / review / fail as in ACRO, JSON-ready via
``to_dict``); ``check_file`` checks one file. Rules are small pure functions over tables
(``rules``); how count, magnitude and label columns are recognised is in ``columns``.
"""

from .check import check_file, check_request
from .findings import FileReport, Finding, RequestReport, Status
from .settings import SDCSettings

__all__ = [
    "FileReport",
    "Finding",
    "RequestReport",
    "SDCSettings",
    "Status",
    "check_file",
    "check_request",
]
