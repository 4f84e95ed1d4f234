"""Kubernetes object shapes for the simulator: API errors as `Status` objects, admission (defaults and
validation of pods and jobs, with 422 `Invalid` causes as the real API server reports them), and the JSON of
nodes and namespaces."""

import random
import re
import string
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from astromined.sim.kube.quantity import (
    QuantityError,
    is_extended_resource,
    is_whole,
    parse_quantity,
    parse_signed_quantity,
)
from astromined.sim.kube.selectors import (
    NODE_SELECTOR_OPERATORS,
    SelectorError,
    validate_label_key,
    validate_label_value,
)
from astromined.sim.kube.spec import TAINT_EFFECTS, NodeSpec

_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_NAME_SUFFIX_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
NOT_READY_TAINT_KEY = "node.kubernetes.io/not-ready"
UNREACHABLE_TAINT_KEY = "node.kubernetes.io/unreachable"


class ApiError(Exception):
    """An error the API server answers with a `Status` object."""

    def __init__(self, code: int, reason: str, message: str, details: Mapping[str, Any] | None = None):
        super().__init__(message)
        self.code, self.reason, self.message, self.details = code, reason, message, dict(details or {})

    def status(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details:
            body["details"] = self.details
        return body


def not_found(resource: str, name: str, group: str = "") -> ApiError:
    qualified = f"{resource}.{group}" if group else resource
    details = {"name": name, "kind": resource, **({"group": group} if group else {})}
    return ApiError(404, "NotFound", f'{qualified} "{name}" not found', details)


def already_exists(resource: str, name: str, group: str = "") -> ApiError:
    qualified = f"{resource}.{group}" if group else resource
    details = {"name": name, "kind": resource, **({"group": group} if group else {})}
    return ApiError(409, "AlreadyExists", f'{qualified} "{name}" already exists', details)


def bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message)


class Invalid:
    """Collects field errors; `raise_if_any` turns them into a 422 like the API server's."""

    def __init__(self, kind: str, name: str, group: str = ""):
        self.kind, self.name, self.group = kind, name, group
        self.causes: list[dict[str, str]] = []

    def add(self, field: str, reason: str, detail: str) -> None:
        self.causes.append({"reason": reason, "message": f"{field}: {detail}", "field": field})

    def required(self, field: str, detail: str = "Required value") -> None:
        self.add(field, "FieldValueRequired", detail)

    def invalid(self, field: str, value: Any, detail: str) -> None:
        self.add(field, "FieldValueInvalid", f"Invalid value: {_go_repr(value)}: {detail}")

    def unsupported(self, field: str, value: Any, supported: tuple[str, ...]) -> None:
        listed = ", ".join(f'"{s}"' for s in supported)
        self.add(
            field,
            "FieldValueNotSupported",
            f"Unsupported value: {_go_repr(value)}: supported values: {listed}",
        )

    def raise_if_any(self) -> None:
        if not self.causes:
            return
        messages = [cause["message"] for cause in self.causes]
        joined = messages[0] if len(messages) == 1 else "[" + ", ".join(messages) + "]"
        qualified = f"{self.kind}.{self.group}" if self.group else self.kind
        details = {"name": self.name, "kind": self.kind, "causes": self.causes}
        if self.group:
            details["group"] = self.group
        raise ApiError(422, "Invalid", f'{qualified} "{self.name}" is invalid: {joined}', details)


def _go_repr(value: Any) -> str:
    return f'"{value}"' if isinstance(value, str) else str(value)


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def now_precise() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def new_uid() -> str:
    return str(uuid.uuid4())


def generate_name(prefix: str) -> str:
    return prefix + "".join(random.choices(_NAME_SUFFIX_ALPHABET, k=5))


# --- admission ----------------------------------------------------------------------------------------------


