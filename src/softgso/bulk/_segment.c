/* Optional compiled primitive of the bulk pipeline (softgso.bulk.pipeline, through
 * softgso.bulk.compiled_primitive): plain C, no numpy headers, the GIL released while working.
 *
 * It decides nothing. The scalar engine (softgso.job.process_frame) decides, once per shape, and
 * softgso.bulk.fastpath turns its answer into a plan; this module repeats that plan for every packet
 * of the shape with the same formulas as fastpath's numpy code (residues modulo 0xFFFF, the
 * kernel's 0/0xFFFF edges of csum_fold and csum_add), so its bytes are numpy's bytes: the tests
 * hold all three paths (scalar, numpy, C) to one output.
 *
 * segment(plan, template_full, template_last, buffer, jobs, out, codes)
 *   The engine's shapes: frames and a plan. For every job (frame offset in buffer, offset in out,
 *   packet number; int64 triples) the packet's segments, back to back from that offset of out:
 *   each one's protocol headers and its payload piece, the piece's checksum summed in the same
 *   pass as its copy. With plan[CLASSIFY] the packet's input checksum state code goes to
 *   codes[packet number].
 *
 * The pcap file stream's own steps (its frames lie in pcap records):
 *
 * scan(buffer, pos, end, chunk_end, big_endian, ticks, snap_limit, small_limit, bulk_small,
 *      offsets, codes[, link[, port_map]]) -> (records, pos, stop)
 *   The pcap record walk of one chunk. Every complete record from pos (while pos < chunk_end) gets
 *   its offset (int64) and a code (int8, fastpath's CODE_*): 0-3 a short frame left untouched whose
 *   L4 checksum state is ZERO/COMPLETE/PARTIAL-free/INVALID, 4 a short frame left untouched with no
 *   TCP/UDP layout (fastpath.classify_frames' codes), 5 for the scalar path one record at a time,
 *   6 a super-packet candidate (longer than small_limit, not snapped). stop is 1 when the walk
 *   ends at a record the general reader must take (cut short by end, caplen beyond snap_limit, a
 *   timestamp fraction of ticks or more): pos is then that record's offset. port_map (8192 bytes, a
 *   bit per UDP port, bit (port & 7) of byte port >> 3) names the UDP ports of --tunnel-port: a short
 *   frame to one of them is the scalar path's, as one to a tunnel's own port is.
 *
 * scan_blocks(buffer, pos, end, chunk_end, big_endian, kinds, spb_snaplen, snap_limit, small_limit,
 *             bulk_small, offsets, codes, lengths[, port_map]) -> (records, pos, stop)
 *   scan for the blocks of a pcapng section (softgso.io.pcapng): an Enhanced Packet Block's offset is
 *   its start + 12, where its timestamp, caplen and orig_len lie as a pcap record header does (so
 *   same_shape, same_bytes and segment_records read it as one); a Simple Packet Block's is its start
 *   + 12 too (its frame: never a candidate); lengths (uint32) get each frame's caplen. kinds[interface id] is 1 for an interface whose records
 *   may be segmented in bulk (Ethernet, timestamps written back exactly), 0 for one whose records all
 *   go to the scalar path; an EPB with an opt_comment goes there too (GSO metadata). Blocks the
 *   general reader skips (statistics, name resolution, ...) get code 7 (dropped); a section header,
 *   an interface description, an obsolete Packet Block, a broken or cut block, an unknown interface,
 *   a length beyond snap_limit or epb_flags that give the frame an FCS stop the walk there.
 *
 * segment_records(plan, template_full, template_last, buffer, jobs, big_endian, out, codes[, pcapng[, vectors]])
 *   segment for frames in pcap records (a job's first offset is its record's), each segment
 *   written behind its own record header (the input record's timestamp, the segment's length as
 *   caplen and orig_len) in the same pass: a second pass over the output to frame it was measured
 *   6% of the engine's time. With vectors (room for 2 * segments * jobs + 1 (base, length) uint64
 *   pairs) the payload is not copied: out gets each segment's record header (or EPB head, and its
 *   tail) and protocol headers alone, the payload pieces are summed where they lie in buffer, and
 *   vectors gets the iovecs that write the segments in order (out's bytes, the piece in buffer,
 *   ...); returns how many pairs it wrote. A writev of them puts each payload byte in the output
 *   with the one copy the kernel makes.
 *
 * segment_records(..., pcapng, vectors, fd, piece)
 *   The same, the pairs written to fd (writev, as writev_all) each time the packets segmented since
 *   the last write hold piece payload bytes, and after the last packet: the kernel's copy then reads
 *   payloads summed a moment before, from the core's cache. Returns the bytes written.
 *
 * match_shapes(buffer, offsets, walked, first, stop, chunk_stop, codes, ids, table, pcapng) -> matched
 *   Each super-packet candidate's shape among a few of earlier runs (softgso.bulk.pipeline.ShapeTable),
 *   so that the planner parses the headers of a packet of a new shape only (see the function).
 *
 * writev_all(fd, vectors, pairs) -> bytes written
 *   writev(2) of the first ``pairs`` (base, length) pairs of vectors, IOV_MAX at a time, to the
 *   end (short writes resumed), without the GIL.
 *
 * guard_add(mapping) -> slot; guard_remove(slot); guard_faults() -> n
 *   The SIGBUS guard of a mapped input (softgso.bulk.chunks.MappedInput). A page of a file mapping
 *   that lies past the file's end (the file cut short while mapped) raises SIGBUS on the first touch,
 *   whoever touches it: this module's sums and walks, or Python reading a record. While a mapping is
 *   registered (guard_add takes any buffer: its first byte to its last), a SIGBUS at an address inside
 *   it (si_code BUS_ADRERR) is answered by mapping a page of zeros there (mmap MAP_FIXED, a system
 *   call the handler may make) and counting it in guard_faults; the touch is retried and reads zeros.
 *   The stream compares guard_faults and the file's size after each chunk and hands a chunk that read
 *   a vanished byte to the general reader, so no zero ever reaches an output. Any other SIGBUS goes to
 *   the handler there was before (or the default action, as if no guard were installed). The handler
 *   is installed with the first slot taken and the previous one restored with the last slot freed;
 *   slots are read by the handler on any thread (atomics), added and removed under the GIL.
 *
 * same_shape(buffer, offsets, walked, first, stop, chunk_stop, network, transport, payload, ipv4, tcp) -> n
 *   How many records after record first (of the walked offsets scan found, the last one ending at
 *   chunk_stop; first < stop <= walked) have its
 *   shape: the same length and the same header bytes (to payload) but for the per-packet fields of
 *   fastpath.shape_key (IPv4 ID and checksum; TCP seq, ack, flags, window, checksum, urgent
 *   pointer, options; UDP checksum). The layout of record first is given (prepare.parse_layout,
 *   which reads no per-packet field, so such records share its layout, key and plan).
 *
 * unsigned_run(buffer, offsets, first, count, frame_at, start, end) -> n
 *   How many of the count records after record first come before the first whose TCP options (frame
 *   bytes [start, end), the frame frame_at bytes past its record's offset) carry an MD5 or TCP-AO
 *   signature (softgso.bulk.fastpath.signed_in_run: a run of one shape ends there).
 *
 * same_bytes(buffer, offsets, walked, first, stop, chunk_stop, ranges, nonzero_at) -> n
 *   same_shape for a shape given as the header bytes that must be equal (ranges: int64 (from, to)
 *   pairs of frame offsets, up to 64 KiB) and a 16-bit field whose being 0 or not must agree
 *   (nonzero_at, -1: none): tunnelled shapes (fastpath.TunnelShape).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <limits.h>
#include <stdint.h>
#include <string.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>
#include "../_wordsum.h"
#include "../_ipv4_options.h"

#ifndef IOV_MAX
#define IOV_MAX 1024
#endif

#define ONES 0xFFFF

/* plan fields, in softgso.bulk.compiled_primitive.PLAN_FIELDS order */
enum {
    P_FRAME_LEN, P_PAYLOAD_AT, P_HEADER_LEN, P_MSS, P_SEGMENTS, P_LAST_LEN, P_UDP, P_IPV4_AT,
    P_IPV4_IN, P_BASE_FULL, P_BASE_LAST, P_FIXED_ID, P_L4_IN, P_L4_OUT, P_L4_HDR_LEN, P_PARTIAL,
    P_SEED, P_CONST_FULL, P_CONST_LAST, P_UDP_LEN_OUT, P_UDP_PORTS, P_CLASSIFY, P_IPV4,
    /* tunnels: the outer IPv4 header, and the outer checksum over the segment from P_CSUM_AT */
    P_OUTER_IPV4_AT, P_OUTER_IPV4_IN, P_OUTER_BASE_FULL, P_OUTER_BASE_LAST, P_OUTER_FIXED_ID,
    P_CSUM_AT, P_CSUM_FIELD, P_CSUM_CONST_FULL, P_CSUM_CONST_LAST, P_CSUM_MANGLE, P_COUNT
};

static inline int64_t residue(int64_t x)
{
    x %= ONES;
    return x < 0 ? x + ONES : x;
}

/* csum_fold of a sum known to be non-zero, given as a residue: (-x) mod 0xFFFF */
static inline int64_t complement(int64_t x) { return residue(-x); }

/* checksum.csum_add: 0 only for 0 + 0 */
static inline int64_t csum_add(int64_t a, int64_t b)
{
    int64_t total = a + b, folded = residue(total);
    return folded ? folded : (total ? ONES : 0);
}

/* checksum.csum16_add: end-around carry on 16 bits */
static inline int64_t csum16_add(int64_t a, int64_t b)
{
    int64_t value = (a + b) & 0xFFFF;
    return (value + (value < b)) & 0xFFFF;
}

static inline unsigned be16(const unsigned char *p) { return (unsigned)p[0] << 8 | p[1]; }

static inline void put16(unsigned char *p, unsigned v)
{
    p[0] = (unsigned char)(v >> 8);
    p[1] = (unsigned char)v;
}

static inline uint32_t get32(const unsigned char *p, int big_endian)
{
    return big_endian ? ((uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3])
                      : ((uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0]);
}

static inline void put32(unsigned char *p, uint32_t v, int big_endian)
{
    if (big_endian) {
        p[0] = (unsigned char)(v >> 24); p[1] = (unsigned char)(v >> 16);
        p[2] = (unsigned char)(v >> 8); p[3] = (unsigned char)v;
    } else {
        p[3] = (unsigned char)(v >> 24); p[2] = (unsigned char)(v >> 16);
        p[1] = (unsigned char)(v >> 8); p[0] = (unsigned char)v;
    }
}

/* the big-endian 16-bit word sum of p[0:length] (odd length zero-padded), modulo 0xFFFF */
static int64_t word_sum(const unsigned char *p, Py_ssize_t length)
{
    return fold_with_tail(sum_words(p, length / 4), p, length);
}

/* word_sum of p[0:length], copied to q in the same pass (the piece read once for both) */
static int64_t copy_word_sum(unsigned char *q, const unsigned char *p, Py_ssize_t length)
{
    return fold_with_tail(copy_sum_words(q, p, length), p, length);
}

/* fastpath.classify_frames for one frame of buffer (data + start, length bytes; limit the last
 * readable offset of the buffer: reads past the frame are clamped there, as numpy's are). */
/* fastpath.CODE_*: a checksum state, no layout, the scalar path's, a super-packet candidate (scan) */
/* C_SEED: a short Ethernet frame whose checksum is a partial seed, for complete_seeds (SMALL_SEEDS) */
enum { C_ZERO, C_COMPLETE, C_PARTIAL, C_INVALID, C_NO_LAYOUT, C_SCALAR, C_CANDIDATE, C_DROPPED, C_SEED };

