"""Accuracy and speed benchmarks on the public data sets in ../shared/data.

``python -m benchmarks.run_all`` (``make benchmarks``) runs them all; each module also runs
alone (``python -m benchmarks.load_openstef`` ...). The data sets are read in place through
``benchmarks.adapters``; nothing is copied into the repository.
"""
