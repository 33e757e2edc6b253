"""Reading the instances' Prometheus metrics (each instance directly, not through the gateway)."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families

Samples = list[tuple[str, dict[str, str], float]]


async def scrape(client: httpx.AsyncClient, instance_url: str) -> Samples:
    response = await client.get(f"{instance_url}/metrics")
    response.raise_for_status()
    return [
        (sample.name, dict(sample.labels), float(sample.value))
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    ]


def total(samples: Samples, name: str, **labels: str) -> float:
    """Sum of a metric's samples whose labels include `labels` (a label value may be a prefix with '*')."""

    def matches(have: dict[str, str]) -> bool:
        for key, want in labels.items():
            value = have.get(key, "")
            if want.endswith("*") and value.startswith(want[:-1]):
                continue
            if value != want:
                return False
        return True

    return sum(value for sample_name, have, value in samples if sample_name == name and matches(have))