#define PORT_MAP_LEN 8192 /* a bit per UDP port: scan's port_map */

static inline int port_in(const unsigned char *port_map, unsigned port)
{
    return port_map != NULL && (port_map[port >> 3] >> (port & 7) & 1);
}

/* where a frame's L4 checksum lies, as classify_frame found it: its L4 bytes [transport, end), their
 * word_sum (the field's bytes among them), the field at transport + 16 (TCP) or + 6 (UDP), and the
 * frame's class for complete_seeds (one VLAN tag: 4, IPv6: 2, UDP: 1) */
struct l4_at {
    Py_ssize_t transport, end;
    int64_t sum;
    int udp, class;
};

static int classify_frame(const unsigned char *data, Py_ssize_t limit, Py_ssize_t start, Py_ssize_t length,
                          int link_ethertype, const unsigned char *port_map, struct l4_at *at)
{
#define BYTE(off) ((unsigned)data[(start + (off)) < limit ? start + (off) : limit])
#define BE16(off) (BYTE(off) << 8 | BYTE((off) + 1))
    if (length < 14)
        return C_NO_LAYOUT;
    /* another link type's frame is read as the Ethernet frame to_ethernet makes of it: its L3 bytes
     * 14 bytes into the frame, behind the ethertype its link header names */
    unsigned ethertype = link_ethertype >= 0 ? (unsigned)link_ethertype : BE16(12);
    Py_ssize_t network = 14;
    int vlan = (ethertype == 0x8100 || ethertype == 0x88A8) && length >= 18;
    if (vlan) {
        network = 18;
        ethertype = BE16(16);
        if (ethertype == 0x8100 || ethertype == 0x88A8)
            return C_SCALAR;
    }
    if (ethertype == 0x8847 || ethertype == 0x8848)
        return C_SCALAR;
    unsigned first = BYTE(network), next_header;
    int v4 = 0;
    Py_ssize_t transport, end;
    if (ethertype == 0x0800 && network + 20 <= length && first >> 4 == 4) {
        Py_ssize_t ihl = (first & 0x0F) * 4;
        if (ihl < 20 || network + ihl > length || (BE16(network + 6) & 0x3FFF))
            return C_NO_LAYOUT;
        v4 = 1;
        next_header = BYTE(network + 9);
        transport = network + ihl;
        /* the packet ends where its total length says (a trailer or padding follows); a length of 0
         * (the BIG TCP marker) or one the frame contradicts, and a header checksum left 0 by a
         * sender's offload (completed), are the scalar path's to judge */
        Py_ssize_t total_len = BE16(network + 2);
        if (total_len < ihl || network + total_len > length || BE16(network + 10) == 0)
            return C_SCALAR;
        /* a loose or strict source route with hops left: the checksum covers the route's last
         * address (prepare.ipv4_final_destination), the scalar path's to read (as is a header the
         * buffer does not hold whole) */
        if (ihl > 20 && (start + network + ihl > limit + 1 || ipv4_source_routed(data + start + network, ihl)))
            return C_SCALAR;
        end = network + total_len;
    } else if (ethertype == 0x86DD && network + 40 <= length && first >> 4 == 6) {
        next_header = BYTE(network + 6);
        if (next_header == 0 || next_header == 43 || next_header == 60)
            return C_SCALAR;
        transport = network + 40;
        Py_ssize_t payload_len = BE16(network + 4);
        if (payload_len == 0 || transport + payload_len > length)
            return C_SCALAR;
        end = transport + payload_len;
    } else {
        return C_NO_LAYOUT;
    }
    /* a tunnel (GRE, IP-in-IP, a UDP encapsulation's port): the scalar path reads the inner packet's
     * checksum state, and judges what the tunnel carries */
    if (next_header == 47 || next_header == 4 || next_header == 41)
        return C_SCALAR;
    if (next_header == 17 && transport + 4 <= length) {
        unsigned dport = BE16(transport + 2);
        if (dport == 4789 || dport == 8472 || dport == 4790 || dport == 6081 || dport == 6635 || dport == 2152 ||
            port_in(port_map, dport))
            return C_SCALAR;
    }
    int udp;
    if (next_header == 6 && transport + 20 <= length) {
        Py_ssize_t thlen = (BYTE(transport + 12) >> 4) * 4;
        if (thlen < 20 || transport + thlen > length)
            return C_NO_LAYOUT;
        if (transport + thlen > end)
            return C_SCALAR;
        udp = 0;
    } else if (next_header == 17 && transport + 8 <= length) {
        Py_ssize_t udp_len = BE16(transport + 4);
        if (transport + 8 > end || (udp_len != 0 && udp_len != end - transport))
            return C_SCALAR;
        udp = 1;
    } else {
        return C_NO_LAYOUT;
    }
    /* the pseudo-header: addresses, protocol, L4 length; then the L4 bytes up to the packet's end */
    const unsigned char *frame = data + start;
    int64_t addresses = v4 ? word_sum(frame + network + 12, 8) : word_sum(frame + network + 8, 32);
    int64_t pseudo = ((int64_t)next_header + (end - transport) + addresses) % ONES;
    if (pseudo == 0)
        pseudo = ONES;
    unsigned stored = be16(frame + transport + (udp ? 6 : 16));
    int64_t l4_sum = word_sum(frame + transport, end - transport);
    if (at) {
        at->transport = transport;
        at->end = end;
        at->sum = l4_sum;
        at->udp = udp;
        at->class = vlan * 4 + !v4 * 2 + udp;
    }
    int64_t total = (l4_sum + pseudo) % ONES;
    if (udp && v4 && stored == 0)
        return C_ZERO;
    if (total == 0)
        return C_COMPLETE;
    /* a seed (completed by the scalar path), or a value the scalar path names (seed without the
     * length, zero, invalid) */
    return (int64_t)stored == pseudo ? C_PARTIAL : C_SCALAR;
#undef BE16
#undef BYTE
}

/* link kinds: softgso.bulk.stream.LINK_KINDS (0: every record to the scalar path) */
enum { L_SCALAR, L_ETHERNET, L_SLL, L_SLL2, L_NULL, L_LOOP, L_RAW, L_IPV4, L_IPV6, L_KINDS };
static const Py_ssize_t link_header_len[L_KINDS] = {0, 14, 16, 20, 4, 4, 0, 0, 0};

/* the ethertype of an address family in a NULL/LOOP header (softgso.io.cooked), 0: not IP */
static unsigned family_ethertype(uint32_t family)
{
    if (family == 2)
        return 0x0800;
    return family == 10 || family == 24 || family == 28 || family == 30 ? 0x86DD : 0;
}

/* the ethertype softgso.io.cooked.to_ethernet gives a frame of another link kind than Ethernet
 * (0: it gives none, the record is the scalar path's) */
static unsigned link_ethertype(const unsigned char *frame, Py_ssize_t length, int link)
{
    unsigned found = 0;
    if (link == L_SLL && length >= 16)
        found = be16(frame + 14);
    else if (link == L_SLL2 && length >= 20)
        found = be16(frame);
    else if ((link == L_NULL || link == L_LOOP) && length >= 4) {
        /* NULL: the writer's byte order, little-endian tried first; LOOP: network order */
        found = link == L_NULL ? family_ethertype(get32(frame, 0)) : 0;
        return found ? found : family_ethertype(get32(frame, 1));
    } else if (link == L_RAW && length >= 1)
        return frame[0] >> 4 == 4 ? 0x0800 : frame[0] >> 4 == 6 ? 0x86DD : 0;
    else if (link == L_IPV4 || link == L_IPV6)
        return link == L_IPV4 ? 0x0800 : 0x86DD;
    return found >= 0x0600 ? found : 0; /* a cooked header's own codes are no ethertype */
}

/* scan's bulk_small: bit 0 classifies short frames; SMALL_SEEDS gives a short Ethernet frame whose
 * checksum is a partial seed C_SEED (complete_seeds' to finish) instead of C_SCALAR */
#define SMALL_SEEDS 2

/* a record's code (C_*) in a walk: its frame at data + start, of link kind ``link`` */
static int record_code(const unsigned char *data, Py_ssize_t limit, Py_ssize_t start, Py_ssize_t caplen,
                       Py_ssize_t orig_len, int link, Py_ssize_t small_limit, int bulk_small,
                       const unsigned char *port_map)
{
    if (link <= L_SCALAR || link >= L_KINDS)
        return C_SCALAR;
    int ethertype = -1;
    Py_ssize_t head = link_header_len[link];
    if (link != L_ETHERNET) {
        ethertype = (int)link_ethertype(data + start, caplen, link);
        if (!ethertype)
            return C_SCALAR;
    }
    /* the frame's length as the Ethernet frame the engine sees */
    Py_ssize_t length = link == L_ETHERNET ? caplen : caplen - head + 14;
    if (length > small_limit && orig_len <= caplen)
        return C_CANDIDATE;
    if (!bulk_small || orig_len != caplen)
        return C_SCALAR;
    int code = classify_frame(data, limit, start + head - (link == L_ETHERNET ? head : 14), length, ethertype, port_map,
                              NULL);
    /* a partial seed is completed by the scalar path (or, an Ethernet frame with SMALL_SEEDS asked, by
     * complete_seeds); so is a frame of no layout on another link type */
    if (code == C_PARTIAL)
        return bulk_small & SMALL_SEEDS && link == L_ETHERNET ? C_SEED : C_SCALAR;
    return code == C_NO_LAYOUT && link != L_ETHERNET ? C_SCALAR : code;
}

static PyObject *scan(PyObject *self, PyObject *args)
{
    Py_buffer buffer, offsets_buf, codes_buf, ports_buf = {0};
    Py_ssize_t pos, end, chunk_end, ticks, snap_limit, small_limit;
    int big_endian, bulk_small, link = L_ETHERNET;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*nnnpnnniw*w*|iy*", &buffer, &pos, &end, &chunk_end, &big_endian, &ticks,
                          &snap_limit, &small_limit, &bulk_small, &offsets_buf, &codes_buf, &link, &ports_buf))
        return NULL;
    if (pos < 0 || end > buffer.len || chunk_end > end || pos > end || offsets_buf.len % 8 ||
        codes_buf.len < offsets_buf.len / 8 || buffer.len < 1 || (ports_buf.obj && ports_buf.len != PORT_MAP_LEN)) {
        PyBuffer_Release(&buffer);
        PyBuffer_Release(&offsets_buf);
        PyBuffer_Release(&codes_buf);
        if (ports_buf.obj)
            PyBuffer_Release(&ports_buf);
        PyErr_SetString(PyExc_ValueError, "scan: position, end, output or port map sizes out of range");
        return NULL;
    }
    const unsigned char *port_map = ports_buf.obj ? (const unsigned char *)ports_buf.buf : NULL;
    const unsigned char *data = (const unsigned char *)buffer.buf;
    int64_t *offsets = (int64_t *)offsets_buf.buf;
    signed char *codes = (signed char *)codes_buf.buf;
    Py_ssize_t capacity = offsets_buf.len / 8, count = 0, limit = buffer.len - 1;
    int stop = 0;
    Py_BEGIN_ALLOW_THREADS
    while (pos < chunk_end && count < capacity) {
        if (end - pos < 16) {
            stop = 1;
            break;
        }
        const unsigned char *head = data + pos;
        uint32_t fraction = get32(head + 4, big_endian), caplen = get32(head + 8, big_endian);
        uint32_t orig_len = get32(head + 12, big_endian);
        if ((Py_ssize_t)caplen > snap_limit || (Py_ssize_t)fraction >= ticks || pos + 16 + (Py_ssize_t)caplen > end) {
            stop = 1;
            break;
        }
        int code = record_code(data, limit, pos + 16, caplen, orig_len, link, small_limit, bulk_small,
                               port_map);
        offsets[count] = pos;
        codes[count] = (signed char)code;
        count++;
        pos += 16 + (Py_ssize_t)caplen;
    }
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&buffer);
    PyBuffer_Release(&offsets_buf);
    PyBuffer_Release(&codes_buf);
    if (ports_buf.obj)
        PyBuffer_Release(&ports_buf);
    return Py_BuildValue("nni", count, pos, stop);
}

