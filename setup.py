"""The optional C modules; everything else is in pyproject.toml.

softgso._checksum gives the scalar engine's per-segment payload sums (softgso.checksum) without numpy;
softgso.bulk._csum accelerates the numpy primitive of the bulk pipeline (sums, record walk);
softgso.bulk._segment is its compiled primitive (softgso.bulk.compiled_primitive); softgso.bulk._records
the compiled walks of the checkers' bulk reader (softgso.bulk.frames, for diff); softgso.io._reserve
takes an output file's space ahead of the writes (softgso.io.outfile). ``optional=True``:
where they cannot be built, softgso installs without them and runs on Python and numpy alone.
"""

from setuptools import Extension, setup

HEADERS = ["src/softgso/_wordsum.h", "src/softgso/_ipv4_options.h"]

setup(ext_modules=[
    Extension("softgso._checksum", ["src/softgso/_checksum.c"], depends=HEADERS, optional=True,
              extra_compile_args=["-O3"]),
    Extension("softgso.bulk._csum", ["src/softgso/bulk/_csum.c"], depends=HEADERS, optional=True,
              extra_compile_args=["-O3"]),
    Extension("softgso.bulk._segment", ["src/softgso/bulk/_segment.c"], depends=HEADERS, optional=True,
              extra_compile_args=["-O3"]),
    Extension("softgso.bulk._records", ["src/softgso/bulk/_records.c"], depends=HEADERS, optional=True,
              extra_compile_args=["-O3"]),
    Extension("softgso.gro._coalesce", ["src/softgso/gro/_coalesce.c"], depends=HEADERS, optional=True,
              extra_compile_args=["-O3"]),
    Extension("softgso.io._reserve", ["src/softgso/io/_reserve.c"], optional=True, extra_compile_args=["-O3"]),
    Extension("softgso.datapath._batchio", ["src/softgso/datapath/_batchio.c"], optional=True,
              extra_compile_args=["-O2"]),
])
