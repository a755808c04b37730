"""TAP devices with a virtio_net_hdr in front of every frame (drivers/net/tun.c, include/uapi/linux/if_tun.h).

A :class:`Tap` is opened in the namespace the process stands in (the root namespace); the link is
moved into its own namespace afterwards, and the file descriptor keeps working there. Closing the
descriptor destroys the (non-persistent) device, wherever it lives: that is the teardown.
"""

from __future__ import annotations

import errno
import fcntl
import os
import struct
import sys
from dataclasses import dataclass

from ..errors import SoftGSOError
from ..features import DeviceProfile, NetdevFeature

# ioctls (_IOW('T', n, int) / _IOR)
TUNSETIFF = 0x400454CA
TUNGETFEATURES = 0x800454CF
TUNSETOFFLOAD = 0x400454D0
TUNSETVNETHDRSZ = 0x400454D8
TUNSETVNETLE = 0x400454DC

IFF_TAP = 0x0002
IFF_NO_PI = 0x1000
IFF_VNET_HDR = 0x4000
IFF_NAPI = 0x0010

TUN_F_CSUM = 0x01
TUN_F_TSO4 = 0x02
TUN_F_TSO6 = 0x04
TUN_F_TSO_ECN = 0x08
TUN_F_UFO = 0x10
TUN_F_USO4 = 0x20
TUN_F_USO6 = 0x40

TUN_F_TSO = TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN
TUN_F_USO = TUN_F_USO4 | TUN_F_USO6

IFNAMSIZ = 16
# a 64 KB GSO frame plus its Ethernet header and the vnet header, with room to spare
READ_SIZE = 65536 + 1024


class TapError(SoftGSOError):
    """A TAP device could not be opened or configured."""


@dataclass
class Tap:
    """An open TAP device: its name, descriptor, vnet header length and the offloads it accepted."""

    name: str
    fd: int
    vnet_hdr_len: int
    offloads: int
    little_endian: bool = True

    @classmethod
    def open(cls, name: str, *, vnet_hdr_len: int = 10, offloads: int = 0, uso: bool = True,
             gro_flush_timeout_ns: int = 0) -> Tap:
        """Create the device (IFF_TAP|IFF_NO_PI|IFF_VNET_HDR) and set its vnet header and offloads.

        With ``uso`` the USO bits are tried first and dropped if the kernel refuses them (before 6.2).
        """
        if len(name.encode()) >= IFNAMSIZ:
            raise TapError(f"TAP name {name!r} is longer than {IFNAMSIZ - 1} bytes")
        if vnet_hdr_len not in (10, 12):
            raise TapError(f"vnet header length must be 10 or 12, not {vnet_hdr_len}")
        try:
            fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as exc:
            raise TapError(f"cannot open /dev/net/tun: {exc.strerror}") from exc
        try:
            flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR | (IFF_NAPI if gro_flush_timeout_ns else 0)
            fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), flags))
            if gro_flush_timeout_ns:
                with open(f"/sys/class/net/{name}/gro_flush_timeout", "w") as knob:
                    knob.write(str(gro_flush_timeout_ns))
            fcntl.ioctl(fd, TUNSETVNETHDRSZ, struct.pack("i", vnet_hdr_len))
            little_endian = sys.byteorder == "little"
            if not little_endian:
                # legacy headers are in host order; ask for little endian (CONFIG_TUN_VNET_CROSS_LE)
                try:
                    fcntl.ioctl(fd, TUNSETVNETLE, struct.pack("i", 1))
                    little_endian = True
                except OSError:
                    pass
            accepted = 0
            if offloads:
                wanted = offloads | (TUN_F_USO if uso and offloads & TUN_F_CSUM else 0)
                for attempt in dict.fromkeys((wanted, offloads)):
                    try:
                        fcntl.ioctl(fd, TUNSETOFFLOAD, attempt)
                    except OSError as exc:
                        if exc.errno != errno.EINVAL or attempt == offloads:
                            raise
                        continue
                    accepted = attempt
                    break
        except OSError as exc:
            os.close(fd)
            raise TapError(f"cannot set up TAP {name}: {exc.strerror}") from exc
        return cls(name, fd, vnet_hdr_len, accepted, little_endian)

    def close(self) -> None:
        """Close the descriptor, which removes the device."""
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    @property
    def uso(self) -> bool:
        """The kernel accepted USO on this device (it may hand us UDP_L4 GSO packets)."""
        return bool(self.offloads & TUN_F_USO4)

    def egress_profile(self, mtu: int) -> DeviceProfile:
        """What a write into this TAP can carry, as tun_set_offload maps the TUN_F_* bits to features."""
        return tap_profile(self.name, self.offloads, mtu)


def tap_profile(name: str, offloads: int, mtu: int) -> DeviceProfile:
    """A device profile for a TAP with these TUN_F_* offloads (tun_set_offload's mapping)."""
    F = NetdevFeature
    features = F.SG | F.HIGHDMA | F.GSO
    if offloads & TUN_F_CSUM:
        features |= F.HW_CSUM
        if offloads & TUN_F_TSO4:
            features |= F.TSO
        if offloads & TUN_F_TSO6:
            features |= F.TSO6
        if offloads & TUN_F_TSO_ECN:
            features |= F.TSO_ECN
        if offloads & TUN_F_USO4 and offloads & TUN_F_USO6:
            features |= F.GSO_UDP_L4
        if features & (F.TSO | F.TSO6 | F.GSO_UDP_L4):
            # the reader of a vnet header validates GSO metadata itself (virtio_net_hdr_to_skb)
            features |= F.GSO_ROBUST
    return DeviceProfile(
        f"tap:{name}",
        features=features,
        mpls_features=NetdevFeature.NONE,
        vlan_features=features,
        mtu=mtu,
        description="TAP with IFF_VNET_HDR: the TUN_F_* offloads as netdev features",
    )
