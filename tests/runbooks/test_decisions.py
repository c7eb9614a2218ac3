"""A decision written between steps ("If the lag is still growing after 5 minutes, go to step
4; otherwise continue.", "**Decision:** ...", "If ...: / If ...:" branches) is read at the start
of the step it decides about: by the time it is due, the step before it is done and shown
folded. A remark on what a command printed stays with that command."""

from __future__ import annotations

from bot.runbooks.parser import parse_runbook

KAFKA_LAG = """\
# Kafka consumer lag: payments

## Meaning

The `payments` consumer group is falling behind the `payments.events` topic.

## Mitigation

1. Check the consumer group lag:
   ```
   kafka-consumer-groups --bootstrap-server kafka:9092 --describe --group payments
   ```
2. Scale the consumers to 12 replicas:
   ```
   kubectl -n payments scale deploy/payments-consumer --replicas=12
   ```

If the lag is still growing after 5 minutes, go to step 4; otherwise continue.

3. Watch the lag drain on the *Kafka / Consumer lag* dashboard.
4. Fail over the consumers to the secondary cluster (see *Failover* in the wiki).
"""

DB_CONNECTIONS = """\
# Database connections exhausted

## Impact

New requests to the orders API fail with `too many connections`.

## Diagnosis

Check how the connections are used:

```
psql -h orders-db -c "select state, count(*) from pg_stat_activity group by state"
```

**Decision:** if more than 90% of the connections are `idle in transaction`, go to *Kill idle
sessions*; otherwise skip it and go to *Raise the pool size*.

## Kill idle sessions

```
psql -h orders-db -c "select pg_terminate_backend(pid) from pg_stat_activity
  where state = 'idle in transaction'"
```

## Raise the pool size

Raise `default_pool_size` in `pgbouncer.ini` to 40 and reload pgbouncer.
"""

ERROR_RATE = """\
# High error rate after a deploy

## Mitigation

Check whether a deploy went out in the last hour:

```
kubectl -n api rollout history deploy/api
```

If a deploy went out in the last hour: roll it back.

If nothing was deployed: page the owning team in #api-oncall instead.

Roll back the deploy:

```
kubectl -n api rollout undo deploy/api
```

Watch the 5xx rate on the API dashboard:

```
curl -s https://grafana.example.com/api/dashboards/uid/api-errors
```
"""


def step(runbook_text: str, title: str) -> str:
    runbook = parse_runbook(runbook_text)
    return next(s.markdown for s in runbook.steps if s.title.startswith(title))


def test_a_decision_between_numbered_items_opens_the_item_it_decides_about() -> None:
    runbook = parse_runbook(KAFKA_LAG)

    assert [s.title for s in runbook.steps] == [
        "Check the consumer group lag",
        "Scale the consumers to 12 replicas",
        "Watch the lag drain on the Kafka / Consumer lag dashboard.",
        "Fail over the consumers to the secondary cluster (see Failover in the wiki).",
    ]
    scale, watch = runbook.steps[1], runbook.steps[2]
    assert "go to step 4" not in scale.markdown
    assert watch.markdown.startswith("If the lag is still growing after 5 minutes, go to step 4")
    assert watch.markdown.endswith("Watch the lag drain on the *Kafka / Consumer lag* dashboard.")
    assert watch.line == KAFKA_LAG.splitlines().index(watch.markdown.splitlines()[0]) + 1


def test_a_decision_ending_a_section_opens_the_next_step() -> None:
    runbook = parse_runbook(DB_CONNECTIONS)

    diagnosis, kill, pool = runbook.steps
    assert "Decision" not in diagnosis.markdown
    assert diagnosis.markdown.rstrip().endswith("```")
    assert kill.title == "Kill idle sessions"
    assert kill.markdown.startswith("**Decision:** if more than 90% of the connections")
    assert "pg_terminate_backend" in kill.markdown
    assert pool.markdown.startswith("Raise `default_pool_size`")