/* pcapng block types (softgso.io.pcapng.BT_*) */
#define BT_SHB 0x0A0D0D0Au
#define BT_IDB 1u
#define BT_PB 2u
#define BT_SPB 3u
#define BT_EPB 6u

/* what an EPB's options (from p to end) hold, read as PcapngReader reads them: EPB_COMMENT for an
 * opt_comment, EPB_FCS for epb_flags that give the packet an FCS length (bits 5-8) */
#define EPB_COMMENT 1
#define EPB_FCS 2
static int epb_options(const unsigned char *p, const unsigned char *end, int big_endian)
{
    int found = 0;
    while (end - p >= 4) {
        unsigned code = big_endian ? be16(p) : (unsigned)(p[1] << 8 | p[0]);
        unsigned length = big_endian ? be16(p + 2) : (unsigned)(p[3] << 8 | p[2]);
        if (code == 0)
            break;
        if (code == 1)
            found |= EPB_COMMENT;
        else if (code == 2 && length >= 4 && end - p >= 8 && (get32(p + 4, big_endian) >> 5 & 0xF))
            found |= EPB_FCS;
        p += 4 + length + (-length & 3);
    }
    return found;
}

static PyObject *scan_blocks(PyObject *self, PyObject *args)
{
    Py_buffer buffer, kinds_buf, offsets_buf, codes_buf, lengths_buf, ports_buf = {0};
    Py_ssize_t pos, end, chunk_end, spb_snaplen, snap_limit, small_limit;
    int big_endian, bulk_small;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*nnnpy*nnniw*w*w*|y*", &buffer, &pos, &end, &chunk_end, &big_endian, &kinds_buf,
                          &spb_snaplen, &snap_limit, &small_limit, &bulk_small, &offsets_buf, &codes_buf,
                          &lengths_buf, &ports_buf))
        return NULL;
    if (pos < 0 || end > buffer.len || chunk_end > end || pos > end || offsets_buf.len % 8 ||
        codes_buf.len < offsets_buf.len / 8 || lengths_buf.len < offsets_buf.len / 2 || buffer.len < 1 ||
        (ports_buf.obj && ports_buf.len != PORT_MAP_LEN)) {
        PyBuffer_Release(&buffer);
        PyBuffer_Release(&kinds_buf);
        PyBuffer_Release(&offsets_buf);
        PyBuffer_Release(&codes_buf);
        PyBuffer_Release(&lengths_buf);
        if (ports_buf.obj)
            PyBuffer_Release(&ports_buf);
        PyErr_SetString(PyExc_ValueError, "scan_blocks: position, end, output or port map sizes out of range");
        return NULL;
    }
    const unsigned char *port_map = ports_buf.obj ? (const unsigned char *)ports_buf.buf : NULL;
    const unsigned char *data = (const unsigned char *)buffer.buf;
    const unsigned char *kinds = (const unsigned char *)kinds_buf.buf;
    Py_ssize_t interfaces = kinds_buf.len;
    int64_t *offsets = (int64_t *)offsets_buf.buf;
    signed char *codes = (signed char *)codes_buf.buf;
    uint32_t *lengths = (uint32_t *)lengths_buf.buf;
    Py_ssize_t capacity = offsets_buf.len / 8, count = 0, limit = buffer.len - 1;
    int stop = 0;
    Py_BEGIN_ALLOW_THREADS
    while (pos < chunk_end && count < capacity) {
        Py_ssize_t frame_len = 0;
        if (end - pos < 12) {
            stop = 1;
            break;
        }
        const unsigned char *block = data + pos;
        uint32_t type = get32(block, big_endian), length = get32(block + 4, big_endian);
        if (length < 12 || length % 4 || (Py_ssize_t)length > end - pos ||
            get32(block + length - 4, big_endian) != length) {
            stop = 1;
            break;
        }
        int code;
        if (type == BT_EPB) {
            if (length < 32) {
                stop = 1;
                break;
            }
            uint32_t interface = get32(block + 8, big_endian), caplen = get32(block + 20, big_endian);
            uint32_t orig_len = get32(block + 24, big_endian);
            if ((Py_ssize_t)interface >= interfaces || caplen > length - 32 || (Py_ssize_t)caplen > snap_limit) {
                stop = 1;
                break;
            }
            frame_len = caplen;
            const unsigned char *options = block + 28 + caplen + (-caplen & 3);
            int held = epb_options(options, block + length - 4, big_endian);
            if (held & EPB_FCS) {
                /* a frame that ends in an FCS: the general reader takes it (its FCS off, then made anew) */
                stop = 1;
                break;
            }
            code = held & EPB_COMMENT
                       ? C_SCALAR
                       : record_code(data, limit, pos + 28, caplen, orig_len, kinds[interface], small_limit, bulk_small,
                                     port_map);
            /* complete_seeds patches a block whose bytes are its frame's alone: one with options is the
             * scalar path's (its writer's way with them) */
            if (code == C_SEED && length != 32 + caplen + (-caplen & 3))
                code = C_SCALAR;
        } else if (type == BT_SPB) {
            if (length < 16 || interfaces < 1) {
                stop = 1;
                break;
            }
            uint32_t orig_len = get32(block + 8, big_endian);
            Py_ssize_t caplen = (Py_ssize_t)length - 16 < (Py_ssize_t)orig_len ? (Py_ssize_t)length - 16 : (Py_ssize_t)orig_len;
            if (spb_snaplen > 0 && caplen > spb_snaplen)
                caplen = spb_snaplen;
            if (caplen > snap_limit) {
                stop = 1;
                break;
            }
            frame_len = caplen;
            /* never a candidate: a segment of it would need a timestamp it does not have (nor a seed to
             * complete in bulk) */
            code = record_code(data, limit, pos + 12, caplen, orig_len, kinds[0], small_limit, bulk_small, port_map);
            if (code == C_CANDIDATE || code == C_SEED)
                code = C_SCALAR;
        } else if (type == BT_SHB || type == BT_IDB || type == BT_PB) {
            stop = 1;
            break;
        } else {
            code = C_DROPPED;
        }
        offsets[count] = pos + 12;
        codes[count] = (signed char)code;
        lengths[count] = (uint32_t)frame_len;
        count++;
        pos += length;
    }
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&buffer);
    PyBuffer_Release(&kinds_buf);
    PyBuffer_Release(&offsets_buf);
    PyBuffer_Release(&codes_buf);
    PyBuffer_Release(&lengths_buf);
    if (ports_buf.obj)
        PyBuffer_Release(&ports_buf);
    return Py_BuildValue("nni", count, pos, stop);
}

/* the bytes a pcapng EPB adds after a frame of ``length`` bytes: padding to 32 bits, trailing length */
static inline int64_t epb_tail(int64_t length) { return (-length & 3) + 4; }

/* segment (records 0) and segment_records (records 1: a job's frame 16 bytes into its record, each
 * segment written behind a record header; with pcapng, a job's record is the timestamp of an EPB
 * (scan_blocks' offset), each segment written as an EPB of the same interface and timestamp) */
static int write_vectors(int fd, struct iovec *iov, Py_ssize_t pairs, long long *total);

/* One run to segment: a plan, its two header templates, and its jobs (frame or record offset in the
 * buffer, offset in out, packet number: int64 triples), with the plan's lengths once checked. */
struct run {
    const int64_t *plan;
    const unsigned char *template_full, *template_last;
    const int64_t *jobs;
    Py_ssize_t count;
    int64_t hlen, segs, frame_len, mss, last_len;
    /* a run of bytes written as they are (segment_runs: records between the runs, short frames passed
     * through or completed): no plan */
    int is_raw;
    const unsigned char *raw;
    Py_ssize_t raw_len;
};

/* What segmenting with vectors carries from packet to packet (and run to run): the iovecs so far,
 * the framing and header bytes of out not yet in one ([span, span_end)), and with fd >= 0 the
 * payload bytes summed since the last writev, what the writes gave, the first error. */
struct scatter {
    uint64_t *vectors;
    Py_ssize_t pairs;
    const unsigned char *span, *span_end;
    int fd;
    int64_t piece, unwritten;
    long long written;
    int error;
};

/* Checks a run's plan, templates and jobs against the buffers (lengths in bytes), fills its lengths,
 * and gives the bytes of out one packet of it takes; NULL or the problem. Every length and offset is
 * bounded first (by the buffer, or 64 KiB of headers), so that the sums in segment_run cannot
 * overflow; the one product is checked. */
static const char *check_run(struct run *run, Py_ssize_t plan_len, Py_ssize_t full_len, Py_ssize_t last_len_bytes,
                             Py_ssize_t jobs_len, Py_ssize_t buffer_len, Py_ssize_t out_len, Py_ssize_t codes_len,
                             int records, int pcapng, int scatter, int64_t *packet_out_len)
{
    const int64_t *plan = run->plan;
    const Py_ssize_t head = records ? 16 : 0, out_head = pcapng ? 28 : head;
    if (plan_len != P_COUNT * 8)
        return "segment: the plan has the wrong number of fields";
    if (jobs_len % 24)
        return "segment: jobs must be int64 triples";
    run->count = jobs_len / 24;
    int64_t hlen = run->hlen = plan[P_HEADER_LEN], segs = run->segs = plan[P_SEGMENTS];
    int64_t frame_len = run->frame_len = plan[P_FRAME_LEN], mss = run->mss = plan[P_MSS];
    int64_t last_len = run->last_len = plan[P_LAST_LEN];
    int64_t pieces_len = 0;
    const int64_t offsets[] = {plan[P_PAYLOAD_AT], plan[P_L4_IN], plan[P_L4_OUT], plan[P_L4_HDR_LEN],
                               plan[P_IPV4_IN], plan[P_IPV4_AT] >= 0 ? plan[P_IPV4_AT] : 0,
                               plan[P_OUTER_IPV4_IN], plan[P_OUTER_IPV4_AT] >= 0 ? plan[P_OUTER_IPV4_AT] : 0};
    /* sums kept as residues */
    const int64_t residues[] = {plan[P_OUTER_BASE_FULL], plan[P_OUTER_BASE_LAST], plan[P_CSUM_CONST_FULL],
                                plan[P_CSUM_CONST_LAST]};
    int bounded = frame_len >= 1 && frame_len <= buffer_len && hlen >= 0 && hlen <= 0x10000 &&
                  segs >= 2 && segs <= frame_len && mss >= 1 && mss <= frame_len && last_len >= 1 && last_len <= mss;
    for (size_t k = 0; k < sizeof offsets / sizeof offsets[0] && bounded; k++)
        bounded = offsets[k] >= 0 && offsets[k] <= frame_len;
    for (size_t k = 0; k < sizeof residues / sizeof residues[0] && bounded; k++)
        bounded = residues[k] >= 0 && residues[k] <= ONES;
    /* the outer checksum's offsets (output headers, at most 64 KiB) */
    if (bounded && plan[P_CSUM_AT] >= 0)
        bounded = plan[P_CSUM_AT] <= 0x10000 && plan[P_CSUM_FIELD] >= 0 && plan[P_CSUM_FIELD] <= 0x10000;
    if (!bounded || __builtin_mul_overflow(segs - 1, mss, &pieces_len) ||
        full_len != hlen || last_len_bytes != hlen ||
        plan[P_PAYLOAD_AT] + pieces_len + last_len != frame_len || plan[P_L4_IN] + plan[P_L4_HDR_LEN] > frame_len ||
        plan[P_L4_OUT] + (plan[P_UDP] ? 8 : 18) > hlen || plan[P_L4_OUT] + plan[P_L4_HDR_LEN] > hlen ||
        plan[P_L4_HDR_LEN] < (plan[P_UDP] ? 8 : 20) ||
        (plan[P_IPV4_AT] >= 0 && (plan[P_IPV4_AT] + 12 > hlen || plan[P_IPV4_IN] + 6 > frame_len)) ||
        (plan[P_OUTER_IPV4_AT] >= 0 && (plan[P_OUTER_IPV4_AT] + 12 > hlen || plan[P_OUTER_IPV4_IN] + 6 > frame_len)) ||
        (plan[P_CSUM_AT] >= 0 && (plan[P_CSUM_AT] > hlen || plan[P_CSUM_FIELD] < plan[P_CSUM_AT] ||
                                  plan[P_CSUM_FIELD] + 2 > hlen || plan[P_L4_OUT] < plan[P_CSUM_AT])))
        return "segment: inconsistent plan";
    /* a packet's output: every segment's record header (if any) and protocol headers, and its payload */
    int64_t packet_out = segs * (out_head + hlen) + (scatter ? 0 : frame_len - plan[P_PAYLOAD_AT]);
    if (pcapng)
        packet_out += (segs - 1) * epb_tail(hlen + mss) + epb_tail(hlen + last_len);
    *packet_out_len = packet_out;
    if (scatter && segs > (PY_SSIZE_T_MAX / 32 - 1) / (run->count ? run->count : 1))
        return "segment: vectors must be room for two (base, length) pairs a segment, and one";
    const int64_t *jobs = run->jobs;
    for (Py_ssize_t k = 0; k < run->count; k++) {
        int64_t at = jobs[3 * k], to = jobs[3 * k + 1], number = jobs[3 * k + 2];
        if (at < (pcapng ? 12 : 0) || at > buffer_len - head - frame_len)
            return records ? "segment: a record lies outside the buffer" : "segment: a frame lies outside the buffer";
        if (to < 0 || to > out_len - packet_out)
            return "segment: a packet's output lies outside the output buffer";
        if (plan[P_CLASSIFY] && (number < 0 || number >= codes_len))
            return "segment: a packet number lies outside the codes buffer";
    }
    return NULL;
}

