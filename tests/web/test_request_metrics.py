"""/metrics: latency by method, route template and status (bounded labels), process and build info."""

from __future__ import annotations

import platform

from prometheus_client.parser import text_string_to_metric_families

from reservekit import __version__
from tests.web.conftest import Caller, Client

LATENCY = "reservekit_http_request_duration_seconds"


async def scrape(client: Client) -> dict[str, list[tuple[str, dict[str, str], float]]]:
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers.get_list("content-type") == ["text/plain; version=0.0.4; charset=utf-8"]
    families: dict[str, list[tuple[str, dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(response.text):
        families[family.name] = [(s.name, s.labels, s.value) for s in family.samples]
    return families


def counts(families: dict[str, list[tuple[str, dict[str, str], float]]]) -> dict[tuple[str, str, str], float]:
    return {
        (labels["method"], labels["route"], labels["status"]): value
        for name, labels, value in families[LATENCY]
        if name == f"{LATENCY}_count"
    }


async def test_latency_is_counted_by_route_template_and_status(client: Client, acme: Caller) -> None:
    for _ in range(3):
        assert (await client.get("/v1/services", headers=acme.headers)).status_code == 200
    assert (await client.get(f"/v1/api-keys/{acme.key_id}", headers=acme.headers)).status_code == 200
    assert (await client.get("/v1/api-keys/key_nope", headers=acme.headers)).status_code == 404
    assert (await client.get("/v1/services")).status_code == 401
    seen = counts(await scrape(client))
    assert seen[("GET", "/v1/services", "200")] == 3
    assert seen[("GET", "/v1/services", "401")] == 1
    assert seen[("GET", "/v1/api-keys/{key_id}", "200")] == 1
    assert seen[("GET", "/v1/api-keys/{key_id}", "404")] == 1
    assert not any(acme.key_id in route for _, route, _ in seen)


async def test_unknown_routes_and_methods_collapse_to_one_label_each(client: Client) -> None:
    for n in range(25):
        await client.get(f"/probe/{n}/wp-login.php")
        await client.request(f"VERB{n}", "/healthz")
    seen = counts(await scrape(client))
    unmatched = {key: value for key, value in seen.items() if key[1] == "unmatched"}
    # A method no route knows is a 405 before routing ends, so it is unmatched as well.
    assert unmatched == {("GET", "unmatched", "404"): 25, ("OTHER", "unmatched", "405"): 25}
    assert all(route in {"unmatched", "/healthz", "/metrics"} for _, route, _ in seen)


async def test_process_platform_and_build_info_are_exported(client: Client) -> None:
    families = await scrape(client)
    assert families["process_cpu_seconds"][0][2] >= 0
    assert families["process_resident_memory_bytes"][0][2] > 0
    assert families["process_start_time_seconds"][0][2] > 0
    [(_, python, _)] = families["python_info"]
    assert python["version"] == platform.python_version()
    [(name, labels, value)] = families["reservekit_build_info"]
    assert (name, labels, value) == (
        "reservekit_build_info",
        {"version": __version__, "python": platform.python_version()},
        1.0,
    )
