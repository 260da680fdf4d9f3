"""The integration's manifest, translations, brand images and hacs.json hold what Home Assistant
and HACS require: what hassfest (Home Assistant's own checker, not on PyPI) and HACS's validation
check that matters for a custom integration. No Home Assistant is started here."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import homeassistant
import pytest
import voluptuous as vol
from awesomeversion import AwesomeVersion, AwesomeVersionStrategy
from homeassistant.components.mqtt import valid_subscribe_topic
from PIL import Image

REPOSITORY = Path(__file__).resolve().parents[2]
INTEGRATION = REPOSITORY / "custom_components" / "folotoy"
CORE_COMPONENTS = Path(homeassistant.__file__).parent / "components"

# hassfest's script/hassfest/manifest.py, for what a custom integration's manifest may hold.
IOT_CLASSES = ["assumed_state", "calculated", "cloud_polling", "cloud_push", "local_polling", "local_push"]
INTEGRATION_TYPES = ["device", "entity", "hardware", "helper", "hub", "service", "system", "virtual"]
URL = vol.All(str, vol.Match(r"^https://"))
MANIFEST = vol.Schema(
    {
        vol.Required("domain"): "folotoy",
        vol.Required("name"): str,
        vol.Required("codeowners"): [vol.Match(r"^@.+$")],
        vol.Required("documentation"): URL,
        vol.Required("issue_tracker"): URL,
        vol.Required("version"): str,
        vol.Required("iot_class"): vol.In(IOT_CLASSES),
        vol.Required("integration_type"): vol.In(INTEGRATION_TYPES),
        vol.Optional("config_flow"): bool,
        vol.Optional("single_config_entry"): bool,
        vol.Optional("dependencies"): [str],
        vol.Optional("after_dependencies"): [str],
        vol.Optional("requirements"): [str],
        vol.Optional("mqtt"): [str],
        vol.Optional("loggers"): [str],
    }
)
# HACS's hacs.json schema (hacs/integration, validate/schema.py).
HACS = vol.Schema(
    {
        vol.Required("name"): str,
        vol.Optional("content_in_root"): bool,
        vol.Optional("country"): vol.Any([str], str),
        vol.Optional("filename"): str,
        vol.Optional("hacs"): str,
        vol.Optional("hide_default_branch"): bool,
        vol.Optional("homeassistant"): str,
        vol.Optional("persistent_directory"): str,
        vol.Optional("render_readme"): bool,
        vol.Optional("zip_release"): bool,
    }
)


def manifest() -> dict:
    return json.loads((INTEGRATION / "manifest.json").read_text())


def translations(language: str) -> dict:
    return json.loads((INTEGRATION / "translations" / f"{language}.json").read_text())


def flatten(tree: dict, prefix: str = "") -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out |= flatten(value, f"{prefix}{key}.")
        else:
            out[f"{prefix}{key}"] = value
    return out


def used_in_code(keyword: str, within: ast.AST | None = None) -> set[str]:
    """Every string passed as `keyword=` in the integration's Python files (or in `within`)."""
    trees = [within] if within is not None else [ast.parse(p.read_text()) for p in INTEGRATION.glob("*.py")]
    return {
        node.value.value
        for tree in trees
        for node in ast.walk(tree)
        if isinstance(node, ast.keyword) and node.arg == keyword and isinstance(node.value, ast.Constant)
    }


def options_flow() -> ast.ClassDef:
    tree = ast.parse((INTEGRATION / "config_flow.py").read_text())
    return next(n for n in ast.walk(tree) if isinstance(n, ast.ClassDef) and n.name == "FolotoyOptionsFlow")


def test_the_manifest_has_every_key_home_assistant_and_hacs_require():
    m = manifest()
    MANIFEST(m)
    # Home Assistant refuses a custom integration without a valid version; HACS compares releases by it.
    assert AwesomeVersion(m["version"]).strategy == AwesomeVersionStrategy.SEMVER, m["version"]
    assert list(m)[:2] == ["domain", "name"] and list(m)[2:] == sorted(list(m)[2:]), "hassfest's key order"
    assert m["requirements"] == [], "it installs nothing: everything it uses ships with Home Assistant"


