"""`voicecart pipeline check` finds what the main job's steps name, and says what does not resolve."""

from __future__ import annotations

import textwrap
from pathlib import Path

from voicecart.cli.preflight import _resolves, main_job_needs, missing

REPO = Path(__file__).resolve().parents[2]


def test_the_main_job_names_the_archiver_the_server_and_the_pipeline_sdks() -> None:
    needs = main_job_needs(REPO)
    # export-bundle runs torch-model-archiver; the demo starts `voicecart serve` next to the interpreter
    assert needs.executables["torch-model-archiver"] == "src/voicecart/export/torchserve.py"
    assert needs.executables["voicecart"] == "src/voicecart/serving/local.py"
    # prepare downloads Ta-Feng with `python -m pip`; the DAG needs kfp-kubernetes; lazy imports count
    assert needs.modules["pip"] == "src/voicecart/data/sources.py"
    assert "kfp.kubernetes" in needs.modules
    for module in ("kserve", "onnxruntime", "matplotlib", "scipy.sparse", "feast", "torch"):
        assert any(name == module or name.startswith(module + ".") for name in needs.modules), module


def test_a_missing_module_or_executable_is_named_with_the_file_that_needs_it(tmp_path: Path) -> None:
    (tmp_path / "components").mkdir()
    (tmp_path / "components" / "step.py").write_text(textwrap.dedent('''
        import shutil

        def step():
            import voicecart_no_such_dependency
            from json import dumps, voicecart_no_such_name
            try:
                import optional_accelerator
            except ImportError:
                optional_accelerator = None
            return shutil.which("voicecart-no-such-tool")
    '''))
    needs = main_job_needs(tmp_path)
    problems = missing(needs)
    assert "module voicecart_no_such_dependency (named in components/step.py) is not importable" in problems
    assert any(p.startswith("executable voicecart-no-such-tool (named in components/step.py)") for p in problems)
    assert "optional_accelerator" not in needs.modules  # guarded by `except ImportError`: optional
    assert "module json.voicecart_no_such_name (named in components/step.py) is not importable" in problems
    assert not any("json.dumps" in p for p in problems)  # a name json's __init__ defines


def test_submodules_resolve_without_importing_and_missing_ones_do_not() -> None:
    assert _resolves("kfp.kubernetes")  # another distribution's module inside the kfp package
    assert _resolves("kserve.Model")  # a name kserve's __init__ defines
    assert not _resolves("kfp.voicecart_no_such_module")
    assert not _resolves("voicecart_no_such_package.sub")
