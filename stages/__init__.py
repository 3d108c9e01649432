"""One thin script per DVC stage; the logic they share is the ``tabml`` package (src/).

DVC runs queued experiments in a temporary copy of the repository and hashes that copy's
``src/`` as the stages' dependencies, so the stages must import ``tabml`` from the same copy,
not from wherever it was installed: put this checkout's ``src/`` first on the path.
"""

import sys
from pathlib import Path

_SRC = str(Path(__file__).resolve().parent.parent / "src")
if sys.path[:1] != [_SRC]:
    sys.path.insert(0, _SRC)
