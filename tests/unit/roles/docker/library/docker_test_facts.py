#!/usr/bin/python
"""Test-only module: reports the facts it is given, as if they had been gathered.

The render tests use it to make localhost look like Debian 12, Ubuntu 24.04, Amazon Linux 2023...
so the docker role's plan can be worked out for every OS without such a host.
"""

from __future__ import annotations

from ansible.module_utils.basic import AnsibleModule


def main():
    module = AnsibleModule(
        argument_spec={"facts": {"type": "dict", "required": True}},
        supports_check_mode=True,
    )
    facts = {"ansible_" + key: value for key, value in module.params["facts"].items()}
    module.exit_json(changed=False, ansible_facts=facts)


if __name__ == "__main__":
    main()