def admit_metadata(body: Any, namespace: str | None, kind: str, invalid_kind: str) -> dict[str, Any]:
    """Copy of `body` with metadata checked: name or generateName, namespace consistent, labels valid."""
    if not isinstance(body, Mapping):
        raise bad_request(f"the body of the request was not a {kind} object")
    if body.get("kind") not in (None, kind):
        raise bad_request(f"the kind of the provided object ({body.get('kind')}) is not {kind}")
    obj = _deep_copy(body)
    obj.pop("kind", None)
    obj.pop("apiVersion", None)
    meta = obj.setdefault("metadata", {}) or {}
    obj["metadata"] = meta
    if namespace is not None:
        if meta.get("namespace") not in (None, "", namespace):
            raise bad_request(
                "the namespace of the provided object does not match the namespace sent on the request"
            )
        meta["namespace"] = namespace
    if not meta.get("name"):
        if meta.get("generateName"):
            meta["name"] = generate_name(meta["generateName"])
        else:
            errors = Invalid(invalid_kind, "")
            errors.required("metadata.name", "Required value: name or generateName is required")
            errors.raise_if_any()
    errors = Invalid(invalid_kind, str(meta["name"]))
    name = meta["name"]
    pattern, limit = (_DNS_LABEL, 63) if kind == "Namespace" else (_DNS_SUBDOMAIN, 253)
    if not isinstance(name, str) or len(name) > limit or not pattern.match(name):
        errors.invalid(
            "metadata.name",
            name,
            "a lowercase RFC 1123 name must consist of lower case alphanumeric characters, '-' or '.', "
            "and must start and end with an alphanumeric character",
        )
    for key, value in (meta.get("labels") or {}).items():
        try:
            validate_label_key(key)
            validate_label_value(str(value))
        except SelectorError as error:
            errors.invalid(f"metadata.labels[{key}]", value, str(error))
    errors.raise_if_any()
    for server_field in ("uid", "resourceVersion", "creationTimestamp", "deletionTimestamp", "generation"):
        meta.pop(server_field, None)
    meta.setdefault("labels", {})
    meta.setdefault("annotations", {})
    meta["uid"] = new_uid()
    meta["creationTimestamp"] = now()
    return obj