def test_branches_between_commands_go_with_the_command_they_decide_about() -> None:
    runbook = parse_runbook(ERROR_RATE)

    assert [s.title for s in runbook.steps] == [
        "Check whether a deploy went out in the last hour",
        "Roll back the deploy",
        "Watch the 5xx rate on the API dashboard",
    ]
    check, rollback, _ = runbook.steps
    assert "If" not in check.markdown
    assert rollback.markdown.startswith(
        "If a deploy went out in the last hour: roll it back.\n\n"
        "If nothing was deployed: page the owning team in #api-oncall instead.\n\n"
        "Roll back the deploy:"
    )


def test_a_remark_on_a_command_stays_with_it() -> None:
    text = """\
# Disk full

## Mitigation

1. Find the largest directories:
   ```
   du -xh / --max-depth=2 | sort -rh | head -20
   ```

If `du` is slow, run it on `/var` only.

2. Delete rotated logs older than 7 days:
   ```
   find /var/log -name '*.gz' -mtime +7 -delete
   ```
"""
    runbook = parse_runbook(text)

    find, delete = runbook.steps
    assert find.markdown.endswith("If `du` is slow, run it on `/var` only.")
    assert delete.markdown.startswith("Delete rotated logs")


def test_a_decision_after_the_last_step_stays_there() -> None:
    text = KAFKA_LAG.split("\n3. ")[0].replace("go to step 4", "declare a SEV2")
    runbook = parse_runbook(
        text + "\n## Links\n\n- [Kafka dashboard](https://grafana.example.com/d/kafka)\n"
    )

    assert runbook.steps[-1].markdown.endswith(
        "If the lag is still growing after 5 minutes, declare a SEV2; otherwise continue."
    )
    assert [c.title for c in runbook.context] == ["Meaning", "Links"]


def test_a_decision_is_not_carried_into_another_alerts_section() -> None:
    text = """\
# Payments alerts

## Alert: PaymentsQueueGrowing

### Mitigation

Scale the workers:

```
kubectl -n payments scale deploy/payments-worker --replicas=8
```

If the queue is still growing after 10 minutes, go to the next step; otherwise stop here.

## Alert: PaymentsHighErrorRate

### Mitigation

```
kubectl -n payments rollout undo deploy/payments-api
```
"""
    runbook = parse_runbook(text)

    queue, errors = runbook.steps
    assert queue.markdown.endswith("otherwise stop here.")
    assert errors.markdown.startswith("```")


REDIS_STEPS = """\
# Redis primary down

## Recovery

**Step 1:** Check that the primary answers:

```
redis-cli -h redis-primary ping
```

If it answers `PONG`, go to Step 3; otherwise continue with Step 2.

**Step 2:** Promote the replica:

```
redis-cli -h redis-replica-1 replicaof no one
```

**Step 3:** Watch the connected clients on the Redis dashboard.
"""


def test_a_decision_between_numbered_step_paragraphs_opens_the_next_one() -> None:
    runbook = parse_runbook(REDIS_STEPS)

    check, promote, watch = runbook.steps
    assert "PONG" not in check.markdown
    assert promote.markdown.startswith("If it answers `PONG`, go to Step 3")
    assert "replicaof no one" in promote.markdown
    assert watch.title == "Watch the connected clients on the Redis dashboard."


def test_a_decision_under_a_bold_step_title_opens_the_next_step() -> None:
    text = (
        REDIS_STEPS.replace("**Step 1:** Check that the primary answers:", "**Step 1: Ping**")
        .replace("**Step 2:** Promote the replica:", "**Step 2: Promote the replica**")
        .replace("**Step 3:** Watch", "**Step 3: Verify**\n\nWatch")
    )
    runbook = parse_runbook(text)

    ping, promote, verify = runbook.steps
    assert (ping.title, promote.title, verify.title) == ("Ping", "Promote the replica", "Verify")
    assert ping.markdown.rstrip().endswith("```")
    assert promote.markdown.startswith("If it answers `PONG`, go to Step 3")
