/* The compiled GRO of softgso.gro.coalesce_poll and softgso.bulk.coalesce_stream: one NAPI poll
 * at a time, for the common shape (Ethernet, one VLAN tag or none, IPv4 without options or IPv6 without extension headers,
 * TCP, checksums valid, nothing snapped) and the frames GRO passes
 * up at once without touching its flow table (another ethertype or IP protocol, UDP without UDP GRO
 * forwarding, a bad IPv4 header...); a poll holding anything else is handed back whole to the scalar
 * engine (softgso.gro), which is proven on kernel vectors. Each step mirrors that engine, which mirrors
 * the kernel:
 *
 *   dev_gro_receive / gro_list_prepare   net/core/gro.c     (one bucket: a capture carries no flow hash)
 *   inet_gro_receive, inet_gro_flush     net/ipv4/af_inet.c, include/net/gro.h
 *   ipv6_gro_receive, ipv6_gro_flush     net/ipv6/ip6_offload.c
 *   tcp_gro_receive / tcp_gro_lookup     net/ipv4/tcp_offload.c
 *   skb_gro_receive (the size limit)     net/core/gro.c (legacy limit only: no BIG TCP here)
 *   inet/ipv6/tcp4/tcp6_gro_complete     tot_len and csum_replace2, payload_len, the pseudo-header seed
 *
 * Checksums are validated as GRO does for a device without receive checksum offload
 * (skb_gro_checksum_validate): the TCP sum is taken while each payload is copied out, and a poll with
 * a bad one is given back to the scalar engine (which passes that frame up, naming it). count_frames,
 * which copies nothing, validates each TCP frame as it classifies it, where tcp4/tcp6_gro_receive
 * does (before the header is pulled): a bad one is passed up at once, "bad TCP checksum", its poll
 * still counted here (a sender's capture: every checksum a CHECKSUM_PARTIAL seed).
 *
 * coalesce_pcap(data, start, end, big_endian, ticks, max_caplen, final, params, out, counters, first_index)
 *     -> (status, position, out_length, records): classic pcap records from data[start:end], poll by poll
 *     (params[0] frames each), each poll's packets written to out as pcap records (the first
 *     segment's timestamp, caplen = orig_len). status: DONE (all of [start, end) done), MORE (the next
 *     poll is not whole before end: read on from position), POLL (the poll at position is one for the
 *     scalar engine), REST (from position on, the records are for the general reader: cut short,
 *     longer than max_caplen); records: how many were done. counters (int64) add up what the polls did (see COUNTER_*).
 * coalesce_frames(frames, params) -> list of (bytes, first frame, segs, gso_size, gso_type, reason,
 *     held, number, verified, at) for one poll of Ethernet frames, or None when the poll is one for the
 *     scalar engine (number: what a reason naming one names; verified: the L4 checksum was; at: the
 *     frame whose arrival sent it up, the poll's length for the poll-end flush).
 * count_area(area, starts, spans, count, params, counters, first_index) -> bool: count_frames for frames
 *     lying in one buffer (frame k: spans[k] bytes at starts[k], int64 each), no Python object per frame.
 * coalesce_area(area, meta, count, params, out, out_meta) -> packets, or -1 when the poll is one for the
 *     scalar engine: coalesce_frames for frames lying in one buffer, the packets written to another,
 *     described by int64 sextuples (offset, length, segs, gso_size, gso_type, verified) both ways.
 * count_frames(frames, params, counters, first_index) -> bool: coalesce_frames' poll with its packets
 *     only counted (the same decisions and the same checksum validations; no packet built, nothing
 *     copied), and a frame whose TCP checksum is bad passed up as the scalar engine passes it: the
 *     counts added to counters (as coalesce_pcap's, the poll's frames numbered from first_index),
 *     True; False, counters untouched, when the poll is one for the scalar engine.
 *
 * params: (batch, limit_v4, limit_v6, fixedid_needs_df, fixedid_bit, tcpv4_bit, tcpv6_bit,
 * udp_gro_forwarding, inet protocols (256 bytes, 1 where GRO has a handler), inet6 protocols, the
 * other ethertypes with a handler, cwr_always_flushes, ecn_bit).
 * Safe by construction: buffers are Python buffer objects, every offset is checked before a byte is
 * touched; the GIL is released while a pcap chunk is worked.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#include "../_wordsum.h"

#define ETH_HLEN 14
#define MAX_HELD 8 /* MAX_GRO_SKBS */
#define TCP_FLAG_PSH 0x08
#define TCP_FLAG_ACK 0x10
#define TCP_FLAG_FIN 0x01
#define IP_DF 0x4000

enum status { STATUS_DONE, STATUS_MORE, STATUS_POLL, STATUS_REST };

/* why a packet left GRO: the scalar engine's words (softgso.gro.coalesce.COMPILED_REASONS, same order) */
enum reason {
    R_POLL_END, R_TABLE_FULL, R_WINDOW, R_THLEN, R_FLAGS, R_ACK, R_OPTIONS, R_TTL, R_TOS, R_DF, R_ID,
    R_TCLASS, R_HOPLIMIT, R_LARGER, R_NO_PAYLOAD, R_SEQ_GAP, R_SIZE_LIMIT, R_LAST_SHORT, R_SHORT, R_CWR,
    /* frames passed up at once without touching the flow table (never held, nothing completed) */
    R_SHORTER_THAN_ETH, R_TRUNC_IPV4, R_IPV4_OPTIONS, R_NOT_IPV4, R_IPV4_FRAGMENT, R_BAD_IPV4_CSUM, R_IPV4_TOTLEN,
    R_IPV4_RESERVED, R_TRUNC_IPV6, R_IPV6_PAYLOAD_LEN, R_IPV6_FRAGMENT, R_TRUNC_UDP, R_BAD_UDP_CSUM, R_UDP_NO_FWD,
    R_TRUNC_VLAN, R_BAD_TCP_CSUM,
    /* reasons naming a number (TCP flags, an ethertype...): counted per (reason, number) in the
     * counters' table; the first one is a held packet's, the others passes */
    R_LAST_FLAGS, R_FINAL_FLAGS, R_NO_GRO_ETHERTYPE, R_NO_GRO_IPPROTO, R_NO_GRO_IPV6, R_NO_GRO_INSIDE_VLAN,
    R_COUNT
};
#define R_FIRST_PARAM R_LAST_FLAGS
#define TCP_FINAL_FLAGS 0x2F /* URG, PSH, RST, SYN, FIN: tcp_gro_receive ends the aggregate on them */

