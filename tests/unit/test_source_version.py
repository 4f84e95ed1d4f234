"""Code versions from source: what a change to each kind of code does to each asset's version."""

import importlib
import sys
import textwrap
import uuid
from pathlib import Path

import pytest
from support.python_source import parse_python

from astromined.source_version import reachable_modules, source_version

MODEL_MODULES = {"astromined.ml.model", "astromined.ml.train"}


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))


@pytest.fixture()
def project(tmp_path, monkeypatch):
    """A small project on disk: a domain package (model, features, orchestration) and an asset layer.

    Returns (root, names, load): ``load()`` imports the asset module afresh (new package names each time,
    so nothing cached from the previous version is reused) and returns (train, featurize) versions.
    """
    monkeypatch.syspath_prepend(str(tmp_path))
    files = {
        "DOMAIN/__init__.py": "",
        "DOMAIN/model.py": "WIDTH = 8\n\ndef fit(rows):\n    return [r * WIDTH for r in rows]\n",
        "DOMAIN/layers.py": "def relu(x):\n    return max(x, 0)\n",
        "DOMAIN/features.py": "def aggregate(rows):\n    return sum(rows)\n",
        "DOMAIN/deep/__init__.py": "",
        "DOMAIN/deep/net.py": "from ..layers import relu\n\ndef forward(x):\n    return relu(x)\n",
        "ORCH/__init__.py": "",
        "ORCH/runner.py": "def submit(fn):\n    return fn\n",
        "LAYER/__init__.py": "",
        "LAYER/assets.py": """
            from DOMAIN import features
            from DOMAIN.model import fit
            from ORCH.runner import submit


            class TrainConfig:
                epochs: int = 10


            def _prepare(rows):
                return sorted(rows)


            def train(config: TrainConfig, rows):
                def inner():
                    from DOMAIN.deep.net import forward
                    return forward(1)
                return submit(fit(_prepare(rows))), inner()


            def featurize(rows):
                return features.aggregate(rows)
            """,
    }
    state = {"files": files}
    tag = uuid.uuid4().hex[:8]  # this test's package names, the same in every load()
    names = {"DOMAIN": f"dom_{tag}", "ORCH": f"orch_{tag}", "LAYER": f"lay_{tag}"}

    def rename(text: str) -> str:
        for placeholder, name in names.items():
            text = text.replace(placeholder, name)
        return text

    def load():
        root = tmp_path / f"load-{uuid.uuid4().hex[:8]}"  # new files: no stale bytecode or line cache
        _write(root, {rename(name): rename(text) for name, text in state["files"].items()})
        monkeypatch.syspath_prepend(str(root))
        module = importlib.import_module(f"{names['LAYER']}.assets")
        follow, local = (names["DOMAIN"],), (names["LAYER"],)
        versions = {n: source_version(getattr(module, n), follow, local) for n in ("train", "featurize")}
        reached = {
            n: [
                m.replace(names["DOMAIN"], "DOMAIN")
                for m in reachable_modules(getattr(module, n), follow, local)
            ]
            for n in ("train", "featurize")
        }
        for name in [n for n in sys.modules if tag in n]:
            del sys.modules[name]
        return versions, reached

    return state, load


def test_same_code_same_version_and_reach(project):
    _, load = project
    first, reached = load()
    again, _ = load()
    assert first == again
    assert len(first["train"]) == 16 and first["train"] != first["featurize"]
    # Imports at module level, inside nested functions, relative ones, and package __init__ files.
    assert reached["train"] == [
        "DOMAIN",
        "DOMAIN.deep",
        "DOMAIN.deep.net",
        "DOMAIN.layers",
        "DOMAIN.model",
    ]
    assert reached["featurize"] == ["DOMAIN", "DOMAIN.features"]


@pytest.mark.parametrize(
    ("path", "old", "new", "train_changes", "featurize_changes"),
    [
        ("DOMAIN/model.py", "WIDTH = 8", "WIDTH = 16", True, False),  # the model code only
        ("DOMAIN/layers.py", "max(x, 0)", "max(x, 0.0)", True, False),  # reached through a relative import
        ("DOMAIN/features.py", "sum(rows)", "sum(rows) / 1", False, True),  # upstream code only
        (
            "LAYER/assets.py",
            "sorted(rows)",
            "sorted(rows, reverse=True)",
            True,
            False,
        ),  # an asset-layer helper
        ("LAYER/assets.py", "epochs: int = 10", "epochs: int = 20", True, False),  # a config default
        ("ORCH/runner.py", "return fn", "return fn  # traced", False, False),  # orchestration: not followed
    ],
)
def test_a_change_moves_exactly_the_versions_that_reach_it(
    project, path, old, new, train_changes, featurize_changes
):
    state, load = project
    before, _ = load()
    assert old in state["files"][path]
    state["files"] = {**state["files"], path: state["files"][path].replace(old, new)}
    after, _ = load()
    assert (before["train"] != after["train"]) is train_changes
    assert (before["featurize"] != after["featurize"]) is featurize_changes


