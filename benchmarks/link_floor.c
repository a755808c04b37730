/* The CPU floor of the datapath's two costs on this machine, with no Python in the way:
 *
 *   link: labelled 1518-byte frames across a veth, one end in each of two network namespaces, a
 *         sending process on one end and a receiving process on the other, by the link I/O a label
 *         edge router can use: sendmmsg/recvmmsg batches (with or without PACKET_QDISC_BYPASS), or a
 *         PACKET_TX_RING (TPACKET_V2, PACKET_QDISC_BYPASS) sender flushed by one send() per batch or
 *         per whole ring, into a TPACKET_V3 RX ring, both walked here; or AF_XDP sockets in copy mode
 *         at both ends (the receiver's veth running a redirect program, attached here without libbpf).
 *         Each method also as METHOD-1p: one process sends a batch, then takes what arrived.
 *   tap:  a TCP stream from a plain socket inside a namespace through a TAP (IFF_VNET_HDR) read here
 *         as fast as it comes and discarded, this program playing the peer (the handshake and one
 *         cumulative ACK per 64 KB or per empty read): no-gso (no offloads: the sender's kernel
 *         segments and checksums, one read per MTU frame) or sw-gso (TUN_F_CSUM|TSO4|TSO6|TSO_ECN:
 *         one read per super-packet; with "sum" every 1460-byte piece of it is also summed, the
 *         checksum work a software segmenter does in userspace).
 *
 *   cc -O2 -o link_floor benchmarks/link_floor.c        (tools/linkio_bench.py builds and runs it)
 *   link_floor link mmsg|mmsg-bypass|ring|ring-nobypass|ring-full|xdp[-1p] TX_NETNS TX_IF RX_NETNS RX_IF FRAMES BATCH
 *   link_floor tap no-gso|sw-gso|sw-gso-sum NETNS BYTES
 *
 * NETNS names a file under /var/run/netns. Root only. It prints one JSON object: frames (or bytes)
 * moved, wall seconds, and user/system seconds of each process over the transfer (getrusage
 * deltas; softirq work the kernel runs inline in a process's context is in its system time). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/if_link.h>
#include <linux/if_packet.h>
#include <linux/if_tun.h>
#include <linux/if_xdp.h>
#include <linux/netlink.h>
#include <linux/virtio_net.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define FRAME_LEN 1518
#define ETH_P_MPLS 0x8847
#define SEQ_AT 18 /* after the Ethernet header and one label */
#define TX_SLOT 2048
#define TX_SLOTS 4096
#define TX_DATA (TPACKET_ALIGN(sizeof(struct tpacket2_hdr)))
#define RX_BLOCK (1u << 20)
#define RX_BLOCKS 64u
#define RCVBUF (64 << 20)
#define WINDOW 16384 /* frames the sender may have ahead of the receiver: none lost to a full buffer */

static void xdp_detach(void);

static void die(const char *what)
{
    fprintf(stderr, "link_floor: %s: %s\n", what, strerror(errno));
    xdp_detach();
    exit(2);
}

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static double cpu_of(const struct rusage *r, int system)
{
    const struct timeval *t = system ? &r->ru_stime : &r->ru_utime;
    return (double)t->tv_sec + (double)t->tv_usec * 1e-6;
}

/* fork(), the child killed with its parent: nothing of a run outlives it (nor keeps a lock its
 * parent inherited open) */
static pid_t fork_tied(void)
{
    pid_t parent = getpid(), child = fork();
    if (child < 0)
        die("fork");
    if (child == 0 && (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent))
        _exit(2);
    return child;
}

static void enter_netns(const char *name)
{
    char path[256];
    snprintf(path, sizeof path, "/var/run/netns/%s", name);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        die(path);
    if (setns(fd, CLONE_NEWNET) != 0)
        die("setns");
    close(fd);
}

/* ------------------------------------------------------------------ link */

struct shared {
    volatile uint64_t received;
    volatile int ready, tx_done;
    double first, last;
    double user, sys;
    uint64_t out_of_order, drops, polls;
};

static int packet_socket(const char *ifname)
{
    int fd = socket(AF_PACKET, SOCK_RAW, htons(ETH_P_MPLS));
    if (fd < 0)
        die("socket(AF_PACKET)");
    struct sockaddr_ll addr = {.sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_MPLS),
                               .sll_ifindex = (int)if_nametoindex(ifname)};
    if (addr.sll_ifindex == 0)
        die(ifname);
    if (bind(fd, (struct sockaddr *)&addr, sizeof addr) != 0)
        die("bind");
    return fd;
}

static void fill_frame(unsigned char *frame, uint32_t seq)
{
    static const unsigned char head[SEQ_AT] = {0x02, 0x5e, 0, 0, 0x0a, 0x02, 0x02, 0x5e, 0, 0, 0x0a, 0x01,
                                               0x88, 0x47, 0x00, 0x06, 0x41, 0x40}; /* label 100, S, TTL 64 */
    memcpy(frame, head, SEQ_AT);
    uint32_t be = htonl(seq);
    memcpy(frame + SEQ_AT, &be, 4);
}

static void take(struct shared *sh, const unsigned char *frame, double t)
{
    uint32_t be;
    memcpy(&be, frame + SEQ_AT, 4);
    if (ntohl(be) != (uint32_t)(sh->received + sh->out_of_order))
        sh->out_of_order++;
    if (sh->received == 0)
        sh->first = t;
    sh->received++;
    sh->last = t;
}

/* one recvmmsg of up to 256 frames; its result */
static int take_mmsg(int fd, struct shared *sh, int flags)
{
    enum { VLEN = 256 };
    static unsigned char buffers[VLEN][2048];
    static struct mmsghdr msgs[VLEN];
    static struct iovec iov[VLEN];
    for (int i = 0; i < VLEN; i++) {
        iov[i] = (struct iovec){buffers[i], sizeof buffers[i]};
        msgs[i].msg_hdr = (struct msghdr){.msg_iov = &iov[i], .msg_iovlen = 1};
    }
    int got = recvmmsg(fd, msgs, VLEN, flags, NULL);
    sh->polls++;
    double t = now();
    for (int i = 0; i < got; i++)
        take(sh, buffers[i], t);
    return got;
}

static void receive_mmsg(int fd, struct shared *sh, uint64_t frames)
{
    struct timeval timeout = {.tv_usec = 100000};
    if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout) != 0)
        die("SO_RCVTIMEO");
    while (sh->received < frames) {
        if (take_mmsg(fd, sh, MSG_WAITFORONE) < 0) {
            if ((errno == EAGAIN || errno == EINTR) && !sh->tx_done)
                continue;
            if (errno == EAGAIN)
                return; /* the sender is done and nothing came for 100 ms */
            die("recvmmsg");
        }
    }
}

static unsigned char *rx_ring(int fd)
{
    int version = TPACKET_V3;
    if (setsockopt(fd, SOL_PACKET, PACKET_VERSION, &version, sizeof version) != 0)
        die("PACKET_VERSION");
    struct tpacket_req3 req = {.tp_block_size = RX_BLOCK, .tp_block_nr = RX_BLOCKS, .tp_frame_size = 2048,
                               .tp_frame_nr = RX_BLOCK / 2048 * RX_BLOCKS, .tp_retire_blk_tov = 1};
    if (setsockopt(fd, SOL_PACKET, PACKET_RX_RING, &req, sizeof req) != 0)
        die("PACKET_RX_RING");
    unsigned char *ring = mmap(NULL, (size_t)RX_BLOCK * RX_BLOCKS, PROT_READ | PROT_WRITE,
                               MAP_SHARED | MAP_POPULATE, fd, 0);
    if (ring == MAP_FAILED)
        die("mmap RX ring");
    return ring;
}

