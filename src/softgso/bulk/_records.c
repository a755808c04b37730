/* Optional compiled walks of the checkers' bulk reader (softgso.bulk.frames, for ``softgso diff``):
 * plain C, no numpy headers, the GIL released while working.
 *
 * It decides nothing softgso.check.flowdiff does not: it only recognises the one case that needs no
 * judgement, and leaves every other frame to flowdiff's own per-frame code.
 *
 * frame_spans(buffer, offsets, codes, lengths, count, pcapng, big_endian, heads, starts, spans) -> n
 *   The frames of the records a walk found (_segment.scan: pcap records; _segment.scan_blocks:
 *   pcapng blocks, lengths their frames' caplens): for each record that is not a dropped block
 *   (code 7), the offset in buffer of its record (its block), of its frame, and the frame's length
 *   (int64 each), in order; n of them.
 *
 * tcp_segments(a, network, transport, payload_at, payload_end, version, seq, buffer, starts, spans,
 *              first, count, more) -> n
 *   How many frames of B from frame first (of count) are, one after the other, the segments of A
 *   (a TCP frame with payload, its headers at the offsets given, as flowdiff.parse_unit finds them)
 *   that flowdiff.FlowDiff would pair with it when nothing of A's flow waits unpaired, and judge
 *   "segmented, payload intact" with no problem and no change: each one plain TCP over IPv4 or
 *   IPv6 right behind the Ethernet header (no VLAN tag, label or extension header: no tunnel
 *   either), of A's flow, at the next sequence number, with payload, no more of it than A has
 *   left; together A's payload byte for byte; headers A's but for what segmentation gives each
 *   segment (flowdiff.masked_header); IPv4 header checksum verifying; TCP checksum complete or the
 *   CHECKSUM_PARTIAL seed; lengths within the frame; FIN/PSH on the last segment only, CWR on the
 *   first only (tcp_gso_segment). 0 when that is not so (or fewer than 2 frames): flowdiff's own
 *   code pairs A. -1 when the segments run on past frame count and more frames may follow (more):
 *   the caller reads on and asks again.
 *
 * inspect_rows(buffer, heads, starts, spans, codes, count, pcapng, big_endian, port_map, rows) -> None
 *   What softgso inspect counts of each of count frames (frame_spans' heads, starts and spans; codes
 *   frame_spans' frame codes, _segment.scan's with short frames classified), as a ROW_SIZE-byte row
 *   each (softgso.cli.inspect_batch.ROW, native byte order): its record's timestamp (pcap: seconds
 *   << 32 | fraction; an EPB: the 64-bit tick count; an SPB: 0), orig_len, interface (pcap 0, an SPB
 *   0xFFFFFFFF), caplen; and, for a short frame segment leaves untouched (code 0-4) or sends as one
 *   frame with its partial seed completed or left (code 8, _segment.scan's C_SEED), its class:
 *   1 IP: Ethernet, up to two 802.1Q/802.1ad tags, IPv4 (no fragment, a valid header length) or
 *   IPv6 (no extension header), its length fields filling the frame exactly or padding it to at
 *   most 60 bytes, carrying TCP or UDP (headers whole within the IP packet; UDP to none of port_map's
 *   ports, a bit per port) or another protocol that is no tunnel (not 4, 41, 47); with its IPv4
 *   header checksum state, its L4 checksum state as prepare.classify_l4_checksum gives it over the IP
 *   packet, its flow (version, protocol, ports, addresses) and tags; 2 non-IP: any other ethertype
 *   but MPLS (its ethertype and tags). 0 for every other frame: inspect's per-frame code reads it.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>
#include "../_wordsum.h"
#include "../_ipv4_options.h"

#define ONES 0xFFFF
#define DROPPED 7 /* fastpath.CODE_DROPPED: a pcapng block that holds no packet */
#define BT_EPB 6u
#define MAX_HEADER 512 /* headers compared in a local copy; longer ones go to flowdiff */
/* tcp_gso_segment: FIN and PSH stay on the last segment only, CWR on the first only */
#define TCP_FIN 0x01
#define TCP_PSH 0x08
#define TCP_CWR 0x80

static inline unsigned be16(const unsigned char *p) { return (unsigned)p[0] << 8 | p[1]; }

