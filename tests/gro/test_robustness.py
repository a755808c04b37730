"""GRO never raises on what a capture may hold: truncated, mutated or random frames are passed up or
coalesced, and every frame in is in exactly one packet out."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from softgso.check.synth import SuperPacketSpec, build_frame
from softgso.cli.runner import _device
from softgso.gro import GroDevice, coalesce_frames
from softgso.job import SegmentOptions, process_frame


def _valid_stream(ipv6: bool, vlan: bool, udp: bool) -> list[bytes]:
    spec = SuperPacketSpec(ipv6=ipv6, udp=udp, payload=bytes(range(256)) * 12, tcp_flags=0x10,
                           vlan_tags=((0x8100, 5),) if vlan else ())
    options = SegmentOptions(device=_device("no-offload", 1500, None), gso_size=1000,
                             gso_type="udp_l4" if udp else "auto")
    return process_frame(build_frame(spec), options).frames


def _tunnel_stream(name: str) -> list[bytes]:
    from pathlib import Path

    from softgso.io import open_capture

    path = Path(__file__).resolve().parents[1] / "vectors" / "kernel" / "tunnels" / "6.1" / name / "kernel_out.pcap"
    with open_capture(path) as reader:
        return [bytes(record.data) for record in reader]


STREAMS = [_valid_stream(ipv6, vlan, udp) for ipv6 in (False, True) for vlan in (False, True) for udp in (False, True)]
STREAMS += [_tunnel_stream(name) for name in ("gretap4_csum_in4_idwrap__tx_off", "gre4_key_in4_fin__tx_off",
                                              "ipip_in4_dfclear_idwrap__tx_off", "ip6tnl_6in6_noencap__tx_off")]


@st.composite
def mutated_frames(draw: st.DrawFn) -> list[bytes]:
    frames = [bytearray(f) for f in draw(st.sampled_from(STREAMS))]
    for _ in range(draw(st.integers(0, 6))):
        frame = frames[draw(st.integers(0, len(frames) - 1))]
        action = draw(st.sampled_from(["flip", "truncate", "extend"]))
        if action == "flip" and frame:
            position = draw(st.integers(0, min(len(frame) - 1, 80)))
            frame[position] ^= draw(st.integers(1, 255))
        elif action == "truncate":
            del frame[draw(st.integers(0, len(frame))):]
        else:
            frame += bytes(draw(st.integers(1, 8)))
    return [bytes(f) for f in frames] + draw(st.lists(st.binary(max_size=80), max_size=3))


@settings(max_examples=300, deadline=None)
@given(frames=mutated_frames(), kernel=st.sampled_from(["6.1", "6.12", "mainline"]), mpls=st.booleans(),
       udp=st.booleans(), batch=st.integers(1, 5))
def test_never_raises_and_accounts_for_every_frame(frames: list[bytes], kernel: str, mpls: bool, udp: bool,
                                                   batch: int) -> None:
    device = GroDevice(kernel=kernel, mpls=mpls, udp_gro_forwarding=udp)
    packets = list(coalesce_frames(((f, i) for i, f in enumerate(frames)), device, batch))
    assert sum(packet.segs for packet in packets) == len(frames)
    # a packet that merged nothing is some input frame byte for byte
    singles = [packet.data for packet in packets if packet.segs == 1]
    assert all(data in frames for data in singles)
