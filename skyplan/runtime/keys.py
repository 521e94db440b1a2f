"""Each VM cluster's own SSH key pair, and skyplan's record of its nodes' host keys.

Under the skyplan home (directories 0700, files 0600)::

    ssh/keys/<cluster>            the cluster's private key (ed25519, OpenSSH format)
    ssh/keys/<cluster>.pub        its public key line, the only half a Pulumi program sees
    ssh/known_hosts.d/<cluster>   the host keys of the cluster's nodes, recorded by the SSH
                                  transport on first contact (``NodeAddress.record_host_key``)

The pair is generated here, locally, the first time a cluster is launched on a
cloud whose nodes skyplan reaches over SSH (``Capabilities.nodes_over_ssh``), and
reused by every later attempt, replacement and re-run of that cluster, so every
node it ever had accepts the same key. Only the public key is handed to the
cloud program (``ProvisionRequest.ssh_public_key``): the private key never enters
the Pulumi state, not even encrypted as a secret. ``down`` removes all three files
(``remove``).

Callers hold the cluster's lock (``skyplan.state.cluster_lock``), so two processes
never generate a pair for the same cluster at once.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["key_path", "public_key_path", "known_hosts_path", "ensure_key", "public_key", "remove"]


def _checked(cluster: str) -> str:
    # The name becomes a file name: refuse anything that could leave the directory.
    from skyplan.spec.parse import is_cluster_name

    if not is_cluster_name(cluster):
        raise ValueError(f"not a cluster name: {cluster!r}")
    return cluster


def _dir(leaf: str, create: bool) -> Path:
    from skyplan import home

    return home.sub("ssh", leaf) if create else home.home() / "ssh" / leaf


def key_path(cluster: str, *, create: bool = True) -> Path:
    """The cluster's private key file (it may not exist yet); ``create``: make its
    directory (0700) if missing."""
    return _dir("keys", create) / _checked(cluster)


def public_key_path(cluster: str, *, create: bool = True) -> Path:
    return _dir("keys", create) / (_checked(cluster) + ".pub")


def known_hosts_path(cluster: str, *, create: bool = True) -> Path:
    """skyplan's known_hosts file for the cluster's nodes (the SSH transport writes it)."""
    return _dir("known_hosts.d", create) / _checked(cluster)


def _write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` 0600 from its first byte (never readable by others,
    whatever the umask), through a temporary file renamed into place."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_CLOEXEC", 0), 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def public_key(cluster: str) -> str | None:
    """The cluster's public key line, or None when it has no key pair."""
    path = key_path(cluster, create=False)
    if not path.exists():
        return None
    pub = public_key_path(cluster)
    try:
        text = pub.read_text().strip()
    except FileNotFoundError:
        text = ""
    if not text:  # the .pub file is only a copy: derive it again from the private key
        import asyncssh

        text = asyncssh.read_private_key(str(path)).export_public_key("openssh").decode().strip()
        _write_private(pub, (text + "\n").encode())
    return text


def ensure_key(cluster: str) -> str:
    """The cluster's public key line (``ssh-ed25519 AAAA... skyplan-<cluster>``),
    generating the pair first if the cluster has none."""
    existing = public_key(cluster)
    if existing:
        return existing
    import asyncssh

    key = asyncssh.generate_private_key("ssh-ed25519", comment=f"skyplan-{cluster}")
    pub = key.export_public_key("openssh").decode().strip()
    _write_private(key_path(cluster), key.export_private_key("openssh"))
    _write_private(public_key_path(cluster), (pub + "\n").encode())
    return pub


def remove(cluster: str) -> list[Path]:
    """Delete the cluster's key pair and its known_hosts file. Idempotent; returns
    the files it removed."""
    removed = []
    for path in (key_path(cluster, create=False), public_key_path(cluster, create=False),
                 known_hosts_path(cluster, create=False)):
        try:
            path.unlink()
        except FileNotFoundError:
            continue
        removed.append(path)
    return removed