static inline uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline uint32_t get32(const unsigned char *p, int big_endian)
{
    return big_endian ? be32(p) : ((uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0]);
}

/* flowdiff._sum16: the big-endian 16-bit word sum of p[0:length] (odd length zero-padded), modulo 0xFFFF */
static int64_t sum16(const unsigned char *p, Py_ssize_t length)
{
    return fold_with_tail(sum_words(p, length / 4), p, length);
}

static PyObject *frame_spans(PyObject *self, PyObject *args)
{
    Py_buffer buffer, offsets_buf, codes_buf, lengths_buf, heads_buf, starts_buf, spans_buf, frame_codes_buf = {0};
    Py_ssize_t count;
    int pcapng, big_endian;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*y*y*y*nppw*w*w*|w*", &buffer, &offsets_buf, &codes_buf, &lengths_buf, &count, &pcapng,
                          &big_endian, &heads_buf, &starts_buf, &spans_buf, &frame_codes_buf))
        return NULL;
    PyObject *result = NULL;
    signed char *frame_codes = (signed char *)frame_codes_buf.buf;
    if (count < 0 || count > offsets_buf.len / 8 || count > codes_buf.len || (pcapng && count > lengths_buf.len / 4) ||
        count > heads_buf.len / 8 || count > starts_buf.len / 8 || count > spans_buf.len / 8 ||
        (frame_codes != NULL && count > frame_codes_buf.len)) {
        PyErr_SetString(PyExc_ValueError, "frame_spans: array sizes out of range");
        goto done;
    }
    const unsigned char *data = (const unsigned char *)buffer.buf;
    const int64_t *offsets = (const int64_t *)offsets_buf.buf;
    const signed char *codes = (const signed char *)codes_buf.buf;
    const uint32_t *lengths = (const uint32_t *)lengths_buf.buf;
    int64_t *heads = (int64_t *)heads_buf.buf, *starts = (int64_t *)starts_buf.buf, *spans = (int64_t *)spans_buf.buf;
    Py_ssize_t n = 0, bad = 0;
    for (Py_ssize_t i = 0; i < count; i++) {
        if (codes[i] == DROPPED)
            continue;
        int64_t offset = offsets[i], head, start, length;
        if (pcapng) {
            /* an offset is the block's start + 12: an EPB's frame lies 16 bytes on, an SPB's right there */
            if (offset < 12 || offset > buffer.len - 4) {
                bad = 1;
                break;
            }
            head = offset - 12;
            start = get32(data + head, big_endian) == BT_EPB ? offset + 16 : offset;
            length = lengths[i];
        } else {
            if (offset < 0 || offset > buffer.len - 16) {
                bad = 1;
                break;
            }
            head = offset;
            start = offset + 16;
            length = get32(data + offset + 8, big_endian);
        }
        if (start > buffer.len || length > buffer.len - start) {
            bad = 1;
            break;
        }
        heads[n] = head;
        starts[n] = start;
        spans[n] = length;
        if (frame_codes != NULL)
            frame_codes[n] = codes[i];
        n++;
    }
    if (bad)
        PyErr_SetString(PyExc_ValueError, "frame_spans: a record beyond the buffer");
    else
        result = PyLong_FromSsize_t(n);
done:
    PyBuffer_Release(&buffer);
    PyBuffer_Release(&offsets_buf);
    PyBuffer_Release(&codes_buf);
    PyBuffer_Release(&lengths_buf);
    PyBuffer_Release(&heads_buf);
    PyBuffer_Release(&starts_buf);
    PyBuffer_Release(&spans_buf);
    if (frame_codes_buf.obj != NULL)
        PyBuffer_Release(&frame_codes_buf);
    return result;
}

/* the masked_header fields of a TCP frame whose IP header is at network, TCP header at transport,
 * zeroed in a copy of its headers (lengths, ID, IPv4 checksum; seq, the flags segmentation moves,
 * TCP checksum) */
static void mask_header(unsigned char *header, Py_ssize_t network, Py_ssize_t transport, int version)
{
    if (version == 4) {
        memset(header + network + 2, 0, 4);
        memset(header + network + 10, 0, 2);
    } else {
        memset(header + network + 4, 0, 2);
    }
    memset(header + transport + 4, 0, 4);
    header[transport + 13] &= (unsigned char)~(TCP_FIN | TCP_PSH | TCP_CWR);
    memset(header + transport + 16, 0, 2);
}

