"""Executors: where task functions run (thread, fork, subprocess, asyncio)."""