/* sc's framing and header bytes not yet in an iovec, into one */
static void close_span(struct scatter *sc)
{
    if (sc->span_end != sc->span) {
        sc->vectors[2 * sc->pairs] = (uint64_t)(uintptr_t)sc->span;
        sc->vectors[2 * sc->pairs++ + 1] = (uint64_t)(sc->span_end - sc->span);
    }
    sc->span = sc->span_end = NULL;
}

/* With fd >= 0, once piece payload bytes are in sc's iovecs: all of them written (writev), sc empty */
static void write_piece(struct scatter *sc)
{
    if (sc->fd < 0 || sc->unwritten < sc->piece)
        return;
    close_span(sc);
    sc->error = write_vectors(sc->fd, (struct iovec *)sc->vectors, sc->pairs, &sc->written);
    sc->pairs = 0;
    sc->unwritten = 0;
}

/* Segments one checked run: every packet's segments, behind their record headers (records) or EPB
 * heads (pcapng), in out at the packet's offset; with ``sc`` (scatter) the payload pieces are summed
 * where they lie and left there, and the iovecs that write the segments in order go to sc->vectors,
 * written to sc->fd (if >= 0) every sc->piece payload bytes. Called without the GIL. */
static void segment_run(const struct run *run, const unsigned char *data, unsigned char *out_base, signed char *codes,
                        int records, int pcapng, int big_endian, struct scatter *sc)
{
    const int64_t *plan = run->plan, *jobs = run->jobs;
    const int64_t hlen = run->hlen, segs = run->segs, frame_len = run->frame_len, mss = run->mss;
    const int64_t last_len = run->last_len;
    const Py_ssize_t head = records ? 16 : 0, out_head = pcapng ? 28 : head;
    const unsigned char *template_full = run->template_full, *template_last = run->template_last;
    const int udp = (int)plan[P_UDP], partial = (int)plan[P_PARTIAL], classify = (int)plan[P_CLASSIFY];
    const int64_t ipv4_at = plan[P_IPV4_AT], l4_in = plan[P_L4_IN], l4_out = plan[P_L4_OUT];
    const int64_t l4_hdr_len = plan[P_L4_HDR_LEN], payload_at = plan[P_PAYLOAD_AT];
    const int64_t outer_ipv4_at = plan[P_OUTER_IPV4_AT], csum_at = plan[P_CSUM_AT];
    const int need_sums = !partial || classify;
    const int scatter = sc != NULL;
    for (Py_ssize_t k = 0; k < run->count && !(scatter && sc->error); k++) {
        const unsigned char *record = data + jobs[3 * k];
        const unsigned char *frame = record + head;
        const unsigned char *l4 = frame + l4_in;
        unsigned char *out = out_base + jobs[3 * k + 1];
        int64_t seed = plan[P_SEED] >= 0 ? plan[P_SEED] : (int64_t)be16(l4 + (udp ? 6 : 16));
        unsigned ip_id = ipv4_at >= 0 ? be16(frame + plan[P_IPV4_IN] + 4) : 0;
        unsigned outer_id = outer_ipv4_at >= 0 ? be16(frame + plan[P_OUTER_IPV4_IN] + 4) : 0;
        uint32_t seq = (uint32_t)be16(l4 + 4) << 16 | be16(l4 + 6);
        unsigned flags_in = l4[13];
        int64_t header_words = (need_sums && !udp) || classify ? word_sum(l4, l4_hdr_len) : 0;
        int64_t tcp_base = header_words - be16(l4 + 4) - be16(l4 + 6) - be16(l4 + 16) - flags_in;
        int64_t payload_total = 0;
        for (int64_t s = 0; s < segs; s++) {
            int last = s == segs - 1;
            int64_t piece_len = last ? last_len : mss, seg_len = hlen + piece_len;
            const unsigned char *piece = frame + payload_at + s * mss;
            unsigned char *hdr = out + out_head;
            /* after the segment: an EPB's padding and trailing length */
            unsigned char *tail = hdr + (scatter ? hlen : seg_len);
            int64_t sum = 0;
            if (scatter) {
                /* the payload left in buffer, summed there; out's bytes so far and the payload as iovecs */
                uint64_t *vectors = sc->vectors;
                if (need_sums)
                    sum = word_sum(piece, piece_len);
                if (sc->span_end != out) {
                    if (sc->span_end != sc->span) {
                        vectors[2 * sc->pairs] = (uint64_t)(uintptr_t)sc->span;
                        vectors[2 * sc->pairs++ + 1] = (uint64_t)(sc->span_end - sc->span);
                    }
                    sc->span = out;
                }
                vectors[2 * sc->pairs] = (uint64_t)(uintptr_t)sc->span;
                vectors[2 * sc->pairs++ + 1] = (uint64_t)(hdr + hlen - sc->span);
                vectors[2 * sc->pairs] = (uint64_t)(uintptr_t)piece;
                vectors[2 * sc->pairs++ + 1] = (uint64_t)piece_len;
                sc->span = sc->span_end = tail;
            } else if (need_sums) {
                sum = copy_word_sum(hdr + hlen, piece, piece_len);
            } else {
                memcpy(hdr + hlen, piece, (size_t)piece_len);
            }
            if (classify)
                payload_total += (mss * s) & 1 ? sum * 256 % ONES : sum;
            if (pcapng) {
                /* an EPB: type, length, the input's interface and timestamp, caplen, orig_len; the
                 * segment; padding and the trailing length */
                uint32_t block_len = (uint32_t)(out_head + seg_len + epb_tail(seg_len));
                put32(out, BT_EPB, big_endian);
                put32(out + 4, block_len, big_endian);
                memcpy(out + 8, record - 4, 12);
                put32(out + 20, (uint32_t)seg_len, big_endian);
                put32(out + 24, (uint32_t)seg_len, big_endian);
                memset(tail, 0, (size_t)(-seg_len & 3));
                put32(tail + (-seg_len & 3), block_len, big_endian);
            } else if (records) {
                memcpy(out, record, 8);
                put32(out + 8, (uint32_t)seg_len, big_endian);
                put32(out + 12, (uint32_t)seg_len, big_endian);
            }
            memcpy(hdr, last ? template_last : template_full, (size_t)hlen);
            unsigned char *t = hdr + l4_out;
            int64_t l4_const = last ? plan[P_CONST_LAST] : plan[P_CONST_FULL];
            if (udp) {
                int64_t check16 = csum16_add(csum16_add(seed, plan[P_UDP_LEN_OUT]), l4_const);
                if (partial) {
                    put16(t + 6, (unsigned)check16);
                } else {
                    int64_t check = complement((sum + plan[P_UDP_PORTS] + l4_const + check16) % ONES);
                    put16(t + 6, (unsigned)(check ? check : ONES));
                }
            } else {
                memcpy(t + 4, l4 + 4, (size_t)(l4_hdr_len - 4));
                uint32_t seq_out = seq + (uint32_t)(s * mss);
                /* as tcp_gso_segment: CWR only on the first segment, FIN and PSH only on the last */
                unsigned mask = 0xFF & ~(0x01u | 0x08u | 0x80u);
                if (s == 0)
                    mask |= 0x80;
                if (last)
                    mask |= 0x01 | 0x08;
                unsigned flags = flags_in & mask;
                put16(t + 4, seq_out >> 16);
                put16(t + 6, seq_out & 0xFFFF);
                t[13] = (unsigned char)flags;
                int64_t pseudo = csum_add(seed, l4_const);
                if (partial) {
                    put16(t + 16, (unsigned)pseudo);
                } else {
                    int64_t header = tcp_base + (seq_out >> 16) + (seq_out & 0xFFFF) + flags + pseudo;
                    put16(t + 16, (unsigned)complement(residue(header + sum)));
                }
            }
            if (ipv4_at >= 0) {
                /* as inet_gso_segment: the ID counts up per segment unless TCP_FIXEDID */
                unsigned id = plan[P_FIXED_ID] ? ip_id : (ip_id + (unsigned)s) & 0xFFFF;
                int64_t base = last ? plan[P_BASE_LAST] : plan[P_BASE_FULL];
                put16(hdr + ipv4_at + 4, id);
                put16(hdr + ipv4_at + 10, (unsigned)complement((id + base) % ONES));
            }
            if (outer_ipv4_at >= 0) {
                /* a tunnel's outer IPv4 header: its own ID, counting up the same way */
                unsigned id = plan[P_OUTER_FIXED_ID] ? outer_id : (outer_id + (unsigned)s) & 0xFFFF;
                int64_t base = last ? plan[P_OUTER_BASE_LAST] : plan[P_OUTER_BASE_FULL];
                put16(hdr + outer_ipv4_at + 4, id);
                put16(hdr + outer_ipv4_at + 10, (unsigned)complement((id + base) % ONES));
            }
            if (csum_at >= 0) {
                /* a tunnel's outer checksum (UDP_TUNNEL_CSUM, GRE_CSUM) over the finished headers from
                 * csum_at, the payload piece and the constant (the outer pseudo-header for UDP) */
                put16(hdr + plan[P_CSUM_FIELD], 0);
                int64_t constant = last ? plan[P_CSUM_CONST_LAST] : plan[P_CSUM_CONST_FULL], total;
                if (partial) {
                    /* the inner checksum left to the device: the outer one is summed as if it were
                     * filled (gso_make_checksum from the inner seed's complement, local checksum
                     * offload): the headers up to the inner L4 header, then ~seed */
                    int64_t span = l4_out - csum_at;
                    int64_t inner = complement(be16(t + (udp ? 6 : 16)));
                    total = word_sum(hdr + csum_at, span) + (span & 1 ? inner * 256 % ONES : inner);
                } else {
                    int64_t span = hlen - csum_at;
                    total = word_sum(hdr + csum_at, span) + (span & 1 ? sum * 256 % ONES : sum);
                }
                int64_t check = complement((total + constant) % ONES);
                if (check == 0 && plan[P_CSUM_MANGLE])
                    check = ONES;
                put16(hdr + plan[P_CSUM_FIELD], (unsigned)check);
            }
            out = tail + (pcapng ? epb_tail(seg_len) : 0);
            if (scatter)
                sc->span_end = out;
        }
        if (classify) {
            /* classify_l4_checksum from the sums already taken */
            int64_t seed0 = plan[P_SEED] >= 0 ? plan[P_SEED] : 0;
            int64_t total = (header_words + payload_total % ONES + seed0) % ONES;
            unsigned stored = be16(l4 + (udp ? 6 : 16));
            int code;
            if (udp && plan[P_IPV4] && stored == 0)
                code = C_ZERO;
            else if (total == 0)
                code = C_COMPLETE;
            else if ((int64_t)stored == seed0)
                code = C_PARTIAL;
            else
                code = C_INVALID;
            codes[jobs[3 * k + 2]] = (signed char)code;
        }
        if (scatter) {
            /* the packets so far written while their payloads, just summed, are in this core's
             * cache: the kernel's copy then reads them from there, not from memory */
            sc->unwritten += frame_len - payload_at;
            write_piece(sc);
        }
    }
}

