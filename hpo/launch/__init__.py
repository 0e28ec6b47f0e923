"""Launching a study on a cluster: files and commands that start workers elsewhere; hpo runs nothing here.

- :mod:`._k8s`: ``hpo k8s``, Kubernetes Jobs that create one study and run its workers.

Each module imports only the standard library, PyYAML and hpo's leaves at its top, so importing this
package stays cheap (``hpo --help`` never imports it).
"""

from hpo.launch._k8s import K8sSpec, Manifests, k8s_manifests, next_steps, secret_command, write_manifests

__all__ = ["K8sSpec", "Manifests", "k8s_manifests", "next_steps", "secret_command", "write_manifests"]