enum counter {
    COUNTER_FRAMES_IN, COUNTER_PACKETS_OUT, COUNTER_COALESCED, COUNTER_FRAMES_MERGED, COUNTER_POLLS,
    COUNTER_BYTES_IN, COUNTER_BYTES_OUT, COUNTER_FLUSHES, /* R_COUNT of them, then R_COUNT passed, then
    R_COUNT first passed frame indexes (-1: none), then the table of passes naming a number: its
    length, then PARAMS_MAX entries (reason, number, frames, first frame) */
};
#define PARAMS_MAX 64
#define COUNTER_PARAMS (COUNTER_FLUSHES + 3 * R_COUNT)
#define COUNTERS (COUNTER_PARAMS + 1 + 4 * PARAMS_MAX)

typedef struct {
    Py_ssize_t batch;
    Py_ssize_t limit_v4, limit_v6; /* skb_gro_receive: p->len + len >= limit refuses */
    int fixedid_needs_df;
    int64_t fixedid_bit, tcpv4_bit, tcpv6_bit;
    int udp_gro_forwarding;
    unsigned char inet_protocols[256], inet6_protocols[256]; /* 1: a GRO handler is registered */
    unsigned scalar_ethertypes[16]; /* ethertypes other than IPv4 and IPv6 with a GRO handler */
    int n_scalar_ethertypes;
    int cwr_always_flushes; /* tcp_gro_receive up to 6.19: a new frame with CWR never merges */
    int64_t ecn_bit; /* tcp_gro_complete: the gso_type bit of an aggregate whose first header has CWR */
} Params;

typedef struct {
    const unsigned char *frame;
    const unsigned char *record; /* its pcap record header, or NULL */
    Py_ssize_t len;
    int l3, l4, payload, v6; /* l3: 14, or 18 behind one VLAN tag */
    int next; /* the next frame merged behind this one, -1 */
    uint32_t pseudo; /* the pseudo-header sum without the length */
    int pass; /* passed up at once: its reason (R_*), else -1 */
    int flushed; /* TCP the network layer flushed (its reason): passed up unless its flow holds a packet */
    int param; /* the number a pass's reason names */
    int verified; /* its L4 checksum was verified (ip_summed CHECKSUM_UNNECESSARY) */
} Frame;

typedef struct {
    int first, last; /* frames of the packet, linked by Frame.next */
    Py_ssize_t len; /* skb->len: bytes after the Ethernet header */
    Py_ssize_t gso_size; /* the first segment's payload */
    int count;
    int fixedid;
    unsigned char or_flags; /* FIN and PSH of every merged segment */
    int why, why_param;
} Held;

typedef struct {
    int64_t c[COUNTERS];
} Counts;

typedef struct {
    const Params *params;
    Frame *frames;
    Held held[MAX_HELD]; /* newest first, as the bucket's list */
    int n_held;
    unsigned char *out;
    Py_ssize_t out_pos, out_size;
    int big_endian;
    Counts counts;
    int64_t first_index;
    int bad; /* a checksum failed: the poll goes to the scalar engine */
    /* coalesce_frames: one entry per packet out; the frame being received (the poll's length at its end) */
    PyObject *list;
    int at;
    int count_only; /* count_frames: packets counted, their bytes neither built nor copied (every TCP
                     * frame's checksum validated by classify) */
    int64_t *out_meta; /* coalesce_area: AREA_META int64 per packet out (see there), room for out_max */
    Py_ssize_t n_out, out_max;
} Poll;

/* coalesce_area's description of a frame in and of a packet out: offset, length, segs, gso_size,
 * gso_type, verified (int64 each) */
#define AREA_META 6

static inline unsigned be16(const unsigned char *p) { return ((unsigned)p[0] << 8) | p[1]; }
static inline uint32_t be32(const unsigned char *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}
static inline void put16(unsigned char *p, unsigned v) { p[0] = (unsigned char)(v >> 8); p[1] = (unsigned char)v; }
static inline uint32_t load32(const unsigned char *p, int big_endian)
{
    return big_endian ? be32(p) : ((uint32_t)p[3] << 24) | ((uint32_t)p[2] << 16) | ((uint32_t)p[1] << 8) | p[0];
}
static inline void store32(unsigned char *p, uint32_t v, int big_endian)
{
    if (big_endian) {
        p[0] = (unsigned char)(v >> 24); p[1] = (unsigned char)(v >> 16); p[2] = (unsigned char)(v >> 8); p[3] = (unsigned char)v;
    } else {
        p[3] = (unsigned char)(v >> 24); p[2] = (unsigned char)(v >> 16); p[1] = (unsigned char)(v >> 8); p[0] = (unsigned char)v;
    }
}

/* the big-endian 16-bit word sum of n bytes (n even), not folded */
static inline uint64_t words16(const unsigned char *p, int n)
{
    uint64_t sum = 0;
    for (int i = 0; i + 1 < n; i += 2)
        sum += be16(p + i);
    return sum;
}

/* csum16_add / csum16_sub (the kernel's, on 16-bit values) */
static inline unsigned csum16_add(unsigned a, unsigned b)
{
    unsigned v = (a + b) & 0xFFFF;
    return (v + (v < b)) & 0xFFFF;
}
static inline unsigned csum16_sub(unsigned a, unsigned b) { return csum16_add(a, ~b & 0xFFFF); }

enum kind { KIND_SCALAR, KIND_TCP, KIND_PASS };

static int pass(Frame *f, int why, int param)
{
    f->pass = why;
    f->param = param;
    return KIND_PASS;
}

/* udp4/udp6_gro_receive without UDP GRO forwarding (softgso.gro.udp): the frame is passed up, its
 * checksum verified unless the network layer flushed it or it is 0. `flushed` is the network layer's
 * reason (the first one named wins), or -1. */
static int classify_udp(Frame *f, int flushed, const unsigned char *addresses, int address_len)
{
    const unsigned char *d = f->frame;
    if (f->len < f->l4 + 8)
        return pass(f, flushed >= 0 ? flushed : R_TRUNC_UDP, 0);
    unsigned check = be16(d + f->l4 + 6);
    if (flushed < 0 && check) { /* skb_gro_checksum_validate_zero_check */
        Py_ssize_t udp_len = f->len - f->l4;
        uint64_t sum = words16(addresses, address_len) + 17 + (uint64_t)(udp_len >> 16) + (uint64_t)(udp_len & 0xFFFF);
        sum += (uint64_t)fold_with_tail(sum_words(d + f->l4, udp_len / 4), d + f->l4, udp_len);
        if (sum % 0xFFFF)
            return pass(f, R_BAD_UDP_CSUM, 0);
        f->verified = 1;
    }
    return pass(f, flushed >= 0 ? flushed : R_UDP_NO_FWD, 0);
}

