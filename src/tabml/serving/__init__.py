"""Serve the pipeline's models: a REST API (``tabml.serving.app``) and a batch CLI
(``python -m tabml.serving.predict``).

The core modules (settings, registry, scoring, fastpath) import no web framework, so the
batch CLI and ``--help`` stay fast.
"""