/* the blocks of a TPACKET_V3 ring the kernel has handed over, walked and given back; frames taken */
static uint64_t take_blocks(unsigned char *ring, unsigned *block, struct shared *sh)
{
    uint64_t taken = 0;
    for (;;) {
        struct tpacket_block_desc *desc = (struct tpacket_block_desc *)(ring + (size_t)*block * RX_BLOCK);
        if (!(__atomic_load_n(&desc->hdr.bh1.block_status, __ATOMIC_ACQUIRE) & TP_STATUS_USER))
            return taken;
        double t = now();
        unsigned char *at = (unsigned char *)desc + desc->hdr.bh1.offset_to_first_pkt;
        for (uint32_t i = 0; i < desc->hdr.bh1.num_pkts; i++) {
            struct tpacket3_hdr *packet = (struct tpacket3_hdr *)at;
            take(sh, at + packet->tp_mac, t);
            at += packet->tp_next_offset;
        }
        taken += desc->hdr.bh1.num_pkts;
        __atomic_store_n(&desc->hdr.bh1.block_status, TP_STATUS_KERNEL, __ATOMIC_RELEASE);
        *block = (*block + 1) % RX_BLOCKS;
    }
}

/* take what a ring holds, else wait in poll(); the sender done and 0.3 s without a frame: the end */
static void receive_polled(int fd, uint64_t (*take_some)(void *, struct shared *), void *state, struct shared *sh,
                           uint64_t frames)
{
    struct pollfd pfd = {.fd = fd, .events = POLLIN | POLLERR};
    double idle_since = 0;
    while (sh->received < frames) {
        if (take_some(state, sh)) {
            idle_since = 0;
            continue;
        }
        sh->polls++;
        if (poll(&pfd, 1, 100) == 0 && sh->tx_done) {
            if (idle_since == 0)
                idle_since = now();
            else if (now() - idle_since > 0.3)
                break;
        }
    }
}

struct rx_ring_state {
    unsigned char *ring;
    unsigned block;
};

static uint64_t take_from_ring(void *state, struct shared *sh)
{
    struct rx_ring_state *r = state;
    return take_blocks(r->ring, &r->block, sh);
}

/* ------------------------------------------------------------------ AF_XDP, copy mode */

/* No libbpf: the XSKMAP, the 6-instruction program that redirects every frame of queue 0 to the
 * socket (bpf_redirect_map(&map, 0, XDP_PASS)) and its attachment (RTM_SETLINK, IFLA_XDP) are
 * made with bpf(2) and netlink here. The sender needs no program: an AF_XDP socket in copy mode
 * transmits through xsk_generic_xmit (an skb per frame, dev_direct_xmit, at most 32 per call). */
#define XSK_FRAMES 4096
#define XSK_FRAME 2048
#define XSK_RING 2048
#define XSK_WINDOW 1536 /* below the RX ring: a full ring drops */

struct xsk_ring {
    uint32_t *producer, *consumer;
    void *desc;
    uint32_t size;
};

struct xsk {
    int fd;
    unsigned char *umem;
    struct xsk_ring rx, tx, fill, comp;
};

static int xdp_netlink = -1, xdp_ifindex, xdp_flags;

static void map_ring(int fd, uint64_t pgoff, const struct xdp_ring_offset *off, size_t entry, struct xsk_ring *r)
{
    unsigned char *m = mmap(NULL, off->desc + (size_t)XSK_RING * entry, PROT_READ | PROT_WRITE,
                            MAP_SHARED | MAP_POPULATE, fd, (off_t)pgoff);
    if (m == MAP_FAILED)
        die("mmap AF_XDP ring");
    r->producer = (uint32_t *)(m + off->producer);
    r->consumer = (uint32_t *)(m + off->consumer);
    r->desc = m + off->desc;
    r->size = XSK_RING;
}