/* tcp4/6_gro_receive of a frame the network layer flushed (bytes behind the IP packet, the reserved
 * bit): no checksum is verified; a header that cannot be pulled passes it up at once, else
 * tcp_gro_receive looks its flow up (receive(): with no held packet of the flow it is passed up, the
 * network layer's reason named; with one, the poll is the scalar engine's). */
static int classify_flushed_tcp(Frame *f, int flushed)
{
    const unsigned char *th = f->frame + f->l4;
    if (f->len < f->l4 + 20)
        return pass(f, flushed, 0);
    int thlen = (th[12] >> 4) * 4;
    if (thlen < 20 || f->len < f->l4 + thlen)
        return pass(f, flushed, 0);
    f->payload = f->l4 + thlen;
    f->flushed = flushed;
    return KIND_TCP;
}

/* skb_gro_checksum_validate (CHECKSUM_NONE) of a TCP frame whose l4 and pseudo are set: its whole
 * segment and pseudo-header fold to 0xFFFF (tcp_sum_valid's sum, taken in one pass) */
static int tcp_segment_valid(const Frame *f)
{
    const unsigned char *th = f->frame + f->l4;
    Py_ssize_t tcp_len = f->len - f->l4;
    uint64_t sum = f->pseudo + (uint64_t)(tcp_len >> 16) + (uint64_t)(tcp_len & 0xFFFF);
    sum += (uint64_t)fold_with_tail(sum_words(th, tcp_len / 4), th, tcp_len);
    return sum % 0xFFFF == 0;
}

/* What the compiled GRO does with a frame: KIND_TCP (the common shape: l4, payload, v6, pseudo set),
 * KIND_PASS (passed up at once for a reason that leaves the flow table as it was: pass, param,
 * verified set), or KIND_SCALAR (its poll is the scalar engine's). Each check in the scalar engine's
 * order (softgso.gro.dev, inet, ipv6, udp, tcp). `validate` (count_frames): a TCP frame's checksum is
 * validated here, a bad one passed up; else it is validated as its bytes are copied out. */
static int classify(Frame *f, const Params *params, int validate)
{
    const unsigned char *d = f->frame;
    Py_ssize_t len = f->len;
    f->next = -1;
    f->pass = -1;
    f->flushed = -1;
    f->verified = 0;
    if (len < ETH_HLEN)
        return pass(f, R_SHORTER_THAN_ETH, 0);
    unsigned type = be16(d + 12);
    int l3 = ETH_HLEN;
    if (type == 0x8100 || type == 0x88A8) { /* vlan_gro_receive: one tag, then the protocol it names */
        if (len < ETH_HLEN + 4)
            return pass(f, R_TRUNC_VLAN, 0);
        type = be16(d + 16);
        l3 += 4;
        if (type != 0x0800 && type != 0x86DD) {
            for (int k = 0; k < params->n_scalar_ethertypes; k++)
                if (params->scalar_ethertypes[k] == type)
                    return KIND_SCALAR; /* a second tag, TEB, MPLS under --mpls */
            return pass(f, R_NO_GRO_INSIDE_VLAN, (int)type);
        }
    }
    f->l3 = l3;
    const unsigned char *ip = d + l3;
    int proto, flushed = -1;
    if (type == 0x0800) { /* inet_gro_receive */
        if (len < l3 + 20)
            return pass(f, R_TRUNC_IPV4, 0);
        proto = ip[9];
        if (!params->inet_protocols[proto])
            return pass(f, R_NO_GRO_IPPROTO, proto);
        if (ip[0] != 0x45)
            return pass(f, ip[0] >> 4 == 4 ? R_IPV4_OPTIONS : R_NOT_IPV4, 0);
        unsigned frag_off = be16(ip + 6);
        if (frag_off & 0x3FFF & ~IP_DF) /* MF, fragment offset */
            return pass(f, R_IPV4_FRAGMENT, 0);
        if (words16(ip, 20) % 0xFFFF) /* ip_fast_csum */
            return pass(f, R_BAD_IPV4_CSUM, 0);
        if ((be16(ip + 2) ^ (unsigned)(len - l3)) & 0xFFFF) /* (u16)(tot_len ^ gro_len) */
            flushed = R_IPV4_TOTLEN;
        else if (frag_off & ~IP_DF)
            flushed = R_IPV4_RESERVED;
        f->v6 = 0;
        f->l4 = l3 + 20;
        if (proto == 17 && !params->udp_gro_forwarding)
            return classify_udp(f, flushed, ip + 12, 8);
        if (proto != 6)
            return KIND_SCALAR;
        if (flushed >= 0)
            return classify_flushed_tcp(f, flushed);
        f->pseudo = (uint32_t)(words16(ip + 12, 8) + 6);
    } else if (type == 0x86DD) { /* ipv6_gro_receive */
        if (len < l3 + 40)
            return pass(f, R_TRUNC_IPV6, 0);
        proto = ip[6];
        if (!params->inet6_protocols[proto]) {
            if (proto == 0 || proto == 43 || proto == 60) /* extension headers: the scalar engine walks them */
                return KIND_SCALAR;
            return proto == 44 ? pass(f, R_IPV6_FRAGMENT, 0) : pass(f, R_NO_GRO_IPV6, proto);
        }
        if ((Py_ssize_t)be16(ip + 4) != len - l3 - 40)
            flushed = R_IPV6_PAYLOAD_LEN;
        f->v6 = 1;
        f->l4 = l3 + 40;
        if (proto == 17 && !params->udp_gro_forwarding)
            return classify_udp(f, flushed, ip + 8, 32);
        if (proto != 6 || ip[0] >> 4 != 6)
            return KIND_SCALAR;
        if (flushed >= 0)
            return classify_flushed_tcp(f, flushed);
        f->pseudo = (uint32_t)(words16(ip + 8, 32) + 6);
    } else {
        for (int k = 0; k < params->n_scalar_ethertypes; k++)
            if (params->scalar_ethertypes[k] == type)
                return KIND_SCALAR; /* VLAN tags, TEB, MPLS under --mpls: handlers of the scalar engine's */
        return pass(f, R_NO_GRO_ETHERTYPE, (int)type);
    }
    const unsigned char *th = d + f->l4;
    if (len - ETH_HLEN > 0xFFFF)
        return KIND_SCALAR;
    /* tcp4/tcp6_gro_receive: a frame the network layer did not flush has its checksum validated before
     * tcp_gro_pull_header; a bad one is flushed (NAPI_GRO_CB(skb)->flush = 1, no held packet named):
     * passed up at once, the flow table as it was */
    if (validate && !tcp_segment_valid(f))
        return pass(f, R_BAD_TCP_CSUM, 0);
    if (len < f->l4 + 20)
        return KIND_SCALAR;
    int thlen = (th[12] >> 4) * 4;
    if (thlen < 20 || len < f->l4 + thlen)
        return KIND_SCALAR;
    f->payload = f->l4 + thlen;
    f->verified = 1; /* validated as it is copied out (a bad sum sends the poll to the scalar engine) */
    return KIND_TCP;
}