/* the judgement of one frame of B as the next segment of A; its payload length, or 0 */
typedef struct {
    const unsigned char *a;
    Py_ssize_t network, transport, payload_at, version;
    const unsigned char *masked; /* A's masked headers, payload_at bytes */
    unsigned a_flags;
} SegmentOf;

static Py_ssize_t segment_of(const SegmentOf *of, const unsigned char *p, Py_ssize_t size, uint32_t seq,
                             Py_ssize_t a_offset, Py_ssize_t remaining, int first)
{
    /* plain TCP right behind the Ethernet header, where flowdiff.parse_unit and
     * tunnels.parse_tunnel both read it so (the version nibble agreeing with the ethertype) */
    Py_ssize_t network = 14, transport, end;
    if (size < 14 || network != of->network)
        return 0;
    unsigned ethertype = be16(p + 12);
    if (ethertype == 0x0800 && of->version == 4 && network + 20 <= size && p[network] >> 4 == 4) {
        Py_ssize_t ihl = (p[network] & 0x0F) * 4, tot_len = be16(p + network + 2);
        end = tot_len >= ihl ? (network + tot_len < size ? network + tot_len : size) : size;
        if (ihl < 20 || network + ihl > end || (be16(p + network + 6) & 0x3FFF) || p[network + 9] != 6)
            return 0;
        /* flowdiff: the header checksum verifies; tot_len claims no more than the frame holds */
        if (sum16(p + network, ihl) != 0 || tot_len > size - network || ipv4_source_routed(p + network, ihl))
            return 0;
        transport = network + ihl;
    } else if (ethertype == 0x86DD && of->version == 6 && network + 40 <= size && p[network] >> 4 == 6) {
        Py_ssize_t payload_len = be16(p + network + 4);
        if (p[network + 6] != 6 || payload_len > size - network - 40)
            return 0;
        end = payload_len ? (network + 40 + payload_len < size ? network + 40 + payload_len : size) : size;
        transport = network + 40;
    } else {
        return 0;
    }
    if (transport != of->transport || transport + 20 > end)
        return 0;
    Py_ssize_t doff = (p[transport + 12] >> 4) * 4, payload_at = transport + doff;
    if (doff < 20 || payload_at > end || payload_at != of->payload_at)
        return 0;
    Py_ssize_t payload_len = end - payload_at;
    /* A's flow (addresses and ports), the next sequence number, payload no longer than A has left */
    Py_ssize_t address_at = network + (of->version == 4 ? 12 : 8), address_len = of->version == 4 ? 8 : 32;
    if (payload_len <= 0 || payload_len > remaining || be32(p + transport + 4) != seq ||
        memcmp(p + address_at, of->a + address_at, (size_t)address_len) != 0 ||
        memcmp(p + transport, of->a + transport, 4) != 0)
        return 0;
    /* the headers but for what segmentation sets (flowdiff.masked_header) */
    unsigned char header[MAX_HEADER];
    memcpy(header, p, (size_t)payload_at);
    mask_header(header, network, transport, (int)of->version);
    if (memcmp(header, of->masked, (size_t)payload_at) != 0)
        return 0;
    /* TCP flags as tcp_gso_segment leaves them */
    unsigned expected = of->a_flags;
    if (payload_len < remaining)
        expected &= ~(unsigned)(TCP_FIN | TCP_PSH);
    if (!first)
        expected &= ~(unsigned)TCP_CWR;
    if (p[transport + 13] != expected)
        return 0;
    /* the TCP checksum complete, or the CHECKSUM_PARTIAL seed (flowdiff.l4_checksum_state) */
    Py_ssize_t length = end - transport;
    if (of->version == 4 && length > 0xFFFF)
        return 0;
    int64_t seed = (sum16(p + address_at, address_len) + 6 + length % ONES) % ONES;
    int64_t stored = be16(p + transport + 16);
    if ((seed + sum16(p + transport, length)) % ONES != 0 && stored != (seed ? seed : ONES))
        return 0;
    /* its payload, A's at the same offset */
    if (memcmp(p + payload_at, of->a + of->payload_at + a_offset, (size_t)payload_len) != 0)
        return 0;
    return payload_len;
}

