"""Files: atomic writing, the artifacts the stages hand one another, the stages' command line and plots.

Imports nothing itself, so that :mod:`lpa.io.cli` stays dependency-free for the workflow.
"""
