"""Tier (b) closes by checking that the node tests above executed every declared node."""

from comfyui_env import EXECUTED, declared_node_ids


def test_every_node_was_executed(node_classes):
    missing = sorted(set(declared_node_ids()) - EXECUTED)
    assert not missing, f"no tier-(b) test executed: {missing}"
