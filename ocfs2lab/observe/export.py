"""Timeline exports, in one place: flat records, a pandas DataFrame, a matplotlib plot, JSON lines.

Each export lives in its own module, which this one gathers:
[`ocfs2lab.observe.records`][ocfs2lab.observe.records] (records and DataFrame),
[`ocfs2lab.observe.plotting`][ocfs2lab.observe.plotting] (the plot) and
[`ocfs2lab.observe.jsonl`][ocfs2lab.observe.jsonl] (JSON lines), with
[`save_jsonl`][ocfs2lab.observe.export.save_jsonl] and
[`load_jsonl`][ocfs2lab.observe.export.load_jsonl] for whole timelines. The
[`Timeline`][ocfs2lab.observe.timeline.Timeline] methods of the same names use those modules
directly: this module depends on the timeline, never the other way round.

pandas and matplotlib belong to the optional ``notebook`` extra and are imported only
inside the functions that need them; without them those functions raise
[`MissingDependency`][ocfs2lab.observe.optional.MissingDependency] with the install command
([`ocfs2lab.observe.optional`][ocfs2lab.observe.optional]).
"""

from __future__ import annotations

from pathlib import Path

from ocfs2lab.observe.jsonl import FORMAT, event_from_json, event_to_json
from ocfs2lab.observe.optional import MissingDependency, require_module
from ocfs2lab.observe.plotting import plot
from ocfs2lab.observe.records import RECORD_COLUMNS, to_dataframe, to_records
from ocfs2lab.observe.timeline import Timeline

__all__ = [
    "FORMAT",
    "RECORD_COLUMNS",
    "MissingDependency",
    "event_from_json",
    "event_to_json",
    "load_jsonl",
    "plot",
    "require_module",
    "save_jsonl",
    "to_dataframe",
    "to_records",
]


def save_jsonl(timeline: Timeline, path: str | Path) -> Path:
    """Write ``timeline`` as JSON lines: a header line, then one event per line (as
    [`Timeline.save_jsonl`][ocfs2lab.observe.timeline.Timeline.save_jsonl]).

    Returns:
        The path written.

    Raises:
        OSError: The file cannot be written.
    """
    return timeline.save_jsonl(path)


def load_jsonl(path: str | Path) -> Timeline:
    """Read a timeline written by [`save_jsonl`][ocfs2lab.observe.export.save_jsonl] (as
    [`Timeline.load_jsonl`][ocfs2lab.observe.timeline.Timeline.load_jsonl]).

    Returns:
        A new [`Timeline`][ocfs2lab.observe.timeline.Timeline] with the same origin and events
        (``seq`` kept).

    Raises:
        ParseError: Not a timeline file, or a line that is not a valid event.
        OSError: The file cannot be read.
    """
    return Timeline.load_jsonl(path)
