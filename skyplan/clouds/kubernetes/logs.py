"""A Kubernetes workload's output and state, read through the API (``LogSource``).

The stack's outputs say where the workload is (kubeconfig, context, namespace,
the pods' label selector). A pod's rank is its index annotation (JobSet's job
index, or the Job's completion index); its log is the ``task`` container's.
The task's phase folds the pods' phases as the sandbox runner's do: ``failed``
when a pod failed and the workload gave up (its Job condition ``Failed``),
``done`` when every pod succeeded, else ``run``.
"""

from __future__ import annotations

import time
from typing import Any, Iterator, Mapping

from skyplan.clouds.kubernetes.render import JOB_INDEX_ANNOTATION, JOBSET_INDEX_ANNOTATION

_RANK_ANNOTATIONS = (JOBSET_INDEX_ANNOTATION, JOB_INDEX_ANNOTATION)


class PodLogs:
    def __init__(self, outputs: Mapping[str, Any], rank: int | None = None) -> None:
        self.outputs = dict(outputs)
        self.rank = rank

    # --- reading ---------------------------------------------------------------------------------

    def _core(self) -> tuple[Any, Any]:
        from kubernetes import client as k8s

        from skyplan.clouds.kubernetes.client import api_client

        api = api_client(self.outputs["kubeconfig"], self.outputs["context"])
        return api, k8s.CoreV1Api(api)

    def _pods(self, core: Any) -> list[tuple[int, Any]]:
        pods = core.list_namespaced_pod(self.outputs["namespace"], label_selector=self.outputs["selector"]).items
        out = []
        for p in pods:
            notes = p.metadata.annotations or {}
            rank = next((int(notes[a]) for a in _RANK_ANNOTATIONS if str(notes.get(a, "")).isdigit()), 0)
            if self.rank is None or rank == self.rank:
                out.append((rank, p))
        # The newest pod of each rank (a restarted one replaces the evicted one).
        newest: dict[int, Any] = {}
        for rank, p in out:
            if rank not in newest or p.metadata.creation_timestamp > newest[rank].metadata.creation_timestamp:
                newest[rank] = p
        return sorted(newest.items())

    def _text(self) -> list[str]:
        api, core = self._core()
        try:
            lines: list[str] = []
            pods = self._pods(core)
            for rank, p in pods:
                try:
                    text = core.read_namespaced_pod_log(p.metadata.name, self.outputs["namespace"])
                except Exception:
                    text = ""
                prefix = f"(node-{rank}) " if len(pods) > 1 and self.rank is None else ""
                lines.extend(prefix + line + "\n" for line in (text or "").splitlines())
            return lines
        finally:
            api.close()

    def lines(self) -> Iterator[str]:
        yield from self._text()

    def follow(self) -> Iterator[str]:
        seen = 0
        while True:
            lines = self._text()
            yield from lines[seen:]
            seen = len(lines)
            st = self.status()
            if st is None or st["phase"] in ("done", "failed", "absent"):
                return
            time.sleep(1.0)

    def status(self) -> dict[str, Any] | None:
        try:
            api, core = self._core()
        except Exception:
            return None
        try:
            pods = self._pods(core)
        except Exception:
            return None
        finally:
            api.close()
        nodes = []
        for rank, p in pods:
            phase = {"Succeeded": "done", "Failed": "failed", "Running": "run"}.get(p.status.phase or "", "starting")
            code = None
            for cs in p.status.container_statuses or []:
                term = cs.state.terminated if cs.state else None
                if term is not None:
                    code = term.exit_code
            nodes.append({"node_rank": rank, "phase": phase, "returncode": code, "pod": p.metadata.name,
                          "node": p.spec.node_name})
        if not nodes:
            return {"phase": "absent", "returncode": None, "nodes": []}
        phases = [n["phase"] for n in nodes]
        if "failed" in phases:
            phase = "failed"
        elif all(ph == "done" for ph in phases):
            phase = "done"
        else:
            phase = "run" if "run" in phases else "starting"
        rc = next((n["returncode"] for n in nodes if n["phase"] == phase), None)
        return {"phase": phase, "returncode": 0 if phase == "done" else rc, "nodes": nodes}

    def node(self, rank: int) -> "PodLogs | None":
        return PodLogs(self.outputs, rank)


def pod_logs(outputs: Mapping[str, Any]) -> PodLogs | None:
    if not all(outputs.get(k) for k in ("kubeconfig", "context", "namespace", "selector")):
        return None
    return PodLogs(outputs)
