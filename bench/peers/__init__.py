"""The queues the benchmark compares, by name -> module defining ``PEER`` (a :class:`~.base.Peer`)."""

PEER_MODULES = {
    "pydelayed": "bench.peers.pydelayed_peer",
    # tracking and retries on (the rows above are the features-off figures)
    "pydelayed-features": "bench.peers.pydelayed_features_peer",
    "rq": "bench.peers.rq_peer",
    "huey": "bench.peers.huey_peer",
    "dramatiq": "bench.peers.dramatiq_peer",
    "celery": "bench.peers.celery_peer",
    "delayed12": "bench.peers.delayed12_peer",
}

__all__ = ["PEER_MODULES"]
