"""ansible.cfg keeps SSH host key checking on for every real inventory (secrets travel over SSH);
only the local test targets, whose keys are new on each start, turn it off in their own inventory."""

import configparser
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_host_key_checking_is_on():
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "ansible.cfg")
    assert cfg.getboolean("defaults", "host_key_checking") is True
    for section in cfg.sections():
        for name, value in cfg.items(section):
            assert "StrictHostKeyChecking=no" not in value, f"[{section}] {name} turns checking off for everyone"


def test_inventory_example_does_not_turn_it_off():
    assert "StrictHostKeyChecking" not in (ROOT / "inventory.example" / "hosts.ini").read_text()
