/* IPv4 header options, as the compiled walks need them (one copy for every C module).
 *
 * A loose or strict source route (LSRR 0x83, SSRR 0x89) with hops left makes the upper-layer checksum
 * cover the route's last address, not the header's destination (RFC 791; the sender's stack sums
 * against the final hop, as ip_options_build leaves it): prepare.ipv4_final_destination reads it for
 * the per-frame code, and the compiled walks hand such a frame to that code. */
#ifndef SOFTGSO_IPV4_OPTIONS_H
#define SOFTGSO_IPV4_OPTIONS_H

#include <Python.h>

/* 1 when the options of the IPv4 header at header[0:ihl] hold a source route with hops left (its
 * pointer, header[at + 2], at most the option's length - 3), else 0; the walk stops at End of Options
 * (0) and at an option whose length the header cannot hold, as ip_options_compile rejects it.
 * header[0:ihl] must be readable. */
static inline int ipv4_source_routed(const unsigned char *header, Py_ssize_t ihl)
{
    Py_ssize_t at = 20;
    while (at < ihl && header[at] != 0) {
        if (header[at] == 1) { /* No Operation: one byte */
            at++;
            continue;
        }
        if (at + 2 > ihl || header[at + 1] < 2 || at + header[at + 1] > ihl)
            return 0;
        if ((header[at] == 0x83 || header[at] == 0x89) && header[at + 1] >= 7 && header[at + 2] + 3 <= header[at + 1])
            return 1;
        at += header[at + 1];
    }
    return 0;
}

#endif
