"""The page ``dgx-music serve`` shows at ``/``: static HTML, CSS and JavaScript modules in
``static/`` (no build step, nothing loaded from another origin). It talks to the service
through the public HTTP API v1 only, like any other client.
"""

from pathlib import Path

__all__ = ["STATIC_DIR"]

STATIC_DIR = Path(__file__).resolve().parent / "static"
