"""Hand-written probes: single questions put to the kernel, next to the random plan.

``python -m tools.kernel_oracle probes --out DIR`` records them. The ``x_*`` folders under
tests/vectors/kernel/generated/ came from these; README.md reports what the kernel answered. The
``evidence_*`` probes are the reasons some categories are left out of the random plan (they are
not saved as vectors: tc or veth, not GSO, decides their outcome).
"""

from __future__ import annotations

from .cases import CaseSpec
from .generate import ETHTOOL_CSUM, ETHTOOL_TSO, fit_mtu

LABEL = [[100, 0, 64, "uc"]]
QTAG, STAG = [42, 5, "802.1Q"], [1000, 3, "802.1ad"]


def probes() -> list[CaseSpec]:
    """The probes, MTU fitted, in a fixed order."""
    specs = [
        # csum_start must be the transport header for TCP GSO (the kernel refuses anything else)
        CaseSpec("x_csum_start_in_tcp", "probe", csum_start=38, csum_offset=12, labels=LABEL, paylen=3000),
        CaseSpec("x_csum_start_in_tcp6", "probe", ip_version=6, gso_type=4, csum_start=58, csum_offset=12,
                 labels=LABEL, paylen=3000),
        # TSO devices under a VLAN device: the super-packet passes whole
        CaseSpec("x_tso_on_vlandev", "probe", tx_vlan=[7, "802.1Q"], ethtool_veth0=ETHTOOL_TSO, labels=LABEL,
                 paylen=3000),
        CaseSpec("x_tso_on_vlandev_ad", "probe", tx_vlan=[7, "802.1ad"], ethtool_veth0=ETHTOOL_TSO, paylen=3000),
        CaseSpec("x_csum_vlan_txvlan_off", "probe", vlan_pushes=[[9, 1, "802.1Q"]],
                 ethtool_veth0="tx on tso off gso on txvlan off", labels=LABEL, paylen=3000),
        # the smallest gso_size: TCP is raised to 8 (TCP_MIN_GSO_SIZE), UFO is not
        CaseSpec("x_ufo_tiny_gso", "probe", l4="udp", gso_type=3, gso_size=3, paylen=40, labels=LABEL),
        CaseSpec("x_ufo6_tiny_gso", "probe", ip_version=6, l4="udp", gso_type=3, gso_size=5, paylen=40),
        CaseSpec("x_tcp_gso_8", "probe", gso_size=8, paylen=40),
        CaseSpec("x_tcp_gso_7", "probe", gso_size=7, paylen=40),
        CaseSpec("x_tcp_gso_1_pay9", "probe", gso_size=1, paylen=9),
        # UFO corners
        CaseSpec("x_ufo_df_clear", "probe", l4="udp", gso_type=3, gso_size=600, paylen=2000, df=False, ip_id=0xFFFF,
                 labels=[[5, 1, 1, "mc"], [6, 2, 2, "uc"]]),
        CaseSpec("x_ufo_tso_on", "probe", l4="udp", gso_type=3, gso_size=600, paylen=2000, ethtool_veth0=ETHTOOL_TSO),
        CaseSpec("x_ufo6_csum", "probe", ip_version=6, l4="udp", gso_type=3, gso_size=600, paylen=2000,
                 ethtool_veth0=ETHTOOL_CSUM, labels=[[5, 1, 1, "uc"]]),
        CaseSpec("x_tcp_ecn_cwr", "probe", gso_type=0x81, tcp_flags=0xD8, paylen=5000, labels=LABEL),
        CaseSpec("x_tso_on_nompls_v6ext", "probe", ip_version=6, gso_type=4, ext_headers=["hop:0"],
                 ethtool_veth0=ETHTOOL_TSO, paylen=3000),
        # sll_protocol naming something the frame is not
        CaseSpec("x_tcp_sll_mpls", "probe", labels=LABEL, paylen=3000, sll_protocol=0x8847),
        CaseSpec("x_tcp_sll_8021q", "probe", paylen=3000, sll_protocol=0x8100),
        # a whole 64 KB super-packet
        CaseSpec("x_big_64k", "probe", gso_size=1448, paylen=65000, labels=LABEL),
        # BIG TCP through a VLAN device with checksum offload: at least its gso_max_size (65536), so
        # the VLAN device segments it (jumbo header off cleanly), and veth0's tc labels each segment
        CaseSpec("x_big_jumbo_vlandev_label", "probe", ip_version=6, gso_type=4, gso_size=8948, paylen=68000,
                 ext_headers=["jumbo"], l3_len_field="zero", tx_vlan=[7, "802.1Q"], labels=LABEL,
                 ethtool_veth0=ETHTOOL_CSUM),
        CaseSpec("x_big_jumbo_vlandev_label_tso", "probe", ip_version=6, gso_type=4, gso_size=8948, paylen=68000,
                 ext_headers=["jumbo"], l3_len_field="zero", tx_vlan=[7, "802.1Q"], labels=LABEL,
                 ethtool_veth0=ETHTOOL_TSO),
        # generations (g_*): tc VLAN pushes that move a tag into the bytes after an MPLS push, then
        # MPLS GSO (6.12's skb_vlan_push moves the network header onto the tag: segments start late)
        CaseSpec("g_mpls_2vlan", "probe", labels=LABEL, vlan_pushes=[QTAG, STAG], paylen=3000, gso_size=1000),
        CaseSpec("g_mpls_3vlan", "probe", labels=LABEL, vlan_pushes=[QTAG, STAG, [77, 0, "802.1Q"]], paylen=3000,
                 gso_size=1000),
        CaseSpec("g_mpls_2vlan_ufo", "probe", l4="udp", gso_type=3, labels=LABEL, vlan_pushes=[QTAG, STAG],
                 paylen=3000, gso_size=1000),
        CaseSpec("g_2mpls_2vlan_v6", "probe", ip_version=6, gso_type=4, labels=[*LABEL, [200, 1, 9, "uc"]],
                 vlan_pushes=[QTAG, QTAG], paylen=3000, gso_size=1000),
        CaseSpec("g_mpls_2vlan_not_gso", "probe", labels=LABEL, vlan_pushes=[QTAG, STAG], paylen=500, gso_size=1000),
        CaseSpec("g_mpls_2vlan_tso", "probe", labels=LABEL, vlan_pushes=[QTAG, STAG], ethtool_veth0=ETHTOOL_TSO,
                 paylen=3000, gso_size=1000),
        CaseSpec("g_nompls_2vlan", "probe", vlan_pushes=[QTAG, STAG], paylen=3000, gso_size=1000),
        CaseSpec("g_vlandev_mpls_2vlan", "probe", labels=LABEL, vlan_pushes=[QTAG, STAG], tx_vlan=[7, "802.1Q"],
                 paylen=3000, gso_size=1000),
        CaseSpec("g_vlandev_csum_mpls_vlan", "probe", labels=LABEL, vlan_pushes=[QTAG], tx_vlan=[7, "802.1Q"],
                 ethtool_veth0=ETHTOOL_CSUM, paylen=3000, gso_size=1000),
        CaseSpec("g_vlandev_tso_mpls_vlan", "probe", labels=LABEL, vlan_pushes=[QTAG], tx_vlan=[7, "802.1Q"],
                 ethtool_veth0=ETHTOOL_TSO, paylen=3000, gso_size=1000),
        # USO through the virtio header (6.2+), and its segment limit (64 on 6.1's socket path, 128 later)
        CaseSpec("g_uso_virtio", "probe", l4="udp", gso_type=5, gso_size=1000, paylen=3000, labels=LABEL),
        CaseSpec("g_uso_virtio_128_segments", "probe", l4="udp", gso_type=5, gso_size=100, paylen=12800),
        CaseSpec("g_uso_virtio_129_segments", "probe", l4="udp", gso_type=5, gso_size=100, paylen=12801),
        CaseSpec("g_uso_virtio_v6_exthdr", "probe", ip_version=6, l4="udp", gso_type=5, gso_size=700, paylen=2500,
                 ext_headers=["hop:0", "dst:1"]),
        # ethtool's `tso` group is tx-tcp*-segmentation: `tso off` leaves tx-udp-segmentation on
        CaseSpec("g_uso_tso_group_off", "probe", l4="udp", gso_type=5, gso_size=1000, paylen=3000,
                 ethtool_veth0=ETHTOOL_CSUM),
        # csum_start below the minimum network header (virtio_net_hdr_to_skb's nh_min_len check)
        CaseSpec("g_csum_start_in_ip_header", "probe", csum_start=20, paylen=3000),
        # act_mpls push's S bit reads skb_protocol(skb, true) (vlan_get_protocol): after a second tc vlan
        # push the protocol is the tag's and the labels lie behind the tag moved into the bytes (S clear)
        CaseSpec("x_mpls_2vlan_mpls", "probe", labels=LABEL, vlan_pushes=[QTAG, STAG],
                 label_ops=["mpls push protocol mpls_uc label 300 tc 2 ttl 7"], paylen=500, gso_size=1000),
        CaseSpec("x_mpls_2vlan_mpls_gso", "probe", labels=LABEL, vlan_pushes=[QTAG, STAG],
                 label_ops=["mpls push protocol mpls_uc label 300 tc 2 ttl 7"], paylen=3000, gso_size=1000),
        CaseSpec("x_vlandev_mpls_vlan_mpls", "probe", labels=LABEL, vlan_pushes=[QTAG], tx_vlan=[7, "802.1ad"],
                 label_ops=["mpls push protocol mpls_mc label 301 tc 0 ttl 5"], paylen=500, gso_size=1000),
        CaseSpec("x_2vlan_mpls_mpls", "probe", labels=[*LABEL, [200, 1, 9, "uc"]], vlan_pushes=[QTAG, STAG],
                 vlan_after_mpls=False, paylen=500, gso_size=1000),
        # evidence for the exclusions
        CaseSpec("evidence_label_3", "evidence", labels=[[3, 0, 64, "uc"]], paylen=3000),
        CaseSpec("evidence_ttl_0", "evidence", labels=[[100, 0, 0, "uc"]], paylen=3000),
        CaseSpec("evidence_udp_l4_virtio", "evidence", l4="udp", gso_type=5, gso_size=1000, paylen=3000, labels=LABEL),
    ]
    for spec in specs:
        fit_mtu(spec)
    # over veth1's MTU on purpose: 3 extension headers + 1448-byte segments at MTU 1500
    specs.append(CaseSpec("evidence_over_mtu", "evidence", ip_version=6, gso_type=4,
                          ext_headers=["hop:0", "rt:1", "dst:1"], labels=LABEL, paylen=3000))
    return specs
