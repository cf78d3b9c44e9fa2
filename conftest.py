"""Doctest collection of the package: modules of optional integrations whose framework is not
installed are skipped, so the core suite runs with torch alone."""

from importlib.util import find_spec

collect_ignore = []
if find_spec("transformers") is None or find_spec("accelerate") is None:
    collect_ignore += [
        "dynaprune/transformers.py",
        "dynaprune/accelerate.py",
        "dynaprune/integrations/transformers.py",
        "dynaprune/integrations/accelerate.py",
    ]