/* ones_sum's folding: 0 only for 0, else 1..0xFFFF */
static inline unsigned fold(uint64_t sum) { return sum ? (unsigned)(sum % 0xFFFF ? sum % 0xFFFF : 0xFFFF) : 0; }

/* -- output ----------------------------------------------------------------------------------- */

static void count_out(Poll *poll, int segs, int held, int why, int param, int64_t first, Py_ssize_t length)
{
    int64_t *c = poll->counts.c;
    c[COUNTER_PACKETS_OUT]++;
    c[COUNTER_BYTES_OUT] += length;
    if (segs > 1) {
        c[COUNTER_COALESCED]++;
        c[COUNTER_FRAMES_MERGED] += segs;
    }
    if (why >= R_FIRST_PARAM) { /* one entry per (reason, number) */
        int64_t n = c[COUNTER_PARAMS], k = 0;
        int64_t *entry = &c[COUNTER_PARAMS + 1];
        for (; k < n; k++, entry += 4)
            if (entry[0] == why && entry[1] == param)
                break;
        if (k == n) {
            if (n == PARAMS_MAX) { /* too many kinds for the table: the scalar engine counts this poll */
                poll->bad = 1;
                return;
            }
            c[COUNTER_PARAMS] = n + 1;
            entry[0] = why;
            entry[1] = param;
            entry[2] = 0;
            entry[3] = poll->first_index + first;
        }
        entry[2]++;
    } else if (held) {
        c[COUNTER_FLUSHES + why]++;
    } else {
        c[COUNTER_FLUSHES + R_COUNT + why]++;
        if (c[COUNTER_FLUSHES + 2 * R_COUNT + why] < 0)
            c[COUNTER_FLUSHES + 2 * R_COUNT + why] = poll->first_index + first;
    }
}

/* skb_gro_checksum_validate: the TCP segment and its pseudo-header fold to 0xFFFF, given the native
 * word sum of its payload (sum_words or copy_sum_words); 0, and the poll the scalar engine's, when not. */
static int tcp_sum_valid(Poll *poll, const Frame *f, uint64_t payload_native)
{
    const unsigned char *d = f->frame;
    Py_ssize_t tcp_len = f->len - f->l4;
    uint64_t sum = f->pseudo + (uint64_t)(tcp_len >> 16) + (uint64_t)(tcp_len & 0xFFFF);
    sum += words16(d + f->l4, f->payload - f->l4);
    sum += (uint64_t)fold_with_tail(payload_native, d + f->payload, f->len - f->payload);
    if (sum % 0xFFFF) {
        poll->bad = 1;
        return 0;
    }
    return 1;
}

/* Copy a frame's bytes from `from` on to q, summing the TCP part for validation; 0 when the frame's
 * TCP checksum is bad. `from` is 0 (the whole frame) or its payload offset. */
static int copy_checked(Poll *poll, unsigned char *q, const Frame *f, int from)
{
    const unsigned char *d = f->frame;
    if (from == 0)
        memcpy(q, d, (size_t)f->payload);
    unsigned char *target = q + (from == 0 ? f->payload : 0);
    return tcp_sum_valid(poll, f, copy_sum_words(target, d + f->payload, f->len - f->payload));
}

/* Emit one packet: the frames from `first` along next (one frame when segs == 1), completed as
 * gro_complete does when segs > 1. */
static void emit(Poll *poll, int first, int segs, Py_ssize_t skb_len, Py_ssize_t gso_size, int fixedid,
                 unsigned char or_flags, int why, int param, int held)
{
    if (poll->bad)
        return;
    const Params *params = poll->params;
    Frame *frames = poll->frames;
    const Frame *f = &frames[first];
    Py_ssize_t length = skb_len + ETH_HLEN;
    if (poll->count_only) { /* (its frames' checksums validated by classify) */
        count_out(poll, segs, held, why, param, first, length);
        return;
    }
    Py_ssize_t header = f->record != NULL ? 16 : 0;
    unsigned char *q;
    PyObject *bytes = NULL;
    if (poll->list != NULL) {
        bytes = PyBytes_FromStringAndSize(NULL, length);
        if (bytes == NULL) {
            poll->bad = -1;
            return;
        }
        q = (unsigned char *)PyBytes_AS_STRING(bytes);
    } else {
        if (poll->out_pos + header + length > poll->out_size) { /* cannot happen: out is as large as the input */
            poll->bad = 1;
            return;
        }
        q = poll->out + poll->out_pos;
        if (header) {
            memcpy(q, f->record, 8);
            store32(q + 8, (uint32_t)length, poll->big_endian);
            store32(q + 12, (uint32_t)length, poll->big_endian);
            q += 16;
        }
    }
    unsigned char *packet = q;
    if (f->pass >= 0 || f->flushed >= 0)
        memcpy(q, f->frame, (size_t)f->len); /* passed up as it came (its checksum, if any, checked before) */
    else if (!copy_checked(poll, q, f, 0))
        goto fail;
    q += f->len;
    for (int k = f->next; segs > 1 && k >= 0; k = frames[k].next) {
        const Frame *g = &frames[k];
        if (!copy_checked(poll, q, g, g->payload))
            goto fail;
        q += g->len - g->payload;
    }
    int64_t gso_type = 0;
    if (segs > 1) {
        unsigned char *ip = packet + f->l3, *th = packet + f->l4;
        Py_ssize_t tcp_len = length - f->l4;
        if (!f->v6) { /* inet_gro_complete: tot_len, csum_replace2 */
            unsigned old = be16(ip + 2), total = (unsigned)(length - f->l3);
            put16(ip + 2, total);
            unsigned check = be16(ip + 10);
            put16(ip + 10, ~csum16_add(csum16_sub(~check & 0xFFFF, old), total) & 0xFFFF);
            gso_type = params->tcpv4_bit | (fixedid ? params->fixedid_bit : 0);
        } else { /* ipv6_gro_complete: payload_len */
            put16(ip + 4, (unsigned)(length - f->l3 - 40));
            gso_type = params->tcpv6_bit;
        }
        th[13] |= or_flags;
        if (th[13] & 0x80) /* tcp_gro_complete: CWR on the first segment */
            gso_type |= params->ecn_bit;
        /* tcp4/6_gro_complete: the check field becomes the pseudo-header seed */
        put16(th + 16, fold(f->pseudo + (uint64_t)(tcp_len >> 16) + (uint64_t)(tcp_len & 0xFFFF)));
    }
    count_out(poll, segs, held, why, param, first, length);
    if (poll->out_meta != NULL) {
        if (poll->n_out >= poll->out_max) { /* cannot happen: no more packets out than frames in */
            poll->bad = 1;
            return;
        }
        int64_t *m = poll->out_meta + AREA_META * poll->n_out++;
        m[0] = poll->out_pos;
        m[1] = length;
        m[2] = segs;
        m[3] = segs > 1 ? gso_size : 0;
        m[4] = segs > 1 ? gso_type : 0;
        m[5] = f->verified;
    }
    if (poll->list != NULL) {
        PyObject *entry = Py_BuildValue("(Niinniiiii)", bytes, first, segs, segs > 1 ? gso_size : 0,
                                        (Py_ssize_t)(segs > 1 ? gso_type : 0), why, held, param,
                                        f->verified, poll->at);
        bytes = NULL;
        if (entry == NULL || PyList_Append(poll->list, entry) < 0)
            poll->bad = -1;
        Py_XDECREF(entry);
    } else {
        poll->out_pos += header + length;
    }
    return;
fail:
    Py_XDECREF(bytes);
}

