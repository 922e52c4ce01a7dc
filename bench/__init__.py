"""Benchmark harness: kakehashi's server against its peers (issue #3).

Not part of the installed package. Run the scripts from the project root, e.g.
``python bench/run_server.py --quick``; see ``bench/RESULTS.md``.
"""
