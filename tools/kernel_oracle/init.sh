#!/bin/sh
# /init of the oracle's initramfs (busybox). Two 9p shares:
#   "host": the host's / (read-only), chrooted into, so the host's python3, ip, tc and ethtool run here;
#   "job":  the per-boot folder (read-write) at /run/kernel-oracle: job.sh, the guest code, requests, results.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
while read module; do insmod /mods/$module || echo "kernel-oracle: insmod $module failed"; done < /mods/order
mount -t 9p -o trans=virtio,version=9p2000.L,ro host /host || echo "kernel-oracle: 9p host mount failed"
mount -t proc proc /host/proc
mount -t sysfs sys /host/sys
mount -t devtmpfs dev /host/dev
mount -t tmpfs tmp /host/tmp
mount -t tmpfs run /host/run
mkdir -p /host/run/kernel-oracle
mount -t 9p -o trans=virtio,version=9p2000.L,rw job /host/run/kernel-oracle || echo "kernel-oracle: 9p job mount failed"
echo "kernel-oracle: guest up"
chroot /host /bin/sh /run/kernel-oracle/job.sh
echo $? > /host/run/kernel-oracle/exit_status
sync
umount /host/run/kernel-oracle
poweroff -f
