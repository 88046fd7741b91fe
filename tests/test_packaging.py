"""What a user installs: the sdist holds the whole project, the wheel its license and type
markers, and an adapter without its framework says which extra to install."""

import re
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
PACKAGES = ["hf_endpoint", "langchain_hf_endpoint", "llama_index_hf_endpoint"]


def project_files(*folders):
    """The files under ``folders`` that belong in an archive (no caches)."""
    return {
        str(p.relative_to(ROOT))
        for folder in folders
        for p in (ROOT / folder).rglob("*")
        if p.is_file()
        and "__pycache__" not in p.parts
        and ".ipynb_checkpoints" not in p.parts
        and p.suffix != ".pyc"
    }


@pytest.fixture(scope="module")
def dist(tmp_path_factory):
    """An sdist, and a wheel built from that sdist (as pip would from PyPI)."""
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(ROOT)],
        check=True,
        capture_output=True,
    )
    (sdist,) = out.glob("*.tar.gz")
    (wheel,) = out.glob("*.whl")
    return sdist, wheel


def test_sdist_holds_the_tests_notebooks_docs_and_license(dist):
    sdist, _ = dist
    with tarfile.open(sdist) as archive:
        top = archive.getnames()[0].split("/")[0]
        names = {n.removeprefix(top + "/") for n in archive.getnames()}
    expected = project_files("tests", "notebooks", "docs", *PACKAGES) | {
        "LICENSE",
        "README.md",
        "pyproject.toml",
        "MANIFEST.in",
        "mkdocs.yml",
    }
    assert sorted(expected - names) == []


def test_wheel_holds_the_license_and_a_type_marker_per_package(dist):
    _, wheel = dist
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
    assert {f"{p}/py.typed" for p in PACKAGES} <= set(names)
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    assert not any(n.startswith(("tests/", "benchmarks/", "notebooks/")) for n in names)


def test_wheel_metadata_keeps_user_extras_apart_from_tools(dist):
    _, wheel = dist
    with zipfile.ZipFile(wheel) as archive:
        (meta,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        metadata = archive.read(meta).decode()
    assert "License-Expression: Apache-2.0" in metadata
    assert "Project-URL: Documentation" in metadata
    for tool in ("pytest", "mypy", "ruff", "faker", "semchunk", "mkdocs"):
        (line,) = [
            line
            for line in metadata.splitlines()
            if re.match(rf"Requires-Dist: {tool}\b(?!-)", line)
        ]
        assert "extra ==" in line and '"langchain"' not in line and '"server"' not in line


@pytest.mark.parametrize(
    ("package", "framework", "extra"),
    [
        ("langchain_hf_endpoint", "langchain_core", "langchain"),
        ("langchain_hf_endpoint", "langchain_text_splitters", "langchain"),
        ("llama_index_hf_endpoint", "llama_index", "llama-index"),
    ],
)
def test_an_adapter_without_its_framework_names_the_extra_to_install(package, framework, extra):
    hide = f"import sys; sys.modules[{framework!r}] = None\nimport {package}"
    done = subprocess.run(
        [sys.executable, "-c", hide], capture_output=True, text=True, cwd=ROOT, check=False
    )
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith(f"ImportError: {package} needs ")
    assert last.endswith(f'pip install "hf-endpoint[{extra}]"')
    assert framework in last
