"""Flow per distributor and instance: what is queued (sent to workers, or held back for the
distributor's fair share), running, waiting behind an earlier job, waiting for a Google quota,
retrying, or parked on its instance. The dashboard's overview and /metrics read it."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import false, func
from sqlmodel import Session, col, select

from bss.accounts import ALL
from bss.models import Distributor, Instance, Job, JobState

# The columns, in the order shown: "held" is a queued job not yet sent to the workers.
COLUMNS = (
    ("held", "Held for fair share"),
    ("queued", "Queued"),
    ("running", "Running"),
    ("waiting", "Behind an earlier job"),
    ("waiting_quota", "Waiting for quota"),
    ("retrying", "Retrying"),
    ("waiting_reauth", "Waiting for re-authentication"),
)
STATES = (
    JobState.QUEUED,
    JobState.RUNNING,
    JobState.WAITING,
    JobState.WAITING_QUOTA,
    JobState.RETRYING,
    JobState.WAITING_REAUTH,
)


@dataclass
class FlowRow:
    """One instance's jobs that have not ended, by where they are."""

    distributor: str
    distributor_slug: str
    instance: str
    instance_id: int
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.counts.values())


@dataclass
class DistributorFlow:
    """A distributor's instances, with their sums and its fair-share settings."""

    name: str
    slug: str
    weight: float
    max_in_flight: int | None
    rows: list[FlowRow] = field(default_factory=list)

    @property
    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for row in self.rows:
            for key, n in row.counts.items():
                out[key] = out.get(key, 0) + n
        return out

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def flow(session: Session, *, scope: int | None) -> list[DistributorFlow]:
    """Distributors that have jobs not ended, busiest first, each with its instances."""
    counts: dict[int, dict[str, int]] = {}
    # One query per state: each reads a range of the (state, instance_id) index.
    for state in STATES:
        # A queued job not yet sent to the workers is held for its distributor's fair share.
        held = col(Job.enqueued_at).is_(None) if state == JobState.QUEUED else false()
        query = (
            select(col(Job.instance_id), held.label("held"), func.count())
            .where(col(Job.state) == state)
            .group_by(col(Job.instance_id), "held")
        )
        if scope is not ALL:
            query = query.where(col(Job.distributor_id) == scope)
        for instance_id, is_held, n in session.exec(query).all():
            key = "held" if is_held else str(state)
            per = counts.setdefault(int(instance_id), {})
            per[key] = per.get(key, 0) + int(n)
    if not counts:
        return []
    found = session.exec(
        select(Instance, Distributor)
        .join(Distributor, col(Distributor.id) == col(Instance.distributor_id))
        .where(col(Instance.id).in_(list(counts)))
    ).all()
    out: dict[int, DistributorFlow] = {}
    for instance, distributor in found:
        group = out.setdefault(
            distributor.id or 0,
            DistributorFlow(
                distributor.name, distributor.slug, distributor.weight, distributor.max_in_flight
            ),
        )
        group.rows.append(
            FlowRow(
                distributor.name,
                distributor.slug,
                instance.name,
                instance.id or 0,
                counts[instance.id or 0],
            )
        )
    for group in out.values():
        group.rows.sort(key=lambda r: (-r.total, r.instance))
    return sorted(out.values(), key=lambda g: (-g.total, g.name))
