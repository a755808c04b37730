"""Regenerate docs/cli-examples.md: run every example command and paste its real output.

Run from anywhere with the project's venv: ``.venv/bin/python tools/make_cli_examples.py``
(needs jq, mkfifo and dd; writes scratch files under out/).
"""

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
os.chdir(ROOT)
os.makedirs("out", exist_ok=True)
env = dict(os.environ, PATH=f"{ROOT}/.venv/bin:" + os.environ["PATH"])
env.pop("COLUMNS", None)


def run(*cmds: str, max_lines: int | None = None) -> str:
    """One console block: each command (run by /bin/sh) and its output; the last one's exit status below it.

    Every command but the last is a step the example builds on: it must succeed.
    """
    shown = []
    returncode = 0
    for number, cmd in enumerate(cmds, 1):
        done = subprocess.run(cmd, shell=True, capture_output=True, text=True, env=env)
        if done.returncode and number < len(cmds):
            raise SystemExit(f"{cmd}: exit status {done.returncode}\n{done.stdout}{done.stderr}")
        returncode = done.returncode
        lines = (done.stdout + done.stderr).rstrip("\n").splitlines()
        if max_lines and len(lines) > max_lines:
            lines = lines[:max_lines] + ["..."]
        shown += [f"$ {cmd}"] + [line.rstrip() for line in lines]
    body = "\n".join(shown)
    return f"```console\n{body}\n```\nexit status {returncode}\n" if returncode else f"```console\n{body}\n```\n"


S = "samples/mpls_tcp_super.pcap"
parts: list[str] = []
add = parts.append
add("""# softgso command line: worked examples

Every block below is real output, produced by running the command in the repository root on the
bundled sample `samples/mpls_tcp_super.pcap` (made by `tools/make_sample.py`: 9 packets captured on
a sending host: MPLS-labelled TCP super-packets of 20-34 KB whose checksum fields hold the
CHECKSUM_PARTIAL seed, an IPv6 one under a label, pure ACKs, an ARP request, a DNS query) or on
files made from it. Output is shown as printed when stdout is not a terminal (80 columns, no
progress bar); `--json` gives the same facts for scripts.

Exit status, for every command: 0 success; 1 differences found (`diff`, `verify`) or records reported
(refused or not segmented) under `--strict`; 2 usage error; 3 input or output file error; 130
interrupted (Ctrl-C); 141 the reader of standard output went away; 143 terminated (SIGTERM).
""")
add("## `softgso inspect`: what is in a capture, and what `segment` would make of it\n")
add(run(f"softgso inspect {S}"))
add("""Four super-packets longer than the MTU, four label stacks, four TCP/UDP checksum fields that
hold a CHECKSUM_PARTIAL seed (captured on the sending host, before the NIC would fill them in):
`segment` would turn the 9 packets into 84.

The same question for another device and with a label pushed first, as JSON (abridged with `jq`):
""")
add(run(f"softgso inspect {S} --device nic-tso-no-mpls-gso --action push-mpls:1000:0:64:uc --json | jq '{{records, super_packets_over_mtu, label_stacks, l4_checksums, segment}}'"))
add("`--plot` draws the frame-size distribution before and after segmentation:\n")
add(run(f"softgso inspect {S} --plot docs/img/inspect-sizes.png -q > /dev/null && file docs/img/inspect-sizes.png"))
add("![frame sizes before and after segmentation](img/inspect-sizes.png)\n")
add("## `softgso segment`: cut super-packets as Linux software GSO would\n")
add("A NIC with TSO but no MPLS GSO (every NIC today) segments MPLS in software:\n")
add(run(f"softgso segment {S} out/wire.pcap --device nic-tso-no-mpls-gso"))
add("The result, checked: nothing over the MTU, every checksum complete:\n")
add(run("softgso inspect out/wire.pcap --top 3"))
add("Push a label as an LER would (an Open vSwitch `push_mpls`), then segment, with a summary for scripts:\n")
add(run(f"softgso segment {S} out/ler.pcap --action push-mpls:1000:0:64:uc --mtu 1400 --json | jq 'del(.reports, .report_kinds)'"))
add("Replay a kernel vector through the CLI (its virtio_net_hdr and tc action) and compare with what the kernel sent:\n")
C = "tests/vectors/kernel/cases/ipv4_tcp_2labels"
add(run(f"softgso segment {C}/input.pcap out/2labels.pcap --vnet-hdr 01013600a80522001000 --action push-mpls:100:0:64:uc --action push-mpls:200:5:33:uc -q && softgso diff out/2labels.pcap {C}/kernel_out.pcap"))
add("A packet whose headers contradict the GSO metadata (the kernel vector `neg_ipv4_gso_tcpv6`: a TCPV6 virtio_net_hdr on an IPv4 packet) is reported with its frame number (from 1) and reason, passed through unchanged, and counted; `--strict` turns it into exit status 1:\n")
N = "tests/vectors/kernel/cases/neg_ipv4_gso_tcpv6"
add(run(f"softgso segment {N}/input.pcap out/refused.pcap --vnet-hdr $(jq -r .virtio_net_hdr_bytes_le {N}/input_meta.json) --action push-mpls:100:0:64:uc --strict"))
add("### What is not segmented is passed through and reported, never guessed\n")
add("A UDP datagram over the MTU is cut only when metadata says its sender asked for it: a capture does not "
    "say so. Without it the datagrams pass through unchanged, reported once per kind with the count and the first "
    "frame; `--udp-gso udp_l4` says they are USO super-packets (here the bench's USO mix, generated):\n")
