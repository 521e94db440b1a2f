"""Rules that need to know what exists: names in the catalog, files on disk.

The loader runs these only when it is given the catalog a command plans with
(``validate``, ``plan`` and ``apply`` do; a library caller may not), so a task
that passes ``skyplan validate`` names only clouds, regions, zones, instance
types and accelerators (at counts) that exist in that catalog, and its
``workdir`` and ``file_mounts`` sources exist on this machine.

Each ``any_of`` / ``ordered`` entry is checked merged over the base
``resources``, as the planner reads it, and a finding is located where the
field is written. Checks are lenient where planning is: an accelerator of a
set that one cloud lacks is fine (that cloud contributes no candidates), but
a name no cloud has, or a count in which nothing is sold, is an error.
"""

from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING, Any, Iterator

from skyplan.clouds import registry
from skyplan.spec import parse
from skyplan.spec.source import PathT, clip

if TYPE_CHECKING:
    from skyplan.catalog.names import KnownNames

Finding = tuple[PathT, str, "str | None"]

_FIELDS = ("cloud", "region", "zone", "instance_type", "accelerators")
#: Listed in a message when there are at most this many choices.
_LIST_AT_MOST = 8
#: A file mount source with a scheme (s3://, gs://, https://...) is not a local path.
_URL_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def check_names(data: Any, names: KnownNames) -> list[Finding]:
    """Every name in ``data['resources']`` that ``names`` does not hold, once each."""
    res = data.get("resources") if isinstance(data, dict) else None
    if not isinstance(res, dict):
        return []
    out: dict[tuple[PathT, str], Finding] = {}
    for request in _requests(res):
        for finding in _check_request(request, names):
            out.setdefault((finding[0], finding[1]), finding)
    return list(out.values())


def check_files(data: Any, base_dir: str) -> list[Finding]:
    """``workdir`` and local ``file_mounts`` sources must exist, relative to ``base_dir``
    (the task file's directory) with ``~`` expanded, as apply reads them."""
    if not isinstance(data, dict):
        return []
    out: list[Finding] = []
    workdir = data.get("workdir")
    if isinstance(workdir, str):
        where = _resolve(base_dir, workdir)
        if not os.path.isdir(where):
            what = "is not a directory" if os.path.exists(where) else "does not exist"
            out.append((("workdir",), f"the workdir '{clip(workdir)}' {what} (looked for {clip(where, 120)})",
                        None))
    mounts = data.get("file_mounts")
    if isinstance(mounts, dict):
        for dst, spec in mounts.items():
            path: PathT = ("file_mounts", dst)
            src = spec
            if isinstance(spec, dict):
                src, path = spec.get("source"), path + ("source",)
            if not isinstance(src, str) or is_url(src):
                continue  # a bucket (name/store) or a URL: not a file on this machine
            where = _resolve(base_dir, src)
            if not os.path.exists(where):
                out.append((path, f"the file mount source '{clip(src)}' does not exist "
                                  f"(looked for {clip(where, 120)})", None))
    return out


def is_url(source: str) -> bool:
    """A file mount source with a scheme (``s3://``, ``gs://``, ``https://``): not a local path."""
    return _URL_RE.match(source) is not None


def _resolve(base_dir: str, path: str) -> str:
    return os.path.abspath(os.path.join(base_dir, os.path.expanduser(path)))


# -- one request ---------------------------------------------------------------------

Request = dict[str, tuple[Any, PathT]]


def _requests(res: dict[str, Any]) -> Iterator[Request]:
    """Each candidate request: (value, where it is written) per field, entries over the base."""
    base: Request = {k: (res[k], ("resources", k)) for k in _FIELDS if res.get(k) is not None}
    entries = [(key, i, e) for key in ("any_of", "ordered") if isinstance(res.get(key), list)
               for i, e in enumerate(res[key]) if isinstance(e, dict)]
    if not entries:
        yield base
    for key, i, entry in entries:
        merged = dict(base)
        merged.update({k: (entry[k], ("resources", key, i, k)) for k in _FIELDS if entry.get(k) is not None})
        yield merged