static PyObject *tcp_segments(PyObject *self, PyObject *args)
{
    Py_buffer a_buf, buffer, starts_buf, spans_buf;
    Py_ssize_t network, transport, payload_at, payload_end, version, first, count;
    unsigned long long seq_arg;
    int more;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*nnnnnKy*y*y*nnp", &a_buf, &network, &transport, &payload_at, &payload_end,
                          &version, &seq_arg, &buffer, &starts_buf, &spans_buf, &first, &count, &more))
        return NULL;
    PyObject *result = NULL;
    if (first < 0 || count < first || count > starts_buf.len / 8 || count > spans_buf.len / 8) {
        PyErr_SetString(PyExc_ValueError, "tcp_segments: frame range out of range");
        goto done;
    }
    Py_ssize_t n = 0;
    /* A as flowdiff found it: TCP with payload, its headers short enough to compare here */
    /* (payload_at bounded first, then transport > payload_at - 20, not transport + 20 > payload_at:
     * a transport near the largest Py_ssize_t would overflow that sum and pass) */
    if ((version != 4 && version != 6) || network < 0 || transport < network || payload_at > MAX_HEADER ||
        payload_at < 20 || transport > payload_at - 20 || payload_at >= payload_end || payload_end > a_buf.len) {
        result = PyLong_FromSsize_t(0);
        goto done;
    }
    const int64_t *starts = (const int64_t *)starts_buf.buf, *spans = (const int64_t *)spans_buf.buf;
    const unsigned char *data = (const unsigned char *)buffer.buf;
    unsigned char masked[MAX_HEADER];
    SegmentOf of = {(const unsigned char *)a_buf.buf, network, transport, payload_at, version, masked, 0};
    of.a_flags = of.a[transport + 13];
    memcpy(masked, of.a, (size_t)payload_at);
    mask_header(masked, network, transport, (int)version);
    Py_ssize_t total = payload_end - payload_at, remaining = total;
    uint32_t seq = (uint32_t)seq_arg;
    int beyond = 0;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t j = first; remaining > 0; j++) {
        if (j >= count) {
            beyond = 1;
            break;
        }
        if (starts[j] < 0 || spans[j] < 0 || starts[j] > buffer.len || spans[j] > buffer.len - starts[j]) {
            n = 0;
            remaining = 1;
            break;
        }
        Py_ssize_t got = segment_of(&of, data + starts[j], spans[j], seq, total - remaining, remaining, j == first);
        if (got == 0) {
            remaining = 1;
            break;
        }
        remaining -= got;
        seq += (uint32_t)got;
        n++;
    }
    Py_END_ALLOW_THREADS
    if (beyond)
        n = more ? -1 : 0;
    else if (remaining != 0 || n < 2)
        n = 0;
    result = PyLong_FromSsize_t(n);
done:
    PyBuffer_Release(&a_buf);
    PyBuffer_Release(&buffer);
    PyBuffer_Release(&starts_buf);
    PyBuffer_Release(&spans_buf);
    return result;
}

/* inspect_rows' row (softgso.cli.inspect_batch.ROW) */
typedef struct {
    uint64_t ticks;
    uint32_t wire_len, interface, length;
    uint16_t l3_len;
    uint8_t kind, ipv4_state, l4_state, padded, tags, pad0;
    uint16_t ethertype, pad1;
    /* the flow, compared as 40 bytes */
    uint8_t version, proto;
    uint16_t sport, dport, pad2;
    uint8_t src[16], dst[16];
    uint32_t tag[2];
} InspectRow;

#define ROW_SIZE 80
_Static_assert(sizeof(InspectRow) == ROW_SIZE, "inspect_rows: the row is ROW_SIZE bytes");
#define ROW_IP 1
#define ROW_NON_IP 2
#define ETH_ZLEN 60
/* L4 checksum states in prepare.classify_l4_checksum's order of tests */
enum { L4_NONE, L4_ZERO, L4_COMPLETE, L4_PARTIAL, L4_SEED_NOLEN, L4_INVALID };

