"""A naive Scapy segmenter: the peer softgso is measured against (``softgso bench``).

What a user would write with Scapy in a few lines: read every packet, and for a TCP packet whose
payload exceeds the MSS, copy the packet per piece of payload, advance seq and IP ID, drop the
lengths and checksums and let Scapy rebuild them. MPLS labels and VLAN tags are kept because
Scapy rebuilds the whole stack; labels count toward the MTU, as softgso counts them. Not a
reference for correctness (softgso's tests are); the bench checks its output (softgso.check.segcheck)
before its time counts, and the tests use it as an independent producer of segmentations.

Scapy is the optional extra ``softgso[bench]``: nothing else in softgso imports this module (the
bench runs it as a script, in a child process, once it has found Scapy).

    python -m softgso.check.scapy_segmenter IN.pcap OUT.pcap [--mtu 1500]
"""

from __future__ import annotations

import argparse
from typing import Any

from scapy.all import IP, TCP, UDP, IPv6, PcapReader, PcapWriter, Raw  # type: ignore[attr-defined]
from scapy.contrib.mpls import MPLS  # also binds MPLS to its ethertypes
from scapy.packet import Packet


def segment(packet: Packet, mtu: int) -> list[Packet]:
    """The packet's segments (the packet itself when it fits)."""
    ip = packet.getlayer(IP) or packet.getlayer(IPv6)
    l4 = packet.getlayer(TCP) or packet.getlayer(UDP)
    if ip is None or l4 is None or Raw not in l4:
        return [packet]
    payload = bytes(l4[Raw].load)
    top = packet.getlayer(MPLS) or ip  # the label stack travels within the MTU
    header_len = len(top) - len(payload)
    mss = mtu - header_len
    if len(payload) <= mss:
        return [packet]
    segments = []
    for index, start in enumerate(range(0, len(payload), mss)):
        seg = packet.copy()
        # the copy has the layers the original has
        seg_ip: Any = seg.getlayer(IP) or seg.getlayer(IPv6)
        seg_l4: Any = seg.getlayer(TCP) or seg.getlayer(UDP)
        seg_l4[Raw].load = payload[start : start + mss]
        if isinstance(seg_l4, TCP):
            seg_l4.seq = (l4.seq + start) & 0xFFFFFFFF
            if start + mss < len(payload):
                seg_l4.flags = int(seg_l4.flags) & ~0x09
            if index:
                seg_l4.flags = int(seg_l4.flags) & ~0x80
        else:
            del seg_l4.len
        del seg_l4.chksum
        if isinstance(seg_ip, IP):
            seg_ip.id = (ip.id + index) & 0xFFFF
            del seg_ip.len
            del seg_ip.chksum
        else:
            del seg_ip.plen
        segments.append(seg)
    return segments


def main() -> None:
    """Segment IN.pcap into OUT.pcap."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("infile")
    parser.add_argument("outfile")
    parser.add_argument("--mtu", type=int, default=1500)
    args = parser.parse_args()
    with PcapReader(args.infile) as reader, PcapWriter(args.outfile, sync=False) as writer:
        for packet in reader:
            for seg in segment(packet, args.mtu):
                writer.write(seg)


if __name__ == "__main__":
    main()
