"""The audit trail's budget for refusals: an address cannot make the service write at will."""

from __future__ import annotations

from vmimage.core import audit


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def refusal(address: str, kind: str = audit.SIGNATURE) -> audit.AuditEvent:
    return audit.event(kind, "AK", outcome=audit.FAILURE, origin=audit.Origin(address=address))


def test_an_address_beyond_its_budget_is_counted_and_the_count_written_with_its_next_event():
    clock = Clock()
    budget = audit.RefusalBudget(per_minute=3, clock=clock)
    assert [budget.admit(refusal("10.0.0.1")) for _ in range(5)] == [(True, 0)] * 3 + [(False, 0)] * 2
    assert budget.admit(refusal("10.0.0.2")) == (True, 0)            # other addresses keep theirs
    assert budget.admit(refusal("10.0.0.1", audit.LOGIN)) == (True, 0)   # and other kinds
    clock.now += 60
    assert budget.admit(refusal("10.0.0.1")) == (True, 2)            # the two unwritten, told once
    assert budget.admit(refusal("10.0.0.1")) == (True, 0)


def test_the_addresses_remembered_are_bounded():
    budget = audit.RefusalBudget(per_minute=1, addresses=100, clock=Clock())
    for i in range(1000):
        budget.admit(refusal(f"10.0.{i // 256}.{i % 256}"))
    assert len(budget._windows) == 100


def test_record_writes_the_count_beside_the_event():
    written: list[audit.AuditEvent] = []

    class Tx:
        class audit:   # noqa: N801 - the unit of work's repository attribute
            add = staticmethod(written.append)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def commit(self):
            pass

    clock = Clock()
    budget = audit.RefusalBudget(per_minute=1, clock=clock)
    for _ in range(4):
        audit.record(lambda write=False: Tx(), refusal("10.0.0.9"), budget)
    clock.now += 61
    audit.record(lambda write=False: Tx(), refusal("10.0.0.9"), budget)
    assert [e.detail for e in written] == [None, "not recorded: 3", None]
