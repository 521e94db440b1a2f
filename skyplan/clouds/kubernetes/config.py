"""The ``kubernetes:`` section of the config file: the clusters a task may go to.

```yaml
kubernetes:
  contexts:
    prod-eks:                               # a cluster: `resources: {cloud: kubernetes, region: prod-eks}`
      kubeconfig: ~/.kube/config            # optional (this default)
      context: arn:aws:eks:...:cluster/prod # optional: the kubeconfig context (default: the name)
      flavor: eks                           # eks | aks | gke | generic
      operator: jobset                      # optional: jobset | kuberay | batch (default: the flavor's)
      namespace: ml                         # optional (default: default)
      image: python:3.11-slim               # optional: the image tasks run in
      price: 0.5                            # optional: $/hr of a node whose type the catalog lacks
      spot_price: 0.2                       # optional (default: price)
```

Pure: parsing and checking only. ``check`` is what ``skyplan.config`` calls for
the section; ``clusters()`` what the cloud reads.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from skyplan.clouds.kubernetes.flavors import FLAVORS_ORDER, OPERATORS

if TYPE_CHECKING:
    from skyplan.config import ConfigFile
    from skyplan.errors import Diagnostic

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$")
NAMESPACE = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
KEYS = ("kubeconfig", "context", "flavor", "operator", "namespace", "image", "price", "spot_price")
DEFAULT_KUBECONFIG = "~/.kube/config"
DEFAULT_IMAGE = "python:3.11-slim"


@dataclass(frozen=True)
class Cluster:
    """One cluster of the config file; ``name`` is its region in plans."""

    name: str
    kubeconfig: str
    context: str
    flavor: str
    operator: str
    namespace: str = "default"
    image: str = DEFAULT_IMAGE
    price: float | None = None
    spot_price: float | None = None


def check(section: Any, config: ConfigFile, path: tuple[Any, ...]) -> list[Diagnostic]:
    """Every finding about the ``kubernetes:`` section."""
    return _parse(section, config, path)[1]


def clusters(config: ConfigFile | None = None) -> dict[str, Cluster]:
    """The clusters of the config file (checked: a bad file raises ConfigError)."""
    if config is None:
        from skyplan.config import read_config

        config = read_config()
    section = config.data.get("kubernetes")
    return _parse(section, config, ("kubernetes",))[0] if section is not None else {}


def _parse(section: Any, config: ConfigFile, path: tuple[Any, ...]) -> tuple[dict[str, Cluster], list[Diagnostic]]:
    found: list[Diagnostic] = []
    out: dict[str, Cluster] = {}
    if not isinstance(section, dict):
        return out, [config.diagnostic(path, "'kubernetes' is a mapping with 'contexts': {NAME: {kubeconfig, "
                                             "context, flavor}}")]
    for key in section:
        if key != "contexts":
            found.append(config.diagnostic(path + (key,), f"unknown key '{key}' (kubernetes takes 'contexts')",
                                           _close(key, ("contexts",))))
    raw_all = section.get("contexts")
    if not isinstance(raw_all, dict) or not raw_all:
        found.append(config.diagnostic(path + ("contexts",), "'contexts' is a mapping of cluster names to "
                                                             "{kubeconfig, context, flavor}"))
        return out, found
    for name, raw in raw_all.items():
        at = path + ("contexts", name)
        if not NAME.match(str(name)):
            found.append(config.diagnostic(at, f"cluster name '{name}' must be letters, digits, '-' or '_' "
                                               "(it is the region of your tasks)"))
            continue
        if not isinstance(raw, dict):
            found.append(config.diagnostic(at, "a cluster is a mapping: {kubeconfig: PATH, context: CTX, "
                                               "flavor: eks|aks|gke|generic}"))
            continue
        n = len(found)
        for key in raw:
            if key not in KEYS:
                found.append(config.diagnostic(at + (key,), f"unknown key '{key}' (a cluster takes "
                                                            f"{', '.join(KEYS)})", _close(key, KEYS)))
        flavor = raw.get("flavor")
        if flavor not in FLAVORS_ORDER:
            found.append(config.diagnostic(at + ("flavor",), f"'flavor' is one of {', '.join(FLAVORS_ORDER)}",
                                           _close(flavor, FLAVORS_ORDER) if isinstance(flavor, str) else None))
        operator = raw.get("operator")
        if operator is not None and operator not in OPERATORS:
            found.append(config.diagnostic(at + ("operator",), f"'operator' is one of {', '.join(OPERATORS)}",
                                           _close(operator, OPERATORS) if isinstance(operator, str) else None))
        for key in ("kubeconfig", "context", "image"):
            v = raw.get(key)
            if v is not None and (not isinstance(v, str) or not v.strip()):
                found.append(config.diagnostic(at + (key,), f"'{key}' is a non-empty string"))
        ns = raw.get("namespace", "default")
        if not isinstance(ns, str) or not NAMESPACE.match(ns):
            found.append(config.diagnostic(at + ("namespace",), "'namespace' is a Kubernetes namespace name "
                                                                "(lower-case letters, digits and '-')"))
        prices: dict[str, float | None] = {}
        for key in ("price", "spot_price"):
            v = raw.get(key)
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v)
                                  or v < 0):
                found.append(config.diagnostic(at + (key,), f"'{key}' is a number of dollars per hour, 0 or more"))
            prices[key] = None if v is None or isinstance(v, bool) else float(v)
        if len(found) > n:
            continue
        from skyplan.clouds.kubernetes.flavors import flavor as _flavor

        out[str(name)] = Cluster(
            name=str(name),
            kubeconfig=config.resolve_path(raw.get("kubeconfig") or DEFAULT_KUBECONFIG),
            context=str(raw.get("context") or name),
            flavor=str(flavor),
            operator=str(operator or _flavor(str(flavor)).operator),
            namespace=str(ns),
            image=str(raw.get("image") or DEFAULT_IMAGE),
            price=prices.get("price"),
            spot_price=prices.get("spot_price") if prices.get("spot_price") is not None else prices.get("price"),
        )
    return out, found


def _close(word: Any, choices: tuple[str, ...]) -> str | None:
    import difflib

    found = difflib.get_close_matches(str(word), choices, n=1)
    return found[0] if found else None
