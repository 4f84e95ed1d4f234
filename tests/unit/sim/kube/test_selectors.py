import pytest
from hypothesis import given
from hypothesis import strategies as st

from astromined.sim.kube.selectors import (
    Requirement,
    SelectorError,
    fields_match,
    labels_match,
    node_selector_term_matches,
    parse_field_selector,
    parse_label_selector,
)


def test_parses_every_operator():
    parsed = parse_label_selector("a=1, b==2,c!=3,d in (x, y),e notin (z),f,!g,h>5,i<7")
    assert parsed == (
        Requirement("a", "=", ("1",)),
        Requirement("b", "=", ("2",)),
        Requirement("c", "!=", ("3",)),
        Requirement("d", "in", ("x", "y")),
        Requirement("e", "notin", ("z",)),
        Requirement("f", "exists"),
        Requirement("g", "!"),
        Requirement("h", "gt", ("5",)),
        Requirement("i", "lt", ("7",)),
    )
    assert parse_label_selector("") == () and parse_label_selector(None) == ()
    assert parse_label_selector("job-name=dagster-step-abc")[0].key == "job-name"
    assert parse_label_selector("batch.kubernetes.io/job-name=x")[0].key == "batch.kubernetes.io/job-name"


@pytest.mark.parametrize(
    "text", ["a in (b", "a in ()", "a=b=c", "=b", "a,,b", "-a=b", "a=b c", "a>x", "a in (b))"]
)
def test_rejects_malformed_selectors(text):
    with pytest.raises(SelectorError):
        parse_label_selector(text)


def test_negative_operators_match_objects_without_the_key():
    labels = {"tier": "a"}
    assert labels_match(parse_label_selector("missing!=x"), labels)
    assert labels_match(parse_label_selector("missing notin (x)"), labels)
    assert not labels_match(parse_label_selector("missing in (x)"), labels)
    assert not labels_match(parse_label_selector("tier"), {}) and labels_match(
        parse_label_selector("!tier"), {}
    )


keys = st.sampled_from(["app", "tier", "astromined.io/gpu", "job-name"])
values = st.sampled_from(["a", "b", "v100", "x-1"])
label_sets = st.dictionaries(keys, values, max_size=4)


@st.composite
def requirements(draw):
    key = draw(keys)
    operator = draw(st.sampled_from(["=", "==", "!=", "in", "notin", "exists", "!"]))
    chosen = draw(st.lists(values, min_size=1, max_size=3, unique=True))
    text = {
        "=": f"{key}={chosen[0]}",
        "==": f"{key}=={chosen[0]}",
        "!=": f"{key}!={chosen[0]}",
        "in": f"{key} in ({','.join(chosen)})",
        "notin": f"{key} notin ({','.join(chosen)})",
        "exists": key,
        "!": f"!{key}",
    }[operator]

    def oracle(labels):
        present = key in labels
        return {
            "=": present and labels[key] == chosen[0],
            "==": present and labels[key] == chosen[0],
            "!=": not present or labels[key] != chosen[0],
            "in": present and labels[key] in chosen,
            "notin": not present or labels[key] not in chosen,
            "exists": present,
            "!": not present,
        }[operator]

    return text, oracle


@given(st.lists(requirements(), min_size=1, max_size=4), label_sets)
def test_matching_agrees_with_the_kubernetes_semantics(reqs, labels):
    selector = ",".join(text for text, _ in reqs)
    assert labels_match(parse_label_selector(selector), labels) == all(oracle(labels) for _, oracle in reqs)


def test_field_selectors_per_resource():
    pod = {
        "metadata": {"name": "p", "namespace": "d"},
        "spec": {"nodeName": "n1"},
        "status": {"phase": "Running"},
    }
    assert fields_match(parse_field_selector("metadata.name=p,spec.nodeName==n1", "pods"), pod, "pods")
    assert not fields_match(parse_field_selector("status.phase!=Running", "pods"), pod, "pods")
    assert fields_match(parse_field_selector("spec.nodeName!=n2", "pods"), pod, "pods")
    with pytest.raises(SelectorError, match=r"field label not supported: spec\.foo"):
        parse_field_selector("spec.foo=x", "pods")
    with pytest.raises(SelectorError):
        parse_field_selector("metadata.name", "pods")


def node(labels):
    return {"metadata": {"name": "n1", "labels": labels}}


@pytest.mark.parametrize(
    ("operator", "values", "labels", "expected"),
    [
        ("In", ["v100"], {"gpu": "v100"}, True),
        ("In", ["a10g"], {"gpu": "v100"}, False),
        ("NotIn", ["v100"], {}, True),
        ("NotIn", ["v100"], {"gpu": "v100"}, False),
        ("Exists", [], {"gpu": ""}, True),
        ("DoesNotExist", [], {"gpu": "x"}, False),
        ("Gt", ["2"], {"gpu": "4"}, True),
        ("Gt", ["4"], {"gpu": "4"}, False),
        ("Lt", ["8"], {"gpu": "4"}, True),
        ("Lt", ["8"], {"gpu": "many"}, False),
    ],
)
def test_node_selector_requirements(operator, values, labels, expected):
    term = {"matchExpressions": [{"key": "gpu", "operator": operator, "values": values}]}
    assert node_selector_term_matches(term, node(labels)) is expected


def test_empty_node_selector_term_matches_nothing_and_match_fields_use_the_name():
    assert not node_selector_term_matches({}, node({}))
    term = {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n1"]}]}
    assert node_selector_term_matches(term, node({}))