/* Bytes written as they are, in order between the segments (sc's span closed first): counted as
 * payload towards the next write, which they join. */
static void scatter_raw(struct scatter *sc, const unsigned char *bytes, Py_ssize_t length)
{
    if (length <= 0)
        return;
    close_span(sc);
    sc->vectors[2 * sc->pairs] = (uint64_t)(uintptr_t)bytes;
    sc->vectors[2 * sc->pairs++ + 1] = (uint64_t)length;
    sc->unwritten += length;
    write_piece(sc);
}

/* The last framing bytes into an iovec, and with fd >= 0 everything written. */
static void finish_scatter(struct scatter *sc)
{
    close_span(sc);
    if (sc->fd >= 0 && !sc->error && sc->pairs) {
        sc->error = write_vectors(sc->fd, (struct iovec *)sc->vectors, sc->pairs, &sc->written);
        sc->pairs = 0;
    }
}

static PyObject *segment_jobs(PyObject *args, int records)
{
    Py_buffer plan_buf, full_buf, last_buf, buffer, jobs_buf, out_buf, codes_buf;
    Py_buffer vectors_buf = {0};
    int big_endian = 0, pcapng = 0, fd = -1;
    Py_ssize_t piece = 0;
    if (records ? !PyArg_ParseTuple(args, "y*y*y*y*y*pw*w*|pw*in", &plan_buf, &full_buf, &last_buf, &buffer, &jobs_buf,
                                    &big_endian, &out_buf, &codes_buf, &pcapng, &vectors_buf, &fd, &piece)
                : !PyArg_ParseTuple(args, "y*y*y*y*y*w*w*", &plan_buf, &full_buf, &last_buf, &buffer, &jobs_buf,
                                    &out_buf, &codes_buf))
        return NULL;
    /* with vectors: out gets the framing and headers alone, the payload stays where it is (iovecs) */
    const int scatter = vectors_buf.obj != NULL;
    struct run run = {(const int64_t *)plan_buf.buf, (const unsigned char *)full_buf.buf,
                      (const unsigned char *)last_buf.buf, (const int64_t *)jobs_buf.buf, 0, 0, 0, 0, 0, 0};
    int64_t packet_out = 0;
    const char *problem = NULL;
    if (fd >= 0 && sizeof(struct iovec) != 16)
        problem = "segment: iovecs are no (base, length) uint64 pairs here";
    else
        problem = check_run(&run, plan_buf.len, full_buf.len, last_buf.len, jobs_buf.len, buffer.len, out_buf.len,
                            codes_buf.len, records, pcapng, scatter, &packet_out);
    /* at most two iovecs a segment (framing and headers, payload; an EPB's tail joins the next
     * segment's framing), and the last tail */
    if (!problem && scatter && (vectors_buf.len % 16 || vectors_buf.len / 16 < 2 * run.segs * run.count + 1))
        problem = "segment: vectors must be room for two (base, length) pairs a segment, and one";
    if (problem) {
        PyBuffer_Release(&plan_buf); PyBuffer_Release(&full_buf); PyBuffer_Release(&last_buf);
        PyBuffer_Release(&buffer); PyBuffer_Release(&jobs_buf); PyBuffer_Release(&out_buf);
        PyBuffer_Release(&codes_buf);
        if (scatter)
            PyBuffer_Release(&vectors_buf);
        PyErr_SetString(PyExc_ValueError, problem);
        return NULL;
    }
    struct scatter sc = {scatter ? (uint64_t *)vectors_buf.buf : NULL, 0, NULL, NULL, fd, piece, 0, 0, 0};
    Py_BEGIN_ALLOW_THREADS
    segment_run(&run, (const unsigned char *)buffer.buf, (unsigned char *)out_buf.buf, (signed char *)codes_buf.buf,
                records, pcapng, big_endian, scatter ? &sc : NULL);
    if (scatter)
        finish_scatter(&sc);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&plan_buf); PyBuffer_Release(&full_buf); PyBuffer_Release(&last_buf);
    PyBuffer_Release(&buffer); PyBuffer_Release(&jobs_buf); PyBuffer_Release(&out_buf);
    PyBuffer_Release(&codes_buf);
    if (scatter) {
        PyBuffer_Release(&vectors_buf);
        if (sc.error) {
            errno = sc.error;
            return PyErr_SetFromErrno(PyExc_OSError);
        }
        if (fd >= 0)
            return PyLong_FromLongLong(sc.written);
        return PyLong_FromSsize_t(sc.pairs);
    }
    Py_RETURN_NONE;
}

/* segment_runs(runs, buffer, big_endian, out, codes, pcapng, vectors, fd, piece) -> bytes written
 *   segment_records with vectors and fd for several runs in order, each (plan, template_full,
 *   template_last, jobs): the iovecs carried from run to run, so that interleaved flows (runs of one
 *   packet) make one call and a write every piece payload bytes, not one of each a run. A run may
 *   also be (buffer,): bytes written as they are in their place (records the planner passed through
 *   or completed between the runs; module constant RAW_RUNS), counted as payload towards a write. */
static PyObject *segment_runs(PyObject *self, PyObject *args)
{
    PyObject *runs_tuple;
    Py_buffer buffer, out_buf, codes_buf, vectors_buf;
    int big_endian, pcapng, fd;
    Py_ssize_t piece;
    (void)self;
    if (!PyArg_ParseTuple(args, "O!y*pw*w*pw*in", &PyTuple_Type, &runs_tuple, &buffer, &big_endian, &out_buf,
                          &codes_buf, &pcapng, &vectors_buf, &fd, &piece))
        return NULL;
    Py_ssize_t count = PyTuple_GET_SIZE(runs_tuple);
    /* four buffers a run (plan, templates, jobs), held until the runs are done */
    Py_buffer *held = PyMem_Calloc((size_t)(count ? count : 1) * 4, sizeof(Py_buffer));
    struct run *runs = PyMem_Calloc((size_t)(count ? count : 1), sizeof(struct run));
    const char *problem = NULL;
    Py_ssize_t taken = 0;
    int64_t room = 1;
    if (!held || !runs) {
        PyMem_Free(held);
        PyMem_Free(runs);
        PyBuffer_Release(&buffer); PyBuffer_Release(&out_buf); PyBuffer_Release(&codes_buf);
        PyBuffer_Release(&vectors_buf);
        return PyErr_NoMemory();
    }
    if (fd < 0 || sizeof(struct iovec) != 16 || vectors_buf.len % 16)
        problem = "segment_runs: a descriptor, and vectors of (base, length) uint64 pairs";
    for (Py_ssize_t r = 0; r < count && !problem; r++) {
        PyObject *item = PyTuple_GET_ITEM(runs_tuple, r);
        Py_buffer *b = held + 4 * r;
        if (PyTuple_Check(item) && PyTuple_GET_SIZE(item) == 1) {
            /* (bytes,): written as they are between the runs */
            if (!PyArg_ParseTuple(item, "y*", b)) {
                PyErr_Clear();
                problem = "segment_runs: a run of bytes is not (buffer,)";
                break;
            }
            taken = r + 1;
            runs[r].is_raw = 1;
            runs[r].raw = (const unsigned char *)b[0].buf;
            runs[r].raw_len = b[0].len;
            room += 2;
            if (room > vectors_buf.len / 16)
                problem = "segment: vectors must be room for two (base, length) pairs a segment, and one";
            continue;
        }
        if (!PyTuple_Check(item) || !PyArg_ParseTuple(item, "y*y*y*y*", b, b + 1, b + 2, b + 3)) {
            if (PyErr_Occurred())
                PyErr_Clear();
            problem = "segment_runs: a run is not (plan, template_full, template_last, jobs)";
            break;
        }
        taken = r + 1;
        runs[r].plan = (const int64_t *)b[0].buf;
        runs[r].template_full = (const unsigned char *)b[1].buf;
        runs[r].template_last = (const unsigned char *)b[2].buf;
        runs[r].jobs = (const int64_t *)b[3].buf;
        int64_t packet_out = 0;
        problem = check_run(&runs[r], b[0].len, b[1].len, b[2].len, b[3].len, buffer.len, out_buf.len, codes_buf.len, 1,
                            pcapng, 1, &packet_out);
        if (!problem)
            room += 2 * runs[r].segs * runs[r].count; /* (each bounded by check_run: no overflow) */
        if (!problem && room > vectors_buf.len / 16)
            problem = "segment: vectors must be room for two (base, length) pairs a segment, and one";
    }
    struct scatter sc = {(uint64_t *)vectors_buf.buf, 0, NULL, NULL, fd, piece, 0, 0, 0};
    if (!problem) {
        Py_BEGIN_ALLOW_THREADS
        for (Py_ssize_t r = 0; r < count && !sc.error; r++) {
            if (runs[r].is_raw)
                scatter_raw(&sc, runs[r].raw, runs[r].raw_len);
            else
                segment_run(&runs[r], (const unsigned char *)buffer.buf, (unsigned char *)out_buf.buf,
                            (signed char *)codes_buf.buf, 1, pcapng, big_endian, &sc);
        }
        if (!sc.error)
            finish_scatter(&sc);
        Py_END_ALLOW_THREADS
    }
    for (Py_ssize_t k = 0; k < 4 * taken; k++)
        PyBuffer_Release(&held[k]);
    PyMem_Free(held);
    PyMem_Free(runs);
    PyBuffer_Release(&buffer); PyBuffer_Release(&out_buf); PyBuffer_Release(&codes_buf);
    PyBuffer_Release(&vectors_buf);
    if (problem) {
        PyErr_SetString(PyExc_ValueError, problem);
        return NULL;
    }
    if (sc.error) {
        errno = sc.error;
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    return PyLong_FromLongLong(sc.written);
}

/* How many records after ``first`` (up to ``stop``) have the first one's length and its bytes in
 * each [from, to) range of ``ranges`` (int64 pairs); with ``nonzero_at`` >= 0 also the same answer
 * to "is the 16-bit field there non-zero". Sets ``*problem`` when the first record is too short. */
static Py_ssize_t count_alike(const unsigned char *data, Py_ssize_t buffer_len, const int64_t *offsets,
                              Py_ssize_t walked, Py_ssize_t first, Py_ssize_t stop, Py_ssize_t chunk_stop,
                              const int64_t *ranges, Py_ssize_t pairs, Py_ssize_t nonzero_at, int64_t reach,
                              const char **problem)
{
    Py_ssize_t base = offsets[first];
    Py_ssize_t end0 = first + 1 < walked ? offsets[first + 1] : chunk_stop;
    /* each bound checked on its own: with hostile offsets, end0 - base can wrap to a plausible length */
    if (base < 0 || base > buffer_len || end0 < base || end0 > buffer_len || end0 - base < 16 + reach) {
        *problem = "the first record is shorter than its layout";
        return 0;
    }
    Py_ssize_t length = end0 - base;
    int flag = nonzero_at >= 0 && be16(data + base + 16 + nonzero_at) != 0;
    Py_ssize_t same = 0;
    for (Py_ssize_t j = first + 1; j < stop; j++) {
        Py_ssize_t here = offsets[j], end = j + 1 < walked ? offsets[j + 1] : chunk_stop;
        if (here < 0 || here > buffer_len || end < here || end > buffer_len || end - here != length)
            break;
        /* the record headers differ (timestamps): only their lengths must agree */
        if (memcmp(data + base + 8, data + here + 8, 8))
            break;
        int equal = nonzero_at < 0 || (be16(data + here + 16 + nonzero_at) != 0) == flag;
        for (Py_ssize_t k = 0; k < pairs && equal; k++)
            equal = !memcmp(data + base + 16 + ranges[2 * k], data + here + 16 + ranges[2 * k],
                            (size_t)(ranges[2 * k + 1] - ranges[2 * k]));
        if (!equal)
            break;
        same++;
    }
    return same;
}

static PyObject *same_shape(PyObject *self, PyObject *args)
{
    Py_buffer buffer, offsets_buf;
    Py_ssize_t walked, first, stop, chunk_stop, network, transport, payload;
    int ipv4, tcp;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*y*nnnnnnnpp", &buffer, &offsets_buf, &walked, &first, &stop, &chunk_stop,
                          &network, &transport, &payload, &ipv4, &tcp))
        return NULL;
    const char *problem = NULL;
    if (walked < 0 || walked > offsets_buf.len / 8 || first < 0 || stop > walked || first >= stop ||
        chunk_stop > buffer.len)
        problem = "same_shape: record range out of bounds";
    else if (network < 14 || transport < network + (ipv4 ? 20 : 40) || payload < transport + (tcp ? 20 : 8))
        problem = "same_shape: inconsistent layout";
    /* the header bytes compared: all to payload but the per-packet fields */
    int64_t ranges[8];
    Py_ssize_t pairs = 0;
    int64_t at = 0;
    if (!problem && ipv4) {
        ranges[2 * pairs] = at; ranges[2 * pairs++ + 1] = network + 4;
        ranges[2 * pairs] = network + 6; ranges[2 * pairs++ + 1] = network + 10;
        at = network + 12;
    }
    if (!problem && tcp) {
        ranges[2 * pairs] = at; ranges[2 * pairs++ + 1] = transport + 4;
        ranges[2 * pairs] = transport + 12; ranges[2 * pairs++ + 1] = transport + 13;
    } else if (!problem) {
        ranges[2 * pairs] = at; ranges[2 * pairs++ + 1] = transport + 6;
        ranges[2 * pairs] = transport + 8; ranges[2 * pairs++ + 1] = payload;
    }
    Py_ssize_t same = 0;
    if (!problem) {
        const char *short_record = NULL;
        same = count_alike((const unsigned char *)buffer.buf, buffer.len, (const int64_t *)offsets_buf.buf, walked,
                           first, stop, chunk_stop, ranges, pairs, -1, payload, &short_record);
        if (short_record)
            problem = "same_shape: the first record is shorter than its layout";
    }
    PyBuffer_Release(&buffer);
    PyBuffer_Release(&offsets_buf);
    if (problem) {
        PyErr_SetString(PyExc_ValueError, problem);
        return NULL;
    }
    return PyLong_FromSsize_t(same);
}

