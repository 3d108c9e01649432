"""The installable core of the tabular DVC pipeline.

Stages (``stages/``) and the REST API (``tabml.serving``) import what they need from here:
params, paths and naming, the input schema and its one validation path, metrics and model
artifacts. Nothing is imported at package import: each stage pays only for what it uses.
"""
