"""`make run`: the web server and one background worker, stopped together.

The worker takes tasks from the broker folder (no Redis needed) and also runs the periodic
sweep, so requests only queue work; embedding and index rebuilds happen here, beside them.
Usage: python -m scripts.run_embedded [HOST:PORT]
"""

import os
import signal
import subprocess
import sys
from pathlib import Path

BIN = Path(sys.executable).parent


def main(argv):
    address = argv[1] if len(argv) > 1 else "127.0.0.1:8000"
    data_dir = Path(os.environ.get("DATA_DIR", "var"))
    data_dir.mkdir(parents=True, exist_ok=True)
    worker = subprocess.Popen(
        [
            str(BIN / "celery"), "-A", "config", "worker", "--beat", "--pool=solo", "--loglevel=INFO",
            f"--schedule={data_dir / 'celerybeat-schedule'}",
        ]
    )  # fmt: skip
    web = subprocess.Popen([sys.executable, "manage.py", "runserver", address])
    processes = [web, worker]
    try:
        # Whichever stops first (Ctrl-C, a crash) takes the other one with it.
        while all(process.poll() is None for process in processes):
            try:
                web.wait(timeout=1)
            except subprocess.TimeoutExpired:
                pass
    except KeyboardInterrupt:
        pass
    finally:
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
    return web.returncode or 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
