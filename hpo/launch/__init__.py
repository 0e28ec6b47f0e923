"""Launching a study on a cluster: files and commands that start workers elsewhere; hpo runs nothing here.

- :mod:`._k8s`: ``hpo k8s``, Kubernetes Jobs that create one study and run its workers.
- :mod:`._backend`: ``hpo run --backend ray|dask``: the engine, its flags checked;
- :mod:`._engines`: the ``hpo worker`` process each engine task runs, and how the run hears of its
  end; :mod:`._ray` and :mod:`._dask`, the two engines (each imports its library only when it connects).

Each module imports only the standard library, PyYAML and hpo's leaves at its top, so importing this
package stays cheap (``hpo --help`` never imports it).
"""

from hpo.launch._backend import engine_of
from hpo.launch._k8s import K8sSpec, Manifests, k8s_manifests, next_steps, secret_command, write_manifests

__all__ = ["engine_of", "K8sSpec", "Manifests", "k8s_manifests", "next_steps", "secret_command", "write_manifests"]
