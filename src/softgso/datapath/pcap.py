"""The MPLS link capture: every frame that crosses the link, as a pcap (Ethernet link type).

Written through :func:`softgso.io.open_writer` (atomic: the file appears on close). Frames are
copied when captured, because the receiving LER pops labels in the same buffer afterwards.
"""

from __future__ import annotations

import time

from ..io import LINKTYPE_ETHERNET, CaptureWriter, open_writer

# large enough for a whole 64 KB GSO frame crossing a link that can carry it
SNAPLEN = 262144


class LinkCapture:
    """A capture hook (call it with the frame bytes) writing a pcap file."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._writer: CaptureWriter = open_writer(path, format="pcap", linktype=LINKTYPE_ETHERNET, snaplen=SNAPLEN,
                                                  fsync=False)
        self.frames = 0

    def __call__(self, frame: bytes | bytearray) -> None:
        self._writer.write_record(time.time_ns(), (bytes(frame),))
        self.frames += 1

    def flush(self) -> int:
        """Write out every queued record now; the file's descriptor (a process that forks hands it on)."""
        return self._writer.fileno()

    def close(self) -> None:
        """Commit the file onto its path."""
        self._writer.close()
