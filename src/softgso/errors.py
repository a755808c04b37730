"""One exception hierarchy for everything softgso refuses.

Strategy: every refusal the kernel makes maps to exactly one class here, named after the kind of
check that failed, carrying the kernel errno it stands for (``errno_name``) and the place that
refused (``where``: the kernel function or rule). Frontends print ``str(error)``, which says what
was wrong in words and ends with the kernel's errno, e.g.
"tcp4_gso_segment: gso_type lacks TCPV4 on an IPv4 packet (kernel: -EINVAL)".
Errors that are not the kernel's (a broken capture file, a bad command-line value) have their own
branches so that a frontend can tell "the kernel would drop this packet" from "this input is bad".
"""

from __future__ import annotations


class SoftGSOError(Exception):
    """Root of every error softgso raises on purpose."""

    errno_name: str = ""

    def __init__(self, reason: str, *, where: str = "") -> None:
        self.reason = reason
        self.where = where
        super().__init__(self._render())

    def _render(self) -> str:
        text = f"{self.where}: {self.reason}" if self.where else self.reason
        if self.errno_name:
            text += f" (kernel: -{self.errno_name})"
        return text


# --- refusals the kernel makes (the packet is dropped there) -------------------------------------


class KernelRefusal(SoftGSOError):
    """The kernel would refuse (drop) this packet; ``errno_name`` says how it reports it."""


class InvalidPacketError(KernelRefusal):
    """Headers or metadata that a kernel check rejects with -EINVAL."""

    errno_name = "EINVAL"


class ProtocolNotSupportedError(KernelRefusal):
    """No offload handler for the (inner) protocol, or an unsupported combination: -EPROTONOSUPPORT."""

    errno_name = "EPROTONOSUPPORT"


class OutOfMemoryError(KernelRefusal):
    """The kernel's -ENOMEM answers (no headroom, allocation refused)."""

    errno_name = "ENOMEM"


class VirtioHeaderError(InvalidPacketError):
    """virtio_net_hdr_to_skb (or its caller's hdr_len check) refused the header: -EINVAL."""


class ActionError(InvalidPacketError):
    """An MPLS/VLAN action the kernel helper refuses (skb_mpls_push, skb_mpls_dec_ttl, ...)."""


# --- errors that are not the kernel's ------------------------------------------------------------


class UsageError(SoftGSOError):
    """A bad argument: an unknown profile, label 3 to push, a malformed action string."""


class CaptureError(SoftGSOError):
    """A capture file that cannot be read or written (truncated, unknown link type, ...)."""


__all__ = [
    "ActionError", "CaptureError", "InvalidPacketError", "KernelRefusal", "OutOfMemoryError", "ProtocolNotSupportedError",
    "SoftGSOError", "UsageError", "VirtioHeaderError",
]
