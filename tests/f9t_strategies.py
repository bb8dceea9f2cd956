"""Hypothesis strategies for what a client may put in InitF9t's f9t_config, shared by the rules'
unit test and the daemon's hostile-input walk."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from panoseti_appliance.ublox.values import all_key_names

KEY_NAMES = all_key_names()
UID = "DF03A241BC"
#: The settings of a chip's config besides cfg_key_settings.
SETTINGS = ("device", "f9t_uid", "baud", "apply_to_layers", "verify_layer", "position")


def struct_values(*, longest_text: int, max_leaves: int) -> st.SearchStrategy[Any]:
    """Values as a Struct delivers them: doubles (inf and nan too, and huge ones), strings (up to
    `longest_text` characters), bools, null, and lists and objects of those."""
    scalar = st.one_of(
        st.none(),
        st.booleans(),
        st.floats(),
        st.floats(min_value=1e15, max_value=1.7e308),
        st.integers(-(2**70), 2**70).map(float),
        st.text(max_size=30),
        st.integers(0, longest_text).map(lambda n: "0x" + "f" * n),
        st.sampled_from(
            [*KEY_NAMES[:50], "RAM", "bbr", "FLASH", "LLH", "ECEF", "0x10", UID, "/dev/ttyACM0"]
        ),
    )
    return st.recursive(
        scalar,
        lambda inner: st.one_of(
            st.lists(inner, max_size=4),
            st.dictionaries(st.sampled_from(["key", "value", "format", "lat_deg", "x_m"]), inner),
        ),
        max_leaves=max_leaves,
    )


def key_settings(value: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """cfg_key_settings: any value, or a list of entries that are values or key/value objects."""
    entry = st.one_of(
        value,
        st.fixed_dictionaries(
            {"key": st.one_of(st.sampled_from(KEY_NAMES), value), "value": value}
        ),
    )
    return st.one_of(value, st.lists(entry, max_size=6))