def _check_request(req: Request, names: KnownNames) -> Iterator[Finding]:
    cloud = _text(req, "cloud")
    if cloud is not None:
        if cloud not in registry.names():
            return  # the schema reports an unknown cloud
        if not names.has_offers(cloud):
            why = names.no_offers_reason(cloud)
            yield (req["cloud"][1], why or f"the catalog in use ({names.source}) has no offers on "
                   f"{registry.display(cloud)}", None)
            return
        clouds: tuple[str, ...] = (cloud,)
    else:
        clouds = names.default_clouds()
    region = _text(req, "region")
    region_ok = True
    if region is not None:
        found = yield from _check_region(req, region, cloud, clouds, names)
        region_ok = found
    zone = _text(req, "zone")
    if zone is not None and region_ok:
        yield from _check_zone(req, zone, region, cloud, clouds, names)
    itype = _text(req, "instance_type")
    if itype is not None:
        yield from _check_type(req, itype, cloud, clouds, names)
    if "accelerators" in req:
        yield from _check_accelerators(req, clouds, names)


def _text(req: Request, key: str) -> str | None:
    value = req.get(key, (None, ()))[0]
    return value if isinstance(value, str) else None


def _where(cloud: str | None) -> str:
    return f" on {registry.display(cloud)}" if cloud is not None else ""


def _check_region(req: Request, region: str, cloud: str | None, clouds: tuple[str, ...],
                  names: KnownNames) -> Iterator[Finding]:
    if any(region in names.regions(c) for c in clouds):
        return True
    path = req["region"][1]
    owners = [c for c in names.task_clouds() if c not in clouds and names.has_offers(c)
              and region in names.regions(c)]
    if owners:
        yield path, (f"'{clip(region)}' is a region of {_and(registry.display(c) for c in owners)}, "
                     f"not of {registry.display(cloud)}"), None
        return False
    choices = sorted(set().union(*(names.regions(c) for c in clouds)))
    yield path, f"unknown region '{clip(region)}'{_where(cloud)}{_listed(choices)}", _closest(region, choices)
    return False


def _check_zone(req: Request, zone: str, region: str | None, cloud: str | None, clouds: tuple[str, ...],
                names: KnownNames) -> Iterator[Finding]:
    path = req["zone"][1]
    elsewhere: set[str] = set()
    for c in clouds:
        if zone in names.zones(c, region):
            return
        read = names.read_zone(c, zone)
        if read is not None and region in (None, read):
            return
        in_region = names.region_of(c, zone) or read
        if in_region is not None:
            elsewhere.add(in_region)
    if elsewhere:  # only when a region is pinned too
        yield path, f"zone '{clip(zone)}' is in region {_and(sorted(elsewhere))}, not in {region}", None
        return
    zoned = [c for c in clouds if names.zones(c)]
    if not zoned:
        where = " in the catalog in use; pin a region instead" if any(map(names.is_catalog_cloud, clouds)) else ""
        yield path, f"{_and(registry.display(c) for c in clouds)} has no zones{where}", None
        return
    # Choices in the user's own spelling: a name a cloud reads (us-east-1z) is
    # compared with that region's names (us-east-1a...), anything else with the
    # catalog's zones, of the pinned region when there is one.
    read = {(c, r) for c in zoned if (r := names.alias_region(c, zone)) is not None and region in (None, r)}
    if read:
        regions = sorted({r for _, r in read})
        choices = sorted({z for c, r in read for z in names.zone_names(c, r)})
    else:  # a zone's name usually starts with its region's (us-central1-q)
        regions = [region] if region is not None else sorted(
            {r for c in zoned for r in names.regions(c) if zone.startswith(r) and zone != r})
        choices = sorted({z for c in zoned for r in regions or [None] for z in names.zones(c, r)})
    within = f" in {_and(regions)}" if regions else ""
    yield path, f"unknown zone '{clip(zone)}'{_where(cloud)}{within}{_listed(choices)}", _closest(zone, choices)