/* prepare.classify_l4_checksum over p[transport:end] (addresses at address_at, address_len bytes) */
static uint8_t l4_state(const unsigned char *p, Py_ssize_t address_at, Py_ssize_t address_len, Py_ssize_t transport,
                        Py_ssize_t end, unsigned proto, int version)
{
    unsigned stored = be16(p + transport + (proto == 6 ? 16 : 6));
    if (proto == 17 && version == 4 && stored == 0)
        return L4_ZERO;
    int64_t addresses = sum16(p + address_at, address_len), length = end - transport;
    /* checksum.pseudo_header_sum: never 0 here (the protocol is not), 0xFFFF for a multiple of it */
    int64_t pseudo = (addresses + proto + (length >> 16) + (length & 0xFFFF)) % ONES;
    int64_t no_length = (addresses + proto) % ONES;
    if ((sum16(p + transport, length) + pseudo) % ONES == 0)
        return L4_COMPLETE;
    if (stored == (unsigned)(pseudo ? pseudo : ONES))
        return L4_PARTIAL;
    if (stored == (unsigned)(no_length ? no_length : ONES))
        return L4_SEED_NOLEN;
    return stored == 0 ? L4_ZERO : L4_INVALID;
}

/* a frame's class and counts (see inspect_rows); the row's kind stays 0 for a frame it does not take */
static void inspect_frame(const unsigned char *p, Py_ssize_t size, const unsigned char *port_map, InspectRow *row)
{
    if (size < 14 || size > 0xFFFF)
        return;
    Py_ssize_t at = 12;
    unsigned ethertype = be16(p + 12), tags = 0;
    while ((ethertype == 0x8100 || ethertype == 0x88A8 || ethertype == 0x9100) && at + 6 <= size) {
        if (ethertype == 0x9100 || tags == 2)
            return;
        row->tag[tags++] = (uint32_t)ethertype << 16 | be16(p + at + 2);
        at += 4;
        ethertype = be16(p + at);
    }
    if (ethertype == 0x8100 || ethertype == 0x88A8 || ethertype == 0x9100 || ethertype == 0x8847 ||
        ethertype == 0x8848)
        return;
    Py_ssize_t network = at + 2;
    row->tags = (uint8_t)tags;
    row->l3_len = (uint16_t)(size - 14 - 4 * (Py_ssize_t)tags);
    if (ethertype != 0x0800 && ethertype != 0x86DD) {
        row->ethertype = (uint16_t)ethertype;
        row->kind = ROW_NON_IP;
        return;
    }
    Py_ssize_t transport, ip_end, address_at, address_len;
    unsigned proto;
    int version;
    if (ethertype == 0x0800) {
        if (network + 20 > size || p[network] >> 4 != 4)
            return;
        Py_ssize_t ihl = (p[network] & 0x0F) * 4, total = be16(p + network + 2);
        if (ihl < 20 || network + ihl > size || total < ihl || (be16(p + network + 6) & 0x3FFF) ||
            ipv4_source_routed(p + network, ihl))
            return;
        ip_end = network + total;
        proto = p[network + 9];
        transport = network + ihl;
        version = 4;
        address_at = network + 12;
        address_len = 8;
        row->ipv4_state = sum16(p + network, ihl) == 0 ? 1 : 2;
    } else {
        if (network + 40 > size || p[network] >> 4 != 6)
            return;
        Py_ssize_t payload = be16(p + network + 4);
        proto = p[network + 6];
        if (payload == 0 || proto == 0 || proto == 43 || proto == 44 || proto == 60)
            return;
        ip_end = network + 40 + payload;
        transport = network + 40;
        version = 6;
        address_at = network + 8;
        address_len = 32;
    }
    /* the IP packet fills the frame, or a short frame pads it (inspect's "padded") */
    if (ip_end < size && size <= ETH_ZLEN)
        row->padded = 1;
    else if (ip_end != size)
        return;
    if (proto == 4 || proto == 41 || proto == 47)
        return;
    if (proto == 6) {
        if (transport + 20 > ip_end)
            return;
        Py_ssize_t doff = (p[transport + 12] >> 4) * 4;
        if (doff < 20 || transport + doff > ip_end)
            return;
    } else if (proto == 17) {
        if (transport + 8 > ip_end)
            return;
        unsigned dport = be16(p + transport + 2);
        if (port_map[dport >> 3] >> (dport & 7) & 1)
            return;
    }
    if (proto == 6 || proto == 17) {
        row->sport = (uint16_t)be16(p + transport);
        row->dport = (uint16_t)be16(p + transport + 2);
        row->l4_state = l4_state(p, address_at, address_len, transport, ip_end, proto, version);
    }
    row->version = (uint8_t)version;
    row->proto = (uint8_t)proto;
    memcpy(row->src, p + address_at, (size_t)address_len / 2);
    memcpy(row->dst, p + address_at + address_len / 2, (size_t)address_len / 2);
    row->kind = ROW_IP;
}

