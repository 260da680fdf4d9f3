"""Names shared by the FoloToy integration's modules."""

from typing import Final

DOMAIN: Final = "folotoy"

CONF_DISCOVERY_PREFIX: Final = "discovery_prefix"
DEFAULT_PREFIX: Final = "homeassistant"

# The bridge publishes each toy's media player here, under a component name Home
# Assistant's MQTT integration never subscribes to (it has no MQTT media player).
PLAYER_CONFIG_TOPIC: Final = "{prefix}/folotoy/+/media_player/config"
# ...and its own config, whether the toys have players or not (+: the bridge's node).
BRIDGE_CONFIG_TOPIC: Final = "{prefix}/folotoy/+/bridge/config"

# Every config the bridge publishes names it as its origin; other configs on the
# same topics are not the bridge's and are ignored.
BRIDGE_ORIGIN: Final = "folotoy-ha-bridge"

# The chat endpoint's options (see brain.py): which conversation agent answers the toys,
# and what a toy says instead of an answer that holds a watch word.
CONF_AGENT: Final = "agent_id"
CONF_SAFE_SENTENCE: Final = "safe_sentence"
DEFAULT_AGENT: Final = "conversation.home_assistant"
# Whether a cloud toy says a short acknowledgment when its answer is slow to come (cloud_brain.py).
CONF_ACKNOWLEDGE: Final = "acknowledge"
# What the agent is told with every question of a cloud toy, as a role's prompt is.
CONF_INSTRUCTIONS: Final = "instructions"
# The toy's brain's own key (in the entry's data): made by the integration, shown once.
CONF_BRAIN_KEY: Final = "brain_key"

# A FoloToy cloud toy is a subentry of this type (cloud_toys.py): its serial number and key
# (a secret: never logged, never published, only sent to the broker below) and the broker
# of FoloToy's cloud it logs in to.
SUBENTRY_CLOUD_TOY: Final = "cloud_toy"
CONF_SN: Final = "sn"
CONF_KEY: Final = "key"
CONF_HOST: Final = "host"
CONF_PORT: Final = "port"
# FoloToy's pairing service; another one can be named in the pairing step in advanced mode
# (the tests' stand-in).
CONF_PAIRING_URL: Final = "pairing_url"
DEFAULT_PAIRING_URL: Final = "https://pair.folotoy.cn"