static PyObject *same_bytes(PyObject *self, PyObject *args)
{
    Py_buffer buffer, offsets_buf, ranges_buf;
    Py_ssize_t walked, first, stop, chunk_stop, nonzero_at;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*y*nnnny*n", &buffer, &offsets_buf, &walked, &first, &stop, &chunk_stop,
                          &ranges_buf, &nonzero_at))
        return NULL;
    const int64_t *ranges = (const int64_t *)ranges_buf.buf;
    Py_ssize_t pairs = ranges_buf.len / 16;
    const char *problem = NULL;
    if (walked < 0 || walked > offsets_buf.len / 8 || first < 0 || stop > walked || first >= stop ||
        chunk_stop > buffer.len)
        problem = "same_bytes: record range out of bounds";
    else if (ranges_buf.len % 16)
        problem = "same_bytes: ranges must be int64 pairs";
    /* the bytes compared end where the first record's headers end */
    int64_t reach = nonzero_at >= 0 ? (int64_t)nonzero_at + 2 : 0;
    for (Py_ssize_t k = 0; k < pairs && !problem; k++) {
        if (ranges[2 * k] < 0 || ranges[2 * k] > ranges[2 * k + 1] || ranges[2 * k + 1] > 0x10000)
            problem = "same_bytes: inconsistent ranges";
        else if (ranges[2 * k + 1] > reach)
            reach = ranges[2 * k + 1];
    }
    if (!problem && (nonzero_at < -1 || nonzero_at > 0x10000))
        problem = "same_bytes: inconsistent ranges";
    Py_ssize_t same = 0;
    if (!problem) {
        const char *short_record = NULL;
        same = count_alike((const unsigned char *)buffer.buf, buffer.len, (const int64_t *)offsets_buf.buf, walked,
                           first, stop, chunk_stop, ranges, pairs, nonzero_at, reach, &short_record);
        if (short_record)
            problem = "same_bytes: the first record is shorter than its ranges";
    }
    PyBuffer_Release(&buffer);
    PyBuffer_Release(&offsets_buf);
    PyBuffer_Release(&ranges_buf);
    if (problem) {
        PyErr_SetString(PyExc_ValueError, problem);
        return NULL;
    }
    return PyLong_FromSsize_t(same);
}

/* The runs of a chunk's codes the planner takes as one (softgso.bulk.pipeline.code_spans): codes 0-4
 * (frames left untouched with a checksum state, or without a layout) together, and 5, 6, 7 and 8 each
 * on their own; any other value is in no run. (start, stop) pairs, as the spans of
 * re.finditer(rb"[\x00-\x04]+|\x05+|\x06+|\x07+|\x08+", codes): the planner's runs without importing re. */
static PyObject *code_runs(PyObject *self, PyObject *args)
{
    Py_buffer codes_buf;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*", &codes_buf))
        return NULL;
    const unsigned char *codes = (const unsigned char *)codes_buf.buf;
    Py_ssize_t length = codes_buf.len, at = 0;
    PyObject *runs = PyList_New(0);
    while (runs && at < length) {
        unsigned char kind = codes[at] <= 4 ? 0 : codes[at];
        if (kind > C_SEED) {
            at++;
            continue;
        }
        Py_ssize_t start = at;
        while (at < length && (codes[at] <= 4 ? 0 : codes[at]) == kind)
            at++;
        PyObject *span = Py_BuildValue("(nn)", start, at);
        if (!span || PyList_Append(runs, span) < 0)
            Py_CLEAR(runs);
        Py_XDECREF(span);
    }
    PyBuffer_Release(&codes_buf);
    return runs;
}

/* Whether TCP options (the bytes behind a header's fixed 20) carry a signature, walked as the kernel
 * walks them (tcp_parse_md5sig_option, tcp_parse_auth_options): MD5 (kind 19, length 18) or TCP-AO
 * (kind 29, length 4 or more); softgso.prepare.tcp_signature in Python. */
static int tcp_signed(const unsigned char *options, Py_ssize_t end)
{
    Py_ssize_t at = 0;
    while (at < end) {
        unsigned kind = options[at];
        if (kind == 0)
            break;
        if (kind == 1) {
            at++;
            continue;
        }
        if (at + 2 > end)
            break;
        unsigned size = options[at + 1];
        if (size < 2 || at + (Py_ssize_t)size > end)
            break;
        if ((kind == 19 && size == 18) || (kind == 29 && size >= 4))
            return 1;
        at += size;
    }
    return 0;
}

/* tcp_signed, the walk skipped when no option byte of either kind is there */
static int options_signed(const unsigned char *options, Py_ssize_t end)
{
    return (memchr(options, 19, (size_t)end) || memchr(options, 29, (size_t)end)) && tcp_signed(options, end);
}

/* unsigned_run(buffer, offsets, first, count, frame_at, start, end) -> n: how many of the ``count``
 * records after record ``first`` come before the first whose TCP options (frame bytes [start, end),
 * the frame ``frame_at`` bytes after its record's offset) carry a signature (softgso.bulk.fastpath.signed_in_run) */
static PyObject *unsigned_run(PyObject *self, PyObject *args)
{
    Py_buffer buffer, offsets_buf;
    Py_ssize_t first, count, frame_at, start, end;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*y*nnnnn", &buffer, &offsets_buf, &first, &count, &frame_at, &start, &end))
        return NULL;
    const int64_t *offsets = (const int64_t *)offsets_buf.buf;
    const unsigned char *data = (const unsigned char *)buffer.buf;
    const char *problem = NULL;
    if (first < 0 || count < 0 || first >= offsets_buf.len / 8 || count > offsets_buf.len / 8 - first - 1)
        problem = "unsigned_run: record range out of bounds";
    else if (frame_at < 0 || start < 0 || end < start || end > 0x10000 || frame_at > 0x10000)
        problem = "unsigned_run: inconsistent offsets";
    for (Py_ssize_t k = first + 1; k <= first + count && !problem; k++)
        if (offsets[k] < 0 || offsets[k] > buffer.len - frame_at - end)
            problem = "unsigned_run: a record lies outside the buffer";
    Py_ssize_t n = count;
    if (!problem) {
        for (Py_ssize_t k = first + 1; k <= first + count; k++) {
            const unsigned char *options = data + offsets[k] + frame_at + start;
            if (options_signed(options, end - start)) {
                n = k - first - 1;
                break;
            }
        }
    }
    PyBuffer_Release(&buffer);
    PyBuffer_Release(&offsets_buf);
    if (problem) {
        PyErr_SetString(PyExc_ValueError, problem);
        return NULL;
    }
    return PyLong_FromSsize_t(n);
}

/* complete_seeds: short Ethernet frames whose L4 checksum is a partial seed (scan's C_SEED with
 * SMALL_SEEDS), sent as one frame each: the device completes the seed or leaves it, as
 * skb_csum_hwoffload_help decides for the frame's class (one VLAN tag, IPv6, UDP: struct l4_at), the
 * same for every frame of a class. actions[class]: SEED_COMPLETE (skb_checksum_help: the ones'
 * complement of the L4 bytes' sum, the seed in the field, 0 sent as 0xFFFF), SEED_LEAVE (the bytes
 * as they came), 0 (not known yet: the walk stops there). */
enum { SEED_UNKNOWN, SEED_COMPLETE, SEED_LEAVE };

