"""Build of the optional native kernels (``sepconv._sepfilter``, ``sepconv._depthwise``);
metadata is in pyproject.toml.

The extensions are optional: where no C compiler is available the build goes on without them
and sepconv filters with OpenCV and convolves with PyTorch instead.
"""

import sys

from setuptools import Extension, setup

args = [] if sys.platform == "win32" else ["-O3", "-std=gnu99", "-fvisibility=hidden"]
libraries = [] if sys.platform == "win32" else ["m"]

setup(
    ext_modules=[
        Extension(
            "sepconv._sepfilter",
            sources=["src/sepconv/_csrc/sepfilter.c"],
            extra_compile_args=args,
            libraries=libraries,
            optional=True,
        ),
        Extension(
            "sepconv._depthwise",
            sources=[
                "src/sepconv/_csrc/depthwise.c",
                "src/sepconv/_csrc/depthwise_pool.c",
                "src/sepconv/_csrc/fused.c",
            ],
            depends=[
                "src/sepconv/_csrc/depthwise.h",
                "src/sepconv/_csrc/depthwise_kernels.h",
                "src/sepconv/_csrc/depthwise_avx512.h",
                "src/sepconv/_csrc/depthwise_backward.h",
            ],
            extra_compile_args=args
            + (
                []
                if sys.platform == "win32"
                else ["-pthread", "-fno-tree-loop-distribute-patterns"]
            ),
            extra_link_args=[] if sys.platform == "win32" else ["-pthread"],
            libraries=libraries + (["dl"] if sys.platform.startswith("linux") else []),
            optional=True,
        ),
    ],
)
