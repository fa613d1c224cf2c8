"""Build of the optional native filter (``sepconv._sepfilter``); metadata is in pyproject.toml.

The extension is optional: where no C compiler is available the build goes on without it and
sepconv filters with OpenCV instead.
"""

import sys

from setuptools import Extension, setup

args = [] if sys.platform == "win32" else ["-O3", "-std=gnu99", "-fvisibility=hidden"]

setup(
    ext_modules=[
        Extension("sepconv._sepfilter", sources=["src/sepconv/_csrc/sepfilter.c"],
                  extra_compile_args=args, libraries=[] if sys.platform == "win32" else ["m"],
                  optional=True),
    ],
)