static PyObject *complete_seeds(PyObject *self, PyObject *args)
{
    Py_buffer buffer, offsets_buf, actions_buf, lengths_buf = {0};
    Py_ssize_t walked, first, stop, chunk_stop, shift;
    PyObject *lengths_obj;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*y*nnnnnOy*", &buffer, &offsets_buf, &walked, &first, &stop, &chunk_stop, &shift,
                          &lengths_obj, &actions_buf))
        return NULL;
    const char *problem = NULL;
    if (lengths_obj != Py_None && PyObject_GetBuffer(lengths_obj, &lengths_buf, PyBUF_SIMPLE) < 0)
        problem = "";
    else if (walked < 0 || walked > offsets_buf.len / 8 || first < 0 || stop > walked || first > stop ||
             chunk_stop > buffer.len || shift < 0 || actions_buf.len != 8 ||
             (lengths_buf.obj && lengths_buf.len < 4 * walked))
        problem = "complete_seeds: record range, actions or lengths out of bounds";
    const int64_t *offsets = (const int64_t *)offsets_buf.buf;
    const uint32_t *lengths = lengths_buf.obj ? (const uint32_t *)lengths_buf.buf : NULL;
    const unsigned char *data = (const unsigned char *)buffer.buf, *actions = (const unsigned char *)actions_buf.buf;
    Py_ssize_t done = first, left = 0, frame_bytes = 0, limit = buffer.len - 1;
    int next_class = -1; /* the class of the record the walk stopped at (-1: none; 8: not a seed) */
    PyObject *out = NULL;
    /* the records' bytes are one stretch of buffer: room for all of them, trimmed to those taken */
    Py_ssize_t start = 0, finish = 0;
    if (!problem && first < stop) {
        start = (Py_ssize_t)offsets[first] - shift;
        finish = (stop < walked ? (Py_ssize_t)offsets[stop] : chunk_stop) - shift;
        if (start < 0 || finish < start || finish > buffer.len)
            problem = "complete_seeds: a record out of bounds";
    }
    if (!problem && !(out = PyBytes_FromStringAndSize(NULL, finish - start)))
        problem = "";
    unsigned char *q = out ? (unsigned char *)PyBytes_AS_STRING(out) : NULL;
    Py_ssize_t taken = start; /* the end of the records taken so far */
    for (; !problem && done < stop; done++) {
        Py_ssize_t at = (Py_ssize_t)offsets[done];
        Py_ssize_t next = (done + 1 < walked ? (Py_ssize_t)offsets[done + 1] : chunk_stop);
        Py_ssize_t caplen = lengths ? (Py_ssize_t)lengths[done] : next - at - 16;
        if (at - shift != taken || at + 16 + caplen > next || next - shift > finish || caplen < 0) {
            problem = "complete_seeds: a record out of bounds";
            break;
        }
        struct l4_at l4;
        if (classify_frame(data, limit, at + 16, caplen, -1, NULL, &l4) != C_PARTIAL) {
            next_class = 8;
            break;
        }
        if (actions[l4.class] != SEED_COMPLETE && actions[l4.class] != SEED_LEAVE) {
            next_class = l4.class;
            break;
        }
        memcpy(q + (taken - start), data + taken, (size_t)(next - shift - taken));
        taken = next - shift;
        frame_bytes += caplen;
        if (actions[l4.class] == SEED_LEAVE) {
            left++; /* the frame's bytes as they came: its record as it came, as the writer keeps it */
            continue;
        }
        unsigned char *frame = q + (at + 16 - start);
        /* an EPB of a frame that changed is written anew: its padding zeros, whatever IN's held */
        if (lengths)
            memset(frame + caplen, 0, (size_t)(-caplen & 3));
        /* skb_checksum_help: csum_fold of the L4 bytes' sum (the seed in the field), 0 sent as
         * CSUM_MANGLED_0 */
        put16(frame + l4.transport + (l4.udp ? 6 : 16), (unsigned)(ONES - l4.sum % ONES));
    }
    if (!problem && _PyBytes_Resize(&out, taken - start) < 0)
        problem = "";
    PyBuffer_Release(&buffer);
    PyBuffer_Release(&offsets_buf);
    PyBuffer_Release(&actions_buf);
    if (lengths_buf.obj)
        PyBuffer_Release(&lengths_buf);
    if (problem) {
        Py_XDECREF(out);
        if (*problem)
            PyErr_SetString(PyExc_ValueError, problem);
        return NULL;
    }
    return Py_BuildValue("Nnnni", out, done - first, left, frame_bytes, next_class);
}

/* match_shapes(buffer, offsets, walked, first, stop, chunk_stop, codes, ids, table, pcapng) -> matched
 *   For every super-packet candidate (codes[j] == C_CANDIDATE) among records [first, stop) of the
 *   walked ones, the number of the first template in ``table`` whose shape it has, into ids[j] (255:
 *   none; other records' ids left as they are). A template (softgso.bulk.pipeline.ShapeTable) is a
 *   record of an earlier run and its shape as same_shape and same_bytes compare a run's records: the
 *   record's length, caplen and orig_len; the bytes of each [from, to) range (frame offsets); whether
 *   the 16-bit field at nonzero_at is 0 (unless it is -1); with ``pcapng``, the same interface (the 4
 *   bytes before the record's offset). A record whose TCP options in [sig_start, sig_end) (frame
 *   offsets) carry a signature has no shape (fastpath.signed_in_run). A template of any length
 *   (length_at >= 0: a TCP packet's, its IP length field left out of the ranges) takes a record of
 *   any whole frame (caplen equal to orig_len) whose IP length field, at frame offset length_at
 *   (read big-endian), is the frame's length less length_less, and whose record is the frame and
 *   record_len bytes of framing (pcap: its 16-byte header; pcapng: the EPB's 32 bytes and options,
 *   the frame padded to 4): the shape of a record of its flow of that length. ``table`` is int64s,
 *   template after template: its length in bytes, record_len, nonzero_at, nonzero, sig_start,
 *   sig_end, pairs, prefix_len, length_at (-1: of its record's length only), length_less,
 *   big_endian (the record headers' byte order); the ranges (pairs of int64); the record's first
 *   prefix_len bytes (from 4 before its offset with pcapng), padded to 8. Returns how many matched. */
#define SHAPES_MAX 255 /* ids are bytes, 255 is none */
#define SHAPE_FIELDS 11
struct shape {
    const unsigned char *prefix;
    const int64_t *ranges;
    int64_t record_len, nonzero_at, sig_start, sig_end, pairs, prefix_len, length_at, length_less;
    int nonzero, big_endian;
};

static PyObject *match_shapes(PyObject *self, PyObject *args)
{
    Py_buffer buffer, offsets_buf, codes_buf, ids_buf, table_buf;
    Py_ssize_t walked, first, stop, chunk_stop;
    int pcapng;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*y*nnnny*w*y*p", &buffer, &offsets_buf, &walked, &first, &stop, &chunk_stop,
                          &codes_buf, &ids_buf, &table_buf, &pcapng))
        return NULL;
    const char *problem = NULL;
    struct shape shapes[SHAPES_MAX];
    Py_ssize_t count = 0;
    const int64_t lead = pcapng ? 4 : 0; /* the prefix's bytes before the record's offset */
    if (walked < 0 || walked > offsets_buf.len / 8 || first < 0 || stop > walked || first > stop ||
        chunk_stop > buffer.len || codes_buf.len < walked || ids_buf.len < walked)
        problem = "match_shapes: record range out of bounds";
    else if (table_buf.len % 8)
        problem = "match_shapes: the table is not int64s";
    const unsigned char *table = (const unsigned char *)table_buf.buf;
    Py_ssize_t at = 0;
    while (!problem && at < table_buf.len) {
        const int64_t *fields = (const int64_t *)(table + at);
        if (count == SHAPES_MAX) {
            problem = "match_shapes: too many templates";
            break;
        }
        if (table_buf.len - at < SHAPE_FIELDS * 8) {
            problem = "match_shapes: an inconsistent template";
            break;
        }
        struct shape *shape = &shapes[count];
        int64_t size = fields[0], prefix_len = fields[7];
        shape->record_len = fields[1];
        shape->nonzero_at = fields[2];
        shape->nonzero = fields[3] != 0;
        shape->sig_start = fields[4];
        shape->sig_end = fields[5];
        shape->pairs = fields[6];
        shape->prefix_len = prefix_len;
        shape->length_at = fields[8];
        shape->length_less = fields[9];
        shape->big_endian = fields[10] != 0;
        /* the template's parts lie in it, and every byte compared in its prefix and in a record of its
         * length (one of any length: checked record by record) */
        int fine = shape->pairs >= 0 && shape->pairs <= 0x1000 && prefix_len >= lead + 16 && prefix_len <= 0x20000 &&
                   size == 8 * (SHAPE_FIELDS + 2 * shape->pairs) + ((prefix_len + 7) & ~(int64_t)7) &&
                   size <= table_buf.len - at && shape->record_len >= 16 && shape->record_len <= 0x10000000 &&
                   (shape->length_at >= 0 ? shape->length_less >= 0 && shape->length_at <= 0x10000
                                          : shape->length_at == -1 && prefix_len <= lead + shape->record_len);
        shape->ranges = fields + SHAPE_FIELDS;
        shape->prefix = (const unsigned char *)(fields + SHAPE_FIELDS + 2 * (fine ? shape->pairs : 0));
        for (int64_t k = 0; k < shape->pairs && fine; k++)
            fine = shape->ranges[2 * k] >= 0 && shape->ranges[2 * k + 1] >= shape->ranges[2 * k] &&
                   lead + 16 + shape->ranges[2 * k + 1] <= prefix_len;
        if (fine && shape->nonzero_at >= 0)
            fine = lead + 16 + shape->nonzero_at + 2 <= prefix_len;
        if (fine && shape->sig_end > shape->sig_start)
            fine = shape->sig_start >= 0 && (shape->length_at >= 0 || 16 + shape->sig_end <= shape->record_len);
        if (!fine) {
            problem = "match_shapes: an inconsistent template";
            break;
        }
        at += (Py_ssize_t)size;
        count++;
    }
    const int64_t *offsets = (const int64_t *)offsets_buf.buf;
    const unsigned char *data = (const unsigned char *)buffer.buf;
    const signed char *codes = (const signed char *)codes_buf.buf;
    unsigned char *ids = (unsigned char *)ids_buf.buf;
    Py_ssize_t matched = 0;
    if (!problem) {
        Py_BEGIN_ALLOW_THREADS
        for (Py_ssize_t j = first; j < stop; j++) {
            if (codes[j] != C_CANDIDATE)
                continue;
            ids[j] = 255;
            Py_ssize_t here = offsets[j], end = j + 1 < walked ? offsets[j + 1] : chunk_stop;
            if (here < lead || here > buffer.len || end < here || end > buffer.len)
                continue;
            const unsigned char *record = data + here;
            for (Py_ssize_t t = 0; t < count; t++) {
                const struct shape *shape = &shapes[t];
                const unsigned char *model = shape->prefix + lead;
                if (shape->length_at >= 0) {
                    /* a template of any length: a whole frame (caplen, orig_len equal) that the record
                     * holds with the template's framing, long enough for every byte compared, whose IP
                     * length field says the frame's length (no trailer) */
                    uint32_t caplen = get32(record + 8, shape->big_endian);
                    Py_ssize_t framed = pcapng ? (Py_ssize_t)((caplen + 3) & ~3u) : (Py_ssize_t)caplen;
                    if (memcmp(record + 8, record + 12, 4) || end - here != shape->record_len + framed ||
                        (int64_t)caplen < shape->prefix_len - lead - 16 || (int64_t)caplen < shape->length_at + 2 ||
                        (int64_t)caplen < shape->sig_end ||
                        (int64_t)be16(record + 16 + shape->length_at) + shape->length_less != (int64_t)caplen ||
                        (lead && memcmp(shape->prefix, record - lead, (size_t)lead)))
                        continue;
                } else if (end - here != shape->record_len || memcmp(model + 8, record + 8, 8) ||
                           (lead && memcmp(shape->prefix, record - lead, (size_t)lead)))
                    continue;
                int equal = shape->nonzero_at < 0 || (be16(record + 16 + shape->nonzero_at) != 0) == shape->nonzero;
                for (int64_t k = 0; k < shape->pairs && equal; k++)
                    equal = !memcmp(model + 16 + shape->ranges[2 * k], record + 16 + shape->ranges[2 * k],
                                    (size_t)(shape->ranges[2 * k + 1] - shape->ranges[2 * k]));
                if (!equal)
                    continue;
                if (shape->sig_end > shape->sig_start) {
                    const unsigned char *options = record + 16 + shape->sig_start;
                    Py_ssize_t span = (Py_ssize_t)(shape->sig_end - shape->sig_start);
                    if (options_signed(options, span))
                        break; /* signed: no shape (the scalar path reports it) */
                }
                ids[j] = (unsigned char)t;
                matched++;
                break;
            }
        }
        Py_END_ALLOW_THREADS
    }
    PyBuffer_Release(&buffer);
    PyBuffer_Release(&offsets_buf);
    PyBuffer_Release(&codes_buf);
    PyBuffer_Release(&ids_buf);
    PyBuffer_Release(&table_buf);
    if (problem) {
        PyErr_SetString(PyExc_ValueError, problem);
        return NULL;
    }
    return PyLong_FromSsize_t(matched);
}