add(run("python -c \"from pathlib import Path; from softgso.cli.bench import write_capture; "
        "write_capture(Path('out/uso.pcap'), 100000, 'uso', payload_len=4000)\" && "
        "softgso segment out/uso.pcap out/uso-reported.pcap --json | jq '{records_in, outcomes, over_mtu_not_segmented, report_kinds}'"))
add(run("softgso segment out/uso.pcap out/uso-wire.pcap --udp-gso udp_l4 --json | jq '{records_in, records_out, outcomes}'"))
add("### A capture from `tcpdump -i any` on a sending host with BIG TCP\n")
add("Linux cooked v2 in pcapng, with comments; IPv4 tot_len 0 and IPv6 jumbograms on the super-packets, partial checksums, ARP/ICMP/UDP around them (generated by `tests/cli/cli_captures.py`):\n")
add(run("cd tests/cli && python -c \"from pathlib import Path; from cli_captures import *; write_pcapng(Path('../../out/host_any.pcapng'), [(276, 'any')], [(0, sll2(f), 'from host A') for f in mixed_capture()])\" && cd ../.. && softgso inspect out/host_any.pcapng"))
add(run("softgso segment out/host_any.pcapng out/host_wire.pcapng -q && softgso inspect out/host_wire.pcapng --top 0 | head -9"))
add("## `softgso diff`: packet by packet, field by field\n")
add("Our output with one label of TTL 63, against the kernel's two labels:\n")
add(run(f"softgso segment {C}/input.pcap out/1label.pcap --vnet-hdr 01013600a80522001000 --action push-mpls:100:0:63:uc -q && softgso diff out/1label.pcap {C}/kernel_out.pcap --max 2"))
add(run(f"softgso diff out/1label.pcap {C}/kernel_out.pcap --max 1 --json | jq '{{same, packets_a, packets_b, differing, differences: [.differences[0].fields[:3]]}}'"))
add("""Before and after: what became of each frame of the sample once segmented. The counts differ, so
frames are paired by flow and TCP sequence (`--pair-by flow`); `--map` writes every frame's fate as JSON:
""")
add(run(f"softgso segment {S} out/wire.pcap -q && softgso diff {S} out/wire.pcap --map out/map.json",
        "head -c 300 out/map.json"))
add("A byte of OUT changed on the way is caught, and the frames of A and B it touches are named:\n")
add(run("cp out/wire.pcap out/damaged.pcap; printf '\\377' | dd of=out/damaged.pcap bs=1 seek=$(($(stat -c %s out/wire.pcap) - 2000)) conv=notrunc status=none; "
        f"softgso diff {S} out/damaged.pcap"))
add("## Actions as commands of their own\n")
V = "tests/vectors/kernel/cases/ipv4_tcp_psh_ack/input.pcap"
add(run(f"softgso push-mpls {S} out/labelled.pcap --label 100 --tc 0 --ttl 64"))
add(run("softgso set-mpls out/labelled.pcap out/relabelled.pcap --label 200 --ttl 63"))
add(run("softgso dec-ttl out/relabelled.pcap out/hop.pcap"))
add(run("softgso pop-mpls out/labelled.pcap out/popped.pcap --ethertype ipv4"))
add("Several labels are one stack, written top first as tcpdump prints it (here a TTL per label); S on the bottom one:\n")
add(run(f"softgso push-mpls {V} out/stack.pcap --labels 100,200 --ttl 64,33 -q && softgso diff {V} out/stack.pcap"))
add("tc's and Open vSwitch's spellings write the same bytes as softgso's own:\n")
add(run(f"softgso segment {S} out/tc.pcap --action 'mpls push label 1000 tc 0 ttl 64' -q && softgso segment {S} out/ovs.pcap --action push-mpls:1000:0:64:0x8847 -q && cmp out/tc.pcap out/ovs.pcap && echo same bytes"))
add("Push then pop gives the original bytes back (one kernel vector's IPv4 super-packet):\n")
add(run(f"softgso push-mpls {V} out/v.pcap --label 999 -q && softgso pop-mpls out/v.pcap out/v_back.pcap --ethertype ipv4 -q && softgso diff {V} out/v_back.pcap"))
add(run(f"softgso push-vlan {S} out/tagged.pcap --vid 42 --pcp 5"))
add(run(f"softgso pop-vlan out/tagged.pcap out/untagged.pcap && softgso diff {S} out/untagged.pcap"))
add("## Tunnels: inspect, diff, push and pop\n")
T = "tests/vectors/kernel/tunnels/6.1/vxlan4_udpcsum_in4_idwrap__tx_off"
add(f"""A VXLAN super-packet a Linux 6.1 vxlan device built (`udpcsum`, VNI 42; the kernel vector `{T}`):
`inspect` names the tunnel, its VNI, the outer and the inner flow:
""")
add(run(f"softgso inspect {T}/input.pcap --top 3"))
add("`diff` pairs the kernel's segments with the super-packet by the inner flow and sequence, and checks the "
    "outer lengths and checksums of every segment:\n")
