"""chunkline's server: an OpenAI-compatible endpoint in front of the Anthropic Messages API.

Importing this package needs none of the ``server`` extra (starlette, uvicorn, httpx); the app
itself is in `chunkline.server.app` (``create_app``, and ``app_from_env`` for ``--factory``).
"""

from __future__ import annotations

from .settings import ENVIRONMENT, Secret, Settings, SettingsError

__all__ = ["ENVIRONMENT", "Secret", "Settings", "SettingsError"]
