"""The state of the simulator's API-level fault switches and what they answer.

`SimulatedCluster.set_*` flips them; the HTTP server reads `api_latency`, the REST layer asks
`forbid_watch` and `access_review`. The other faults live with what they break: the API-down switch in
`server.ApiServer`, node readiness and the device plugin in `nodes.NodeController`, the image-pull delay in
`kubelet.Kubelet`.
"""

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from astromined.sim.kube import objects as o


@dataclass
class ApiFaults:
    api_latency: float = 0.0  # seconds added before every answer
    watch_forbidden: bool = False
    # SelfSubjectAccessReview answers: "verb resource[/subresource]" entries (or "*") that are denied.
    denied_access: frozenset[str] = field(default_factory=frozenset)

    def forbid_watch(self, kind: str, group: str, namespace: str | None) -> None:
        """Raise kube-apiserver's 403 for a watch when the switch is on (a role without the watch verb)."""
        if self.watch_forbidden:
            scope = f'in the namespace "{namespace}"' if namespace else "at the cluster scope"
            raise o.ApiError(
                403,
                "Forbidden",
                f'{kind} is forbidden: User "system:serviceaccount:dagster:astromined" cannot watch resource '
                f'"{kind}" in API group "{group}" {scope}',
            )

    def access_review(self, body: Any) -> bytes:
        """The answer to a SelfSubjectAccessReview: allowed unless its verb and resource are denied."""
        spec = body.get("spec") if isinstance(body, Mapping) else None
        attributes = (spec or {}).get("resourceAttributes") or {} if isinstance(spec, Mapping) else {}
        resource = attributes.get("resource", "")
        if attributes.get("subresource"):
            resource += "/" + attributes["subresource"]
        entry = f"{attributes.get('verb', '')} {resource}"
        denied = "*" in self.denied_access or entry in self.denied_access
        reason = "simulated RBAC: denied by the fault switch" if denied else "simulated RBAC: allowed"
        return json.dumps(o.access_review(body, allowed=not denied, reason=reason)).encode()
