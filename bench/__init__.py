"""pydelayed's benchmark (``bench/run.py``) and its peers (rq, huey, dramatiq, celery, delayed 1.2)."""