static PyObject *inspect_rows(PyObject *self, PyObject *args)
{
    Py_buffer buffer, heads_buf, starts_buf, spans_buf, codes_buf, port_map_buf, rows_buf;
    Py_ssize_t count;
    int pcapng, big_endian;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*y*y*y*y*nppy*w*", &buffer, &heads_buf, &starts_buf, &spans_buf, &codes_buf, &count,
                          &pcapng, &big_endian, &port_map_buf, &rows_buf))
        return NULL;
    PyObject *result = NULL;
    if (count < 0 || count > heads_buf.len / 8 || count > starts_buf.len / 8 || count > spans_buf.len / 8 ||
        count > codes_buf.len || count > rows_buf.len / ROW_SIZE || port_map_buf.len < 8192) {
        PyErr_SetString(PyExc_ValueError, "inspect_rows: array sizes out of range");
        goto done;
    }
    const unsigned char *data = (const unsigned char *)buffer.buf, *port_map = (const unsigned char *)port_map_buf.buf;
    const int64_t *heads = (const int64_t *)heads_buf.buf, *starts = (const int64_t *)starts_buf.buf;
    const int64_t *spans = (const int64_t *)spans_buf.buf;
    const signed char *codes = (const signed char *)codes_buf.buf;
    InspectRow *rows = (InspectRow *)rows_buf.buf;
    int bad = 0;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < count; i++) {
        InspectRow *row = &rows[i];
        memset(row, 0, sizeof *row);
        int64_t head = heads[i], start = starts[i], span = spans[i];
        if (head < 0 || head > buffer.len - 16 || start < 0 || span < 0 || start > buffer.len ||
            span > buffer.len - start || (pcapng && get32(data + head, big_endian) == BT_EPB && head > buffer.len - 28)) {
            bad = 1;
            break;
        }
        const unsigned char *h = data + head;
        if (!pcapng) {
            row->ticks = (uint64_t)get32(h, big_endian) << 32 | get32(h + 4, big_endian);
            row->wire_len = get32(h + 12, big_endian);
        } else if (get32(h, big_endian) == BT_EPB) {
            row->interface = get32(h + 8, big_endian);
            row->ticks = (uint64_t)get32(h + 12, big_endian) << 32 | get32(h + 16, big_endian);
            row->wire_len = get32(h + 24, big_endian);
        } else { /* a Simple Packet Block: interface 0, no timestamp */
            row->interface = 0xFFFFFFFFu;
            row->wire_len = get32(h + 8, big_endian);
        }
        row->length = (uint32_t)span;
        /* (code 8: a short frame whose checksum is a partial seed, sent as one frame: segment completes or
         * leaves the seed, and inspect counts it as such) */
        if (((codes[i] >= 0 && codes[i] <= 4) || codes[i] == 8) && row->wire_len <= (uint64_t)span)
            inspect_frame(data + start, span, port_map, row);
    }
    Py_END_ALLOW_THREADS
    if (bad)
        PyErr_SetString(PyExc_ValueError, "inspect_rows: a record beyond the buffer");
    else
        result = Py_NewRef(Py_None);
done:
    PyBuffer_Release(&buffer);
    PyBuffer_Release(&heads_buf);
    PyBuffer_Release(&starts_buf);
    PyBuffer_Release(&spans_buf);
    PyBuffer_Release(&codes_buf);
    PyBuffer_Release(&port_map_buf);
    PyBuffer_Release(&rows_buf);
    return result;
}

static PyMethodDef methods[] = {
    {"frame_spans", frame_spans, METH_VARARGS, "The frames of a walk's records: offsets and lengths."},
    {"tcp_segments", tcp_segments, METH_VARARGS, "How many frames of B are A's segments, judged intact and ok."},
    {"inspect_rows", inspect_rows, METH_VARARGS, "What softgso inspect counts of each frame, a row each."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_records", NULL, -1, methods, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__records(void) { return PyModule_Create(&module); }
