"""The live pricer: snapshots survive a restart, and only belong to their tariff."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from tariff_cases import BERLIN, MONDAY, example, local, trace

from plugpay.domain.tariff import IncrementalPricer, PricerStateError, price_session


def fed(name: str, count: int) -> IncrementalPricer:
    samples = trace(local(MONDAY, 16, 50), [(0, 0, True)] + [(1, 180, True)] * count)
    pricer = IncrementalPricer(example(name), BERLIN)
    for sample in samples:
        pricer.add(sample)
    return pricer


def test_a_snapshot_is_plain_json_and_resumes_exactly() -> None:
    tariff = example("tariff_14_step_size.json")
    samples = trace(local(MONDAY, 16, 50), [(0, 0, True)] + [(1, 180, True)] * 30)
    pricer = IncrementalPricer(tariff, BERLIN)
    for sample in samples[:12]:
        pricer.add(sample)
    state = json.loads(json.dumps(pricer.to_state()))
    resumed = IncrementalPricer.from_state(tariff, "Europe/Berlin", state)
    assert resumed.breakdown() == pricer.breakdown()
    for sample in samples[12:]:
        resumed.add(sample)
    assert resumed.breakdown() == price_session(tariff, samples, BERLIN)
    assert resumed.energy_wh == 30 * 180
    assert resumed.last_at == samples[-1].at


def test_breakdown_does_not_change_the_pricer() -> None:
    pricer = fed("tariff_14_step_size.json", 7)
    first = pricer.breakdown()
    assert pricer.breakdown() == first
    assert pricer.to_state() == fed("tariff_14_step_size.json", 7).to_state()


def test_a_snapshot_belongs_to_its_tariff() -> None:
    state = fed("tariff_14_step_size.json", 3).to_state()
    with pytest.raises(PricerStateError, match="belongs to tariff '22'"):
        IncrementalPricer.from_state(example("tariff_1_simple_2hour.json"), BERLIN, state)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda s: s.pop("usage"), "damaged pricer state"),
        (lambda s: s.update(version=99), "unsupported pricer state version"),
        (lambda s: s.update(last_time=42), "names component 42"),
        (lambda s: s.update(usage=[[9, 1]]), "damaged pricer state"),
        (lambda s: s.update(started_at="yesterday"), "damaged pricer state"),
    ],
)
def test_a_damaged_snapshot_is_refused(change, message: str) -> None:  # type: ignore[no-untyped-def]
    state = fed("tariff_14_step_size.json", 3).to_state()
    change(state)
    with pytest.raises(PricerStateError, match=message):
        IncrementalPricer.from_state(example("tariff_14_step_size.json"), BERLIN, state)


def test_an_empty_pricer_costs_nothing_and_has_no_time() -> None:
    pricer = IncrementalPricer(example("tariff_8_simple_025kwh.json"), BERLIN)
    assert pricer.last_at is None
    assert pricer.breakdown().total_excl_vat == 0
    state = pricer.to_state()
    again = IncrementalPricer.from_state(example("tariff_8_simple_025kwh.json"), BERLIN, state)
    start = local(MONDAY, 10)
    again.add(trace(start, [(0, 5, True)])[0])
    again.add(trace(start + timedelta(minutes=5), [(0, 1005, False)])[0])
    assert str(again.breakdown().total_excl_vat) == "0.25"