static void xsk_open(struct xsk *x, const char *ifname, int rx)
{
    x->fd = socket(AF_XDP, SOCK_RAW | SOCK_CLOEXEC, 0);
    if (x->fd < 0)
        die("socket(AF_XDP)");
    x->umem = mmap(NULL, (size_t)XSK_FRAMES * XSK_FRAME, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    if (x->umem == MAP_FAILED)
        die("mmap UMEM");
    struct xdp_umem_reg reg = {.addr = (uintptr_t)x->umem, .len = (uint64_t)XSK_FRAMES * XSK_FRAME,
                               .chunk_size = XSK_FRAME};
    if (setsockopt(x->fd, SOL_XDP, XDP_UMEM_REG, &reg, sizeof reg) != 0)
        die("XDP_UMEM_REG");
    int size = XSK_RING;
    if (setsockopt(x->fd, SOL_XDP, XDP_UMEM_FILL_RING, &size, sizeof size) != 0 ||
        setsockopt(x->fd, SOL_XDP, XDP_UMEM_COMPLETION_RING, &size, sizeof size) != 0 ||
        setsockopt(x->fd, SOL_XDP, rx ? XDP_RX_RING : XDP_TX_RING, &size, sizeof size) != 0)
        die("AF_XDP ring sizes");
    struct xdp_mmap_offsets off;
    socklen_t len = sizeof off;
    if (getsockopt(x->fd, SOL_XDP, XDP_MMAP_OFFSETS, &off, &len) != 0)
        die("XDP_MMAP_OFFSETS");
    map_ring(x->fd, XDP_UMEM_PGOFF_FILL_RING, &off.fr, sizeof(uint64_t), &x->fill);
    map_ring(x->fd, XDP_UMEM_PGOFF_COMPLETION_RING, &off.cr, sizeof(uint64_t), &x->comp);
    if (rx)
        map_ring(x->fd, XDP_PGOFF_RX_RING, &off.rx, sizeof(struct xdp_desc), &x->rx);
    else
        map_ring(x->fd, XDP_PGOFF_TX_RING, &off.tx, sizeof(struct xdp_desc), &x->tx);
    struct sockaddr_xdp addr = {.sxdp_family = AF_XDP, .sxdp_flags = XDP_COPY,
                                .sxdp_ifindex = if_nametoindex(ifname), .sxdp_queue_id = 0};
    if (addr.sxdp_ifindex == 0)
        die(ifname);
    if (bind(x->fd, (struct sockaddr *)&addr, sizeof addr) != 0)
        die("bind(AF_XDP, XDP_COPY)");
    if (rx) { /* every chunk the fill ring holds, handed to the kernel */
        uint64_t *fill = x->fill.desc;
        for (uint32_t i = 0; i < XSK_RING; i++)
            fill[i] = (uint64_t)i * XSK_FRAME;
        __atomic_store_n(x->fill.producer, XSK_RING, __ATOMIC_RELEASE);
    }
}

static int bpf_call(int cmd, union bpf_attr *attr)
{
    return (int)syscall(SYS_bpf, cmd, attr, sizeof *attr);
}

static int xdp_set(int ifindex, int prog, uint32_t flags)
{
    struct {
        struct nlmsghdr nh;
        struct ifinfomsg ifi;
        unsigned char attrs[64];
    } req;
    memset(&req, 0, sizeof req);
    req.nh.nlmsg_len = NLMSG_LENGTH(sizeof req.ifi);
    req.nh.nlmsg_type = RTM_SETLINK;
    req.nh.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
    req.ifi.ifi_family = AF_UNSPEC;
    req.ifi.ifi_index = ifindex;
    struct nlattr *nest = (struct nlattr *)((unsigned char *)&req + NLMSG_ALIGN(req.nh.nlmsg_len));
    nest->nla_type = NLA_F_NESTED | IFLA_XDP;
    nest->nla_len = NLA_HDRLEN;
    uint32_t values[2] = {(uint32_t)prog, flags};
    unsigned short types[2] = {IFLA_XDP_FD, IFLA_XDP_FLAGS};
    for (int i = 0; i < 2; i++) {
        struct nlattr *a = (struct nlattr *)((unsigned char *)nest + nest->nla_len);
        a->nla_type = types[i];
        a->nla_len = NLA_HDRLEN + 4;
        memcpy((unsigned char *)a + NLA_HDRLEN, &values[i], 4);
        nest->nla_len = (unsigned short)(nest->nla_len + NLA_ALIGN(a->nla_len));
    }
    req.nh.nlmsg_len += NLA_ALIGN(nest->nla_len);
    if (send(xdp_netlink, &req, req.nh.nlmsg_len, 0) < 0)
        return -errno;
    unsigned char reply[1024];
    ssize_t n = recv(xdp_netlink, reply, sizeof reply, 0);
    if (n < (ssize_t)NLMSG_LENGTH(sizeof(struct nlmsgerr)))
        return -EIO;
    struct nlmsgerr *err = NLMSG_DATA((struct nlmsghdr *)reply);
    return err->error;
}

static void xdp_detach(void)
{
    if (xdp_ifindex) {
        int ifindex = xdp_ifindex;
        xdp_ifindex = 0;
        xdp_set(ifindex, -1, (uint32_t)xdp_flags);
    }
}

/* the XSKMAP holding the socket, the program, attached to the device (driver mode, else generic) */
static const char *xdp_attach(const struct xsk *x, const char *ifname)
{
    union bpf_attr attr;
    memset(&attr, 0, sizeof attr);
    attr.map_type = BPF_MAP_TYPE_XSKMAP;
    attr.key_size = 4;
    attr.value_size = 4;
    attr.max_entries = 1;
    int map = bpf_call(BPF_MAP_CREATE, &attr);
    if (map < 0)
        die("BPF_MAP_CREATE (XSKMAP)");
    uint32_t key = 0, value = (uint32_t)x->fd;
    memset(&attr, 0, sizeof attr);
    attr.map_fd = (uint32_t)map;
    attr.key = (uintptr_t)&key;
    attr.value = (uintptr_t)&value;
    if (bpf_call(BPF_MAP_UPDATE_ELEM, &attr) != 0)
        die("BPF_MAP_UPDATE_ELEM (XSKMAP)");
    struct bpf_insn program[] = {
        {.code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_2, .imm = 0},        /* key: queue 0 */
        {.code = BPF_LD | BPF_DW | BPF_IMM, .dst_reg = BPF_REG_1, .src_reg = BPF_PSEUDO_MAP_FD, .imm = map},
        {.code = 0},
        {.code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_3, .imm = XDP_PASS}, /* if no socket */
        {.code = BPF_JMP | BPF_CALL, .imm = BPF_FUNC_redirect_map},
        {.code = BPF_JMP | BPF_EXIT},
    };
    static char log[4096];
    memset(&attr, 0, sizeof attr);
    attr.prog_type = BPF_PROG_TYPE_XDP;
    attr.insns = (uintptr_t)program;
    attr.insn_cnt = sizeof program / sizeof program[0];
    attr.license = (uintptr_t) "GPL";
    attr.log_buf = (uintptr_t)log;
    attr.log_size = sizeof log;
    attr.log_level = 1;
    int prog = bpf_call(BPF_PROG_LOAD, &attr);
    if (prog < 0) {
        fprintf(stderr, "%s\n", log);
        die("BPF_PROG_LOAD (XDP)");
    }
    xdp_netlink = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
    if (xdp_netlink < 0)
        die("socket(AF_NETLINK)");
    int ifindex = (int)if_nametoindex(ifname);
    const char *mode = "driver";
    xdp_flags = XDP_FLAGS_DRV_MODE;
    int err = xdp_set(ifindex, prog, (uint32_t)xdp_flags);
    if (err != 0) {
        mode = "generic";
        xdp_flags = XDP_FLAGS_SKB_MODE;
        err = xdp_set(ifindex, prog, (uint32_t)xdp_flags);
    }
    if (err != 0) {
        errno = -err;
        die("attaching the XDP program (IFLA_XDP)");
    }
    xdp_ifindex = ifindex;
    return mode;
}

/* the frames the RX ring holds, taken and their chunks handed back to the fill ring */
static uint64_t xsk_take(struct xsk *x, struct shared *sh)
{
    uint32_t prod = __atomic_load_n(x->rx.producer, __ATOMIC_ACQUIRE), cons = *x->rx.consumer;
    uint32_t n = prod - cons, fill = *x->fill.producer;
    if (n == 0)
        return 0;
    double t = now();
    const struct xdp_desc *descs = x->rx.desc;
    uint64_t *chunks = x->fill.desc;
    for (uint32_t i = 0; i < n; i++) {
        const struct xdp_desc *d = &descs[(cons + i) & (XSK_RING - 1)];
        const unsigned char *frame = x->umem + d->addr;
        if (frame[12] == 0x88 && frame[13] == 0x47) /* the program redirects every frame: ours only */
            take(sh, frame, t);
        chunks[(fill + i) & (XSK_RING - 1)] = d->addr;
    }
    __atomic_store_n(x->fill.producer, fill + n, __ATOMIC_RELEASE);
    __atomic_store_n(x->rx.consumer, cons + n, __ATOMIC_RELEASE);
    return n;
}

static uint64_t take_from_xsk(void *state, struct shared *sh)
{
    return xsk_take(state, sh);
}

static uint64_t xsk_drops(const struct xsk *x)
{
    struct xdp_statistics stats;
    socklen_t len = sizeof stats;
    if (getsockopt(x->fd, SOL_XDP, XDP_STATISTICS, &stats, &len) != 0)
        return 0;
    return stats.rx_dropped + stats.rx_ring_full + stats.rx_fill_ring_empty_descs;
}

/* one process (as the datapath's loop): the sender takes what arrived after each batch */
static struct {
    int fd;
    unsigned char *ring;
    unsigned block;
    struct xsk *xsk;
} inline_rx = {.fd = -1};

static void drain(struct shared *sh)
{
    if (inline_rx.xsk)
        xsk_take(inline_rx.xsk, sh);
    else if (inline_rx.ring)
        take_blocks(inline_rx.ring, &inline_rx.block, sh);
    else
        while (take_mmsg(inline_rx.fd, sh, MSG_DONTWAIT) == 256)
            ;
}

static const char *xdp_mode = "none";
static uint64_t window = WINDOW;

static void receiver(const char *netns, const char *ifname, const char *method, struct shared *sh,
                     uint64_t frames)
{
    enter_netns(netns);
    struct xsk x;
    int fd = -1;
    unsigned char *ring = NULL;
    if (strncmp(method, "xdp", 3) == 0) {
        xsk_open(&x, ifname, 1);
        xdp_attach(&x, ifname);
    } else {
        fd = packet_socket(ifname);
        int size = RCVBUF;
        if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof size) != 0)
            die("SO_RCVBUFFORCE");
        ring = strncmp(method, "ring", 4) == 0 ? rx_ring(fd) : NULL;
    }
    struct rusage before, after;
    getrusage(RUSAGE_SELF, &before);
    sh->ready = 1;
    struct rx_ring_state state = {ring, 0};
    if (fd < 0)
        receive_polled(x.fd, take_from_xsk, &x, sh, frames);
    else if (ring)
        receive_polled(fd, take_from_ring, &state, sh, frames);
    else
        receive_mmsg(fd, sh, frames);
    getrusage(RUSAGE_SELF, &after);
    sh->user = cpu_of(&after, 0) - cpu_of(&before, 0);
    sh->sys = cpu_of(&after, 1) - cpu_of(&before, 1);
    if (fd < 0) {
        sh->drops = xsk_drops(&x);
        xdp_detach();
    } else {
        struct tpacket_stats_v3 stats;
        socklen_t len = sizeof stats;
        if (getsockopt(fd, SOL_PACKET, PACKET_STATISTICS, &stats, &len) == 0)
            sh->drops = stats.tp_drops;
    }
    _exit(0);
}