def test_the_manifest_names_only_real_home_assistant_integrations_and_valid_topics():
    for domain in m_deps(manifest()):
        assert (CORE_COMPONENTS / domain / "manifest.json").exists(), domain
    for topic in manifest()["mqtt"]:
        valid_subscribe_topic(topic)
        assert topic in (
            "homeassistant/folotoy/+/media_player/config",
            "homeassistant/folotoy/+/bridge/config",
        ), "what the bridge publishes"


def m_deps(m: dict) -> list[str]:
    return m.get("dependencies", []) + m.get("after_dependencies", [])


def test_every_module_the_integration_imports_from_home_assistant_is_a_dependency():
    """hassfest: an integration may only import integrations it depends on."""
    imported = set()
    for path in INTEGRATION.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module == "homeassistant.components":
                imported |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("homeassistant.components."):
                imported.add(node.module.split(".")[2])
    # media_player and binary_sensor are the platforms it provides.
    assert imported - {"media_player", "binary_sensor"} <= set(m_deps(manifest())), imported


def test_config_flow_true_comes_with_a_config_flow_module():
    assert manifest()["config_flow"] is True
    assert (INTEGRATION / "config_flow.py").exists()


def test_every_step_abort_error_and_exception_the_code_uses_has_an_english_text():
    en = flatten(translations("en"))
    options_steps = used_in_code("step_id", within=options_flow())
    assert options_steps == {"init", "key"}, options_steps
    cloud = ast.parse((INTEGRATION / "cloud_flow.py").read_text())
    others = [ast.parse(p.read_text()) for p in INTEGRATION.glob("*.py") if p.name != "cloud_flow.py"]
    for step in set().union(*(used_in_code("step_id", within=t) for t in others)):
        flow = "options" if step in options_steps else "config"
        assert f"{flow}.step.{step}.title" in en or f"{flow}.step.{step}.description" in en, step
    # The entry's creation shows the toy's brain's key, this once.
    assert "{key}" in en["config.create_entry.default"]
    assert "{key}" in en["options.step.key.description"]
    for reason in set().union(*(used_in_code("reason", within=t) for t in others)) | {
        "single_instance_allowed",
        "already_configured",
    }:
        assert f"config.abort.{reason}" in en, reason
    for key in used_in_code("translation_key"):
        assert f"exceptions.{key}.message" in en, key
    for error in form_errors():
        assert f"config.error.{error}" in en, error
    # A cloud toy's subentry flow (cloud_flow.py): its steps, errors and aborts.
    subentry = "config_subentries.cloud_toy"
    assert en[f"{subentry}.entry_type"] and en[f"{subentry}.initiate_flow.user"]
    for step in used_in_code("step_id", within=cloud):
        assert f"{subentry}.step.{step}.title" in en or f"{subentry}.step.{step}.description" in en, step
    for action in used_in_code("progress_action", within=cloud):
        assert f"{subentry}.progress.{action}" in en, action
    for reason in used_in_code("reason", within=cloud) | {"reconfigure_successful"}:
        assert f"{subentry}.abort.{reason}" in en, reason
    for error in assigned_strings(cloud, "errors") | dict_strings(cloud, "ERRORS"):
        assert f"{subentry}.error.{error}" in en, error
    # The repair issues a cloud toy's channel raises (cloud_toys.py).
    for issue in dict_strings(ast.parse((INTEGRATION / "cloud_toys.py").read_text()), "ISSUES"):
        assert f"issues.{issue}.title" in en and f"issues.{issue}.description" in en, issue


def assigned_strings(tree: ast.AST, name: str) -> set[str]:
    """Every string constant assigned to an item of `name` (`errors["base"] = "..."`)."""
    return {
        node.value.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign)
        and isinstance(node.targets[0], ast.Subscript)
        and isinstance(node.targets[0].value, ast.Name)
        and node.targets[0].value.id == name
        and isinstance(node.value, ast.Constant)
    }


def dict_strings(tree: ast.AST, name: str) -> set[str]:
    """The string values of the module-level dict `name`."""
    found = next(
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name) and node.targets[0].id == name
    )
    assert isinstance(found, ast.Dict), name
    return {v.value for v in found.values if isinstance(v, ast.Constant)}