add(run(f"softgso diff {T}/input.pcap {T}/kernel_out.pcap"))
add("Tunnel test traffic from a plain capture: push VXLAN (outer addresses, VNI, outer UDP checksum), "
    "segment it as tunnel GSO, check it, and pop it off again:\n")
add(run(f"softgso push-vxlan {V} out/vxlan.pcap --src 192.0.2.10 --dst 192.0.2.20 --vni 42 --csum"))
add(run("softgso segment out/vxlan.pcap out/vxlan_wire.pcap -q && softgso diff out/vxlan.pcap out/vxlan_wire.pcap"))
add(run(f"softgso pop-vxlan out/vxlan.pcap out/vxlan_back.pcap -q && cmp {V} out/vxlan_back.pcap && echo same bytes"))
add("Field by field, tunnel fields are named as outer, tunnel and inner ones:\n")
add(run(f"softgso push-vxlan {V} out/vni43.pcap --src 192.0.2.10 --dst 192.0.2.20 --vni 43 --csum -q && "
        "softgso diff out/vxlan.pcap out/vni43.pcap"))
add("The same as one `--action` of `segment` (GRE with a key and checksum; tc's `tunnel_key` names work too):\n")
add(run(f"softgso segment {V} out/gre_wire.pcap --action push-gre:src=192.0.2.10,dst=192.0.2.20,key=7,csum=on --json | "
        "jq '{records_in, records_out, outcomes}'"))
add(run("softgso inspect out/gre_wire.pcap --top 1 | tail -3"))
add("## `softgso profiles` and `softgso verify`\n")
add(run("softgso profiles"))
add(run("softgso verify tests/vectors/kernel"))
add("## Pipes, FIFOs, standard input and output\n")
add("""`-` as IN reads standard input, `-` as OUT writes standard output, and IN may be a FIFO: such an
input is read once, front to back, by the general (scalar) reader. OUT `-` is not atomic (an error
leaves the capture cut short there); `segment` then prints its summary on standard error.
""")
add(run(f"softgso segment {S} out/segmented.pcap -q", f"cat {S} | softgso segment - - -q | softgso diff - out/segmented.pcap"))
Path("out/fifo").unlink(missing_ok=True)  # left by an earlier run; mkfifo would refuse it
add(run(f"mkfifo out/fifo; cat {S} > out/fifo & softgso push-mpls out/fifo out/fifo_labelled.pcap --label 100"))
add("## Bad input\n")
add("""A capture broken at a record is read up to that record: every record before it is processed and
written, the break is reported with its frame number, and the exit status is 3.
""")
add(run(f"head -c 30000 {S} > out/cut.pcap; softgso segment out/cut.pcap out/cut_out.pcap -q"))
add(run("softgso inspect out/cut_out.pcap --top 0 | head -3"))
add(run("softgso diff out/cut.pcap " + S))
add("""A length field no packet can have (here frame 4's captured length patched to 4 GB) is refused
before anything is read or allocated for it: no record is longer than the longest packet the
kernel builds (GSO_MAX_SIZE, plus a little link-layer framing). The records before it are kept,
as for a truncated file.
""")
# Record 3's header is at byte 20250 (24-byte file header, then records 0-2); its incl_len is 8
# bytes in, little-endian. The bytes are in octal: /bin/sh's printf (dash, POSIX) has no \x escapes.
add(run(f"cp {S} out/hostile.pcap; printf '\\374\\377\\377\\377' | dd of=out/hostile.pcap bs=1 seek=20258 conv=notrunc status=none; softgso segment out/hostile.pcap out/hostile_out.pcap -q"))
Path("docs/cli-examples.md").write_text("\n".join(parts))