def _check_type(req: Request, itype: str, cloud: str | None, clouds: tuple[str, ...],
                names: KnownNames) -> Iterator[Finding]:
    if any(itype in names.instance_types(c) for c in clouds):
        return
    path = req["instance_type"][1]
    owners = [c for c in names.task_clouds() if c not in clouds and names.has_offers(c)
              and itype in names.instance_types(c)]
    if owners:
        yield path, (f"'{clip(itype)}' is an instance type of {_and(registry.display(c) for c in owners)}, "
                     f"not of {registry.display(cloud)}"), None
        return
    choices = sorted(set().union(*(names.instance_types(c) for c in clouds)))
    yield path, f"unknown instance type '{clip(itype)}'{_where(cloud)}", _closest(itype, choices)


def _check_accelerators(req: Request, clouds: tuple[str, ...], names: KnownNames) -> Iterator[Finding]:
    value, at = req["accelerators"]
    for path, name, count in _accelerators(value, at):
        canonical = names.accelerator(name, clouds)
        if canonical is None:
            yield path, f"unknown accelerator '{clip(name)}'", _closest(name, names.accelerator_names())
            continue
        if not any(map(names.is_catalog_cloud, clouds)):
            continue  # a machine's own GPUs (local) are whatever it has; planning says
        offered = names.accelerator_counts(clouds).get(canonical)
        where = _where(clouds[0]) if len(clouds) == 1 else ""
        if offered is None:  # not on these clouds: a set may hold such; any count sold elsewhere will do
            offered, where = names.accelerator_counts(names.default_clouds()).get(canonical), ""
        if offered and not any(abs(count - c) < 1e-9 for c in offered):
            shown = ", ".join(_num(c) for c in offered)
            bigger = [c for c in offered if c > count]
            better = f"{canonical}:{_num(bigger[0] if bigger else offered[-1])}"
            yield path, (f"{canonical} is not sold in a count of {_num(count)}{where}; "
                         f"it comes in {shown}"), better


def _accelerators(value: Any, at: PathT) -> Iterator[tuple[PathT, str, float]]:
    """(where, name, count) of each accelerator alternative that parses."""
    items: list[tuple[PathT, str, Any]] = []
    if isinstance(value, str):
        items = [(at, value, None)]
    elif isinstance(value, dict):
        items = [(at + (k,), k, v) for k, v in value.items() if isinstance(k, str)]
    elif isinstance(value, list):
        items = [(at + (i,), v, None) for i, v in enumerate(value) if isinstance(v, str)]
    for path, text, count in items:
        if count is not None and (isinstance(count, bool) or not isinstance(count, (int, float))):
            continue
        try:
            acc = parse.parse_accelerator(text, count)
        except ValueError:
            continue  # the semantic rules report it
        yield path, acc.name, float(acc.count)


def _closest(word: str, options: list[str]) -> str | None:
    """The one option closest to ``word`` (case-insensitive), if it is close and
    no other is as close: ``us-east-1z`` is as near ``us-east-1a`` as ``-1b``, so
    neither is suggested."""
    import difflib

    lowered = {o.lower(): o for o in options}
    low = word.lower()
    scored = sorted(((difflib.SequenceMatcher(None, low, o).ratio(), o) for o in lowered), reverse=True)
    if not scored or scored[0][0] < 0.6 or (len(scored) > 1 and scored[1][0] == scored[0][0]):
        return None
    return lowered[scored[0][1]]


def _listed(choices: list[str], at_most: int = _LIST_AT_MOST) -> str:
    if not choices or len(choices) > at_most:
        return ""
    return f" (known: {', '.join(choices)})"


def _and(items: Any) -> str:
    items = list(items)
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"
