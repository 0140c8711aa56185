"""Observation: kernel messages and lab actions on one clock, and the lost-write recorder.

* [`Timeline`][ocfs2lab.observe.timeline.Timeline]: every node's kernel events and the library's own
  actions, stamped with the host's wall clock; waits
  ([`Timeline.expect`][ocfs2lab.observe.timeline.Timeline.expect]), exports (records, DataFrame,
  plot, JSON lines).
* [`ConsoleFeed`][ocfs2lab.observe.sources.ConsoleFeed] and
  [`DmesgPoller`][ocfs2lab.observe.sources.DmesgPoller]: what feeds a timeline (a VM's serial
  console; ``dmesg`` through a runner).
* [`WriteRecorder`][ocfs2lab.observe.recorder.WriteRecorder]: fsync acknowledgements from the nodes'
  writers, and [`WriteRecorder.verify`][ocfs2lab.observe.recorder.WriteRecorder.verify] to read them
  back after a fault ([`ocfs2lab.observe.verify`][ocfs2lab.observe.verify]); what the writers
  send: [`ocfs2lab.observe.wire`][ocfs2lab.observe.wire].
"""

from ocfs2lab.formats.kmsg import ERROR_KINDS, EventKind, KernelEvent
from ocfs2lab.observe.events import Kind, LabEvent, LabEventKind, TimelineEvent
from ocfs2lab.observe.optional import MissingDependency
from ocfs2lab.observe.recorder import SLIRP_HOST, WriteRecorder
from ocfs2lab.observe.sources import (
    ClockMap,
    ConsoleFeed,
    DmesgDedupe,
    DmesgLine,
    DmesgPoller,
    LineSink,
    LineSource,
    StampedLine,
    parse_dmesg_poll,
)
from ocfs2lab.observe.timeline import (
    Expect,
    ExpectTimeout,
    ForbiddenEvent,
    KernelErrorsFound,
    Step,
    Timeline,
    TimelineError,
    kind_of,
)
from ocfs2lab.observe.verify import (
    LostWrites,
    Reader,
    VerifyReport,
    WriteCheck,
    WriteStatus,
    local_reader,
    runner_reader,
    verify_acks,
)
from ocfs2lab.observe.wire import WriteAck, WriterInfo, record_content, writer_script

__all__ = [
    "ERROR_KINDS",
    "SLIRP_HOST",
    "ClockMap",
    "ConsoleFeed",
    "DmesgDedupe",
    "DmesgLine",
    "DmesgPoller",
    "EventKind",
    "Expect",
    "ExpectTimeout",
    "ForbiddenEvent",
    "KernelErrorsFound",
    "KernelEvent",
    "Kind",
    "LabEvent",
    "LabEventKind",
    "LineSink",
    "LineSource",
    "LostWrites",
    "MissingDependency",
    "Reader",
    "StampedLine",
    "Step",
    "Timeline",
    "TimelineError",
    "TimelineEvent",
    "VerifyReport",
    "WriteAck",
    "WriteCheck",
    "WriteRecorder",
    "WriteStatus",
    "WriterInfo",
    "kind_of",
    "local_reader",
    "parse_dmesg_poll",
    "record_content",
    "runner_reader",
    "verify_acks",
    "writer_script",
]
