"""The catalog's model rules: every model has one for every feature, each dated and sourced, and
``as_of`` selects the rules in force at a date."""

import datetime as dt
import re

import pytest

from livekit_lab import catalog, config
from livekit_lab.errors import ConfigError

SOURCE = re.compile(r"(https?://|[\w.]+\.(dev|com|fr)/|[\w.-]+/[\w.-]+#\d+)")


def test_every_model_has_a_dated_sourced_rule_for_every_feature():
    for m in catalog.models():
        assert [r.feature for r in m.rules] == list(catalog.FEATURES), m.name
        for r in m.rules:
            dt.date.fromisoformat(r.since)
            assert SOURCE.search(r.source), (m.name, r)
            value = m.language_rule if r.feature == "language_code" else getattr(m, r.feature)
            assert value == r.value


def test_as_of_picks_the_rule_in_force():
    now = catalog.model("gemini-3.1-flash-live-preview")
    launch = catalog.model("gemini-3.1-flash-live-preview", as_of="2026-03-27")
    assert (now.client_content, launch.client_content) == ("session", "initial")
    assert launch.rule("client_content").since == "2026-03-26" and "livekit/agents#5251" in launch.rule("client_content").source
    with pytest.raises(ConfigError):  # 3.8 Live did not exist yet
        catalog.model("gemini-3.8-live", as_of="2026-03-27")


@pytest.mark.parametrize("model,backend,expect", [
    ("gemini-3.8-live", "gemini", ("removed", "always", "none", "async_default", "TURN_INCLUDES_AUDIO_ACTIVITY_AND_ALL_VIDEO")),
    ("gemini-3.8-live", "vertex", ("default_on", "default_on", "none", "async_default", "TURN_INCLUDES_AUDIO_ACTIVITY_AND_ALL_VIDEO")),
    ("gemini-3.8-live-extended-thinking", "gemini", ("removed", "always", "extended", "async_only", "TURN_INCLUDES_AUDIO_ACTIVITY_AND_ALL_VIDEO")),
    ("gemini-3.1-flash-live-preview", "gemini", ("no", "no", "level", "sync", "TURN_INCLUDES_AUDIO_ACTIVITY_AND_ALL_VIDEO")),
    ("gemini-2.5-flash-native-audio-preview-12-2025", "gemini", ("v1alpha", "v1alpha", "budget", "sync_async", "TURN_INCLUDES_ONLY_ACTIVITY")),
])
def test_model_rules_as_the_model_pages_say(model, backend, expect):
    m = catalog.model(model, backend=backend)
    assert (m.affective, m.proactive, m.thinking, m.tools, m.turn_coverage) == expect


def test_client_refuses_affective_on_38_gemini_api_before_connecting():
    with pytest.raises(ConfigError, match="removed"):
        config.build(config.LiveOptions(model="gemini-3.8-live", affective=True))
    _, cfg = config.build(config.LiveOptions(model="gemini-3.8-live", proactive=True))
    assert cfg.proactivity is None  # always on: not sent


def test_gemini_api_flags_exist_on_v1alpha_only_whatever_the_model_rule():
    """3.8's proactive audio is "always" on, but the Gemini API's setup has no ``proactivity`` field off
    v1alpha (the emulator's `setup_schema`; cookbook#775): the client must refuse it before connecting,
    as the service would close 1007. Notebook 07 probes the same cells against the emulator."""
    m = catalog.model("gemini-3.8-live")
    assert m.accepts("proactive", "v1alpha") and not m.accepts("proactive", "v1beta")
    with pytest.raises(ConfigError, match="v1alpha' only"):
        catalog.check_features(m, "v1beta", proactive=True)
    catalog.check_features(m, "v1alpha", proactive=True)


def test_client_sends_a_thinking_level_only_to_the_extended_thinking_model():
    """The extended-thinking model refuses a setup without thinking_level (the catalog's source): the
    client sends the lowest level it takes; 3.8 Live refuses any thinking_config, so none is sent."""
    _, cfg = config.build(config.LiveOptions(model="gemini-3.8-live-extended-thinking"))
    assert cfg.thinking_config.thinking_level == "LOW"
    _, cfg = config.build(config.LiveOptions(model="gemini-3.8-live"))
    assert cfg.thinking_config is None


def test_required_setup_is_the_one_definition_of_what_a_model_cannot_start_without():
    """catalog.required_setup feeds both config.build and notebook 07's raw probes."""
    assert catalog.required_setup(catalog.model("gemini-3.8-live-extended-thinking")) == {
        "thinking_config": {"thinking_level": "LOW"}}
    assert all(catalog.required_setup(catalog.model(m)) == {} for m in catalog.model_names("gemini")
               if m != "gemini-3.8-live-extended-thinking")
