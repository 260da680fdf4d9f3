"""Print the PyPI requirements of the Home Assistant integrations a test boot loads.

Run with the venv's python after `homeassistant` itself is installed:

    python tests/ha/ha_requirements.py mqtt mqtt_statestream ...

It walks the manifests (``dependencies``) of HA's default integrations
(bootstrap.CORE_INTEGRATIONS + bootstrap.DEFAULT_INTEGRATIONS) plus the domains
named on the command line, and prints every ``requirements`` entry once, so the
venv can be filled before the first boot and HA never runs pip at startup.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import sys
from pathlib import Path


def _bootstrap_sets(bootstrap_py: Path, names: tuple[str, ...]) -> set[str]:
    """The string-set constants `names` of bootstrap.py, read without importing HA
    (its dependencies are not installed yet when this runs)."""
    out: set[str] = set()
    for node in ast.parse(bootstrap_py.read_text()).body:
        target = node.targets[0] if isinstance(node, ast.Assign) else getattr(node, "target", None)
        if isinstance(target, ast.Name) and target.id in names and node.value is not None:
            out |= {c.value for c in ast.walk(node.value) if isinstance(c, ast.Constant) and isinstance(c.value, str)}
    return out


def _class_strings(module_py: Path, name: str) -> set[str]:
    """The string values of the class `name` in module_py (an enum), read without importing HA."""
    for node in ast.parse(module_py.read_text()).body:
        if isinstance(node, ast.ClassDef) and node.name == name:
            return {
                a.value.value
                for a in node.body
                if isinstance(a, ast.Assign) and isinstance(a.value, ast.Constant) and isinstance(a.value.value, str)
            }
    return set()


def main(extra: list[str]) -> None:
    spec = importlib.util.find_spec("homeassistant")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("homeassistant is not installed in this interpreter")
    package = Path(next(iter(spec.submodule_search_locations)))
    components = package / "components"
    todo = _bootstrap_sets(package / "bootstrap.py", ("CORE_INTEGRATIONS", "DEFAULT_INTEGRATIONS")) | set(extra)
    # Every entity component (Home Assistant's Platform enum): MQTT and the entity
    # registry set them up, and some have requirements (infrared, radio_frequency in 2026.x;
    # the enum moved to generated/entity_platforms.py as EntityPlatforms).
    enums = ((package / "const.py", "Platform"), (package / "generated" / "entity_platforms.py", "EntityPlatforms"))
    for where, enum in enums:
        if where.exists():
            todo |= _class_strings(where, enum)
    seen: set[str] = set()
    reqs: dict[str, None] = {}
    while todo:
        domain = todo.pop()
        if domain in seen:
            continue
        seen.add(domain)
        manifest = components / domain / "manifest.json"
        if not manifest.exists():
            print(f"# unknown integration {domain}", file=sys.stderr)
            continue
        data = json.loads(manifest.read_text())
        todo |= set(data.get("dependencies", []))
        for req in data.get("requirements", []):
            reqs.setdefault(req, None)
    print("\n".join(sorted(reqs)))
    print(f"# {len(seen)} integrations: {' '.join(sorted(seen))}", file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv[1:])