def test_real_assets_model_code_reaches_only_the_model_assets():
    """The product's graph: a change to the model code leaves ingest, features and the training set fresh."""
    import assets.features
    import assets.models
    import assets.telemetry
    import assets.uplink
    from assets.code_versions import ASSET_PACKAGES, DOMAIN_PACKAGES

    def reach(asset):
        return set(reachable_modules(asset.op.compute_fn.decorated_fn, DOMAIN_PACKAGES, ASSET_PACKAGES))

    for upstream in (
        assets.telemetry.raw_telemetry,
        assets.features.asteroid_features,
        assets.features.training_set,
    ):
        assert not reach(upstream) & MODEL_MODULES, upstream.key
    for downstream in (
        assets.models.candidate_model,
        assets.models.model_evaluation,
        assets.models.sector_rankings,
        assets.uplink.uplink_package,
    ):
        assert MODEL_MODULES & reach(downstream), downstream.key
    assert "astromined.features.engineering" in reach(assets.features.asteroid_features)
    assert "astromined.telemetry.ingest" in reach(assets.telemetry.raw_telemetry)


def test_definitions_carry_the_computed_versions(tmp_path):
    from assets.code_versions import computed_code_versions
    from astromined.definitions import build_definitions
    from astromined.environment import load_settings

    defs = build_definitions(load_settings({"ASTROMINED_STATE_DIR": str(tmp_path)}))
    graph = defs.resolve_asset_graph()
    computed = computed_code_versions(defs)
    executable = [key for key in graph.get_all_asset_keys() if graph.get(key).is_executable]
    assert executable and set(computed) == set(executable)
    for key in executable:
        assert graph.get(key).code_version == computed[key], key.to_user_string()


def test_import_scan_finds_what_a_full_parse_finds():
    """The fast line scan of imports against ast.walk over whole modules: every project file, and the
    shapes the scan must handle (parenthesized, backslash-continued, indented, docstring look-alikes)."""
    import ast
    import re

    from astromined.source_version import _import_statements

    def dumps(nodes):
        positions = re.compile(r"(end_)?(lineno|col_offset)=\d+")
        return sorted(positions.sub("", ast.dump(node)) for node in nodes)

    tricky = textwrap.dedent(
        '''
        """Docstring.
        from the landing zone, import what arrives
        import of this kind is not code
        """
        from a.b import (
            c,
            d as e,
        )
        import f.g, h
        from . import i
        from ..j \\
            import k


        def fn():
            if True:
                from l.m import n
        '''
    )
    repo = Path(__file__).resolve().parents[2]
    files = [*repo.glob("astromined/**/*.py"), *repo.glob("assets/*.py")]
    for text in [tricky, *(path.read_text() for path in files)]:
        full = [n for n in ast.walk(parse_python(text)) if isinstance(n, ast.Import | ast.ImportFrom)]
        assert dumps(_import_statements(text)) == dumps(full)
    assert len(dumps(_import_statements(tricky))) == 5  # the docstring lines are not imports


def test_code_without_source_is_versioned_by_its_compiled_code():
    """An install of bytecode only still gets versions that change with the code."""
    from astromined.source_version import _source

    def compiled(body: str):
        namespace: dict = {}
        exec(compile(f"def f(x):\n    return {body}\n", "<no file>", "exec"), namespace)
        return namespace["f"]

    assert _source(compiled("x + 1")) == _source(compiled("x + 1"))
    assert _source(compiled("x + 1")) != _source(compiled("x + 2"))


def test_a_disturbed_parse_is_retried_and_other_errors_raised(monkeypatch):
    """CPython 3.11's `AST constructor recursion depth mismatch` (an overlapping parse) is retried."""
    import ast

    from astromined import source_version

    real_parse, calls = ast.parse, []

    def flaky(source, *args, **kwargs):
        calls.append(source)
        if len(calls) == 1:
            raise SystemError("AST constructor recursion depth mismatch (before=141, after=228)")
        return real_parse(source, *args, **kwargs)

    monkeypatch.setattr(source_version.ast, "parse", flaky)
    assert isinstance(source_version._parse("import a").body[0], ast.Import) and len(calls) == 2

    def broken(source, *args, **kwargs):
        raise SystemError("some other interpreter error")

    monkeypatch.setattr(source_version.ast, "parse", broken)
    with pytest.raises(SystemError, match="some other"):
        source_version._parse("import a")
