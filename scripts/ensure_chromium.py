"""Install Debian's headless Chromium for the browser tests when it is missing.

Runs only as root on a Debian-like system; elsewhere it says what to install and the
browser tests skip with that reason.
"""

import os
import shutil
import subprocess
import sys

CHROMIUM = "/usr/bin/chromium"


def main():
    if os.path.exists(CHROMIUM):
        return 0
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        # Not ours to install: the browser tests skip and say so.
        print(f"{CHROMIUM} not found: install Debian's 'chromium' package to run the browser tests.")
        return 0
    print("Installing chromium for the browser tests (apt-get)...")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", "chromium", "chromium-driver"], check=True, env=env)
    return 0


if __name__ == "__main__":
    sys.exit(main())
