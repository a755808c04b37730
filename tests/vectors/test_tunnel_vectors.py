"""Every tunnel vector reproduces byte for byte: the frames a real kernel's tunnel GSO sent.

Vectors live in tests/vectors/kernel/tunnels/<generation>/ and were recorded by
tools/kernel_oracle/tunnel_cases.py: a real tunnel device (vxlan, geneve, gretap, gre, ip6gre,
ip6gretap, ipip, sit, ip6tnl) built the super-packet, a tc mirror of the underlay's egress caught
it whole (``input.pcap``), and veth0's software GSO sent ``kernel_out.pcap``. softgso gets the
super-packet as a capture (the plain ``segment`` path: tunnel recognised from the bytes, checksum
state classified) with the case's gso_size, the device profile that models veth0's ethtool
settings and, for the inner-USO cases (a UDP socket with UDP_SEGMENT over the tunnel device),
``--udp-gso udp_l4``; nothing else. Cases are discovered, never listed.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from softgso.check.golden import read_pcap_frames
from softgso.features import PROFILES
from softgso.job import Outcome, SegmentOptions, process_frame
from softgso.virtio import kernel_generation_of_release

TUNNELS = Path(__file__).parent / "kernel" / "tunnels"
CASES = sorted(p.parent for p in TUNNELS.rglob("meta.json"))
SEGMENTED = [c for c in CASES if "control" not in c.name]
CONTROLS = [c for c in CASES if "control" in c.name]
IDS = [str(c.relative_to(TUNNELS)) for c in SEGMENTED]


def _meta(case: Path) -> dict:
    return json.loads((case / "meta.json").read_text())


@pytest.mark.parametrize("generation", ["6.1", "6.12"])
def test_the_designed_matrix_is_there(generation: str) -> None:
    designed = [c for c in SEGMENTED if c.parent.name == generation and not c.name.startswith("random_")]
    assert len(designed) >= 40
    kinds = {c.name.split("_")[0] for c in designed}
    assert kinds >= {"vxlan4", "vxlan6", "geneve4", "geneve6", "gretap4", "gre4", "ip6gre", "ip6gretap", "ipip",
                     "sit", "ip6tnl", "uso", "bpf"}
    assert any(c.name.startswith("bpf_mpls_in_udp") for c in designed)
    assert any(c.name.startswith("bpf_mpls_in_gre") for c in designed)


@pytest.mark.parametrize("case", SEGMENTED, ids=IDS)
def test_tunnel_vector_reproduced(case: Path) -> None:
    meta = _meta(case)
    inputs = read_pcap_frames(case / "input.pcap")
    expected = read_pcap_frames(case / "kernel_out.pcap")
    assert len(inputs) == 1 and len(expected) >= 2, "the vector holds one super-packet and its segments"
    # a USO super-packet (a UDP_SEGMENT socket) is cut only when asked: the capture carries no GSO metadata
    udp_gso = "udp_l4" if meta["inner_gso_type"] == "udp_l4" else "off"
    options = SegmentOptions(device=PROFILES[meta["softgso_profile"]], gso_size=meta["gso_size"], udp_gso=udp_gso,
                             kernel=kernel_generation_of_release(meta["kernel_release"]))
    result = process_frame(inputs[0], options)
    assert result.outcome == Outcome.SEGMENTED, result.reason
    assert len(result.frames) == len(expected), "segment count differs from the kernel's"
    for index, (ours, kernels) in enumerate(zip(result.frames, expected, strict=True)):
        first = next((i for i in range(min(len(ours), len(kernels))) if ours[i] != kernels[i]), None)
        assert ours == kernels, f"segment {index} differs from the kernel's (lengths {len(ours)}/{len(kernels)}, " \
                                f"first byte {first})"


@pytest.mark.parametrize("case", CONTROLS, ids=[str(c.relative_to(TUNNELS)) for c in CONTROLS])
def test_gre_with_sequence_numbers_is_never_a_super_packet(case: Path) -> None:
    """Spec 3.9: a GRE device with oseq withholds GSO; every packet leaves encapsulated on its own."""
    supers = read_pcap_frames(case / "input.pcap")
    sent = read_pcap_frames(case / "kernel_out.pcap")
    assert len(supers) == len(sent) >= 2  # the mirror saw N packets, not one super-packet
    sequence_numbers = [int.from_bytes(f[14 + 20 + 4 : 14 + 20 + 8], "big") for f in supers]
    assert sequence_numbers == list(range(sequence_numbers[0], sequence_numbers[0] + len(supers)))
    for frame in sent:  # each already fits: softgso leaves it alone
        assert process_frame(frame, SegmentOptions(device=PROFILES["no-offload"])).outcome == Outcome.UNCHANGED
