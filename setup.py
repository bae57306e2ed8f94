"""Packaging. The metadata and requirements are in setup.cfg; this file adds what setup.cfg cannot
say: the shipped style models in ``models/`` travel inside the wheel as the data package
``mxstyle.shipped_models`` (found by ``mxstyle.runtime.card.model_search_paths``)."""
from setuptools import find_packages, setup

setup(
    packages=find_packages(include=["mxstyle", "mxstyle.*"]) + ["mxstyle.shipped_models"],
    package_dir={"mxstyle.shipped_models": "models"},
    package_data={"mxstyle": ["samples/*", "serve/static/*"], "mxstyle.shipped_models": ["*.md", "*/*"]},
)
