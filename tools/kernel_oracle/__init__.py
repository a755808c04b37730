"""kernel_oracle: what does a real Linux kernel transmit for a GSO super-packet?

Boots a stock Debian kernel in QEMU once per batch, injects super-packets with their virtio_net_hdr
on a veth pair (tc act_mpls / act_vlan on the way out), captures what the peer receives, and writes
one golden-format case folder per packet. The differential test compares those with softgso.

Host modules: install (apt), initramfs, vm (QEMU), cases (spec -> frame), generate (random specs),
compare (softgso vs kernel, minimisation), cli. Guest modules (standard library only): guest, wire.
This file stays import-free: the guest imports the package too.
"""