/* the sender must not run more than WINDOW frames ahead of the receiver (a full receive buffer
 * drops silently); waiting costs a sleep, counted */
static uint64_t keep_window(struct shared *sh, uint64_t sent)
{
    uint64_t waits = 0;
    if (inline_rx.fd >= 0) {
        drain(sh);
        return 0;
    }
    while (sent > sh->received + window && !(sh->received == 0 && waits > 20000)) {
        usleep(50);
        waits++;
    }
    return waits;
}

static uint64_t send_mmsg(int fd, struct shared *sh, uint64_t frames, unsigned batch, uint64_t *calls,
                          uint64_t *waits)
{
    unsigned char (*buffers)[FRAME_LEN] = calloc(batch, FRAME_LEN);
    struct mmsghdr *msgs = calloc(batch, sizeof *msgs);
    struct iovec *iov = calloc(batch, sizeof *iov);
    if (!buffers || !msgs || !iov)
        die("calloc");
    uint64_t sent = 0, lost = 0;
    while (sent + lost < frames) {
        unsigned count = (unsigned)(frames - sent - lost < batch ? frames - sent - lost : batch);
        for (unsigned i = 0; i < count; i++) {
            fill_frame(buffers[i], (uint32_t)(sent + lost + i));
            iov[i] = (struct iovec){buffers[i], FRAME_LEN};
            msgs[i].msg_hdr = (struct msghdr){.msg_iov = &iov[i], .msg_iovlen = 1};
        }
        unsigned done = 0;
        while (done < count) {
            int n = sendmmsg(fd, msgs + done, count - done, 0);
            ++*calls;
            if (n < 0) {
                if (errno != ENOBUFS && errno != EAGAIN)
                    die("sendmmsg");
                lost++; /* the veth dropped it (its peer's backlog was full) */
                done++;
                continue;
            }
            done += (unsigned)n;
        }
        sent += count;
        *waits += keep_window(sh, sent);
    }
    return lost;
}

static unsigned char *tx_ring(int fd)
{
    int version = TPACKET_V2;
    if (setsockopt(fd, SOL_PACKET, PACKET_VERSION, &version, sizeof version) != 0)
        die("PACKET_VERSION");
    struct tpacket_req req = {.tp_block_size = TX_SLOT * 32, .tp_block_nr = TX_SLOTS / 32,
                              .tp_frame_size = TX_SLOT, .tp_frame_nr = TX_SLOTS};
    if (setsockopt(fd, SOL_PACKET, PACKET_TX_RING, &req, sizeof req) != 0)
        die("PACKET_TX_RING");
    unsigned char *ring = mmap(NULL, (size_t)TX_SLOT * TX_SLOTS, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE,
                               fd, 0);
    if (ring == MAP_FAILED)
        die("mmap TX ring");
    return ring;
}

static uint64_t send_ring(int fd, unsigned char *ring, struct shared *sh, uint64_t frames, unsigned batch,
                          uint64_t *calls, uint64_t *waits)
{
    static unsigned char frame[FRAME_LEN];
    unsigned slot = 0, pending = 0;
    uint64_t lost = 0;
    for (uint64_t seq = 0; seq < frames; seq++) {
        struct tpacket2_hdr *hdr = (struct tpacket2_hdr *)(ring + (size_t)slot * TX_SLOT);
        while (__atomic_load_n(&hdr->tp_status, __ATOMIC_ACQUIRE) != TP_STATUS_AVAILABLE) {
            if (hdr->tp_status & TP_STATUS_WRONG_FORMAT) {
                errno = EINVAL;
                die("TX ring frame refused");
            }
            if (send(fd, NULL, 0, 0) < 0 && errno != ENOBUFS)
                die("send (TX ring)"); /* still queued: let the kernel finish them */
            ++*calls;
        }
        /* the frame is built in the slot: the copy a datapath makes there instead of the kernel's */
        fill_frame(frame, (uint32_t)seq);
        memcpy((unsigned char *)hdr + TX_DATA, frame, FRAME_LEN);
        hdr->tp_len = FRAME_LEN;
        __atomic_store_n(&hdr->tp_status, TP_STATUS_SEND_REQUEST, __ATOMIC_RELEASE);
        slot = (slot + 1) % TX_SLOTS;
        if (++pending == batch || seq + 1 == frames) {
            if (send(fd, NULL, 0, 0) < 0) {
                if (errno != ENOBUFS)
                    die("send (TX ring)");
                lost++; /* at least one frame of the batch dropped by the veth */
            }
            ++*calls;
            pending = 0;
            *waits += keep_window(sh, seq + 1);
        }
    }
    return lost;
}

static uint64_t send_xsk(struct xsk *x, struct shared *sh, uint64_t frames, unsigned batch, uint64_t *calls,
                         uint64_t *waits)
{
    struct xdp_desc *descs = x->tx.desc;
    uint64_t lost = 0, completed = 0;
    for (uint64_t seq = 0; seq < frames;) {
        unsigned count = (unsigned)(frames - seq < batch ? frames - seq : batch);
        uint32_t prod = *x->tx.producer;
        /* room in the TX ring, and chunks the kernel has finished with (its completion ring) */
        for (;;) {
            uint32_t cprod = __atomic_load_n(x->comp.producer, __ATOMIC_ACQUIRE), ccons = *x->comp.consumer;
            completed += cprod - ccons;
            __atomic_store_n(x->comp.consumer, cprod, __ATOMIC_RELEASE);
            uint32_t in_ring = prod - __atomic_load_n(x->tx.consumer, __ATOMIC_ACQUIRE);
            if (in_ring + count <= XSK_RING && seq - completed + count <= XSK_FRAMES)
                break;
            if (sendto(x->fd, NULL, 0, MSG_DONTWAIT, NULL, 0) < 0 && errno == EBUSY)
                lost++;
            ++*calls;
        }
        for (unsigned i = 0; i < count; i++) {
            uint64_t addr = ((seq + i) % XSK_FRAMES) * XSK_FRAME;
            fill_frame(x->umem + addr, (uint32_t)(seq + i));
            descs[(prod + i) & (XSK_RING - 1)] = (struct xdp_desc){.addr = addr, .len = FRAME_LEN};
        }
        __atomic_store_n(x->tx.producer, prod + count, __ATOMIC_RELEASE);
        /* copy mode sends at most 32 frames a call: call until the ring is empty */
        while (__atomic_load_n(x->tx.consumer, __ATOMIC_ACQUIRE) != prod + count) {
            if (sendto(x->fd, NULL, 0, MSG_DONTWAIT, NULL, 0) < 0) {
                if (errno == EBUSY)
                    lost++; /* the frame was dropped by the device */
                else if (errno != EAGAIN && errno != ENOBUFS)
                    die("sendto (AF_XDP)");
            }
            ++*calls;
        }
        seq += count;
        *waits += keep_window(sh, seq);
    }
    return lost;
}

