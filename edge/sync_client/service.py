"""Enrollment, pushing the outbox and pulling the cloud's feeds.

The rules that make it safe, whatever fails and whenever a process dies:

* An event is marked sent only after the cloud's *signed* answer says it holds it
  (``acked_seq``), in one local transaction with the new high-water mark. A crash before that
  commit resends the batch; the cloud recognises every event by ``(store, seq, id)`` and answers
  from what it already applied, so nothing is applied twice.
* Batches are taken oldest first by sequence number and bounded in events and bytes.
* If the cloud says it holds less than the store thinks it sent (the cloud was restored from a
  backup), the store rewinds and sends again from the cloud's mark; if the cloud holds other
  events under this store's numbers (the *store* was restored from a backup), pushing halts with
  ``sequence_diverged`` until the store recovers onto a new stream, which HQ approves
  (:mod:`edge.sync_client.recovery`). Nothing is ever merged silently.
* A pulled page is applied in one transaction together with the feed's new cursor: a crash
  mid-apply leaves the old cursor and the old data, and the page is pulled again.
* Events the cloud quarantines are recorded here with the cloud's reason and the queue moves on.
"""

from __future__ import annotations

from edge.sync_client.link import Enrollment, Link, client_for, enroll, link_of
from edge.sync_client.pull import apply_page, pull_all, pull_feed
from edge.sync_client.push import PushReport, drain
from edge.sync_client.state import (
    HALTING_CODES,
    backoff_s,
    halted,
    may_attempt,
    record_failure,
    status,
    sync_state,
)

__all__ = [
    "HALTING_CODES",
    "Enrollment",
    "Link",
    "PushReport",
    "apply_page",
    "backoff_s",
    "client_for",
    "drain",
    "enroll",
    "halted",
    "link_of",
    "may_attempt",
    "pull_all",
    "pull_feed",
    "record_failure",
    "status",
    "sync_state",
]