static void complete(Poll *poll, const Held *p, int why)
{
    emit(poll, p->first, p->count, p->len, p->gso_size, p->fixedid, p->or_flags, why, p->why_param, 1);
}

/* -- the flow rules ------------------------------------------------------------------------- */

/* inet_gro_flush (IPv4) or ipv6_gro_flush: why p cannot take the frame, or -1 */
static int network_flush(Poll *poll, Held *p, const Frame *f, const Frame *pf)
{
    const unsigned char *iph = f->frame + f->l3, *iph2 = pf->frame + pf->l3;
    if (f->v6) {
        if ((be32(iph) ^ be32(iph2)) & 0x0FF00000)
            return R_TCLASS;
        if (iph[7] != iph2[7])
            return R_HOPLIMIT;
        return -1;
    }
    if (iph[8] != iph2[8])
        return R_TTL;
    if (iph[1] != iph2[1])
        return R_TOS;
    unsigned df = be16(iph + 6) & IP_DF;
    if (df != (be16(iph2 + 6) & IP_DF))
        return R_DF;
    unsigned offset = (be16(iph + 4) - be16(iph2 + 4)) & 0xFFFF;
    if (p->count == 1 && offset == 0 && (df || !poll->params->fixedid_needs_df))
        p->fixedid = 1;
    if (offset ^ ((p->fixedid ? 0 : (unsigned)p->count) & 0xFFFF))
        return R_ID;
    return -1;
}

/* tcp_gro_receive's flush conditions in the scalar engine's order: why, or -1 */
static int flush_reason(Poll *poll, Held *p, const Frame *f)
{
    const Frame *pf = &poll->frames[p->first];
    const unsigned char *th = f->frame + f->l4, *th2 = pf->frame + pf->l4;
    /* up to 6.19 a new frame with CWR flushes, and CWR is ignored with FIN and PSH in the flags word;
     * from the AccECN GRO change CWR has to equal the held header's, like the other flags */
    int cwr_flushes = poll->params->cwr_always_flushes;
    if (cwr_flushes && (th[13] & 0x80))
        return R_CWR;
    uint32_t ignored = cwr_flushes ? 0x00890000 : 0x00090000;
    uint32_t differs = (be32(th + 12) ^ be32(th2 + 12)) & ~ignored;
    if (differs) {
        if (differs & 0xFFFF)
            return R_WINDOW;
        if (differs & 0xF0000000)
            return R_THLEN;
        return R_FLAGS;
    }
    if (memcmp(th + 8, th2 + 8, 4))
        return R_ACK;
    int thlen = f->payload - f->l4;
    if (memcmp(th + 20, th2 + 20, (size_t)(thlen - 20)))
        return R_OPTIONS;
    int why = network_flush(poll, p, f, pf);
    if (why >= 0)
        return why;
    Py_ssize_t length = f->len - f->payload;
    if ((uint32_t)(length - 1) >= (uint64_t)p->gso_size)
        return length ? R_LARGER : R_NO_PAYLOAD;
    Py_ssize_t payload2 = p->len + ETH_HLEN - pf->payload;
    if ((uint32_t)(be32(th2 + 4) + (uint32_t)payload2) != be32(th + 4))
        return R_SEQ_GAP;
    return -1;
}

/* One frame through dev_gro_receive */
static void receive(Poll *poll, int index)
{
    Frame *frames = poll->frames, *f = &frames[index];
    if (f->pass >= 0) { /* passed up at once; gro_list_prepare's marks are all it touched */
        emit(poll, index, 1, f->len - ETH_HLEN, 0, 0, 0, f->pass, f->param, 0);
        return;
    }
    const unsigned char *d = f->frame, *th = d + f->l4;
    Held *held = poll->held;
    int n = poll->n_held, p_at = -1;
    /* gro_list_prepare + inet/ipv6_gro_receive + tcp_gro_lookup: the newest held packet of the flow */
    for (int i = 0; i < n; i++) {
        const Frame *pf = &frames[held[i].first];
        const unsigned char *e = pf->frame;
        /* the MAC header (gro_list_prepare) and a VLAN tag (compare_vlan_header): the same ethertype at
         * byte 12 gives both frames the same l3 */
        int l3 = f->l3;
        if (memcmp(e, d, ETH_HLEN) || memcmp(e + ETH_HLEN, d + ETH_HLEN, (size_t)(l3 - ETH_HLEN)))
            continue;
        if (f->v6) {
            if ((be32(e + l3) ^ be32(d + l3)) & 0xF00FFFFF || memcmp(e + l3 + 8, d + l3 + 8, 32) || e[l3 + 6] != d[l3 + 6])
                continue;
        } else if (memcmp(e + l3 + 12, d + l3 + 12, 8)) {
            continue;
        }
        if (memcmp(e + pf->l4, th, 4))
            continue;
        p_at = i;
        break;
    }
    if (f->flushed >= 0) {
        if (p_at >= 0) { /* its flow's held packet would meet tcp_gro_receive's rules: the scalar engine */
            poll->bad = 1;
            return;
        }
        emit(poll, index, 1, f->len - ETH_HLEN, 0, 0, 0, f->flushed, 0, 0);
        return;
    }
    Py_ssize_t length = f->len - f->payload;
    unsigned flags = th[13];
    Py_ssize_t mss = 1;
    int merged = 0, pp = -1;
    if (p_at >= 0) {
        Held *p = &held[p_at];
        int why = flush_reason(poll, p, f);
        mss = p->gso_size;
        if (why < 0) { /* skb_gro_receive */
            Py_ssize_t limit = f->v6 ? poll->params->limit_v6 : poll->params->limit_v4;
            if (p->len + length >= limit)
                why = R_SIZE_LIMIT;
        }
        if (why >= 0) {
            mss = 1;
            p->why = why;
            p->why_param = 0;
        } else {
            frames[p->last].next = index;
            p->last = index;
            p->len += length;
            p->count++;
            p->or_flags |= (unsigned char)(flags & (TCP_FLAG_FIN | TCP_FLAG_PSH));
            merged = 1;
        }
    }
    int final = length < mss || (flags & TCP_FINAL_FLAGS);
    if (p_at >= 0 && (!merged || final)) {
        if (merged) {
            held[p_at].why = length < mss ? R_LAST_SHORT : R_LAST_FLAGS;
            held[p_at].why_param = (int)(flags & TCP_FINAL_FLAGS);
        }
        pp = p_at;
    }
    if (pp >= 0) {
        Held done = held[pp];
        memmove(&held[pp], &held[pp + 1], sizeof(Held) * (size_t)(n - pp - 1));
        poll->n_held = --n;
        complete(poll, &done, done.why);  /* (a flush rule's why names no number) */
    }
    if (merged)
        return;
    if (final) { /* passed up now */
        int final_flags = (int)(flags & TCP_FINAL_FLAGS);
        int why = (length == 0 && !final_flags) ? R_NO_PAYLOAD : final_flags ? R_FINAL_FLAGS : R_SHORT;
        emit(poll, index, 1, f->len - ETH_HLEN, 0, 0, 0, why, final_flags, 0);
        return;
    }
    if (n >= MAX_HELD) { /* gro_flush_oldest */
        Held oldest = held[n - 1];
        poll->n_held = --n;
        complete(poll, &oldest, R_TABLE_FULL);
    }
    memmove(&held[1], &held[0], sizeof(Held) * (size_t)n);
    held[0] = (Held){index, index, f->len - ETH_HLEN, length, 1, 0, 0, -1, 0};
    poll->n_held = n + 1;
}