static int run_link(char **argv)
{
    const char *method = argv[0];
    const char *tx_ns = argv[1], *tx_if = argv[2], *rx_ns = argv[3], *rx_if = argv[4];
    uint64_t frames = strtoull(argv[5], NULL, 10);
    unsigned batch = (unsigned)strtoul(argv[6], NULL, 10);
    char base[32];
    snprintf(base, sizeof base, "%s", method);
    size_t length = strlen(base);
    int one_process = length > 3 && strcmp(base + length - 3, "-1p") == 0;
    if (one_process)
        base[length - 3] = 0;
    int ring = strncmp(base, "ring", 4) == 0, xdp = strcmp(base, "xdp") == 0;
    int bypass = strcmp(base, "mmsg-bypass") == 0 || (ring && strcmp(base, "ring-nobypass") != 0);
    if (xdp)
        window = XSK_WINDOW;
    if (strcmp(base, "ring-full") == 0)
        batch = TX_SLOTS;
    if (strcmp(base, "mmsg") != 0 && strcmp(base, "mmsg-bypass") != 0 && strcmp(base, "ring") != 0 &&
        strcmp(base, "ring-nobypass") != 0 && strcmp(base, "ring-full") != 0 && !xdp) {
        fprintf(stderr, "link_floor: unknown link method %s\n", method);
        return 2;
    }
    if (frames == 0 || batch == 0 || (ring && batch > TX_SLOTS)) {
        fprintf(stderr, "link_floor: frames and batch must be positive (batch at most %d with a ring)\n", TX_SLOTS);
        return 2;
    }
    struct shared *sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (sh == MAP_FAILED)
        die("mmap shared");
    pid_t child = 0;
    static struct xsk rx_xsk, tx_xsk;
    if (one_process) {
        enter_netns(rx_ns);
        if (xdp) {
            xsk_open(&rx_xsk, rx_if, 1);
            xdp_mode = xdp_attach(&rx_xsk, rx_if);
            inline_rx.xsk = &rx_xsk;
            inline_rx.fd = rx_xsk.fd;
        } else {
            inline_rx.fd = packet_socket(rx_if);
            int size = RCVBUF;
            if (setsockopt(inline_rx.fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof size) != 0)
                die("SO_RCVBUFFORCE");
            inline_rx.ring = ring ? rx_ring(inline_rx.fd) : NULL;
        }
        sh->ready = 1;
    } else {
        child = fork_tied();
        if (child == 0)
            receiver(rx_ns, rx_if, method, sh, frames);
    }
    enter_netns(tx_ns);
    int fd = -1;
    if (xdp)
        xsk_open(&tx_xsk, tx_if, 0);
    else
        fd = packet_socket(tx_if);
    if (bypass) {
        int one = 1;
        if (setsockopt(fd, SOL_PACKET, PACKET_QDISC_BYPASS, &one, sizeof one) != 0)
            die("PACKET_QDISC_BYPASS");
    }
    unsigned char *txr = ring ? tx_ring(fd) : NULL;
    while (!sh->ready) {
        int status;
        if (waitpid(child, &status, WNOHANG) == child) {
            fprintf(stderr, "link_floor: the receiver failed\n");
            return 2;
        }
        usleep(1000);
    }
    uint64_t calls = 0, waits = 0, lost;
    struct rusage before, after;
    getrusage(RUSAGE_SELF, &before);
    double start = now();
    if (xdp)
        lost = send_xsk(&tx_xsk, sh, frames, batch, &calls, &waits);
    else if (ring)
        lost = send_ring(fd, txr, sh, frames, batch, &calls, &waits);
    else
        lost = send_mmsg(fd, sh, frames, batch, &calls, &waits);
    double sent_at = now();
    if (one_process) { /* what is still on its way, until 0.3 s pass with nothing */
        struct pollfd pfd = {.fd = inline_rx.fd, .events = POLLIN | POLLERR};
        double idle_since = now();
        while (sh->received < frames && now() - idle_since < 0.3) {
            uint64_t before_drain = sh->received;
            drain(sh);
            if (sh->received != before_drain)
                idle_since = now();
            else
                poll(&pfd, 1, 10);
        }
        if (xdp) {
            sh->drops = xsk_drops(&rx_xsk);
            xdp_detach();
        } else {
            struct tpacket_stats_v3 stats;
            socklen_t len = sizeof stats;
            if (getsockopt(inline_rx.fd, SOL_PACKET, PACKET_STATISTICS, &stats, &len) == 0)
                sh->drops = stats.tp_drops;
        }
    }
    getrusage(RUSAGE_SELF, &after);
    sh->tx_done = 1;
    int status;
    if (!one_process && (waitpid(child, &status, 0) != child || !WIFEXITED(status) || WEXITSTATUS(status) != 0)) {
        fprintf(stderr, "link_floor: the receiver failed\n");
        return 2;
    }
    double wall = (sh->received ? sh->last : sent_at) - start;
    printf("{\"method\": \"%s\", \"batch\": %u, \"qdisc_bypass\": %s, \"frames\": %llu, \"received\": %llu, "
           "\"out_of_order\": %llu, \"tx_dropped\": %llu, \"rx_dropped\": %llu, \"wall_s\": %.6f, "
           "\"tx_wall_s\": %.6f, \"tx_user_s\": %.4f, \"tx_sys_s\": %.4f, \"rx_user_s\": %.4f, \"rx_sys_s\": %.4f, "
           "\"tx_calls\": %llu, \"tx_window_waits\": %llu, \"rx_calls\": %llu, \"xdp\": \"%s\"}\n",
           method, batch, bypass ? "true" : "false", (unsigned long long)frames, (unsigned long long)sh->received,
           (unsigned long long)sh->out_of_order, (unsigned long long)lost, (unsigned long long)sh->drops, wall,
           sent_at - start, cpu_of(&after, 0) - cpu_of(&before, 0), cpu_of(&after, 1) - cpu_of(&before, 1), sh->user,
           sh->sys, (unsigned long long)calls, (unsigned long long)waits, (unsigned long long)sh->polls,
           xdp && one_process ? xdp_mode : xdp ? "attached in the receiver" : "none");
    return 0;
}

/* ------------------------------------------------------------------ tap */

