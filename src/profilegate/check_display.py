"""What ``profilegate rebuild-aggregates`` shows: the profiles it changed and what in them,
and, with ``--check``, every difference from the event log."""

from collections.abc import Iterator

from profilegate.domain.drift import Mismatch
from profilegate.service.aggregate_check import Checked, Subject
from profilegate.service.rebuild import Rebuilt

SHOWN_CHANGES = 20  # changed profiles listed without --verbose


def difference_lines(checked: Checked) -> Iterator[str]:
    """One tab-separated line per difference: subject, id, metric, live value, value from the log."""
    for found in checked.differences:
        yield "\t".join((found.subject.value, found.id, found.metric, found.live, found.logged))


def check_summary(checked: Checked) -> str:
    profiles, days = checked.differing(Subject.PROFILE), checked.differing(Subject.SHOP_DAY)
    summary = (
        f"checked {checked.profiles} profiles and {checked.days} shop day rollups against "
        f"{checked.events} logged events: "
    )
    if not checked.differences:
        return summary + "no difference"
    where = f"{len(profiles)} profiles and {len(days)} shop day rollups"
    return summary + f"{len(checked.differences)} differences, in {where}"


def change_lines(rebuilt: Rebuilt, *, verbose: bool) -> Iterator[str]:
    """A line per changed profile naming the metrics that changed (with ``verbose``, a line
    per metric with the value before and after); without it, at most ``SHOWN_CHANGES``."""
    shown = sorted(rebuilt.changes.items())
    for profile_id, mismatches in shown if verbose else shown[:SHOWN_CHANGES]:
        if not verbose:
            yield f"changed profile {profile_id}: {_metrics(mismatches)}"
            continue
        for mismatch in mismatches:
            yield f"changed profile {profile_id}: {mismatch.metric}: {mismatch.live} -> {mismatch.logged}"
    if not verbose and len(shown) > SHOWN_CHANGES:
        yield f"... and {len(shown) - SHOWN_CHANGES} more changed profiles (--verbose lists them all)"


def _metrics(mismatches: list[Mismatch]) -> str:
    names = [m.metric for m in mismatches]
    return ", ".join(names[:10]) + (f" and {len(names) - 10} more" if len(names) > 10 else "")
