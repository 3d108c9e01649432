"""The Dask engine: datasets with ``engine: dask`` run ingest, split, featurize, train and
evaluate on ``dask.dataframe`` partitions, on a scheduler or on a LocalCluster started here.

Nothing here is imported by a pandas-engine stage: each stage imports this package inside
its ``engine == "dask"`` branch, so pandas datasets pay no import time for dask.

- :mod:`.cluster`: the client (and LocalCluster), one-line errors, progress lines;
- :mod:`.ingest`, :mod:`.split`, :mod:`.featurize`, :mod:`.train`, :mod:`.evaluate`: the
  stages, writing the same output paths as the pandas engine (Parquet partitions
  ``<dataset>-<part>-<NNNNN>_<phase>_<date>.parquet`` inside the interim and processed
  directories) and the same kind of model file;
- :mod:`.scores`: metrics, ROC/PR curves and calibration from per-class histograms of
  scores, merged across partitions (pure numpy).

Workers run code of this package: on a remote cluster they need this project's
environment (the same lock), and they read and write the repository's files, so the
repository must be on a file system they share, at the same absolute path.
"""
