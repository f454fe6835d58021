"""pydelayed's default broker: go-delayed's Redis protocol, with its bugs fixed and new keys beside it."""

from .broker import RedisBroker
from .keys import QueueKeys

__all__ = ["QueueKeys", "RedisBroker"]