/* writev(2) of iov[0, pairs) to the end: IOV_MAX at a time, short writes resumed (the vector a
 * write stopped in trimmed in place), EINTR retried. 0 or an errno; ``*total`` counts the bytes
 * written. Called without the GIL. */
static int write_vectors(int fd, struct iovec *iov, Py_ssize_t pairs, long long *total)
{
    Py_ssize_t at = 0;
    while (at < pairs) {
        if (iov[at].iov_len == 0) {
            at++;
            continue;
        }
        int batch = pairs - at < IOV_MAX ? (int)(pairs - at) : IOV_MAX;
        ssize_t done = writev(fd, iov + at, batch);
        if (done < 0) {
            if (errno == EINTR)
                continue;
            return errno;
        }
        if (done == 0)
            return EIO;
        *total += done;
        while (at < pairs && (size_t)done >= iov[at].iov_len) {
            done -= (ssize_t)iov[at].iov_len;
            at++;
        }
        if (done > 0) {
            iov[at].iov_base = (char *)iov[at].iov_base + done;
            iov[at].iov_len -= (size_t)done;
        }
    }
    return 0;
}

/* writev(2) of ``pairs`` (base, length) pairs (struct iovec's layout) from ``vectors``, IOV_MAX at a
 * time, resuming after short writes; the bytes written. The GIL is released: the caller keeps the
 * buffers the pairs point into alive and unchanged until this returns. */
static PyObject *writev_all(PyObject *self, PyObject *args)
{
    int fd;
    Py_buffer vectors_buf;
    Py_ssize_t pairs;
    (void)self;
    if (!PyArg_ParseTuple(args, "iy*n", &fd, &vectors_buf, &pairs))
        return NULL;
    if (pairs < 0 || vectors_buf.len % 16 || pairs > vectors_buf.len / 16 || sizeof(struct iovec) != 16) {
        PyBuffer_Release(&vectors_buf);
        PyErr_SetString(PyExc_ValueError, "writev_all: pairs out of range");
        return NULL;
    }
    /* a copy: a short write trims the vector it stopped in */
    struct iovec *iov = PyMem_RawMalloc(pairs ? (size_t)pairs * sizeof(struct iovec) : 1);
    if (!iov) {
        PyBuffer_Release(&vectors_buf);
        return PyErr_NoMemory();
    }
    memcpy(iov, vectors_buf.buf, (size_t)pairs * sizeof(struct iovec));
    PyBuffer_Release(&vectors_buf);
    long long total = 0;
    int error;
    Py_BEGIN_ALLOW_THREADS
    error = write_vectors(fd, iov, pairs, &total);
    Py_END_ALLOW_THREADS
    PyMem_RawFree(iov);
    if (error) {
        errno = error;
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    return PyLong_FromLongLong(total);
}

/* ---- the SIGBUS guard of a mapped input (see the module comment) ---- */

#define GUARD_SLOTS 16
static uintptr_t guard_low[GUARD_SLOTS], guard_high[GUARD_SLOTS]; /* [low, high), 0/0: free */
static long guard_fault_count;
static int guard_slots_taken;
static uintptr_t guard_page_size;
static struct sigaction guard_previous;

static void guard_handler(int sig, siginfo_t *info, void *context)
{
    if (info && info->si_code == BUS_ADRERR) {
        uintptr_t at = (uintptr_t)info->si_addr;
        for (int slot = 0; slot < GUARD_SLOTS; slot++) {
            uintptr_t low = __atomic_load_n(&guard_low[slot], __ATOMIC_ACQUIRE);
            uintptr_t high = __atomic_load_n(&guard_high[slot], __ATOMIC_ACQUIRE);
            if (low < high && low <= at && at < high) {
                int saved = errno;
                void *page = (void *)(at & ~(guard_page_size - 1));
                void *got = mmap(page, guard_page_size, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
                errno = saved;
                if (got == page) {
                    __atomic_add_fetch(&guard_fault_count, 1, __ATOMIC_SEQ_CST);
                    return; /* the touch is retried: zeros */
                }
                break;
            }
        }
    }
    /* not a vanished page of a guarded mapping: what the handler before ours would have done */
    if ((guard_previous.sa_flags & SA_SIGINFO) && guard_previous.sa_sigaction) {
        guard_previous.sa_sigaction(sig, info, context);
        return;
    }
    if (!(guard_previous.sa_flags & SA_SIGINFO) && guard_previous.sa_handler != SIG_DFL &&
        guard_previous.sa_handler != SIG_IGN) {
        guard_previous.sa_handler(sig);
        return;
    }
    /* the default action (a SIGBUS from a fault cannot be ignored): on return the fault recurs */
    struct sigaction fallback;
    memset(&fallback, 0, sizeof fallback);
    fallback.sa_handler = SIG_DFL;
    sigemptyset(&fallback.sa_mask);
    sigaction(SIGBUS, &fallback, NULL);
}

static PyObject *guard_add(PyObject *self, PyObject *args)
{
    Py_buffer mapping;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*", &mapping))
        return NULL;
    uintptr_t low = (uintptr_t)mapping.buf, high = low + (uintptr_t)mapping.len;
    PyBuffer_Release(&mapping);
    if (high <= low) {
        PyErr_SetString(PyExc_ValueError, "guard_add: an empty mapping");
        return NULL;
    }
    int slot = 0;
    while (slot < GUARD_SLOTS && __atomic_load_n(&guard_high[slot], __ATOMIC_ACQUIRE))
        slot++;
    if (slot == GUARD_SLOTS) {
        PyErr_SetString(PyExc_RuntimeError, "guard_add: every slot taken");
        return NULL;
    }
    if (!guard_slots_taken) {
        if (!guard_page_size) {
            long size = sysconf(_SC_PAGESIZE);
            guard_page_size = size > 0 ? (uintptr_t)size : 4096;
        }
        struct sigaction ours;
        memset(&ours, 0, sizeof ours);
        ours.sa_sigaction = guard_handler;
        ours.sa_flags = SA_SIGINFO | SA_ONSTACK;
        sigemptyset(&ours.sa_mask);
        if (sigaction(SIGBUS, &ours, &guard_previous) != 0)
            return PyErr_SetFromErrno(PyExc_OSError);
    }
    /* low first, then high: the handler takes a slot only once high is set (low < high) */
    __atomic_store_n(&guard_low[slot], low, __ATOMIC_RELEASE);
    __atomic_store_n(&guard_high[slot], high, __ATOMIC_RELEASE);
    guard_slots_taken++;
    return PyLong_FromLong(slot);
}

static PyObject *guard_remove(PyObject *self, PyObject *args)
{
    int slot;
    (void)self;
    if (!PyArg_ParseTuple(args, "i", &slot))
        return NULL;
    if (slot < 0 || slot >= GUARD_SLOTS || !__atomic_load_n(&guard_high[slot], __ATOMIC_ACQUIRE)) {
        PyErr_SetString(PyExc_ValueError, "guard_remove: not a slot taken");
        return NULL;
    }
    __atomic_store_n(&guard_high[slot], 0, __ATOMIC_RELEASE);
    __atomic_store_n(&guard_low[slot], 0, __ATOMIC_RELEASE);
    if (--guard_slots_taken == 0) {
        /* the handler before ours, unless someone replaced ours meanwhile (theirs is then left) */
        struct sigaction current;
        if (sigaction(SIGBUS, NULL, &current) == 0 && (current.sa_flags & SA_SIGINFO) &&
            current.sa_sigaction == guard_handler)
            sigaction(SIGBUS, &guard_previous, NULL);
    }
    Py_RETURN_NONE;
}

static PyObject *guard_faults(PyObject *self, PyObject *args)
{
    (void)self;
    (void)args;
    return PyLong_FromLong(__atomic_load_n(&guard_fault_count, __ATOMIC_SEQ_CST));
}

static PyObject *segment(PyObject *self, PyObject *args)
{
    (void)self;
    return segment_jobs(args, 0);
}

static PyObject *segment_records(PyObject *self, PyObject *args)
{
    (void)self;
    return segment_jobs(args, 1);
}

static PyMethodDef methods[] = {
    {"same_shape", same_shape, METH_VARARGS, "How many following records share a record's shape."},
    {"same_bytes", same_bytes, METH_VARARGS, "How many following records have a record's bytes in the given ranges."},
    {"segment_runs", segment_runs, METH_VARARGS, "segment_records with a descriptor for several runs in order."},
    {"segment_records", segment_records, METH_VARARGS, "segment for frames in pcap records, each segment behind its own."},
    {"scan", scan, METH_VARARGS, "The pcap record walk and short-frame classification of one chunk."},
    {"scan_blocks", scan_blocks, METH_VARARGS, "scan for the blocks of a pcapng section."},
    {"segment", segment, METH_VARARGS, "Segment frames of one plan into contiguous output."},
    {"code_runs", code_runs, METH_VARARGS, "The (start, stop) runs of a chunk's codes the planner takes as one."},
    {"complete_seeds", complete_seeds, METH_VARARGS, "Short frames of partial seeds, completed or left as their class asks."},
    {"match_shapes", match_shapes, METH_VARARGS, "Each super-packet candidate's shape among a few templates."},
    {"unsigned_run", unsigned_run, METH_VARARGS, "How many records of a run come before the first with a TCP signature."},
    {"writev_all", writev_all, METH_VARARGS, "writev of (base, length) pairs, IOV_MAX at a time, to the end."},
    {"guard_add", guard_add, METH_VARARGS, "Answer SIGBUS in a mapping with a page of zeros, counted; the slot."},
    {"guard_remove", guard_remove, METH_VARARGS, "Stop guarding a slot's mapping (the last one restores the handler)."},
    {"guard_faults", guard_faults, METH_NOARGS, "Pages of guarded mappings answered with zeros so far."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_segment", NULL, -1, methods, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__segment(void)
{
    PyObject *made = PyModule_Create(&module);
    /* segment_runs takes runs of bytes, (buffer,), between its runs */
    if (made && PyModule_AddIntConstant(made, "RAW_RUNS", 1) < 0)
        Py_CLEAR(made);
    return made;
}
