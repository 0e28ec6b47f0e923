"""``python -m hpo``: the same command as the ``hpo`` console script."""

import os
import sys

# `python -m` puts the current folder first on the import path (the console script does not), so a
# workspace's catboost.py or mlflow.py would hide the installed library. hpo itself is imported by
# now; the workspace's own modules are found after the installed ones (hpo.workspace.on_import_path).
if not sys.flags.safe_path and sys.path and sys.path[0] in ("", os.getcwd()):
    del sys.path[0]

from hpo.cli import main  # noqa: E402

main()
