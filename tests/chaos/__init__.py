"""Chaos harness: worker processes killed at random while a private Redis records every task run."""
