// SPDX-License-Identifier: GPL-2.0
/*
 * tc egress program for the tunnel vectors: encapsulate every TCP packet in MPLS-in-UDP (RFC 7510,
 * port 6635) or MPLS-in-GRE with bpf_skb_adjust_room, the one route on which Linux segments MPLS
 * inside a tunnel (the label stack is declared as the inner L2 header, ENCAP_L2(4 * LABELS)).
 * Written for softgso's oracle (spec tunnels-gso.md 7.2, 12.7); the outer IP header is a copy of
 * the inner one, as the kernel selftest's encapsulation does. Build variants with -D:
 *   OUTER_V6 (0/1: the packet and its copy are IPv6), USE_GRE (0: UDP, 1: GRE), LABELS (1..3).
 * Returns TC_ACT_UNSPEC so that the next filter (the matchall mirror to dum0) still runs.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/pkt_cls.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#ifndef OUTER_V6
#define OUTER_V6 0
#endif
#ifndef USE_GRE
#define USE_GRE 0
#endif
#ifndef LABELS
#define LABELS 1
#endif

#define MPLS_IN_UDP_PORT 6635
#define L4_LEN (USE_GRE ? 4 : 8)

struct outer {
#if OUTER_V6
	struct ipv6hdr ip;
#else
	struct iphdr ip;
#endif
	__u8 l4[L4_LEN];
	__be32 labels[LABELS];
};  /* no padding: every member ends on a 4-byte boundary */

static __always_inline __u16 ipv4_checksum(struct iphdr *iph)
{
	__u16 *words = (__u16 *)iph;
	__u32 sum = 0;

	iph->check = 0;
#pragma clang loop unroll(full)
	for (int i = 0; i < 10; i++)
		sum += words[i];
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return ~sum;
}

SEC("tc")
int encap(struct __sk_buff *skb)
{
	struct outer h = {};
	__u64 flags = BPF_F_ADJ_ROOM_FIXED_GSO | BPF_F_ADJ_ROOM_ENCAP_L2(4 * LABELS) |
		      (USE_GRE ? BPF_F_ADJ_ROOM_ENCAP_L4_GRE : BPF_F_ADJ_ROOM_ENCAP_L4_UDP) |
		      (OUTER_V6 ? BPF_F_ADJ_ROOM_ENCAP_L3_IPV6 : BPF_F_ADJ_ROOM_ENCAP_L3_IPV4);
	__u16 inner_len;

	if (bpf_skb_load_bytes(skb, ETH_HLEN, &h.ip, sizeof(h.ip)) < 0)
		return TC_ACT_UNSPEC;
#if OUTER_V6
	if (skb->protocol != bpf_htons(ETH_P_IPV6) || h.ip.nexthdr != IPPROTO_TCP)
		return TC_ACT_UNSPEC;
	inner_len = bpf_ntohs(h.ip.payload_len) + sizeof(struct ipv6hdr);
	h.ip.nexthdr = USE_GRE ? IPPROTO_GRE : IPPROTO_UDP;
	h.ip.payload_len = bpf_htons(inner_len + L4_LEN + 4 * LABELS);
#else
	if (skb->protocol != bpf_htons(ETH_P_IP) || h.ip.protocol != IPPROTO_TCP || h.ip.ihl != 5)
		return TC_ACT_UNSPEC;
	inner_len = bpf_ntohs(h.ip.tot_len);
	h.ip.protocol = USE_GRE ? IPPROTO_GRE : IPPROTO_UDP;
	h.ip.tot_len = bpf_htons(inner_len + sizeof(struct outer));
	h.ip.check = ipv4_checksum(&h.ip);
#endif
#if USE_GRE
	h.l4[2] = 0x88;
	h.l4[3] = 0x47;
#else
	{
		struct udphdr *uh = (struct udphdr *)h.l4;

		uh->source = bpf_htons(20000);
		uh->dest = bpf_htons(MPLS_IN_UDP_PORT);
		uh->len = bpf_htons(inner_len + 8 + 4 * LABELS);
		uh->check = 0;
	}
#endif
#pragma clang loop unroll(full)
	for (int i = 0; i < LABELS; i++)
		h.labels[i] = bpf_htonl(((1000 + i) << 12) | (i == LABELS - 1 ? 0x100 : 0) | 255);

	if (bpf_skb_adjust_room(skb, sizeof(struct outer), BPF_ADJ_ROOM_MAC, flags))
		return TC_ACT_SHOT;
	if (bpf_skb_store_bytes(skb, ETH_HLEN, &h, sizeof(h), BPF_F_INVALIDATE_HASH))
		return TC_ACT_SHOT;
	return TC_ACT_UNSPEC;
}

_Static_assert(sizeof(struct outer) == sizeof(((struct outer *)0)->ip) + L4_LEN + 4 * LABELS, "outer header padded");

char _license[] SEC("license") = "GPL";