#define TAP_NAME "sgfloortap"
#define PEER_MAC "\x02\x5e\x00\x00\x0b\x02"
#define LOCAL_IP "10.201.0.1"
#define PEER_IP "10.201.0.2"
#define PEER_PORT 5001
#define MSS 1460
#define VNET 10
#define ACK_EVERY 65536

static uint32_t fold(uint64_t sum)
{
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    return (uint32_t)sum;
}

static uint64_t sum16(const unsigned char *p, size_t length, uint64_t sum)
{
    for (; length >= 2; p += 2, length -= 2)
        sum += (uint32_t)(p[0] << 8 | p[1]);
    if (length)
        sum += (uint32_t)p[0] << 8;
    return sum;
}

/* the sum software segmentation computes over every payload byte: 32-bit words, four lanes */
static uint64_t sum_payload(const unsigned char *p, size_t length)
{
    uint64_t a = 0, b = 0, c = 0, d = 0;
    size_t i = 0;
    for (; i + 16 <= length; i += 16) {
        uint32_t w[4];
        memcpy(w, p + i, 16);
        a += w[0];
        b += w[1];
        c += w[2];
        d += w[3];
    }
    for (; i < length; i++)
        a += p[i];
    return a + b + c + d;
}

struct tcp_peer {
    int fd;
    unsigned char tap_mac[6];
    uint32_t local, peer;          /* network order */
    uint16_t local_port, peer_port; /* network order */
    uint16_t ip_id;
    uint32_t iss, rcv_nxt, acked;
    int fin;
    uint64_t writes;
};

#define TCP_FIN 0x01
#define TCP_SYN 0x02
#define TCP_PSH 0x08
#define TCP_ACK 0x10

/* one frame from the peer to the TAP's host: virtio_net_hdr, Ethernet, IPv4, TCP (a SYN carries MSS
 * 1460 and window scale 7), window 65535 (<< 7). Payload leaves with NEEDS_CSUM (the pseudo-header
 * sum in the checksum field, as the kernel's CHECKSUM_PARTIAL) and, longer than the MSS, as a TCPV4
 * GSO packet of MSS-sized segments: a GRO packet as the datapath's far edge writes it. */
static void peer_send(struct tcp_peer *c, unsigned flags, uint32_t seq, uint32_t ack, const unsigned char *payload,
                      size_t length)
{
    unsigned char head[VNET + 14 + 20 + 28] = {0};
    unsigned char *eth = head + VNET, *ip = eth + 14, *tcp = ip + 20;
    size_t tcp_len = flags & TCP_SYN ? 28 : 20;
    memcpy(eth, c->tap_mac, 6);
    memcpy(eth + 6, PEER_MAC, 6);
    eth[12] = 0x08;
    ip[0] = 0x45;
    uint16_t total = htons((uint16_t)(20 + tcp_len + length)), id = htons(c->ip_id++);
    memcpy(ip + 2, &total, 2);
    memcpy(ip + 4, &id, 2);
    ip[6] = 0x40; /* DF */
    ip[8] = 64;
    ip[9] = IPPROTO_TCP;
    memcpy(ip + 12, &c->peer, 4);
    memcpy(ip + 16, &c->local, 4);
    uint16_t csum = htons((uint16_t)~fold(sum16(ip, 20, 0)));
    memcpy(ip + 10, &csum, 2);
    memcpy(tcp, &c->peer_port, 2);
    memcpy(tcp + 2, &c->local_port, 2);
    uint32_t seq_be = htonl(seq), ack_be = htonl(ack);
    memcpy(tcp + 4, &seq_be, 4);
    memcpy(tcp + 8, &ack_be, 4);
    tcp[12] = (unsigned char)((tcp_len / 4) << 4);
    tcp[13] = (unsigned char)flags;
    tcp[14] = 0xff;
    tcp[15] = 0xff;
    if (flags & TCP_SYN) {
        static const unsigned char options[8] = {2, 4, MSS >> 8, MSS & 0xff, 1, 3, 3, 7};
        memcpy(tcp + 20, options, sizeof options);
    }
    uint64_t pseudo = sum16(ip + 12, 8, 0) + IPPROTO_TCP + tcp_len + length;
    if (length) {
        uint16_t partial = htons((uint16_t)fold(pseudo));
        memcpy(tcp + 16, &partial, 2);
        uint16_t vnet[5] = {0, (uint16_t)(20 + tcp_len + 14), length > MSS ? MSS : 0, 14 + 20, 16};
        memcpy(head + 2, &vnet[1], 8);
        head[0] = VIRTIO_NET_HDR_F_NEEDS_CSUM;
        head[1] = length > MSS ? VIRTIO_NET_HDR_GSO_TCPV4 : VIRTIO_NET_HDR_GSO_NONE;
    } else {
        csum = htons((uint16_t)~fold(sum16(tcp, tcp_len, pseudo)));
        memcpy(tcp + 16, &csum, 2);
    }
    struct iovec iov[2] = {{head, VNET + 14 + 20 + tcp_len}, {(void *)payload, length}};
    if (writev(c->fd, iov, length ? 2 : 1) < 0)
        die("write to the TAP");
    c->writes++;
}

/* the receiving peer's ACK (with SYN for the handshake) */
static void tcp_reply(struct tcp_peer *c, int syn)
{
    peer_send(c, syn ? TCP_SYN | TCP_ACK : TCP_ACK, syn ? c->iss : c->iss + 1, c->rcv_nxt, NULL, 0);
    c->acked = c->rcv_nxt;
}

static void tap_setup(struct tcp_peer *c, int offloads)
{
    c->fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
    if (c->fd < 0)
        die("/dev/net/tun");
    struct ifreq ifr = {.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR};
    strcpy(ifr.ifr_name, TAP_NAME);
    if (ioctl(c->fd, TUNSETIFF, &ifr) != 0)
        die("TUNSETIFF");
    int vnet = VNET;
    if (ioctl(c->fd, TUNSETVNETHDRSZ, &vnet) != 0)
        die("TUNSETVNETHDRSZ");
    if (ioctl(c->fd, TUNSETOFFLOAD, (unsigned long)offloads) != 0)
        die("TUNSETOFFLOAD");
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    struct ifreq req = {0};
    strcpy(req.ifr_name, TAP_NAME);
    if (ioctl(s, SIOCGIFHWADDR, &req) != 0)
        die("SIOCGIFHWADDR");
    memcpy(c->tap_mac, req.ifr_hwaddr.sa_data, 6);
    req.ifr_mtu = 1500;
    if (ioctl(s, SIOCSIFMTU, &req) != 0)
        die("SIOCSIFMTU");
    struct sockaddr_in *in = (struct sockaddr_in *)&req.ifr_addr;
    in->sin_family = AF_INET;
    inet_pton(AF_INET, LOCAL_IP, &in->sin_addr);
    c->local = in->sin_addr.s_addr;
    if (ioctl(s, SIOCSIFADDR, &req) != 0)
        die("SIOCSIFADDR");
    inet_pton(AF_INET, "255.255.255.0", &in->sin_addr);
    if (ioctl(s, SIOCSIFNETMASK, &req) != 0)
        die("SIOCSIFNETMASK");
    if (ioctl(s, SIOCGIFFLAGS, &req) != 0)
        die("SIOCGIFFLAGS");
    req.ifr_flags |= IFF_UP;
    if (ioctl(s, SIOCSIFFLAGS, &req) != 0)
        die("SIOCSIFFLAGS");
    struct arpreq arp = {.arp_flags = ATF_PERM | ATF_COM};
    struct sockaddr_in *pa = (struct sockaddr_in *)&arp.arp_pa;
    pa->sin_family = AF_INET;
    inet_pton(AF_INET, PEER_IP, &pa->sin_addr);
    c->peer = pa->sin_addr.s_addr;
    arp.arp_ha.sa_family = ARPHRD_ETHER;
    memcpy(arp.arp_ha.sa_data, PEER_MAC, 6);
    strcpy(arp.arp_dev, TAP_NAME);
    if (ioctl(s, SIOCSARP, &arp) != 0)
        die("SIOCSARP");
    close(s);
}

