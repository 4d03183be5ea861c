# PyInstaller runtime hook of the flowlite binary: the tzdata package is shipped as one zip file
# (extracted at every start like everything else: one file is much cheaper than its 600 files),
# importable from there; zoneinfo reads its zone files through importlib.resources.
import os
import sys

sys.path.append(os.path.join(sys._MEIPASS, "tzdata.zip"))  # type: ignore[attr-defined]
