"""One module per protocol; each registers its GSO handler in :mod:`softgso.gso`'s offload table.

Adding a protocol is adding a module here: :func:`softgso.gso.load_offloads` imports them all.
"""
