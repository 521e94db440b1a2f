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

    def _api(self) -> Any:
        from skyplan.clouds.kubernetes.client import api_client

        return api_client(self.outputs["kubeconfig"], self.outputs["context"])

    def _pods(self, api: Any) -> list[tuple[int, dict[str, Any]]]:
        from skyplan.clouds.kubernetes.client import list_pods

        # The newest pod of each rank (a restarted one replaces the evicted one).
        newest: dict[int, dict[str, Any]] = {}
        for p in list_pods(api, self.outputs["namespace"], self.outputs["selector"]):
            notes = p["metadata"].get("annotations") or {}
            rank = next((int(notes[a]) for a in _RANK_ANNOTATIONS if str(notes.get(a, "")).isdigit()), 0)
            if self.rank is not None and rank != self.rank:
                continue
            if rank not in newest or p["metadata"]["creationTimestamp"] > newest[rank]["metadata"]["creationTimestamp"]:
                newest[rank] = p
        return sorted(newest.items())

    def _text(self) -> list[str]:
        from skyplan.clouds.kubernetes.client import pod_log

        api = self._api()
        try:
            lines: list[str] = []
            pods = self._pods(api)
            for rank, p in pods:
                try:
                    text = pod_log(api, self.outputs["namespace"], p["metadata"]["name"])
                except Exception:  # a pod without a log yet (or a node that serves none)
                    text = ""
                prefix = f"(node-{rank}) " if len(pods) > 1 and self.rank is None else ""
                lines.extend(prefix + line + "\n" for line in text.splitlines())
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
            api = self._api()
        except Exception:
            return None
        try:
            pods = self._pods(api)
        except Exception:
            return None
        finally:
            api.close()
        nodes = []
        for rank, p in pods:
            st = p.get("status") or {}
            phase = {"Succeeded": "done", "Failed": "failed", "Running": "run"}.get(st.get("phase") or "", "starting")
            code = None
            for cs in st.get("containerStatuses") or []:
                term = (cs.get("state") or {}).get("terminated")
                if term is not None:
                    code = term.get("exitCode")
            nodes.append({"node_rank": rank, "phase": phase, "returncode": code, "pod": p["metadata"]["name"],
                          "node": (p.get("spec") or {}).get("nodeName")})
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
