"""The workflow's planning logic (run names, patterns, resource requests), without heavy imports.

Imported by ``workflow/rules/common.smk``; tested without Snakemake.
"""