def _deep_copy(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {key: _deep_copy(item) for key, item in value.items() if item is not None}
    if isinstance(value, list):
        return [_deep_copy(item) for item in value]
    return value


DEFAULT_TOLERATIONS = (
    {"key": NOT_READY_TAINT_KEY, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
    {"key": UNREACHABLE_TAINT_KEY, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
)


def validate_and_default_pod_spec(
    spec: Any, errors: Invalid, at: str, restart_policies: tuple[str, ...] = ("Always", "OnFailure", "Never")
) -> dict[str, Any]:
    if not isinstance(spec, Mapping):
        errors.required(at)
        return {}
    spec = dict(spec)
    containers = spec.get("containers")
    if not containers:
        errors.required(f"{at}.containers")
    names: set[str] = set()
    for group in ("initContainers", "containers"):
        for index, container in enumerate(spec.get(group) or []):
            _container(container, errors, f"{at}.{group}[{index}]", names)
    policy = spec.get("restartPolicy", "Always" if "Always" in restart_policies else None)
    if policy is None:
        errors.add(
            f"{at}.restartPolicy",
            "FieldValueRequired",
            "Required value: valid values: " + ", ".join(f'"{p}"' for p in restart_policies),
        )
    elif policy not in restart_policies:
        errors.unsupported(f"{at}.restartPolicy", policy, restart_policies)
    spec["restartPolicy"] = policy
    for key, value in (spec.get("nodeSelector") or {}).items():
        try:
            validate_label_key(key)
            validate_label_value(str(value))
        except SelectorError as error:
            errors.invalid(f"{at}.nodeSelector[{key}]", value, str(error))
    for index, toleration in enumerate(spec.get("tolerations") or []):
        where = f"{at}.tolerations[{index}]"
        operator = toleration.get("operator") or "Equal"
        if operator not in ("Equal", "Exists"):
            errors.unsupported(f"{where}.operator", operator, ("Equal", "Exists"))
        if operator == "Exists" and toleration.get("value"):
            errors.invalid(
                f"{where}.operator",
                toleration.get("value"),
                "value must be empty when `operator` is 'Exists'",
            )
        if not toleration.get("key") and operator != "Exists":
            errors.invalid(f"{where}.operator", operator, "operator must be Exists when `key` is empty")
        if toleration.get("effect") and toleration["effect"] not in TAINT_EFFECTS:
            errors.unsupported(f"{where}.effect", toleration["effect"], TAINT_EFFECTS)
    _affinity(spec.get("affinity"), errors, f"{at}.affinity")
    grace = spec.get("terminationGracePeriodSeconds", 30)
    if not isinstance(grace, int) or grace < 0:
        errors.invalid(f"{at}.terminationGracePeriodSeconds", grace, "must be greater than or equal to 0")
    spec["terminationGracePeriodSeconds"] = grace
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("serviceAccountName", spec.get("serviceAccount") or "default")
    spec.setdefault("serviceAccount", spec["serviceAccountName"])
    spec.setdefault("securityContext", {})
    spec.setdefault("enableServiceLinks", True)
    spec.setdefault("priority", 0)
    spec.setdefault("preemptionPolicy", "PreemptLowerPriority")
    tolerations = list(spec.get("tolerations") or [])
    for default in DEFAULT_TOLERATIONS:
        if not any(
            t.get("key") == default["key"] and t.get("effect") in (None, "", "NoExecute") for t in tolerations
        ):
            tolerations.append(dict(default))
    spec["tolerations"] = tolerations
    return spec


def _container(container: Any, errors: Invalid, where: str, names: set[str]) -> None:
    if not isinstance(container, dict):
        errors.required(where)
        return
    name = container.get("name")
    if not name:
        errors.required(f"{where}.name")
    elif not isinstance(name, str) or len(name) > 63 or not _DNS_LABEL.match(name):
        errors.invalid(
            f"{where}.name",
            name,
            "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-'",
        )
    elif name in names:
        errors.add(f"{where}.name", "FieldValueDuplicate", f'Duplicate value: "{name}"')
    else:
        names.add(name)
    if not container.get("image"):
        errors.required(f"{where}.image")
    for index, env in enumerate(container.get("env") or []):
        if not env.get("name"):
            errors.required(f"{where}.env[{index}].name")
    _resources(container.get("resources") or {}, errors, f"{where}.resources")
    image = str(container.get("image") or "")
    container.setdefault(
        "imagePullPolicy", "Always" if image.endswith(":latest") or ":" not in image else "IfNotPresent"
    )
    container.setdefault("terminationMessagePath", "/dev/termination-log")
    container.setdefault("terminationMessagePolicy", "File")
    container.setdefault("resources", {})


def _resources(resources: Mapping[str, Any], errors: Invalid, where: str) -> None:
    parsed: dict[str, dict[str, Any]] = {}
    for kind in ("limits", "requests"):
        parsed[kind] = {}
        for resource, value in (resources.get(kind) or {}).items():
            field = f"{where}.{kind}[{resource}]"
            try:
                quantity = parse_signed_quantity(value)
            except QuantityError as error:
                errors.invalid(field, value, str(error))
                continue
            if quantity < 0:
                errors.invalid(field, value, "must be greater than or equal to 0")
            elif is_extended_resource(resource) and not is_whole(quantity):
                errors.invalid(field, value, "must be an integer")
            parsed[kind][resource] = quantity
    limits, requests = parsed["limits"], parsed["requests"]
    for resource, quantity in requests.items():
        if is_extended_resource(resource):
            if resource not in limits:
                errors.add(
                    f"{where}.limits",
                    "FieldValueRequired",
                    "Required value: Limit must be set for non overcommitable resources",
                )
            elif limits[resource] != quantity:
                errors.invalid(
                    f"{where}.requests[{resource}]",
                    str(resources["requests"][resource]),
                    f"must be equal to {resource} limit of {resources['limits'][resource]}",
                )
        elif resource in limits and quantity > limits[resource]:
            errors.invalid(
                f"{where}.requests",
                str(resources["requests"][resource]),
                f"must be less than or equal to {resource} limit of {resources['limits'][resource]}",
            )


def _affinity(affinity: Any, errors: Invalid, where: str) -> None:
    node_affinity = (affinity or {}).get("nodeAffinity") or {}
    required = node_affinity.get("requiredDuringSchedulingIgnoredDuringExecution")
    if required is not None:
        terms = required.get("nodeSelectorTerms")
        if not terms:
            errors.required(
                f"{where}.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms",
                "Required value: must have at least one node selector term",
            )
        for index, term in enumerate(terms or []):
            _term(
                term,
                errors,
                f"{where}.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[{index}]",
            )
    for index, preferred in enumerate(
        node_affinity.get("preferredDuringSchedulingIgnoredDuringExecution") or []
    ):
        at = f"{where}.nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution[{index}]"
        weight = preferred.get("weight")
        if not isinstance(weight, int) or not 1 <= weight <= 100:
            errors.invalid(f"{at}.weight", weight, "must be in the range 1-100")
        if "preference" not in preferred:
            errors.required(f"{at}.preference")
        else:
            _term(preferred["preference"], errors, f"{at}.preference")


def _term(term: Mapping[str, Any], errors: Invalid, where: str) -> None:
    for group in ("matchExpressions", "matchFields"):
        for index, requirement in enumerate(term.get(group) or []):
            at = f"{where}.{group}[{index}]"
            operator, values = requirement.get("operator"), requirement.get("values") or []
            if not requirement.get("key"):
                errors.required(f"{at}.key")
            if operator not in NODE_SELECTOR_OPERATORS:
                errors.unsupported(f"{at}.operator", operator, NODE_SELECTOR_OPERATORS)
            elif operator in ("In", "NotIn") and not values:
                errors.required(
                    f"{at}.values", "Required value: must be specified when `operator` is 'In' or 'NotIn'"
                )
            elif operator in ("Exists", "DoesNotExist") and values:
                errors.add(
                    f"{at}.values",
                    "FieldValueForbidden",
                    "Forbidden: may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                )
            elif operator in ("Gt", "Lt") and (
                len(values) != 1 or not re.fullmatch(r"-?\d+", str(values[0]))
            ):
                errors.required(
                    f"{at}.values",
                    "Required value: must be specified single value when `operator` is 'Lt' or 'Gt'",
                )


def admit_pod(body: Any, namespace: str) -> dict[str, Any]:
    pod = admit_metadata(body, namespace, "Pod", "Pod")
    errors = Invalid("Pod", pod["metadata"]["name"])
    pod["spec"] = validate_and_default_pod_spec(pod.get("spec"), errors, "spec")
    errors.raise_if_any()
    pod["status"] = {"phase": "Pending", "qosClass": qos_class(pod["spec"])}
    return pod


def admit_job(body: Any, namespace: str) -> dict[str, Any]:
    job = admit_metadata(body, namespace, "Job", "Job")
    name, uid = job["metadata"]["name"], job["metadata"]["uid"]
    errors = Invalid("Job", name, "batch")
    if len(name) > 63:
        errors.invalid(
            "metadata.name", name, "must be no more than 63 characters (the name is a label value)"
        )
    spec = dict(job.get("spec") or {})
    template = dict(spec.get("template") or {})
    if not template:
        errors.required("spec.template")
    template_meta = dict(template.get("metadata") or {})
    template["spec"] = validate_and_default_pod_spec(
        template.get("spec"), errors, "spec.template.spec", ("OnFailure", "Never")
    )
    for field, minimum in (
        ("backoffLimit", 0),
        ("completions", 0),
        ("parallelism", 0),
        ("ttlSecondsAfterFinished", 0),
        ("activeDeadlineSeconds", 1),
    ):
        value = spec.get(field)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < minimum):
            errors.invalid(f"spec.{field}", value, f"must be greater than or equal to {minimum}")
    errors.raise_if_any()
    spec.setdefault("backoffLimit", 6)
    spec.setdefault("completions", 1)
    spec.setdefault("parallelism", 1)
    spec.setdefault("completionMode", "NonIndexed")
    spec.setdefault("suspend", False)
    spec.setdefault("podReplacementPolicy", "TerminatingOrFailed")
    spec.setdefault("manualSelector", False)
    controller_labels = {
        "batch.kubernetes.io/controller-uid": uid,
        "batch.kubernetes.io/job-name": name,
        "controller-uid": uid,
        "job-name": name,
    }
    spec["selector"] = {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}
    template_meta["labels"] = {**(template_meta.get("labels") or {}), **controller_labels}
    template["metadata"] = template_meta
    spec["template"] = template
    job["spec"] = spec
    job["metadata"]["labels"] = {**controller_labels, **job["metadata"]["labels"]}
    job["metadata"]["generation"] = 1
    job["status"] = {}
    return job


def admit_namespace(body: Any) -> dict[str, Any]:
    namespace = admit_metadata(body, None, "Namespace", "Namespace")
    namespace["metadata"].pop("namespace", None)
    return finish_namespace(namespace)


def finish_namespace(namespace: dict[str, Any]) -> dict[str, Any]:
    name = namespace["metadata"]["name"]
    namespace["metadata"]["labels"] = {
        **namespace["metadata"].get("labels", {}),
        "kubernetes.io/metadata.name": name,
    }
    namespace["spec"] = {"finalizers": ["kubernetes"]}
    namespace["status"] = {"phase": "Active"}
    return namespace


def namespace_object(name: str) -> dict[str, Any]:
    return finish_namespace(
        {
            "metadata": {
                "name": name,
                "uid": new_uid(),
                "creationTimestamp": now(),
                "labels": {},
                "annotations": {},
            }
        }
    )


def qos_class(spec: Mapping[str, Any]) -> str:
    containers = list(spec.get("containers") or []) + list(spec.get("initContainers") or [])
    any_set, guaranteed = False, True
    for container in containers:
        resources = container.get("resources") or {}
        limits, requests = (
            resources.get("limits") or {},
            {**(resources.get("limits") or {}), **(resources.get("requests") or {})},
        )
        if limits or requests:
            any_set = True
        for resource in ("cpu", "memory"):
            if resource not in limits or parse_quantity(requests.get(resource, 0)) != parse_quantity(
                limits[resource]
            ):
                guaranteed = False
    if not any_set:
        return "BestEffort"
    return "Guaranteed" if guaranteed else "Burstable"


# --- nodes --------------------------------------------------------------------------------------------------


def node_object(spec: NodeSpec, index: int, kubernetes_version: str, site: str) -> dict[str, Any]:
    stamp = now()
    address = f"10.{(index // 65536) % 256}.{(index // 256) % 256}.{index % 256 or 1}"
    ident = "".join(random.choices(string.hexdigits.lower(), k=32))
    return {
        "metadata": {
            "name": spec.name,
            "uid": new_uid(),
            "creationTimestamp": stamp,
            "labels": dict(spec.labels),
            "annotations": {"sim.astromined.io/site": site},
        },
        "spec": {
            "providerID": f"sim://{site}/{spec.name}",
            "podCIDR": f"10.244.{index % 256}.0/24",
            **({"taints": [dict(t) for t in spec.taints]} if spec.taints else {}),
            **({"unschedulable": True} if spec.unschedulable else {}),
        },
        "status": {
            "capacity": dict(spec.capacity),
            "allocatable": dict(spec.allocatable),
            "conditions": node_conditions(spec.ready, stamp),
            "addresses": [
                {"type": "InternalIP", "address": address},
                {"type": "Hostname", "address": spec.name},
            ],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": {
                "architecture": "amd64",
                "bootID": new_uid(),
                "containerRuntimeVersion": "sim://1.0.0",
                "kernelVersion": "6.1.0-sim",
                "kubeProxyVersion": kubernetes_version,
                "kubeletVersion": kubernetes_version,
                "machineID": ident,
                "operatingSystem": "linux",
                "osImage": "AstroMined simulated node",
                "systemUUID": new_uid(),
            },
        },
    }


def node_conditions(ready: bool, stamp: str) -> list[dict[str, Any]]:
    pressure = [
        {
            "type": kind,
            "status": "False",
            "reason": f"KubeletHasNo{kind}" if kind != "PIDPressure" else "KubeletHasSufficientPID",
            "message": f"kubelet has no {kind}",
            "lastHeartbeatTime": stamp,
            "lastTransitionTime": stamp,
        }
        for kind in ("MemoryPressure", "DiskPressure", "PIDPressure")
    ]
    ready_condition = {
        "type": "Ready",
        "status": "True" if ready else "False",
        "reason": "KubeletReady" if ready else "KubeletNotReady",
        "message": "kubelet is posting ready status" if ready else "simulated: node marked NotReady",
        "lastHeartbeatTime": stamp,
        "lastTransitionTime": stamp,
    }
    return [*pressure, ready_condition]


DEVICE_PLUGIN_NAMESPACE = "kube-system"
DEVICE_PLUGIN_NAME = "nvidia-device-plugin"
DEFAULT_STORAGE_CLASS = "standard"
DEFAULT_CLASS_ANNOTATION = "storageclass.kubernetes.io/is-default-class"


def daemonset_object(name: str, namespace: str, node_selector: Mapping[str, str]) -> dict[str, Any]:
    """An apps/v1 DaemonSet; its status counts are set by the cluster from the nodes it selects."""
    return {
        "metadata": {
            "name": name,
            "namespace": namespace,
            "uid": new_uid(),
            "creationTimestamp": now(),
            "generation": 1,
            "labels": {"app.kubernetes.io/name": name},
            "annotations": {},
        },
        "spec": {
            "selector": {"matchLabels": {"app.kubernetes.io/name": name}},
            "template": {
                "metadata": {"labels": {"app.kubernetes.io/name": name}},
                "spec": {
                    "nodeSelector": dict(node_selector),
                    "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
                    "containers": [
                        {
                            "name": "nvidia-device-plugin-ctr",
                            "image": "nvcr.io/nvidia/k8s-device-plugin:v0.16.2",
                        }
                    ],
                },
            },
            "updateStrategy": {"type": "RollingUpdate"},
        },
        "status": {
            "currentNumberScheduled": 0,
            "desiredNumberScheduled": 0,
            "numberAvailable": 0,
            "numberMisscheduled": 0,
            "numberReady": 0,
            "observedGeneration": 1,
            "updatedNumberScheduled": 0,
        },
    }


def storage_class_object(name: str, default: bool) -> dict[str, Any]:
    return {
        "metadata": {
            "name": name,
            "uid": new_uid(),
            "creationTimestamp": now(),
            "labels": {},
            "annotations": {DEFAULT_CLASS_ANNOTATION: "true"} if default else {},
        },
        "provisioner": "rancher.io/local-path",
        "reclaimPolicy": "Delete",
        "volumeBindingMode": "WaitForFirstConsumer",
    }


def access_review(body: Any, allowed: bool, reason: str) -> dict[str, Any]:
    """The answer to a SelfSubjectAccessReview: the request's spec with ``status.allowed``."""
    if not isinstance(body, Mapping) or body.get("kind") not in (None, "SelfSubjectAccessReview"):
        raise bad_request("the body must be a SelfSubjectAccessReview")
    spec = body.get("spec") or {}
    if not isinstance(spec, Mapping) or not (
        spec.get("resourceAttributes") or spec.get("nonResourceAttributes")
    ):
        errors = Invalid("SelfSubjectAccessReview", "")
        errors.invalid(
            "spec", spec, "exactly one of nonResourceAttributes or resourceAttributes must be specified"
        )
        errors.raise_if_any()
    review = {
        "kind": "SelfSubjectAccessReview",
        "apiVersion": "authorization.k8s.io/v1",
        "metadata": {"creationTimestamp": None},
        "spec": dict(spec),
        "status": {"allowed": allowed},
    }
    if reason:
        review["status"]["reason"] = reason
    if not allowed:
        review["status"]["denied"] = False  # RBAC has no opinion: not allowed, not explicitly denied
    return review
