"""Chaos on a real Redis Cluster: workers serving ten queues spread over every shard are SIGKILLed at
random; then the same while a busy queue's slot moves to a fourth shard. Nothing may be lost."""

from __future__ import annotations

import pytest

from tests.chaos.cluster import ClusterChaosRun, cluster_settings
from tests.support.redis_cluster import LocalCluster, queues_on_every_node, require_cluster_tools, slot_of
from tests.support.redis_server import RedisServer


@pytest.mark.real_redis
@pytest.mark.timeout(120)
def test_no_task_is_lost_on_ten_queues_over_three_shards(redis_cluster: LocalCluster, real_redis: RedisServer) -> None:
    queues = queues_on_every_node(redis_cluster, 10, prefix="chaos")
    settings = cluster_settings(tasks=600, seconds=4.0)
    run = ClusterChaosRun(redis_cluster.url, real_redis.url, queues, settings)
    report = run.run()
    print(report.summary())
    assert report.enqueued == report.tasks
    assert report.kills >= settings.min_kills, "the run must really kill serving workers"
    assert report.lost == [], f"{len(report.lost)} task(s) never ran: {report.lost[:20]}\n{run.diagnose()}"
    assert report.dead_letters == 0
    assert report.duplicates <= report.kills
    assert _tracebacks(run) == []


def _tracebacks(run: ClusterChaosRun) -> list[str]:
    """Logs of the run's processes that hold a traceback (a process killed mid-line may end anywhere)."""
    return [path.name for path in run.log_dir.glob("*.log") if "Traceback" in path.read_text(errors="replace")]


@pytest.mark.real_redis
@pytest.mark.timeout(180)
def test_no_task_is_lost_while_a_queue_moves_to_a_new_shard(real_redis: RedisServer) -> None:
    require_cluster_tools()
    cluster = LocalCluster().start()
    try:
        queues = queues_on_every_node(cluster, 10, prefix="move")
        moved: list[int] = []

        def reshard() -> None:
            target = cluster.add_master()
            # A few keys at a time, with pauses: the workers meet ASK while the slot is split
            moved.append(cluster.move_slot(slot_of(queues[0]), target, batch=1, pause=0.05))

        run = ClusterChaosRun(cluster.url, real_redis.url, queues, cluster_settings(seconds=6.0), during=reshard)
        report = run.run()
        print(report.summary(), f"\nkeys moved with the slot of {queues[0]}: {moved}")
        assert moved, "the slot must have moved during the run"
        assert cluster.owner(slot_of(queues[0])) is cluster.nodes[3]
        assert report.lost == [], f"{len(report.lost)} task(s) never ran: {report.lost[:20]}\n{run.diagnose()}"
        assert report.dead_letters == 0
        assert report.duplicates <= report.kills
        assert _tracebacks(run) == [], "a worker or the sweeper met the reshard with a traceback"
    finally:
        cluster.cleanup()
