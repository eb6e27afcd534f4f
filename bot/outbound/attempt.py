"""One send attempt: what came of trying to send one claimed row, settled later with others."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from bot.graph.errors import GraphError
from storage.outbox import Claimed


class AttemptKind(StrEnum):
    SENT = "sent"  # Meta accepted it (with a wamid, unless a read receipt)
    ERROR = "error"  # Meta refused it or did not answer: the error decides what follows
    REFUSED = "refused"  # the consent check at send time said no: cancelled, never sent
    PACED = "paced"  # its recipient is being paced: due again after Meta's pause
    SKIPPED = "skipped"  # not tried (stopping, lease running out, storage or Redis away)


@dataclass(frozen=True, slots=True)
class Attempt:
    """What happened to one claimed row; settled later, together with others."""

    row: Claimed
    kind: AttemptKind
    wamid: str | None = None
    error: GraphError | None = None
    reason: str = ""