/* One poll of `count` classified frames; 0 if it must go to the scalar engine (nothing kept). */
static int run_poll(Poll *poll, int count)
{
    Py_ssize_t out_at = poll->out_pos;
    Counts before = poll->counts;
    poll->n_held = 0;
    poll->bad = 0;
    for (int i = 0; i < count && !poll->bad; i++) {
        poll->at = i;
        poll->counts.c[COUNTER_FRAMES_IN]++;
        poll->counts.c[COUNTER_BYTES_IN] += poll->frames[i].len;
        receive(poll, i);
    }
    /* napi_gro_flush: the bucket's oldest first */
    poll->at = count;
    while (poll->n_held > 0 && !poll->bad) {
        poll->n_held--;
        complete(poll, &poll->held[poll->n_held], R_POLL_END);
    }
    if (poll->bad) {
        poll->out_pos = out_at;
        poll->counts = before;
        return 0;
    }
    poll->counts.c[COUNTER_POLLS]++;
    return 1;
}

static int parse_params(PyObject *tuple, Params *params)
{
    int needs_df, udp_forwarding, cwr_flushes;
    long long fixedid_bit, v4_bit, v6_bit, ecn_bit;
    Py_buffer inet, inet6;
    PyObject *ethertypes;
    if (!PyArg_ParseTuple(tuple, "nnnpLLLpy*y*OpL", &params->batch, &params->limit_v4, &params->limit_v6, &needs_df,
                          &fixedid_bit, &v4_bit, &v6_bit, &udp_forwarding, &inet, &inet6, &ethertypes, &cwr_flushes,
                          &ecn_bit))
        return 0;
    int sizes_ok = inet.len == 256 && inet6.len == 256;
    if (sizes_ok) {
        memcpy(params->inet_protocols, inet.buf, 256);
        memcpy(params->inet6_protocols, inet6.buf, 256);
    }
    PyBuffer_Release(&inet);
    PyBuffer_Release(&inet6);
    if (!sizes_ok) {
        PyErr_SetString(PyExc_ValueError, "params: the protocol tables hold 256 bytes each");
        return 0;
    }
    PyObject *types = PySequence_Fast(ethertypes, "params: ethertypes must be a sequence");
    if (types == NULL)
        return 0;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(types);
    if (n > 16) {
        Py_DECREF(types);
        PyErr_SetString(PyExc_ValueError, "params: at most 16 ethertypes");
        return 0;
    }
    for (Py_ssize_t k = 0; k < n; k++) {
        long value = PyLong_AsLong(PySequence_Fast_GET_ITEM(types, k));
        if (value == -1 && PyErr_Occurred()) {
            Py_DECREF(types);
            return 0;
        }
        params->scalar_ethertypes[k] = (unsigned)value;
    }
    Py_DECREF(types);
    params->n_scalar_ethertypes = (int)n;
    params->udp_gro_forwarding = udp_forwarding;
    if (params->batch < 1 || params->batch > (1 << 20)) {
        PyErr_SetString(PyExc_ValueError, "params: batch must be 1..2**20");
        return 0;
    }
    if (params->limit_v4 > 65536 || params->limit_v6 > 65536) {
        PyErr_SetString(PyExc_ValueError, "params: limits above 65536 (BIG TCP) are the scalar engine's");
        return 0;
    }
    params->fixedid_needs_df = needs_df;
    params->fixedid_bit = fixedid_bit;
    params->tcpv4_bit = v4_bit;
    params->tcpv6_bit = v6_bit;
    params->cwr_always_flushes = cwr_flushes;
    params->ecn_bit = ecn_bit;
    return 1;
}