def form_errors() -> set[str]:
    """The error keys the config flow's prefix check returns."""
    tree = ast.parse((INTEGRATION / "config_flow.py").read_text())
    check = next(n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == "_prefix_error")
    found = {
        n.value.value
        for n in ast.walk(check)
        if isinstance(n, ast.Return) and isinstance(n.value, ast.Constant) and isinstance(n.value.value, str)
    }
    assert {"empty_prefix", "wildcard_prefix", "invalid_prefix"} <= found
    return found


def test_every_action_and_its_fields_have_an_english_name_and_description():
    """hassfest: services.yaml describes every action, and the translations name it."""
    import yaml

    services = yaml.safe_load((INTEGRATION / "services.yaml").read_text())
    en = translations("en")["services"]
    assert set(services) == set(en) == {"get_conversation", "delete_conversation"}
    for name, service in services.items():
        assert en[name]["name"] and en[name]["description"], name
        assert set(service["fields"]) == set(en[name]["fields"]), name
        for field in service["fields"].values():
            assert field["selector"], name
        for field in en[name]["fields"].values():
            assert field["name"] and field["description"], name


@pytest.mark.parametrize("language", ["zh-Hans"])
def test_every_language_has_the_same_texts_and_placeholders_as_english(language):
    en, other = flatten(translations("en")), flatten(translations(language))
    assert set(other) == set(en)
    for key, text in en.items():
        assert set(re.findall(r"{(\w+)}", other[key])) == set(re.findall(r"{(\w+)}", text)), key


def test_hacs_json_is_valid_and_asks_for_the_same_home_assistant_as_the_add_on():
    hacs = json.loads((REPOSITORY / "hacs.json").read_text())
    HACS(hacs)
    addon = (REPOSITORY / "addon" / "config.yaml").read_text()
    assert f'homeassistant: "{hacs["homeassistant"]}"' in addon
    assert [p.name for p in (REPOSITORY / "custom_components").iterdir()] == ["folotoy"], "HACS takes one integration"


# The images Home Assistant serves from a custom integration's brand/ folder (2026.3 on, its
# `brands` integration: ALLOWED_IMAGES in components/brands/const.py), in place of
# home-assistant/brands; a missing one falls back (dark_icon.png and logo.png to icon.png).
# The brands repository's rules: square icons of 256 (and 512 for hDPI) pixels, PNG,
# transparent background, trimmed.
BRAND_IMAGES = {
    f"{dark}{kind}{hdpi}.png" for dark in ("", "dark_") for kind in ("icon", "logo") for hdpi in ("", "@2x")
}
ICON_SIZES = {"icon.png": 256, "icon@2x.png": 512, "dark_icon.png": 256, "dark_icon@2x.png": 512}


def test_brand_images_are_the_ones_home_assistant_serves():
    brand = CORE_COMPONENTS / "brands" / "const.py"
    if brand.exists():  # Home Assistant 2026.3 and later
        from homeassistant.components.brands.const import ALLOWED_IMAGES

        assert set(ALLOWED_IMAGES) == BRAND_IMAGES
    found = {p.name for p in (INTEGRATION / "brand").iterdir()}
    assert {"icon.png", "icon@2x.png"} <= found, found
    assert found <= BRAND_IMAGES, f"Home Assistant serves none of {found - BRAND_IMAGES}"


def test_brand_icons_are_square_transparent_trimmed_pngs_of_their_size():
    icons = sorted((INTEGRATION / "brand").glob("*icon*.png"))
    assert icons, "no brand icons"
    for path in icons:
        size = ICON_SIZES.get(path.name)
        assert size, f"{path.name}: not an icon Home Assistant serves"
        with Image.open(path) as image:
            assert image.format == "PNG", (path.name, image.format)
            assert image.size == (size, size), (path.name, image.size)
            assert image.mode == "RGBA", f"{path.name}: a transparent background needs an alpha channel"
            alpha = image.getchannel("A")
            corners = [(0, 0), (size - 1, 0), (0, size - 1), (size - 1, size - 1)]
            assert all(alpha.getpixel(c) == 0 for c in corners), f"{path.name}: the background is transparent"
            assert alpha.getbbox() == (0, 0, size, size), f"{path.name}: trimmed, the mark reaches every edge"