static void tcp_sender(uint64_t bytes)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(PEER_PORT)};
    inet_pton(AF_INET, PEER_IP, &to.sin_addr);
    if (connect(s, (struct sockaddr *)&to, sizeof to) != 0)
        die("connect");
    static unsigned char chunk[1 << 18];
    for (size_t i = 0; i < sizeof chunk; i++)
        chunk[i] = (unsigned char)(i * 131 + 7);
    while (bytes) {
        size_t n = bytes < sizeof chunk ? (size_t)bytes : sizeof chunk;
        ssize_t w = send(s, chunk, n, 0);
        if (w < 0)
            die("send");
        bytes -= (uint64_t)w;
    }
    close(s);
    _exit(0);
}

static int run_tap(char **argv)
{
    const char *mode = argv[0];
    uint64_t bytes = strtoull(argv[2], NULL, 10);
    int sw = strncmp(mode, "sw-gso", 6) == 0, sum = strcmp(mode, "sw-gso-sum") == 0;
    if (!sw && strcmp(mode, "no-gso") != 0) {
        fprintf(stderr, "link_floor: unknown tap mode %s\n", mode);
        return 2;
    }
    enter_netns(argv[1]);
    struct tcp_peer c = {.iss = 1000, .peer_port = htons(PEER_PORT)};
    tap_setup(&c, sw ? TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN : 0);
    pid_t child = fork_tied();
    if (child == 0) {
        close(c.fd);
        tcp_sender(bytes);
    }
    if (fcntl(c.fd, F_SETFL, O_NONBLOCK) != 0)
        die("O_NONBLOCK");
    static unsigned char buf[VNET + 65536 + 1024];
    uint64_t got = 0, reads = 0, frames = 0, super = 0, checksum = 0, ooo = 0;
    struct rusage before, after;
    double start = 0;
    struct pollfd pfd = {.fd = c.fd, .events = POLLIN};
    int connected = 0;
    while (!c.fin) {
        ssize_t n = read(c.fd, buf, sizeof buf);
        if (n < 0) {
            if (errno != EAGAIN)
                die("read TAP");
            if (c.rcv_nxt != c.acked && connected)
                tcp_reply(&c, 0);
            if (poll(&pfd, 1, 5000) == 0) {
                fprintf(stderr, "link_floor: the TCP stream stalled\n");
                return 2;
            }
            continue;
        }
        reads++;
        unsigned char *eth = buf + VNET, *ip = eth + 14;
        if (n < VNET + 14 + 40 || eth[12] != 0x08 || eth[13] != 0x00 || (ip[0] >> 4) != 4 || ip[9] != IPPROTO_TCP ||
            memcmp(ip + 16, &c.peer, 4) != 0)
            continue;
        unsigned char *tcp = ip + (ip[0] & 15) * 4;
        size_t ip_len = (size_t)(ip[2] << 8 | ip[3]);
        size_t hdr = (size_t)(tcp - ip) + (size_t)(tcp[12] >> 4) * 4;
        uint32_t seq = (uint32_t)tcp[4] << 24 | (uint32_t)tcp[5] << 16 | (uint32_t)tcp[6] << 8 | tcp[7];
        if (tcp[13] & 0x02) { /* SYN */
            memcpy(&c.local_port, tcp, 2);
            c.rcv_nxt = seq + 1;
            tcp_reply(&c, 1);
            continue;
        }
        if (!connected) { /* the handshake's last ACK: the transfer starts here */
            connected = 1;
            getrusage(RUSAGE_SELF, &before);
            start = now();
        }
        size_t payload = ip_len > hdr ? ip_len - hdr : 0;
        if (payload && seq != c.rcv_nxt) { /* lost before us (the TAP's queue was full): ask again */
            ooo++;
            tcp_reply(&c, 0);
            continue;
        }
        if (payload) {
            c.rcv_nxt += (uint32_t)payload;
            got += payload;
            if (sum) /* each MSS piece summed as its segment's checksum needs it */
                for (size_t at = 0; at < payload; at += MSS)
                    checksum += sum_payload(ip + hdr + at, payload - at < MSS ? payload - at : MSS);
            frames++;
            if (payload > MSS)
                super++;
        }
        if ((tcp[13] & 0x01) && seq + payload == c.rcv_nxt) { /* FIN */
            c.rcv_nxt++;
            c.fin = 1;
        }
        if (c.fin || c.rcv_nxt - c.acked >= ACK_EVERY)
            tcp_reply(&c, 0);
    }
    double wall = now() - start;
    getrusage(RUSAGE_SELF, &after);
    struct rusage sender;
    int status;
    if (wait4(child, &status, 0, &sender) != child || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "link_floor: the sender failed\n");
        return 2;
    }
    printf("{\"mode\": \"%s\", \"bytes\": %llu, \"received\": %llu, \"reads\": %llu, \"packets\": %llu, "
           "\"super_packets\": %llu, \"out_of_order\": %llu, \"acks\": %llu, \"wall_s\": %.6f, \"reader_user_s\": %.4f, \"reader_sys_s\": %.4f, "
           "\"sender_user_s\": %.4f, \"sender_sys_s\": %.4f, \"checksum_folded\": %u}\n",
           mode, (unsigned long long)bytes, (unsigned long long)got, (unsigned long long)reads,
           (unsigned long long)frames, (unsigned long long)super, (unsigned long long)ooo, (unsigned long long)c.writes, wall,
           cpu_of(&after, 0) - cpu_of(&before, 0), cpu_of(&after, 1) - cpu_of(&before, 1), cpu_of(&sender, 0),
           cpu_of(&sender, 1), fold(checksum));
    return got == bytes ? 0 : 3;
}

/* the far edge: TCP data written into a TAP as GRO packets (64,240 bytes, 44 segments of 1460, with
 * NEEDS_CSUM), to a plain socket that reads it in the namespace; this program is the sending peer
 * (the handshake, the receiver's window respected, its ACKs read off the TAP). What both modes pay
 * after the link, whatever the sending side did. */
#define GRO_PAYLOAD (44 * MSS)

static void tcp_listener(int ready)
{
    int s = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in at = {.sin_family = AF_INET, .sin_port = htons(PEER_PORT)};
    inet_pton(AF_INET, LOCAL_IP, &at.sin_addr);
    if (bind(s, (struct sockaddr *)&at, sizeof at) != 0 || listen(s, 1) != 0)
        die("listen");
    if (write(ready, "r", 1) != 1)
        die("write (ready)");
    int conn = accept(s, NULL, NULL);
    if (conn < 0)
        die("accept");
    static unsigned char buf[1 << 18];
    ssize_t n;
    while ((n = recv(conn, buf, sizeof buf, 0)) > 0)
        ;
    if (n < 0)
        die("recv");
    _exit(0);
}

