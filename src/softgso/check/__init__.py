"""The independent checkers: what the tests and the bench hold softgso's outputs to.

capdiff and flowdiff compare two captures (by position, by flow); segcheck and grocheck check a
segmented or coalesced capture against its input with code of their own (no engine code); golden
replays the kernel's vectors; synth builds super-packets from a spec; scapy_segmenter is the naive
peer the bench measures itself against (Scapy: the extra ``softgso[bench]``).
"""