static PyObject *coalesce_pcap(PyObject *self, PyObject *args)
{
    Py_buffer data, out, counters;
    Py_ssize_t start, end, max_caplen;
    int big_endian, final;
    unsigned long ticks;
    long long first_index;
    PyObject *params_tuple;
    Params params;
    if (!PyArg_ParseTuple(args, "y*nnpknpOw*w*L", &data, &start, &end, &big_endian, &ticks, &max_caplen, &final,
                          &params_tuple, &out, &counters, &first_index))
        return NULL;
    PyObject *result = NULL;
    Frame *frames = NULL;
    if (!parse_params(params_tuple, &params))
        goto done;
    if (start < 0 || end < start || end > data.len) {
        PyErr_Format(PyExc_ValueError, "coalesce_pcap: [%zd, %zd) is not inside the data (%zd bytes)", start, end,
                     data.len);
        goto done;
    }
    if (counters.len < (Py_ssize_t)sizeof(int64_t) * COUNTERS) {
        PyErr_Format(PyExc_ValueError, "coalesce_pcap: counters needs %d int64", COUNTERS);
        goto done;
    }
    if (out.len < end - start) {
        PyErr_Format(PyExc_ValueError, "coalesce_pcap: out (%zd bytes) is smaller than the input range (%zd)",
                     out.len, end - start);
        goto done;
    }
    frames = PyMem_Malloc(sizeof(Frame) * (size_t)params.batch);
    if (frames == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    Poll poll = {.params = &params, .frames = frames, .out = out.buf, .out_size = out.len, .big_endian = big_endian};
    memcpy(poll.counts.c, counters.buf, sizeof(poll.counts.c));
    poll.first_index = first_index;
    const unsigned char *buf = data.buf;
    Py_ssize_t pos = start;
    int status = STATUS_DONE;
    Py_BEGIN_ALLOW_THREADS
    for (;;) {
        Py_ssize_t at = pos;
        int count = 0, cut = 0, odd = 0;
        while (count < params.batch) {
            if (at == end)
                break;
            if (end - at < 16) {
                cut = 1;
                break;
            }
            const unsigned char *h = buf + at;
            uint32_t fraction = load32(h + 4, big_endian);
            uint32_t caplen = load32(h + 8, big_endian), orig_len = load32(h + 12, big_endian);
            if ((Py_ssize_t)caplen > max_caplen) {
                odd = 2; /* the general reader's */
                break;
            }
            if ((Py_ssize_t)caplen > end - at - 16) {
                cut = 1;
                break;
            }
            Frame *f = &frames[count];
            f->record = h;
            f->frame = h + 16;
            f->len = caplen;
            if (caplen != orig_len || fraction >= ticks || classify(f, &params, 0) == KIND_SCALAR)
                odd = odd ? odd : 1;
            at += 16 + (Py_ssize_t)caplen;
            count++;
        }
        if (odd == 2 || (cut && final)) {
            status = STATUS_REST;
            break;
        }
        if (count == 0) {
            status = cut ? STATUS_MORE : STATUS_DONE;
            break;
        }
        if (count < params.batch && !final) {
            status = STATUS_MORE;
            break;
        }
        if (odd || !run_poll(&poll, count)) {
            status = STATUS_POLL;
            break;
        }
        poll.first_index += count;
        pos = at;
    }
    Py_END_ALLOW_THREADS
    memcpy(counters.buf, poll.counts.c, sizeof(poll.counts.c));
    result = Py_BuildValue("(innL)", status, pos, poll.out_pos, (long long)(poll.first_index - first_index));
done:
    PyMem_Free(frames);
    PyBuffer_Release(&data);
    PyBuffer_Release(&out);
    PyBuffer_Release(&counters);
    return result;
}

/* One poll of Ethernet frames (a sequence of buffers): coalesce_frames when counters is NULL, else
 * count_frames (its counters, int64, in and out). */
static PyObject *frames_poll(PyObject *sequence, PyObject *params_tuple, Py_buffer *counters, long long first_index)
{
    Params params;
    if (!parse_params(params_tuple, &params))
        return NULL;
    if (counters != NULL && counters->len < (Py_ssize_t)sizeof(int64_t) * COUNTERS) {
        PyErr_Format(PyExc_ValueError, "count_frames: counters needs %d int64", COUNTERS);
        return NULL;
    }
    PyObject *items = PySequence_Fast(sequence, "coalesce_frames: frames must be a sequence");
    if (items == NULL)
        return NULL;
    Py_ssize_t count = PySequence_Fast_GET_SIZE(items);
    if (count > params.batch) {
        Py_DECREF(items);
        PyErr_SetString(PyExc_ValueError, "coalesce_frames: more frames than one poll holds");
        return NULL;
    }
    PyObject *result = NULL;
    Frame *frames = PyMem_Malloc(sizeof(Frame) * (size_t)(count ? count : 1));
    Py_buffer *views = PyMem_Calloc((size_t)(count ? count : 1), sizeof(Py_buffer));
    Py_ssize_t got = 0;
    if (frames == NULL || views == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    int odd = 0;
    for (; got < count; got++) {
        if (PyObject_GetBuffer(PySequence_Fast_GET_ITEM(items, got), &views[got], PyBUF_SIMPLE) < 0)
            goto done;
        frames[got].frame = views[got].buf;
        frames[got].record = NULL;
        frames[got].len = views[got].len;
        if (classify(&frames[got], &params, counters != NULL) == KIND_SCALAR)
            odd = 1;
    }
    if (odd) {
        result = counters != NULL ? Py_NewRef(Py_False) : Py_NewRef(Py_None);
        goto done;
    }
    Poll poll = {.params = &params, .frames = frames};
    if (counters != NULL) {
        poll.count_only = 1;
        poll.first_index = first_index;
        memcpy(poll.counts.c, counters->buf, sizeof(poll.counts.c));
        int taken = run_poll(&poll, (int)count);
        if (taken)
            memcpy(counters->buf, poll.counts.c, sizeof(poll.counts.c));
        result = Py_NewRef(taken ? Py_True : Py_False);
        goto done;
    }
    for (int r = 0; r < R_COUNT; r++)
        poll.counts.c[COUNTER_FLUSHES + 2 * R_COUNT + r] = -1;
    poll.list = PyList_New(0);
    if (poll.list == NULL)
        goto done;
    if (!run_poll(&poll, (int)count)) {
        if (poll.bad < 0) {
            Py_DECREF(poll.list);
            goto done;
        }
        Py_DECREF(poll.list);
        result = Py_NewRef(Py_None);
        goto done;
    }
    result = poll.list;
done:
    for (Py_ssize_t k = 0; k < got; k++)
        PyBuffer_Release(&views[k]);
    PyMem_Free(views);
    PyMem_Free(frames);
    Py_DECREF(items);
    return result;
}

static PyObject *coalesce_frames(PyObject *self, PyObject *args)
{
    PyObject *sequence, *params_tuple;
    if (!PyArg_ParseTuple(args, "OO", &sequence, &params_tuple))
        return NULL;
    return frames_poll(sequence, params_tuple, NULL, 0);
}

static PyObject *count_frames(PyObject *self, PyObject *args)
{
    PyObject *sequence, *params_tuple;
    Py_buffer counters;
    long long first_index;
    if (!PyArg_ParseTuple(args, "OOw*L", &sequence, &params_tuple, &counters, &first_index))
        return NULL;
    PyObject *result = frames_poll(sequence, params_tuple, &counters, first_index);
    PyBuffer_Release(&counters);
    return result;
}

/* One poll of Ethernet frames lying in one buffer (area, frames described by meta: AREA_META int64
 * each, offset and length first), the packets out written back to back to out and described in
 * out_meta (AREA_META int64 each: offset in out, length, segs, gso_size, gso_type, verified): the
 * number of packets, or -1 when the poll is one for the scalar engine (nothing kept). No Python object
 * per frame or per packet: the datapath's far edge hands each recvmmsg batch here. */
static PyObject *coalesce_area(PyObject *self, PyObject *args)
{
    Py_buffer area, meta, out, out_meta;
    Py_ssize_t count;
    PyObject *params_tuple;
    Params params;
    if (!PyArg_ParseTuple(args, "y*y*nOw*w*", &area, &meta, &count, &params_tuple, &out, &out_meta))
        return NULL;
    PyObject *result = NULL;
    Frame *frames = NULL;
    if (!parse_params(params_tuple, &params))
        goto done;
    if (count < 0 || count > params.batch || meta.len < (Py_ssize_t)sizeof(int64_t) * AREA_META * count
        || out_meta.len < (Py_ssize_t)sizeof(int64_t) * AREA_META * count) {
        PyErr_SetString(PyExc_ValueError, "coalesce_area: count beyond the poll, meta or out_meta");
        goto done;
    }
    const int64_t *m = meta.buf;
    Py_ssize_t total = 0;
    for (Py_ssize_t k = 0; k < count; k++) {
        int64_t at = m[AREA_META * k], len = m[AREA_META * k + 1];
        if (at < 0 || len < 0 || at > area.len || len > area.len - at) {
            PyErr_Format(PyExc_ValueError, "coalesce_area: frame %zd is not inside the area", k);
            goto done;
        }
        total += len;
    }
    if (out.len < total) {
        PyErr_SetString(PyExc_ValueError, "coalesce_area: out is smaller than the frames");
        goto done;
    }
    frames = PyMem_Malloc(sizeof(Frame) * (size_t)(count ? count : 1));
    if (frames == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    Poll poll = {.params = &params, .frames = frames, .out = out.buf, .out_size = out.len, .out_meta = out_meta.buf,
                 .out_max = count};
    int taken = 1;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t k = 0; k < count && taken; k++) {
        frames[k].frame = (const unsigned char *)area.buf + m[AREA_META * k];
        frames[k].record = NULL;
        frames[k].len = m[AREA_META * k + 1];
        if (classify(&frames[k], &params, 0) == KIND_SCALAR)
            taken = 0;
    }
    if (taken)
        taken = run_poll(&poll, (int)count);
    Py_END_ALLOW_THREADS
    result = PyLong_FromSsize_t(taken ? poll.n_out : -1);
done:
    PyMem_Free(frames);
    PyBuffer_Release(&area);
    PyBuffer_Release(&meta);
    PyBuffer_Release(&out);
    PyBuffer_Release(&out_meta);
    return result;
}

/* count_frames for `count` frames lying in one buffer: frame k is spans[k] bytes at starts[k] (int64
 * each); inspect's preview hands each whole poll of a chunk here */
static PyObject *count_area(PyObject *self, PyObject *args)
{
    Py_buffer area, starts, spans, counters;
    Py_ssize_t count;
    long long first_index;
    PyObject *params_tuple;
    Params params;
    if (!PyArg_ParseTuple(args, "y*y*y*nOw*L", &area, &starts, &spans, &count, &params_tuple, &counters,
                          &first_index))
        return NULL;
    PyObject *result = NULL;
    Frame *frames = NULL;
    if (!parse_params(params_tuple, &params))
        goto done;
    if (count < 0 || count > params.batch || starts.len < (Py_ssize_t)sizeof(int64_t) * count
        || spans.len < (Py_ssize_t)sizeof(int64_t) * count || counters.len < (Py_ssize_t)sizeof(int64_t) * COUNTERS) {
        PyErr_SetString(PyExc_ValueError, "count_area: count beyond the poll, starts, spans or counters");
        goto done;
    }
    frames = PyMem_Malloc(sizeof(Frame) * (size_t)(count ? count : 1));
    if (frames == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t k = 0; k < count; k++) {
        int64_t at, len;
        memcpy(&at, (const char *)starts.buf + sizeof(int64_t) * k, sizeof(int64_t));
        memcpy(&len, (const char *)spans.buf + sizeof(int64_t) * k, sizeof(int64_t));
        if (at < 0 || len < 0 || at > area.len || len > area.len - at) {
            PyErr_Format(PyExc_ValueError, "count_area: frame %zd is not inside the area", k);
            goto done;
        }
        frames[k].frame = (const unsigned char *)area.buf + at;
        frames[k].record = NULL;
        frames[k].len = (Py_ssize_t)len;
    }
    Poll poll = {.params = &params, .frames = frames, .count_only = 1, .first_index = first_index};
    memcpy(poll.counts.c, counters.buf, sizeof(poll.counts.c));
    int taken = 1;
    for (Py_ssize_t k = 0; k < count && taken; k++)
        if (classify(&frames[k], &params, 1) == KIND_SCALAR)
            taken = 0;
    if (taken)
        taken = run_poll(&poll, (int)count);
    if (taken)
        memcpy(counters.buf, poll.counts.c, sizeof(poll.counts.c));
    result = Py_NewRef(taken ? Py_True : Py_False);
done:
    PyMem_Free(frames);
    PyBuffer_Release(&area);
    PyBuffer_Release(&starts);
    PyBuffer_Release(&spans);
    PyBuffer_Release(&counters);
    return result;
}

static PyMethodDef methods[] = {
    {"count_area", count_area, METH_VARARGS, "GRO over one poll of Ethernet frames in one buffer, its packets counted only."},
    {"coalesce_area", coalesce_area, METH_VARARGS, "GRO over one poll of Ethernet frames in one buffer, into one buffer."},
    {"coalesce_pcap", coalesce_pcap, METH_VARARGS, "GRO over classic pcap records, poll by poll."},
    {"coalesce_frames", coalesce_frames, METH_VARARGS, "GRO over one poll of Ethernet frames."},
    {"count_frames", count_frames, METH_VARARGS, "GRO over one poll of Ethernet frames, its packets counted only."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_coalesce", NULL, -1, methods};

PyMODINIT_FUNC PyInit__coalesce(void)
{
    PyObject *m = PyModule_Create(&module);
    if (m == NULL)
        return NULL;
    if (PyModule_AddIntConstant(m, "COUNTERS", COUNTERS) < 0 || PyModule_AddIntConstant(m, "REASONS", R_COUNT) < 0
        || PyModule_AddIntConstant(m, "AREA_META", AREA_META) < 0
        || PyModule_AddIntConstant(m, "DONE", STATUS_DONE) < 0 || PyModule_AddIntConstant(m, "MORE", STATUS_MORE) < 0
        || PyModule_AddIntConstant(m, "POLL", STATUS_POLL) < 0 || PyModule_AddIntConstant(m, "REST", STATUS_REST) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