/* read what the TAP's host sent the peer: its ACKs (and the SYN-ACK); the window it opens */
static int read_acks(struct tcp_peer *c, uint32_t *una, uint64_t *window, int *wscale, uint32_t *irs)
{
    static unsigned char buf[VNET + 65536 + 1024];
    int got = 0;
    for (;;) {
        ssize_t n = read(c->fd, buf, sizeof buf);
        if (n < 0) {
            if (errno == EAGAIN)
                return got;
            die("read TAP");
        }
        unsigned char *ip = buf + VNET + 14, *tcp = ip + 20;
        if (n < VNET + 14 + 40 || buf[VNET + 12] != 0x08 || ip[9] != IPPROTO_TCP || memcmp(ip + 16, &c->peer, 4) != 0)
            continue;
        uint32_t ack = (uint32_t)tcp[8] << 24 | (uint32_t)tcp[9] << 16 | (uint32_t)tcp[10] << 8 | tcp[11];
        unsigned win = (unsigned)(tcp[14] << 8 | tcp[15]);
        if ((tcp[13] & (TCP_SYN | TCP_ACK)) == (TCP_SYN | TCP_ACK)) {
            *irs = (uint32_t)tcp[4] << 24 | (uint32_t)tcp[5] << 16 | (uint32_t)tcp[6] << 8 | tcp[7];
            for (unsigned char *o = tcp + 20; o < tcp + (tcp[12] >> 4) * 4;) {
                if (*o == 0)
                    break;
                if (*o == 1) {
                    o++;
                    continue;
                }
                if (*o == 3)
                    *wscale = o[2];
                o += o[1] ? o[1] : 1;
            }
            *window = win;
        } else if (tcp[13] & TCP_ACK) {
            if ((int32_t)(ack - *una) > 0)
                *una = ack;
            *window = (uint64_t)win << *wscale;
        }
        got++;
    }
}

static int run_tap_rx(char **argv)
{
    uint64_t bytes = strtoull(argv[1], NULL, 10);
    enter_netns(argv[0]);
    /* a port of its own per run: an earlier run's connection may linger in the namespace */
    struct tcp_peer c = {.iss = 1000, .peer_port = htons((uint16_t)(20000 + getpid() % 30000)),
                         .local_port = htons(PEER_PORT)};
    tap_setup(&c, TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN);
    int ready[2];
    if (pipe(ready) != 0)
        die("pipe");
    pid_t child = fork_tied();
    if (child == 0) {
        close(c.fd);
        tcp_listener(ready[1]);
    }
    char r;
    if (read(ready[0], &r, 1) != 1) {
        fprintf(stderr, "link_floor: the listener failed\n");
        return 2;
    }
    if (fcntl(c.fd, F_SETFL, O_NONBLOCK) != 0)
        die("O_NONBLOCK");
    struct pollfd pfd = {.fd = c.fd, .events = POLLIN};
    uint32_t una = c.iss, irs = 0;
    uint64_t window = 0;
    int wscale = 0;
    peer_send(&c, TCP_SYN, c.iss, 0, NULL, 0);
    while (window == 0) { /* the SYN-ACK */
        if (poll(&pfd, 1, 5000) == 0) {
            fprintf(stderr, "link_floor: no SYN-ACK\n");
            return 2;
        }
        read_acks(&c, &una, &window, &wscale, &irs);
    }
    uint32_t nxt = c.iss + 1, end = nxt + (uint32_t)bytes;
    una = nxt;
    peer_send(&c, TCP_ACK, nxt, irs + 1, NULL, 0);
    static unsigned char payload[GRO_PAYLOAD];
    for (size_t i = 0; i < sizeof payload; i++)
        payload[i] = (unsigned char)(i * 131 + 7);
    struct rusage before, after;
    getrusage(RUSAGE_SELF, &before);
    double start = now();
    uint64_t packets = 0, waits = 0;
    while (una != end) {
        size_t length = end - nxt < GRO_PAYLOAD ? end - nxt : GRO_PAYLOAD;
        if (length && (uint64_t)(nxt - una) + length <= window) {
            peer_send(&c, TCP_ACK | TCP_PSH, nxt, irs + 1, payload, length);
            nxt += (uint32_t)length;
            packets++;
            read_acks(&c, &una, &window, &wscale, &irs);
            continue;
        }
        waits++;
        if (!read_acks(&c, &una, &window, &wscale, &irs) && poll(&pfd, 1, 5000) == 0) {
            fprintf(stderr, "link_floor: the TCP stream stalled\n");
            return 2;
        }
    }
    double wall = now() - start;
    getrusage(RUSAGE_SELF, &after);
    uint32_t received = una - c.iss - 1;
    /* the FIN, again every 20 ms until the listener has read it all and gone (a FIN that finds the
     * window closed is dropped), for up to 30 s of clock: each FIN's answer wakes the poll at once,
     * so a count of tries would give a listener that a loaded machine has not run yet a few ms */
    struct rusage receiver;
    int status;
    pid_t gone = 0;
    double deadline = now() + 30.0;
    while (gone == 0 && now() < deadline) {
        peer_send(&c, TCP_FIN | TCP_ACK, end, irs + 1, NULL, 0);
        struct timespec pause = {.tv_sec = 0, .tv_nsec = 20 * 1000 * 1000};
        nanosleep(&pause, NULL);
        read_acks(&c, &una, &window, &wscale, &irs);
        gone = wait4(child, &status, WNOHANG, &receiver);
    }
    if (gone != child || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        if (gone == 0)
            kill(child, SIGKILL);
        fprintf(stderr, "link_floor: the listener did not finish\n");
        return 2;
    }
    printf("{\"mode\": \"far-edge\", \"bytes\": %llu, \"received\": %llu, \"writes\": %llu, \"packets\": %llu, "
           "\"window_waits\": %llu, \"wall_s\": %.6f, \"writer_user_s\": %.4f, \"writer_sys_s\": %.4f, "
           "\"receiver_user_s\": %.4f, \"receiver_sys_s\": %.4f}\n",
           (unsigned long long)bytes, (unsigned long long)received, (unsigned long long)c.writes,
           (unsigned long long)packets, (unsigned long long)waits, wall, cpu_of(&after, 0) - cpu_of(&before, 0),
           cpu_of(&after, 1) - cpu_of(&before, 1), cpu_of(&receiver, 0), cpu_of(&receiver, 1));
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 9 && strcmp(argv[1], "link") == 0)
        return run_link(argv + 2);
    if (argc == 5 && strcmp(argv[1], "tap") == 0)
        return run_tap(argv + 2);
    if (argc == 4 && strcmp(argv[1], "far-edge") == 0)
        return run_tap_rx(argv + 2);
    fprintf(stderr,
            "usage: link_floor link mmsg|mmsg-bypass|ring|ring-nobypass|ring-full|xdp[-1p] TX_NETNS TX_IF RX_NETNS "
            "RX_IF FRAMES BATCH\n"
            "       link_floor tap no-gso|sw-gso|sw-gso-sum NETNS BYTES\n"
            "       link_floor far-edge NETNS BYTES\n");
    return 2;
}
