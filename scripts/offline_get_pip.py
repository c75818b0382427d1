"""Offline stand-in for the pip bootstrap script that `ansible-test --requirements` downloads.

ansible-test fetches get-pip.py from a host this workplace cannot reach. This script does the same
job with what is at hand: pip bundled with Python (ensurepip), then `pip install` of the arguments
ansible-test passes (e.g. pip==24.2) from the package index. scripts/setup.sh seeds it into
ansible-test's cache only when no real bootstrap script is cached there.
"""

import ensurepip
import os
import subprocess
import sys

ensurepip.bootstrap(upgrade=True)
# ansible-test runs pip with a clean environment; make this venv's pip trust the system CA bundle
# (it includes any TLS-inspecting proxy's CA), as every other pip on the machine does.
CA = "/etc/ssl/certs/ca-certificates.crt"
if os.path.exists(CA):
    with open(os.path.join(sys.prefix, "pip.conf"), "w") as conf:
        conf.write(f"[global]\ncert = {CA}\n")
    os.environ["PIP_CERT"] = CA
args = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
sys.exit(subprocess.call([sys.executable, "-m", "pip", "install", "--disable-pip-version-check", *args]))
