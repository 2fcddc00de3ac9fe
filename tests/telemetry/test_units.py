"""Readings travel from the gateway to the tables as whole units: the conversion is the
decimal one the tables have always applied, and the bus form reads back unchanged."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from mornet.db import scaled_units
from mornet.telemetry.consumers import _batches_of
from mornet.telemetry.schemas import (
    NormalisedBatch,
    NormalisedBundle,
    NormalisedReading,
    UnitBatch,
    WireReading,
    encode_bundle,
)

measures = st.decimals(min_value=0, max_value=Decimal("1e12"), places=9)


@given(
    energy=measures,
    power=measures,
    voltage=measures,
    current=measures,
    vendor=st.booleans(),
)
def test_a_wire_reading_in_units_is_its_rounded_decimal_scaled(
    energy: Decimal, power: Decimal, voltage: Decimal, current: Decimal, vendor: bool
) -> None:
    fields = (
        {"energy_kwh": str(energy / 1000), "power_mw": str(power * 1000)}
        if vendor
        else {"energy_wh": str(energy), "power_w": str(power)}
    )
    wire = WireReading.model_validate(
        {
            "device_id": "plug-1",
            "resource": "E",
            "ts": "2026-11-01T10:00:00+03:00",
            "seq": 5,
            "voltage_v": str(voltage),
            "current_a": str(current),
            **fields,
        }
    )
    decimal = NormalisedReading.of(wire)  # what the tables stored before, rounded half-even
    units = wire.in_units()
    assert (units.counter, units.power, units.voltage, units.current) == (
        scaled_units(decimal.counter, 6),
        scaled_units(decimal.power_w, 3),
        scaled_units(decimal.voltage_v, 3),
        scaled_units(decimal.current_a, 4),
    )
    assert (units.device_id, units.resource, units.ts, units.seq) == (
        "plug-1",
        "E",
        datetime(2026, 11, 1, 7, tzinfo=UTC),
        5,
    )


def test_half_units_round_to_even() -> None:
    def counter_of(energy_wh: str) -> int:
        reading = {"device_id": "p", "resource": "E", "ts": "2026-11-01T10:00:00Z", "seq": 1}
        return WireReading.model_validate({**reading, "energy_wh": energy_wh}).in_units().counter

    # 10^-6 kWh is 0.001 Wh: a half of it rounds to the even neighbour.
    assert [counter_of("0.0005"), counter_of("0.0015"), counter_of("0.0025")] == [0, 2, 2]


def _decimal_batch() -> NormalisedBatch:
    return NormalisedBatch(
        household_id=uuid.uuid4(),
        agent_id=uuid.uuid4(),
        readings=[
            NormalisedReading(
                device_id=f"plug-{seq % 3}",
                resource="E",
                ts=datetime(2026, 11, 1, 10, seq, tzinfo=UTC),
                seq=seq,
                counter=Decimal(seq) * Decimal("1.234567"),
                power_w=Decimal("100.5") if seq % 2 else None,
                voltage_v=Decimal("230.125"),
                current_a=None,
            )
            for seq in range(20)
        ],
    )


def test_the_bus_form_reads_back_unchanged_and_the_decimal_forms_still_read() -> None:
    batches = [_decimal_batch(), _decimal_batch()]
    in_units = [batch.in_units() for batch in batches]
    assert _batches_of(encode_bundle(in_units)) == in_units
    # What gateways sent before units: a bundle of decimal batches, or one batch.
    assert _batches_of(NormalisedBundle(batches=batches).model_dump_json().encode()) == in_units
    assert _batches_of(batches[0].model_dump_json().encode()) == in_units[:1]


def test_a_bus_message_with_a_negative_or_oversized_quantity_is_unprocessable() -> None:
    import json

    import pytest

    from mornet.bus import Unprocessable

    good = json.loads(encode_bundle([_decimal_batch().in_units()]))
    for value in (-1, 2**63, "12", 1.5):
        bad = json.loads(json.dumps(good))
        bad["batches"][0]["readings"][0][4] = value
        with pytest.raises(Unprocessable, match="not a normalised batch or bundle"):
            _batches_of(json.dumps(bad).encode())


def test_unit_batches_compare_by_value() -> None:
    batch = _decimal_batch()
    assert batch.in_units() == UnitBatch(
        batch.household_id, batch.agent_id, batch.in_units().readings
    )


def test_the_benchmark_load_writes_exactly_what_an_agent_sends() -> None:
    """The ingest benchmark writes its messages without the JSON encoder; they must be the
    bytes an agent sends, or the gateway would measure its slower, general path."""
    import json

    from mornet.bench.ingest import _signed
    from mornet.wire.telemetry import payload_signature_valid, private_key, signed_payload

    key = private_key("bench-secret")
    agent_id = str(uuid.uuid4())
    payload = _signed(agent_id, key, "step1", "2026-11-01T10:00:00+00:00", 40, 3, 2)
    message = json.loads(payload)
    del message["sig"]
    assert payload == signed_payload(message, key)
    assert payload_signature_valid(payload, key.public_key())
    assert not payload_signature_valid(payload.replace(b'"seq":41', b'"seq":42'), key.public_key())
