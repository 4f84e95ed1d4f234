"""The placement policy and the Kubernetes simulator read a resource quantity the same way.

They once had two parsers that disagreed: the product's rejected "-1" and grammar Kubernetes does not have
("1e3m", "1_000" passed through Python's Decimal), and let a negative int through; the simulator's parsed
"-1" as -1 and counted it. Now the simulator's admission (422 Invalid, as kube-apiserver) accepts exactly the
requests the placement policy can count, and both count them alike.
"""

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from astromined.placement.quantities import QuantityError, cpu_millis, memory_bytes, whole_units
from astromined.placement.snapshot import pod_requests as placement_requests
from astromined.sim.kube.objects import ApiError, admit_pod
from astromined.sim.kube.quantity import to_units
from astromined.sim.kube.scheduler import pod_requests as simulator_requests

PLACEMENT_UNITS = {"cpu": cpu_millis, "memory": memory_bytes, "nvidia.com/gpu": whole_units}
PLACEMENT_FIELD = {"cpu": "cpu_millis", "memory": "memory_bytes", "nvidia.com/gpu": "gpus"}

_grammar = st.builds(
    lambda sign, number, suffix: f"{sign}{number}{suffix}",
    st.sampled_from(["", "+", "-"]),
    st.one_of(
        st.integers(min_value=0, max_value=10**12).map(str),
        st.decimals(min_value=0, max_value=10**6, allow_nan=False, allow_infinity=False, places=4).map(str),
        st.sampled_from([".5", "5.", "0", "0.0", "1_000", "١"]),
    ),
    st.one_of(
        st.sampled_from(
            ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei", "n", "u", "m", "k", "M", "G", "T", "P", "E"]
        ),
        st.builds(lambda e, n: f"{e}{n}", st.sampled_from(["e", "E", "e-", "E+"]), st.integers(0, 12)),
        st.sampled_from(["K", "ki", "e3m", " Gi", "Gb"]),
    ),
)
QUANTITIES = st.one_of(
    _grammar,
    st.text(alphabet="0123456789.+-eEKMGTPiknmu ", max_size=8),
    st.integers(min_value=-(10**6), max_value=10**6),
    st.floats(min_value=-1e6, max_value=1e6, allow_nan=False),
)
RESOURCES = st.sampled_from(sorted(PLACEMENT_UNITS))


def _pod(resource: str, quantity: object) -> dict:
    resources = {"requests": {resource: quantity}, "limits": {resource: quantity}}
    return {
        "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "c", "image": "x", "resources": resources}]},
    }


def _placement_units(resource: str, quantity: object) -> int | None:
    try:
        return PLACEMENT_UNITS[resource](quantity)
    except QuantityError:
        return None


@given(QUANTITIES, RESOURCES)
@example("-1", "cpu")
@example(-1, "cpu")
@example("1e3m", "memory")
@example("1_000", "cpu")
@example("1.5", "nvidia.com/gpu")
@example("-0", "memory")
def test_the_simulator_admits_exactly_the_requests_placement_can_count(quantity, resource):
    expected = _placement_units(resource, quantity)
    try:
        pod = admit_pod(_pod(resource, quantity), "default")
    except ApiError as error:
        assert error.code == 422 and error.reason == "Invalid"
        assert expected is None, f"the simulator rejects {quantity!r} that placement counts as {expected}"
        return
    assert expected is not None, f"the simulator admits {quantity!r} that placement cannot count"
    assert simulator_requests(pod["spec"]).get(resource, 0) == expected
    assert getattr(placement_requests(pod["spec"]), PLACEMENT_FIELD[resource]) == expected


@given(QUANTITIES, st.sampled_from(["cpu", "memory"]))
@example("-1", "cpu")
@example(-1, "memory")
def test_the_simulated_scheduler_counts_as_placement_does(quantity, resource):
    expected = _placement_units(resource, quantity)
    if expected is None:
        with pytest.raises(QuantityError):
            to_units(resource, quantity)
    else:
        assert to_units(resource, quantity) == expected


@pytest.mark.parametrize(
    ("resource", "value"), [("cpu", "-1"), ("memory", "-512Mi"), ("nvidia.com/gpu", "-1")]
)
def test_a_negative_request_is_the_api_servers_422(resource, value):
    with pytest.raises(ApiError) as raised:
        admit_pod(_pod(resource, value), "default")
    error = raised.value
    assert error.code == 422 and error.reason == "Invalid"
    fields = {cause["field"]: cause["message"] for cause in error.details["causes"]}
    field = f"spec.containers[0].resources.requests[{resource}]"
    assert fields[field] == f'{field}: Invalid value: "{value}": must be greater than or equal to 0'
