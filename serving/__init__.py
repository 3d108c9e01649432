"""Serve the pipeline's models: a REST API (``serving.app``) and a batch CLI (``serving.predict``).

The core modules (settings, registry, scoring, fastpath) import neither FastAPI nor anything
heavy at import time, so the batch CLI and ``--help`` stay fast.
"""
